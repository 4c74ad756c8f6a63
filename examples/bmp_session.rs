//! Measures one BMP router session: how fast Route Monitoring messages become route events,
//! and what the per-route state costs. The stream is the recorded gobgpd fixture's Peer Up
//! followed by N post-policy announcements of distinct /24s (its 192.0.2.0/24 message with the
//! prefix rewritten), then their withdrawals.
//!
//! `cargo run --release --example bmp_session -- 1000000`

use std::time::Instant;

use bgpsentry::config::BmpRib;
use bgpsentry::event::Timestamp;
use bgpsentry::feeds::bmp::frame::split;
use bgpsentry::feeds::bmp::session::Session;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let fixture =
        std::fs::read("tests/fixtures/bmp/gobgpd-all-ribs.bmp").expect("run from the checkout");
    let messages: Vec<&[u8]> = split(&fixture, 1 << 20)
        .map(|m| m.expect("framed"))
        .collect();
    let peer_up = messages[1];
    let announce = messages[3]; // post-policy 192.0.2.0/24, NLRI in its last 4 bytes
    // post-policy withdrawal of 198.51.100.0/24: the prefix, then an empty attribute length
    let withdraw = messages[12];
    let mut stream: Vec<Vec<u8>> = Vec::with_capacity(2 * n as usize);
    for (template, tail) in [(announce, 0), (withdraw, 2)] {
        for i in 0..n {
            let mut m = template.to_vec();
            let len = m.len() - tail;
            m[len - 4] = 24;
            m[len - 3] = 10 + (i >> 16) as u8;
            m[len - 2] = (i >> 8) as u8;
            m[len - 1] = i as u8;
            stream.push(m);
        }
    }
    let before = rss_kib();
    let mut session = Session::new(
        "bmp".into(),
        "192.0.2.1".parse().unwrap(),
        vec![BmpRib::AdjRibInPost],
        None,
    );
    let now = Timestamp::now();
    session.handle(peer_up, now);
    let start = Instant::now();
    let mut events = 0usize;
    let mut peak = 0;
    for (i, m) in stream.iter().enumerate() {
        events += session.handle(m, now).events.len();
        if i + 1 == n as usize {
            peak = rss_kib();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} messages -> {events} route events in {secs:.2} s: {:.0} messages/s; state for {n} routes: {} KiB ({:.0} bytes/route)",
        stream.len(),
        stream.len() as f64 / secs,
        peak.saturating_sub(before),
        (peak.saturating_sub(before) * 1024) as f64 / f64::from(n)
    );
}
