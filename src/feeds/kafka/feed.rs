//! The service's Kafka feed: reads records, decodes them by format, hands their events to the
//! engine in batches that each carry a checkpoint, and commits a partition's offset once the
//! checkpoints of all its records up to there are acknowledged (at-least-once).

use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::time::Instant;
use tracing::{info, warn};

use super::consumer::{Committer, KafkaConsumer, Notice, Notices, Record};
use super::decode::{Decoded, Decoder};
use super::offsets::{BatchRecords, OffsetTracker};
use crate::config::{BmpRib, KafkaSettings};
use crate::event::{FeedEvent, Timestamp};
use crate::feeds::checkpoint::Checkpoints;
use crate::feeds::error::FeedErrorReason;
use crate::feeds::handle::FeedHandle;

/// Most events handed to the engine at once.
const BATCH_EVENTS: usize = 4096;

/// Most records in one batch (records of other prefixes give no event, but their offsets
/// still wait for the batch's checkpoint).
const BATCH_RECORDS: usize = 4096;

/// Longest a record waits in a batch being built before the batch goes.
const BATCH_WAIT: Duration = Duration::from_millis(100);

/// Most records read and not yet acknowledged: reading pauses there until the store catches
/// up. The engine commits at least every `store.commit_interval_seconds` (5 s by default), so
/// this allows about 50,000 records a second before the store's pace is what limits reading.
pub const MAX_IN_FLIGHT: usize = 256 * 1024;

/// Longest wait before connecting again after the consumer could not be created.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The counters of each result, resolved once.
struct Counters {
    ok: IntCounter,
    skipped: IntCounter,
    empty: IntCounter,
    oversized: IntCounter,
    malformed: IntCounter,
    in_flight: IntGauge,
    partitions: IntGauge,
}

impl Counters {
    fn new(handle: &FeedHandle, format: &str) -> Self {
        let m = &handle.ctx.metrics.kafka;
        let name = handle.name.as_str();
        let records = |r: &str| m.records.with_label_values(&[name, format, r]);
        Counters {
            ok: records("ok"),
            skipped: records("skipped"),
            empty: records("empty"),
            oversized: records("oversized"),
            malformed: records("malformed"),
            in_flight: m.in_flight.with_label_values(&[name]),
            partitions: m.partitions.with_label_values(&[name]),
        }
    }
}

/// The batch being built.
#[derive(Default)]
struct Building {
    events: Vec<FeedEvent>,
    records: BatchRecords,
    since: Option<Instant>,
}

/// How often at most an unusable record is logged as a warning (the rest are counted, and
/// logged at debug level).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The last warning about an unusable record, and how many were not logged since.
#[derive(Default)]
struct Warned {
    last: Option<Instant>,
    quiet: u64,
}

impl Warned {
    fn record(&mut self, feed: &str, record: &Record, what: &str, detail: &str) {
        if self.last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            self.quiet += 1;
            return;
        }
        let mut end = detail.len().min(200);
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        warn!(
            feed,
            "skipped {what} record {}/{}@{}: {} ({} more unusable records since the last warning)",
            record.topic,
            record.partition,
            record.offset,
            &detail[..end],
            self.quiet
        );
        self.last = Some(Instant::now());
        self.quiet = 0;
    }
}

