//! The store's cost under real alert churn: runs the engine over an MRT file with a watch list
//! of its first N prefixes (each with its first origin, as `gen_watchlist` writes it), cuts the
//! output into commits as the engine thread does (one per batch of events that changed an
//! alert), and times writing them with `Store::commit_all` into a fresh store on disk, in groups
//! of 1, 16 and 256 commits per transaction.
//!
//! `cargo run --release --example store_storm -- [N] [FILE.mrt] [BATCH]`
//! (defaults: 1000, `../shared/data/mrt/rrc00-updates.20190101.0000.gz`, 256 events per batch)

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{FeedEvent, RouteChange};
use bgpsentry::feeds::mrt::MrtReader;
use bgpsentry::store::{Commit, Store};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let file: PathBuf = args.next().map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/mrt/rrc00-updates.20190101.0000.gz")
    });
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);

    let mut events = Vec::new();
    let mut reader = MrtReader::open(&file, "mrt", None).expect("open MRT file");
    let mut evs = Vec::new();
    while reader.next_record(&mut evs).is_some() {
        events.append(&mut evs);
    }
    let mut seen = HashSet::new();
    let mut yaml = String::from("prefixes:\n");
    for ev in &events {
        let FeedEvent::Route(ev) = ev else { continue };
        let RouteChange::Announce(a) = &ev.change else {
            continue;
        };
        if let Some(o) = a.path.origins().first()
            && seen.len() < n
            && seen.insert(ev.prefix)
        {
            writeln!(yaml, "  - prefix: {}\n    origins: [{o}]", ev.prefix).unwrap();
        }
    }
    let cfg = Config::parse(&yaml, Path::new("store_storm.yml")).expect("config");

    let mut engine = Engine::from_config(&cfg);
    let mut commits: Vec<Commit> = Vec::new();
    let mut transitions = 0usize;
    for chunk in events.chunks(batch) {
        for ev in chunk {
            engine.process(ev);
        }
        let t: Vec<_> = engine.drain_transitions().collect();
        if !t.is_empty() {
            transitions += t.len();
            commits.push(Commit {
                transitions: t,
                changes: engine.take_changes(),
            });
        }
    }
    eprintln!(
        "{} events, {} watched prefixes: {} commits, {transitions} alert transitions",
        events.len(),
        seen.len(),
        commits.len()
    );

    for group in [1usize, 16, 256] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::open(&dir.path().join("store.db")).expect("store");
        let t0 = Instant::now();
        for g in commits.chunks(group) {
            store.commit_all(g).expect("commit");
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "group={group} commits={} transitions={transitions} seconds={secs:.3} \
             us_per_transition={:.2} us_per_event={:.2}",
            commits.len(),
            secs * 1e6 / transitions.max(1) as f64,
            secs * 1e6 / events.len() as f64
        );
    }
}
