//! One live feed connection's view of the service: where its events go, its health, its metrics.
//!
//! Every live connection (a RIS Live feed, each bgproutes.io key) gets a [`FeedHandle`]; the
//! [`websocket`](super::websocket) loop and the feed's protocol report through it, so health
//! and metrics look alike for every live feed.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tracing::{debug, warn};

use super::admit::Admission;
use super::error::{FeedErrorReason, Invalid};
use super::warm_start::{Gate, Hold};
use super::{Batch, FeedContext};
use crate::event::{FeedEvent, Timestamp};

/// One live connection's view of health and metrics.
#[derive(Clone)]
pub struct FeedHandle {
    /// Name in health and metrics (the feed name, or `name/keyN` for extra bgproutes keys).
    pub name: String,
    /// Feed name in vantage-point identities and event metrics.
    pub feed: Arc<str>,
    /// Where events go, health and the shared metrics.
    pub ctx: FeedContext,
    /// This connection's series of `bgpsentry_feed_subscription_acks_total`.
    acks: IntCounter,
    /// Message counters by type, resolved once: a label lookup per message is measurable.
    counters: Arc<Mutex<Vec<(&'static str, IntCounter)>>>,
    /// When the last message was written to health (µs since the epoch).
    health_written: Arc<AtomicI64>,
    /// Event times and vantage points this connection's events must pass.
    admission: Arc<Mutex<Admission>>,
    /// Holds live events back while a warm start runs (see [`super::warm_start`]).
    gate: Option<Arc<Gate>>,
}

/// Bytes of an invalid input's detail written to the debug log.
const MAX_LOGGED_DETAIL: usize = 256;

/// Health learns of messages at most this often (µs): per message it would cost a lock and
/// several label lookups, and a last-message time this fine is all anyone reads.
const HEALTH_EVERY_US: i64 = 100_000;

impl FeedHandle {
    /// Registers the connection in health and metrics.
    pub fn new(ctx: FeedContext, name: &str, feed: Arc<str>, kind: &str) -> Self {
        ctx.health.register(name, kind);
        ctx.metrics.init_feed_reasons(name);
        let acks = ctx
            .metrics
            .feed
            .subscription_acks
            .with_label_values(&[name]);
        FeedHandle {
            name: name.to_string(),
            feed,
            ctx,
            acks,
            counters: Arc::default(),
            health_written: Arc::new(AtomicI64::new(i64::MIN)),
            admission: Arc::default(),
            gate: None,
        }
    }

    /// Marks the connection up or down.
    pub fn set_connected(&self, up: bool) {
        self.ctx.health.update(&self.name, |h| {
            h.connected = up;
            if up {
                h.last_error = None;
            }
        });
    }

    /// Marks the connection stale or not.
    pub fn set_stale(&self, stale: bool) {
        // The next message clears it whenever it comes.
        self.health_written.store(i64::MIN, Ordering::Relaxed);
        self.ctx.health.update(&self.name, |h| h.stale = stale);
    }

    /// A message of `kind` arrived.
    pub fn message(&self, kind: &'static str) {
        {
            let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            match counters.iter().find(|(k, _)| *k == kind) {
                Some((_, c)) => c.inc(),
                None => {
                    let c = self
                        .ctx
                        .metrics
                        .feed
                        .messages
                        .with_label_values(&[&self.name, kind]);
                    c.inc();
                    counters.push((kind, c));
                }
            }
        }
        let now = Timestamp::now();
        let written = self.health_written.load(Ordering::Relaxed);
        if now.0.saturating_sub(written) >= HEALTH_EVERY_US {
            self.health_written.store(now.0, Ordering::Relaxed);
            self.ctx.health.update(&self.name, |h| {
                h.last_message = Some(now);
                h.stale = false;
            });
        }
    }

    /// A subscription was acknowledged.
    pub fn ack(&self) {
        self.acks.inc();
    }

