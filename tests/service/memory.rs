//! Memory of the real service under an alert storm: the queue between the feeds and the engine
//! is bounded by events and the one between the engine and the store by bytes, so a feed far
//! ahead of a stalled store cannot grow memory.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::util::{Service, http_get, shared_data};
use bgpsentry::event::{FeedEvent, RouteChange};
use bgpsentry::feeds::mrt::MrtReader;

/// The docs' bound (docs/src/performance.md) for this storm (debug build): the start-up footprint
/// with 2,000 watched prefixes (about 100 MB, a third of it the binary's own code) plus both full
/// queues (32,768 events, about 13 MB; 4 MB of commits).
const PEAK_RSS_BOUND_KB: u64 = 200 * 1024;

/// The queue's bound (`ENGINE_QUEUE_EVENTS`).
const QUEUE_EVENTS: f64 = 32768.0;

/// A watch list of the first `n` prefixes the file announces, each with the first origin seen:
/// any other origin later in the file raises a hijack.
fn watch_list(file: &std::path::Path, n: usize) -> String {
    let mut reader = MrtReader::open(file, "mrt", None).unwrap();
    let mut seen = HashSet::new();
    let mut yaml = String::from("prefixes:\n");
    let mut events = Vec::new();
    while seen.len() < n && reader.next_record(&mut events).is_some() {
        for ev in events.drain(..) {
            let FeedEvent::Route(ev) = ev else { continue };
            let RouteChange::Announce(attrs) = &ev.change else {
                continue;
            };
            let Some(origin) = attrs.path.origins().first() else {
                continue;
            };
            if seen.len() < n && seen.insert(ev.prefix) {
                writeln!(yaml, "  - prefix: {}\n    origins: [{origin}]", ev.prefix).unwrap();
            }
        }
    }
    yaml
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An MRT feed replays rrc00's 160 k updates eight times against a watch list that raises
/// hundreds of hijacks, while another connection holds the store's write lock: the store
/// stalls, the engine waits for it, and the feed is far ahead. The queue must fill to its bound
/// and stop the feed there; the process's peak RSS must stay under the stated bound.
#[test]
fn an_alert_storm_against_a_stalled_store_keeps_memory_bounded() {
    // It loads the machine: one such test at a time (see `heavy`).
    let _heavy = crate::util::heavy();
    let file = shared_data("mrt/rrc00-updates.20190101.0000.gz");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db");
    let files: Vec<String> = (0..8).map(|_| format!("\"{}\"", file.display())).collect();
    let config = format!(
        "{}feeds:\n  - kind: mrt\n    files: [{}]\nstore:\n  path: {}\n  commit_interval_seconds: 1\n",
        watch_list(&file, 2000),
        files.join(", "),
        store.display()
    );
    let config_path = dir.path().join("bgpsentry.yml");
    std::fs::write(&config_path, config).unwrap();
    let svc = Service::start(&config_path);
    let pid = svc.pid();

    // Another writer holds the lock until the end: every commit of the service now waits, and
    // with a commit due every second the engine soon waits too, whatever alerts remain.
    let lock = rusqlite::Connection::open(&store).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    // The queue as last seen, and since when it has not moved.
    let mut last_queued = -1.0;
    let mut still_since = Instant::now();
    loop {
        let peak = peak_rss_kb(pid);
        assert!(
            peak < PEAK_RSS_BOUND_KB,
            "peak RSS {} MB is over the bound of {} MB",
            peak / 1024,
            PEAK_RSS_BOUND_KB / 1024
        );
        let text = http_get(&svc.addr, "/metrics")
            .map(|(_, _, body)| body)
            .unwrap_or_default();
        let queued = metric(&text, "bgpsentry_engine_queue_events").unwrap_or(0.0);
        let stalled = metric(&text, "bgpsentry_store_errors_total").unwrap_or(0.0) >= 1.0;
        if queued != last_queued {
            last_queued = queued;
            still_since = Instant::now();
        }
        // The engine takes no batch while it waits for the store, so once the queue is nearly
        // full and stops moving the feed is held there (the next batch, of a size that varies
        // with the MRT records, does not fit), and memory has reached what this storm makes.
        if stalled && queued > QUEUE_EVENTS / 2.0 && still_since.elapsed() > Duration::from_secs(3)
        {
            eprintln!("peak RSS {} MB with {queued} events queued", peak / 1024);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queue never filled to its bound of {QUEUE_EVENTS} events with the store stalled \
             (queued {queued}, store stalled: {stalled}); peak RSS {} MB",
            peak / 1024
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lock.execute_batch("ROLLBACK").unwrap();
}