/// Runs the feed until shutdown: connects, reads, and connects again after a failure to
/// create the consumer (librdkafka itself reconnects to brokers).
pub async fn run(handle: FeedHandle, settings: KafkaSettings, ribs: Vec<BmpRib>) {
    let mut delay = Duration::from_secs(1);
    loop {
        let metrics = handle.ctx.metrics.kafka.clone();
        match KafkaConsumer::connect(&handle.name, &settings, metrics) {
            Ok((consumer, notices)) => {
                info!(
                    feed = %handle.name,
                    "reading {} in group `{}` from {}",
                    settings.subscription.join(", "),
                    settings.group,
                    settings.brokers.join(", ")
                );
                consume(&handle, &settings, &ribs, consumer, notices).await;
                return;
            }
            Err(e) => {
                handle.error(FeedErrorReason::Connect, &e);
                handle.reconnecting();
                if handle.sleep_or_shutdown(delay).await {
                    return;
                }
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Reads until shutdown.
async fn consume(
    handle: &FeedHandle,
    settings: &KafkaSettings,
    ribs: &[BmpRib],
    mut consumer: KafkaConsumer,
    mut notices: Notices,
) {
    let committer = consumer.committer();
    let counters = Counters::new(handle, settings.format.as_str());
    let mut decoder = Decoder::new(settings.format, handle.feed.clone(), ribs.to_vec());
    let (mut checkpoints, mut acks) = Checkpoints::new();
    let mut tracker = OffsetTracker::default();
    let mut building = Building::default();
    let mut warned = Warned::default();
    let mut shutdown = handle.ctx.shutdown.clone();
    loop {
        let deadline = building.since.map(|s| s + BATCH_WAIT);
        let room = tracker.in_flight() + building.records.len() < MAX_IN_FLIGHT;
        tokio::select! {
            biased;
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            Some(id) = acks.recv() => {
                let next = tracker.ack(id);
                commit(handle, &committer, &next);
                counters.in_flight.set(tracker.in_flight() as i64);
            }
            Some(notice) = notices.recv() => match notice {
                Notice::Assigned(parts) => {
                    info!(feed = %handle.name, "partitions assigned: {}", names(&parts));
                    counters.partitions.add(parts.len() as i64);
                    handle.set_connected(true);
                }
                Notice::Revoked(parts) => {
                    info!(feed = %handle.name, "partitions revoked: {}", names(&parts));
                    counters.partitions.sub(parts.len() as i64);
                    tracker.forget(&parts);
                    counters.in_flight.set(tracker.in_flight() as i64);
                }
                Notice::Error(e) => {
                    // librdkafka reconnects by itself; the feed is down while no broker is up.
                    if e.contains("brokers are down") {
                        handle.set_connected(false);
                    }
                    handle.error(FeedErrorReason::Connect, &e);
                }
            },
            _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } }, if deadline.is_some() => {
                if !send(handle, &mut building, &mut checkpoints, &mut tracker).await {
                    return;
                }
            }
            r = consumer.next(), if room => match r {
                Ok(record) => {
                    handle.message("record");
                    take(&mut decoder, settings.max_record_bytes, handle, &counters, &mut building, &mut warned, &record);
                    let full = building.events.len() >= BATCH_EVENTS
                        || building.records.len() >= BATCH_RECORDS;
                    if full && !send(handle, &mut building, &mut checkpoints, &mut tracker).await {
                        return;
                    }
                    counters.in_flight.set((tracker.in_flight() + building.records.len()) as i64);
                }
                Err(e) => handle.error(FeedErrorReason::Read, &format!("reading a record failed: {e}")),
            },
        }
    }
    // Stopping: what was acknowledged so far is committed before the consumer leaves the group
    // (the batch being built was never handed on; its records are read again next time).
    while let Ok(id) = acks.try_recv() {
        let next = tracker.ack(id);
        if let Err(e) = committer.commit_and_wait(&next) {
            warn!(feed = %handle.name, "{e}");
        }
    }
}

fn names(parts: &[super::consumer::Partition]) -> String {
    let v: Vec<String> = parts.iter().map(|(t, p)| format!("{t}/{p}")).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn commit(handle: &FeedHandle, committer: &Committer, next: &[(super::consumer::Partition, i64)]) {
    if let Err(e) = committer.commit(next) {
        handle
            .ctx
            .metrics
            .kafka
            .commit_errors
            .with_label_values(&[&handle.name])
            .inc();
        warn!(feed = %handle.name, "{e}");
    }
}

/// Decodes one record into the batch being built, counting its result.
fn take(
    decoder: &mut Decoder,
    max_record_bytes: usize,
    handle: &FeedHandle,
    counters: &Counters,
    building: &mut Building,
    warned: &mut Warned,
    record: &Record,
) {
    building
        .records
        .add(&(record.topic.clone(), record.partition), record.offset);
    building.since.get_or_insert_with(Instant::now);
    let received = record.timestamp.unwrap_or_else(Timestamp::now);
    match decoder.decode(record.payload.as_deref(), max_record_bytes, received) {
        Decoded::Events(events, invalid) => {
            counters.ok.inc();
            for bad in &invalid {
                handle.invalid(bad);
            }
            building.events.extend(events);
        }
        Decoded::Skipped(_) => counters.skipped.inc(),
        Decoded::Empty => counters.empty.inc(),
        Decoded::Oversized(bad) => {
            counters.oversized.inc();
            handle.invalid(&bad);
            warned.record(&handle.name, record, "an oversized", &bad.detail);
        }
        Decoded::Malformed(bad) => {
            counters.malformed.inc();
            handle.invalid(&bad);
            warned.record(&handle.name, record, "a malformed", &bad.detail);
        }
    }
}

/// Hands the batch being built to the engine with a checkpoint; false when the engine is gone.
async fn send(
    handle: &FeedHandle,
    building: &mut Building,
    checkpoints: &mut Checkpoints,
    tracker: &mut OffsetTracker,
) -> bool {
    let b = std::mem::take(building);
    if b.records.is_empty() {
        return true;
    }
    let checkpoint = checkpoints.make();
    tracker.open(checkpoint.id(), b.records);
    handle.send_checkpointed(b.events, checkpoint).await
}