    /// Input that could not be used: counted by reason, logged at debug; the feed goes on.
    pub fn invalid(&self, bad: &Invalid) {
        self.ctx
            .metrics
            .invalid_input
            .with_label_values(&[&self.name, bad.reason.as_str()])
            .inc();
        // The detail may quote a huge field from the wire: the start of it says enough.
        let mut end = bad.detail.len().min(MAX_LOGGED_DETAIL);
        while !bad.detail.is_char_boundary(end) {
            end -= 1;
        }
        debug!(feed = %self.name, reason = bad.reason.as_str(), "invalid input: {}", &bad.detail[..end]);
    }

    /// A connection-level failure; `message` must already be free of secrets.
    pub fn error(&self, reason: FeedErrorReason, message: &str) {
        self.ctx
            .metrics
            .feed
            .errors
            .with_label_values(&[&self.name, reason.as_str()])
            .inc();
        warn!(feed = %self.name, reason = reason.as_str(), "{message}");
        let msg = message.to_string();
        self.ctx
            .health
            .update(&self.name, |h| h.last_error = Some(msg));
    }

    /// A reconnection is starting.
    pub fn reconnecting(&self) {
        self.ctx.health.update(&self.name, |h| h.reconnects += 1);
    }

    /// Hands events to the engine, less those with an event time outside the sane window or
    /// from a vantage point beyond the limit (counted as invalid input); false when the engine
    /// is gone. Waits while the engine's queue is full (the connection loop does not read the
    /// socket meanwhile, so TCP slows the server down).
    pub async fn send(&self, mut events: Vec<FeedEvent>) -> bool {
        if events.is_empty() {
            return true;
        }
        let rejected = self
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .filter(&mut events, Timestamp::now());
        for bad in &rejected {
            self.invalid(bad);
        }
        if events.is_empty() {
            return true;
        }
        if let Some(gate) = &self.gate {
            match gate.hold(&mut events) {
                Hold::Held => return true,
                Hold::SendFirst(first) => {
                    if !self.forward(first).await {
                        return false;
                    }
                }
                Hold::Pass => {}
            }
        }
        self.forward(events).await
    }

    /// Hands events to the engine past admission, like [`FeedHandle::send`], in one batch that
    /// carries `checkpoint` and goes even when no event is left (the checkpoint must come back
    /// for the input to count as applied); false when the engine is gone. No warm-start gate:
    /// feeds that checkpoint have no warm start.
    pub async fn send_checkpointed(
        &self,
        mut events: Vec<FeedEvent>,
        checkpoint: super::checkpoint::Checkpoint,
    ) -> bool {
        let rejected = self
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .filter(&mut events, Timestamp::now());
        for bad in &rejected {
            self.invalid(bad);
        }
        let batch = Batch {
            feed: self.feed.clone(),
            events,
            received: Instant::now(),
            checkpoint: Some(checkpoint),
        };
        self.ctx.events.send(batch).await.is_ok()
    }

    /// Routes live events through `gate` from now on.
    pub fn set_gate(&mut self, gate: Arc<Gate>) {
        self.gate = Some(gate);
    }

    /// Hands events to the engine as they are, past admission and the warm-start gate (the warm
    /// start's own events, and the live events it held); false when the engine is gone.
    pub async fn forward(&self, events: Vec<FeedEvent>) -> bool {
        if events.is_empty() {
            return true;
        }
        let batch = Batch {
            feed: self.feed.clone(),
            events,
            received: Instant::now(),
            checkpoint: None,
        };
        self.ctx.events.send(batch).await.is_ok()
    }

    /// True once the service is shutting down.
    pub fn shutting_down(&self) -> bool {
        *self.ctx.shutdown.borrow()
    }

    /// Sleeps, or returns early (true) when the service shuts down.
    pub async fn sleep_or_shutdown(&self, d: Duration) -> bool {
        let mut shutdown = self.ctx.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = until_shutdown(&mut shutdown) => true,
        }
    }
}

/// Resolves when the service shuts down (or the sender is gone).
pub(super) async fn until_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
