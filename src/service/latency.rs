//! Where an alert's time goes between the feed and `/alerts`: the instants at which the batch
//! that raised it crossed each hand-over. The publish stage observes the whole span as
//! `bgpsentry_alert_visible_seconds`; with `RUST_LOG=bgpsentry::latency=debug` it also logs each
//! fired alert's span stage by stage (what `examples/loadreal.rs` reads to break latency down).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::alerts::{AlertTransition, TransitionKind};
use crate::metrics::Metrics;

/// The log target of the per-stage lines.
pub const TARGET: &str = "bgpsentry::latency";

/// When a batch and the commit made of it crossed each stage. Copied along with the commit:
/// a few instants, no allocation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamps {
    /// The feed handed the batch to the engine queue (its frames read and parsed).
    pub received: Instant,
    /// The engine thread took the batch off its queue.
    pub dequeued: Instant,
    /// The engine had processed the batch and drained its alert transitions.
    pub applied: Instant,
    /// The commit was in the commit queue (after waiting for room, if it had to).
    pub queued: Instant,
    /// The store thread took the commit into a group.
    pub picked: Instant,
    /// The group's transaction was durable.
    pub durable: Instant,
    /// Route events in the batch.
    pub batch_events: u32,
    /// Commits in the group written with this one.
    pub group_commits: u32,
}

impl Stamps {
    /// A batch received at `received`, taken by the engine at `dequeued`.
    pub fn new(received: Instant, dequeued: Instant, batch_events: usize) -> Self {
        Stamps {
            received,
            dequeued,
            applied: dequeued,
            queued: dequeued,
            picked: dequeued,
            durable: dequeued,
            batch_events: u32::try_from(batch_events).unwrap_or(u32::MAX),
            group_commits: 0,
        }
    }
}

/// Observes (and at debug level logs) how long a transition took to reach the alert book,
/// which it has just reached. Only alerts that fire are counted: they are what an operator
/// waits for.
pub(super) fn visible(metrics: &Metrics, t: &AlertTransition, s: &Stamps) {
    if t.event != TransitionKind::Fired {
        return;
    }
    let now = Instant::now();
    let total = now.saturating_duration_since(s.received);
    metrics.alert_visible.observe(total.as_secs_f64());
    if tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        let us = |a: Instant, b: Instant| b.saturating_duration_since(a).as_micros() as u64;
        // Wall-clock time of `received`, so that a load tool can line it up with its own clock.
        let received_unix_us = SystemTime::now()
            .checked_sub(total)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or(Duration::ZERO)
            .as_micros() as u64;
        tracing::debug!(
            target: TARGET,
            alert_id = %t.alert.id,
            prefix = %t.alert.prefix,
            origin = t.alert.origin.unwrap_or(0),
            received_unix_us,
            batch_events = s.batch_events,
            group_commits = s.group_commits,
            engine_queue_us = us(s.received, s.dequeued),
            engine_us = us(s.dequeued, s.applied),
            commit_queue_us = us(s.applied, s.queued),
            store_wait_us = us(s.queued, s.picked),
            store_write_us = us(s.picked, s.durable),
            publish_us = us(s.durable, now),
            total_us = total.as_micros() as u64,
            "alert visible"
        );
    }
}
