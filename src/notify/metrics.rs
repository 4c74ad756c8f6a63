//! Per-channel delivery metrics, registered on the service's registry.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Handles to the notifier's metric families (label `channel` on each).
#[derive(Clone)]
pub struct NotifyMetrics {
    /// Notifications delivered.
    pub sent: IntCounterVec,
    /// Delivery attempts that failed.
    pub failed_attempts: IntCounterVec,
    /// Attempts that were retries of an earlier failed attempt.
    pub retries: IntCounterVec,
    /// Notifications given up after `notify.max_age_seconds`.
    pub dead: IntCounterVec,
    /// Notifications waiting in the outbox.
    pub queue_depth: IntGaugeVec,
    /// Time from queueing a notification to its delivery.
    pub delivery_seconds: HistogramVec,
}

impl NotifyMetrics {
    /// Creates the families and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = NotifyMetrics {
            sent: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_notifications_sent_total",
                    "Notifications delivered, by channel.",
                ),
                &["channel"],
            )?,
            failed_attempts: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_notification_failures_total",
                    "Notification delivery attempts that failed, by channel.",
                ),
                &["channel"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_notification_retries_total",
                    "Delivery attempts that retried an earlier failed attempt, by channel.",
                ),
                &["channel"],
            )?,
            dead: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_notifications_dead_total",
                    "Notifications given up after notify.max_age_seconds without delivery, by channel.",
                ),
                &["channel"],
            )?,
            queue_depth: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_notification_queue_depth",
                    "Notifications waiting in the outbox, by channel.",
                ),
                &["channel"],
            )?,
            delivery_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "bgpsentry_notification_delivery_seconds",
                    "Time from queueing a notification to its delivery, by channel.",
                )
                .buckets(vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
                    3600.0,
                ]),
                &["channel"],
            )?,
        };
        registry.register(Box::new(m.sent.clone()))?;
        registry.register(Box::new(m.failed_attempts.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.dead.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.delivery_seconds.clone()))?;
        Ok(m)
    }

    /// Makes every family show the channel at zero before its first delivery.
    pub fn init_channel(&self, channel: &str) {
        let l = &[channel];
        self.sent.with_label_values(l);
        self.failed_attempts.with_label_values(l);
        self.retries.with_label_values(l);
        self.dead.with_label_values(l);
        self.queue_depth.with_label_values(l);
        self.delivery_seconds.with_label_values(l);
    }

    /// Drops the channel's series (a channel removed by a reload), as a restart would.
    pub fn remove_channel(&self, channel: &str) {
        let l = &[channel];
        // A series that was never created is not an error worth reporting.
        let _ = self.sent.remove_label_values(l);
        let _ = self.failed_attempts.remove_label_values(l);
        let _ = self.retries.remove_label_values(l);
        let _ = self.dead.remove_label_values(l);
        let _ = self.queue_depth.remove_label_values(l);
        let _ = self.delivery_seconds.remove_label_values(l);
    }
}
