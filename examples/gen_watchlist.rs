//! Writes a config watching N real prefixes, for benchmarks: the prefixes announced in the given
//! MRT files, in order of first appearance, each with its first origin as the allowed origin.
//!
//! `cargo run --release --example gen_watchlist -- N FILE.mrt... > watch.yml`

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use bgpsentry::event::{FeedEvent, RouteChange};
use bgpsentry::feeds::mrt::MrtReader;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: gen_watchlist N FILE.mrt...");
    let mut seen = HashSet::new();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    writeln!(out, "prefixes:").unwrap();
    'files: for file in args {
        let mut reader = MrtReader::open(Path::new(&file), "mrt", None).expect("open MRT file");
        let mut events = Vec::new();
        while reader.next_record(&mut events).is_some() {
            for ev in events.drain(..) {
                let FeedEvent::Route(ev) = ev else { continue };
                let RouteChange::Announce(attrs) = &ev.change else {
                    continue;
                };
                let Some(origin) = attrs.path.origins().first() else {
                    continue;
                };
                if seen.len() < n && seen.insert(ev.prefix) {
                    writeln!(out, "  - prefix: {}\n    origins: [{origin}]", ev.prefix).unwrap();
                }
                if seen.len() >= n {
                    break 'files;
                }
            }
        }
    }
    eprintln!("{} prefixes", seen.len());
}
