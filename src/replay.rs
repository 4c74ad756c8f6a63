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
        write!(
            f,
            "read {} files: {} records, {} announcements, {} withdrawals, {} peer-downs, {} bad records skipped, {} malformed records used in part; \
             {} events for watched prefixes; {} alerts fired, {} resolved, {} still firing; took {:.3} s ({:.0} events/s)",
            self.files,
            self.mrt.records,
            self.mrt.announcements,
            self.mrt.withdrawals,
            self.mrt.peer_downs,
            self.mrt.bad_records,
            self.mrt.malformed_records,
            self.engine.matched,
            self.engine.fired,
            self.engine.resolved,
            self.still_firing,
            secs,
            if secs > 0.0 {
                events as f64 / secs
            } else {
                0.0
            },
        )
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
    if let Some(rib) = rib {
        sink.file_started(0, total, rib);
        engine.begin_rib();
        let last = feed_file(&mut engine, rib, &mut summary, sink)?;
        engine.finish_rib(last);
        drain(&mut engine, sink);
    }
    for (i, file) in files.iter().enumerate() {
        sink.file_started(i + usize::from(rib.is_some()), total, file);
        feed_file(&mut engine, file, &mut summary, sink)?;
    }
    // The last instant has no later event to close it.
    engine.settle();
    drain(&mut engine, sink);
    summary.engine = engine.stats();
    summary.still_firing = (summary.engine.fired - summary.engine.resolved) as usize;
    summary.elapsed = started.elapsed();
    Ok((engine, summary))
}

/// Feeds one file to the engine; returns the latest event time seen.
fn feed_file(
    engine: &mut Engine,
    path: &Path,
    summary: &mut ReplaySummary,
    sink: &mut dyn ReplaySink,
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
            since_progress = 0;
        }
    }
    sink.progress(since_progress);
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
    let last = feed_file(engine, rib, &mut summary, &mut sink)?;
    engine.finish_rib(last.max(engine.now()));
    Ok(summary.mrt)
}
