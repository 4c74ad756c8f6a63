//! Baseline for MRT replay speed: only parses a file with bgpkit-parser (records framed and
//! parsed, then turned into bgpkit's `BgpElem`s, as its own element iterator does), with no
//! conversion to route events and no engine.
//!
//! `cargo run --release --example raw_parse -- FILE.mrt.gz`

use std::time::Instant;

use bgpkit_parser::{Elementor, chunk_mrt_record};

fn main() {
    let path = std::env::args().nth(1).expect("usage: raw_parse FILE");
    let t = Instant::now();
    let mut reader = std::io::BufReader::with_capacity(
        256 * 1024,
        bgpsentry::feeds::mrt::open_decompressed(std::path::Path::new(&path)).expect("open"),
    );
    let mut elementor = Elementor::new();
    let (mut records, mut elems) = (0u64, 0u64);
    while let Ok(raw) = chunk_mrt_record(&mut reader) {
        records += 1;
        let Ok(record) = raw.parse() else { continue };
        elems += elementor.record_to_elems(record).len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "records={records} elems={elems} seconds={secs:.3} records_per_s={:.0}",
        records as f64 / secs
    );
}
