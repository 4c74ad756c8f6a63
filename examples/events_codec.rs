//! Size and speed of the scale-out record encoding (`src/feeds/events/codec.rs`) on real
//! events: every route event and peer down of an MRT file encoded, then decoded.
//!
//! `cargo run --release --example events_codec -- ../shared/data/mrt/rrc00-updates.20190101.0000.gz`

use std::time::Instant;

use bgpsentry::feeds::events::codec::{Decoder, encode};
use bgpsentry::feeds::mrt::MrtReader;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: events_codec FILE.mrt.gz");
    let mut reader = MrtReader::open(std::path::Path::new(&path), "mrt", None).expect("MRT file");
    let mut events = Vec::new();
    let mut batch = Vec::new();
    while let Some(r) = reader.next_record(&mut batch) {
        if r.is_ok() {
            events.append(&mut batch);
        }
        batch.clear();
    }
    let mut records: Vec<Vec<u8>> = Vec::with_capacity(events.len());
    let mut buf = Vec::new();
    let t = Instant::now();
    for ev in &events {
        if encode(ev, &mut buf) {
            records.push(buf.clone());
        }
    }
    let encode_s = t.elapsed().as_secs_f64();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let mut decoder = Decoder::default();
    let t = Instant::now();
    let mut ok = 0u64;
    for r in &records {
        if decoder.decode(r).is_ok() {
            ok += 1;
        }
    }
    let decode_s = t.elapsed().as_secs_f64();
    let n = records.len() as f64;
    println!(
        "events={} records={} decoded={ok} mean_bytes={:.1} encode_per_s={:.0} decode_per_s={:.0}",
        events.len(),
        records.len(),
        bytes as f64 / n,
        n / encode_s,
        n / decode_s,
    );
}
