//! Delivery workers: one per channel, reading its queue from the outbox, retrying with
//! exponential backoff and jitter, giving up after the maximum age.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, warn};

use super::channel::Channel;
use super::metrics::NotifyMetrics;
use super::{EventKind, NotifyEvent, now_ms};

/// How long a worker remembers that an alert was resolved, to keep stale re-pushes out.
const REMEMBER_RESOLVED: Duration = Duration::from_secs(3600);
use super::outbox::{Outbox, OutboxError, Queued};

/// How many queued notifications a worker looks at per round.
const ROUND: usize = 500;

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Age after which a notification is given up.
    pub max_age: Duration,
}

impl RetryPolicy {
    /// The delay after `attempts` failed attempts: `initial × 2^(attempts-1)`, capped, and
    /// scaled by a random factor in [0.5, 1) so that many senders do not retry in step.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self.initial.as_secs_f64() * f64::from(1u32 << exp);
        let capped = base.min(self.max.as_secs_f64());
        let jitter: f64 = rand::rng().random_range(0.5..1.0);
        Duration::from_secs_f64(capped * jitter)
    }
}

/// Runs outbox calls off the async threads.
async fn blocking<T: Send + 'static>(
    outbox: &Arc<dyn Outbox>,
    f: impl FnOnce(&dyn Outbox) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    let ob = outbox.clone();
    tokio::task::spawn_blocking(move || f(&*ob))
        .await
        .map_err(|e| OutboxError(format!("outbox task failed: {e}")))?
}

/// One channel's delivery loop.
pub struct Worker {
    /// The channel.
    pub channel: Arc<Channel>,
    /// Where its notifications wait.
    pub outbox: Arc<dyn Outbox>,
    /// Metrics.
    pub metrics: NotifyMetrics,
    /// Retry timing.
    pub policy: RetryPolicy,
    /// Poked when a notification is queued for this channel.
    pub wake: Arc<Notify>,
    /// Becomes true when the service stops.
    pub shutdown: watch::Receiver<bool>,
    /// Re-pushes of firing alerts (Alertmanager), sent directly, in order with deliveries.
    pub repush: Option<mpsc::Receiver<Vec<NotifyEvent>>>,
    /// Alerts whose resolution this worker has seen queued or sent, and when.
    pub resolved: HashMap<String, std::time::Instant>,
    /// A new version of the channel and retry timing after a config reload; taken between
    /// attempts, so that the worker (and its queue position) carries on.
    pub updates: Option<watch::Receiver<(Arc<Channel>, RetryPolicy)>>,
}

