//! Replay of MRT files through the engine: the offline, deterministic path that `bgpsentry
//! replay` and the `mrt` feed use.

pub mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::alerts::AlertTransition;
use crate::config::WatchedPrefix;
use crate::engine::{Engine, EngineStats};
use crate::event::{FeedEvent, Timestamp};
use crate::feeds::mrt::{BadRecord, MrtReader, MrtStats};

/// What a replay read and raised.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Files read (the RIB included).
    pub files: usize,
    /// Totals over all files.
    pub mrt: MrtStats,
    /// What the engine did.
    pub engine: EngineStats,
    /// Alerts still firing at the end.
    pub still_firing: usize,
    /// Wall-clock time taken.
    pub elapsed: Duration,
    /// Event time of the first event read.
    pub first_event: Option<Timestamp>,
    /// Event time of the last event read.
    pub last_event: Option<Timestamp>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let events = self.mrt.announcements + self.mrt.withdrawals;
        let m = &self.mrt;
        write!(
            f,
            "read {}: {}, {}, {}, {}, {} skipped, {} used in part; {} for watched prefixes; \
             {} fired, {} resolved, {} still firing; took {:.3} s ({} events/s)",
            counted(self.files as u64, "file"),
            counted(m.records, "record"),
            counted(m.announcements, "announcement"),
            counted(m.withdrawals, "withdrawal"),
            counted(m.peer_downs, "peer-down"),
            counted(m.bad_records, "bad record"),
            counted(m.malformed_records, "malformed record"),
            counted(self.engine.matched, "event"),
            counted(self.engine.fired, "alert"),
            self.engine.resolved,
            self.still_firing,
            secs,
            per_second(events, self.elapsed),
        )
    }
}

/// `1 alert`, `2 alerts`, `2 prefixes`: a count with its noun in the right number (the nouns
/// here take `-s`, or `-es` after s, x, ch and sh).
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if ["s", "x", "ch", "sh"].iter().any(|end| noun.ends_with(end)) {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// A rate as a whole number per second (0 when no time passed).
pub fn per_second(n: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (n as f64 / secs).round() as u64
    } else {
        0
    }
}

/// Where a replay reports to.
pub trait ReplaySink {
    /// An alert fired, changed or resolved.
    fn transition(&mut self, t: &AlertTransition);
    /// A record was skipped.
    fn bad_record(&mut self, bad: &BadRecord);
    /// Progress: a file started (index, total, path).
    fn file_started(&mut self, _index: usize, _total: usize, _path: &Path) {}
    /// Progress: `events` more events were processed.
    fn progress(&mut self, _events: u64) {}
    /// Progress: the replay will read `total` bytes of files (as stored, compressed or not).
    fn bytes_total(&mut self, _total: u64) {}
    /// Progress: `done` bytes of the files have been read so far.
    fn bytes_done(&mut self, _done: u64) {}
}

/// Replays MRT files through a new engine for `prefixes`, optionally starting from a table dump.
pub fn replay(
    prefixes: &[WatchedPrefix],
    rib: Option<&Path>,
    files: &[PathBuf],
    sink: &mut dyn ReplaySink,
) -> std::io::Result<(Engine, ReplaySummary)> {
    replay_with(Engine::new(prefixes), rib, files, sink)
}

/// Replays MRT files through a prepared engine (monitored ASNs, RPKI data set), optionally
/// starting from a table dump.
pub fn replay_with(
    mut engine: Engine,
    rib: Option<&Path>,
    files: &[PathBuf],
    sink: &mut dyn ReplaySink,
) -> std::io::Result<(Engine, ReplaySummary)> {
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let total = files.len() + usize::from(rib.is_some());
    // Sizes as stored, for the progress in bytes; a file that cannot be read fails below.
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    sink.bytes_total(rib.map_or(0, size) + files.iter().map(|f| size(f)).sum::<u64>());
    let mut done = 0;
    if let Some(rib) = rib {
        sink.file_started(0, total, rib);
        engine.begin_rib();
        let last = feed_file(&mut engine, rib, &mut summary, sink, &mut done)?;
        engine.finish_rib(last);
        drain(&mut engine, sink);
    }
    for (i, file) in files.iter().enumerate() {
        sink.file_started(i + usize::from(rib.is_some()), total, file);
        feed_file(&mut engine, file, &mut summary, sink, &mut done)?;
    }
    // The last instant has no later event to close it.
    engine.settle();
    drain(&mut engine, sink);
    summary.engine = engine.stats();
    summary.still_firing = (summary.engine.fired - summary.engine.resolved) as usize;
    summary.elapsed = started.elapsed();
    Ok((engine, summary))
}