async fn next_update(rx: &mut Option<watch::Receiver<(Arc<Channel>, RetryPolicy)>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn next_repush(rx: &mut Option<mpsc::Receiver<Vec<NotifyEvent>>>) -> Vec<NotifyEvent> {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(events) => events,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

fn alert_ids(q: &Queued) -> impl Iterator<Item = &str> {
    q.events.iter().map(|e| e.alert.id.as_str())
}

impl Worker {
    /// Delivers until shutdown.
    pub async fn run(mut self) {
        let name = self.channel.name.clone();
        loop {
            if let Some(rx) = &mut self.updates {
                let (channel, policy) = rx.borrow_and_update().clone();
                self.channel = channel;
                self.policy = policy;
            }
            let next = match self.round().await {
                Ok(next) => next,
                Err(e) => {
                    warn!(channel = %name, "{e}; retrying in 5 s");
                    Some(now_ms() + 5_000)
                }
            };
            if *self.shutdown.borrow() {
                return;
            }
            let sleep = match next {
                Some(at) => Duration::from_millis((at - now_ms()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                events = next_repush(&mut self.repush) => self.repush(events).await,
                _ = next_update(&mut self.updates) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// Sends a re-push of firing alerts, leaving out any alert whose resolution is known.
    async fn repush(&mut self, mut events: Vec<NotifyEvent>) {
        let name = &self.channel.name;
        self.resolved
            .retain(|_, at| at.elapsed() < REMEMBER_RESOLVED);
        events.retain(|e| !self.resolved.contains_key(&e.alert.id));
        if events.is_empty() {
            return;
        }
        match self.channel.send("repush", &events).await {
            Ok(()) => debug!(channel = %name, alerts = events.len(), "re-pushed firing alerts"),
            Err(e) => warn!(channel = %name, "re-push of firing alerts failed: {e}"),
        }
    }

    /// Attempts every due notification in order; returns when the next one is due. A
    /// notification waits while an older one about the same alert is pending, so that a
    /// resolution never overtakes its firing.
    async fn round(&mut self) -> Result<Option<i64>, OutboxError> {
        let name = self.channel.name.clone();
        let chan = name.clone();
        let queue = blocking(&self.outbox, move |o| o.pending(&chan, ROUND)).await?;
        let mut blocked: HashSet<String> = HashSet::new();
        let mut next: Option<i64> = None;
        let now_i = std::time::Instant::now();
        for item in &queue {
            for e in &item.events {
                if e.event == EventKind::Resolved {
                    self.resolved.insert(e.alert.id.clone(), now_i);
                }
            }
        }
        for item in &queue {
            if *self.shutdown.borrow() {
                break;
            }
            if alert_ids(item).any(|id| blocked.contains(id)) {
                blocked.extend(alert_ids(item).map(str::to_string));
                continue;
            }
            let now = now_ms();
            if item.next_attempt_ms > now {
                blocked.extend(alert_ids(item).map(str::to_string));
                next = Some(next.map_or(item.next_attempt_ms, |n| n.min(item.next_attempt_ms)));
                continue;
            }
            if item.attempts > 0 {
                self.metrics.retries.with_label_values(&[&name]).inc();
            }
            match self.channel.send(&item.delivery_id, &item.events).await {
                Ok(()) => {
                    let done = now_ms();
                    let seq = item.seq;
                    blocking(&self.outbox, move |o| o.mark_delivered(seq, done)).await?;
                    self.metrics.sent.with_label_values(&[&name]).inc();
                    self.metrics
                        .delivery_seconds
                        .with_label_values(&[&name])
                        .observe((done - item.created_ms).max(0) as f64 / 1000.0);
                    info!(channel = %name, delivery_id = %item.delivery_id,
                        events = item.events.len(), attempts = item.attempts + 1, "notification delivered");
                }
                Err(e) => {
                    self.metrics
                        .failed_attempts
                        .with_label_values(&[&name])
                        .inc();
                    let attempts = item.attempts + 1;
                    let failed_at = now_ms();
                    let age = Duration::from_millis((failed_at - item.created_ms).max(0) as u64);
                    let seq = item.seq;
                    let msg = e.to_string();
                    if age >= self.policy.max_age {
                        warn!(channel = %name, delivery_id = %item.delivery_id, attempts,
                            "giving up a notification undelivered after {} s: {msg}", age.as_secs());
                        blocking(&self.outbox, move |o| o.mark_dead(seq, failed_at, &msg)).await?;
                        self.metrics.dead.with_label_values(&[&name]).inc();
                        continue;
                    }
                    let at = failed_at + self.policy.delay(attempts).as_millis() as i64;
                    warn!(channel = %name, delivery_id = %item.delivery_id, attempts,
                        "delivery failed, retrying in {:.1} s: {msg}", (at - failed_at) as f64 / 1000.0);
                    blocking(&self.outbox, move |o| {
                        o.record_failure(seq, attempts, at, &msg)
                    })
                    .await?;
                    // The target is probably down: leave the rest of the queue for later
                    // instead of failing on every item now.
                    next = Some(next.map_or(at, |n| n.min(at)));
                    break;
                }
            }
        }
        let chan = name.clone();
        let depth = blocking(&self.outbox, move |o| o.depth(&chan)).await?;
        self.metrics
            .queue_depth
            .with_label_values(&[&name])
            .set(depth as i64);
        if queue.len() >= ROUND && next.is_none() {
            debug!(channel = %name, "more notifications queued than one round takes");
            next = Some(now_ms());
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
        };
        for attempts in 1..=12u32 {
            let d = p.delay(attempts).as_secs_f64();
            let full = (2f64.powi(attempts as i32 - 1)).min(60.0);
            assert!(
                d >= full * 0.5 && d < full,
                "attempt {attempts}: {d} vs {full}"
            );
        }
        assert!(p.delay(u32::MAX) <= Duration::from_secs(60));
    }
}