/// Feeds one file to the engine; returns the latest event time seen. `done`: bytes of the
/// files before this one, then with this one.
fn feed_file(
    engine: &mut Engine,
    path: &Path,
    summary: &mut ReplaySummary,
    sink: &mut dyn ReplaySink,
    done: &mut u64,
) -> std::io::Result<Timestamp> {
    let mut reader = MrtReader::open(path, "mrt", None).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
    })?;
    let mut batch = Vec::with_capacity(64);
    let mut last = Timestamp::default();
    let mut since_progress = 0u64;
    while let Some(result) = reader.next_record(&mut batch) {
        if let Err(bad) = result {
            sink.bad_record(&bad);
        }
        for ev in batch.drain(..) {
            let ts = match &ev {
                FeedEvent::Route(r) => r.timestamp,
                FeedEvent::PeerDown { timestamp, .. } => *timestamp,
                FeedEvent::Loaded(s) => s.timestamp,
                FeedEvent::HandOver(h) => h.timestamp,
            };
            last = last.max(ts);
            summary.first_event = Some(summary.first_event.map_or(ts, |f| f.min(ts)));
            summary.last_event = Some(summary.last_event.map_or(ts, |l| l.max(ts)));
            if engine.process(&ev) {
                drain(engine, sink);
            }
            since_progress += 1;
        }
        if since_progress >= 4096 {
            sink.progress(since_progress);
            sink.bytes_done(*done + reader.file_offset());
            since_progress = 0;
        }
    }
    sink.progress(since_progress);
    *done += reader.file_offset();
    sink.bytes_done(*done);
    let stats = reader.stats();
    summary.files += 1;
    summary.mrt.records += stats.records;
    summary.mrt.announcements += stats.announcements;
    summary.mrt.withdrawals += stats.withdrawals;
    summary.mrt.peer_downs += stats.peer_downs;
    summary.mrt.bad_records += stats.bad_records;
    summary.mrt.malformed_records += stats.malformed_records;
    Ok(last)
}

fn drain(engine: &mut Engine, sink: &mut dyn ReplaySink) {
    for t in engine.drain_transitions() {
        sink.transition(&t);
    }
}

/// Collects transitions for [`load_rib`], and logs bad records.
struct RibSink(Vec<AlertTransition>);

impl ReplaySink for RibSink {
    fn transition(&mut self, t: &AlertTransition) {
        self.0.push(t.clone());
    }
    fn bad_record(&mut self, bad: &BadRecord) {
        tracing::warn!("{bad}");
    }
}

/// Loads an MRT table dump into a running engine's state (`bgpsentry run --rib`): its routes
/// become the route state and the learned baselines. The transitions it causes are left in the
/// engine for the caller to take.
pub fn load_rib(engine: &mut Engine, rib: &Path) -> std::io::Result<MrtStats> {
    let mut summary = ReplaySummary::default();
    let mut sink = RibSink(Vec::new());
    engine.begin_rib();
    let last = feed_file(engine, rib, &mut summary, &mut sink, &mut 0)?;
    engine.finish_rib(last.max(engine.now()));
    Ok(summary.mrt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(counted(0, "alert"), "0 alerts");
        assert_eq!(counted(1, "alert"), "1 alert");
        assert_eq!(counted(2, "bad record"), "2 bad records");
        assert_eq!(counted(1, "watched prefix"), "1 watched prefix");
        assert_eq!(counted(3, "watched prefix"), "3 watched prefixes");
        assert_eq!(counted(2, "peer-down"), "2 peer-downs");
    }

    #[test]
    fn the_summary_is_in_words_that_agree_and_whole_rates() {
        let mut s = ReplaySummary {
            files: 1,
            elapsed: Duration::from_millis(1500),
            ..ReplaySummary::default()
        };
        s.mrt.records = 1;
        s.mrt.announcements = 2;
        s.mrt.withdrawals = 1;
        s.mrt.bad_records = 1;
        s.engine.matched = 1;
        s.engine.fired = 1;
        s.engine.resolved = 1;
        assert_eq!(
            s.to_string(),
            "read 1 file: 1 record, 2 announcements, 1 withdrawal, 0 peer-downs, 1 bad record \
             skipped, 0 malformed records used in part; 1 event for watched prefixes; 1 alert \
             fired, 1 resolved, 0 still firing; took 1.500 s (2 events/s)"
        );
        s.elapsed = Duration::ZERO;
        assert!(s.to_string().ends_with("(0 events/s)"));
    }
}
