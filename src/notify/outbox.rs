//! The durable outbox: every notification is written here before it is attempted, and stays
//! until it is delivered or given up. The trait keeps the storage replaceable (the state
//! store can take it over); [`super::outbox_sqlite`] is the SQLite implementation.

use std::fmt;

use super::NotifyEvent;

/// A notification waiting in the outbox.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Insertion order (per outbox, increasing).
    pub seq: i64,
    /// Unique id, stable across retries and restarts; receivers deduplicate on it.
    pub delivery_id: String,
    /// The channel it is for.
    pub channel: String,
    /// When it was queued (Unix milliseconds).
    pub created_ms: i64,
    /// Not to be attempted before this (Unix milliseconds).
    pub next_attempt_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// What to tell.
    pub events: Vec<NotifyEvent>,
}

/// A notification to add.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// Unique id.
    pub delivery_id: &'a str,
    /// The channel it is for.
    pub channel: &'a str,
    /// Now (Unix milliseconds).
    pub created_ms: i64,
    /// First attempt not before this (Unix milliseconds).
    pub not_before_ms: i64,
    /// What to tell.
    pub events: &'a [NotifyEvent],
}

/// A failure of the storage under the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxError(pub String);

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "notification outbox: {}", self.0)
    }
}

impl std::error::Error for OutboxError {}

/// An alert event (an alert's `fired` or `resolved`) that the notifier has fully queued.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandedOver {
    /// The alert.
    pub alert_id: String,
    /// `fired` or `resolved`.
    pub event: &'static str,
}

/// Storage for notifications until they are delivered or dead.
pub trait Outbox: Send + Sync + 'static {
    /// Adds a notification; durable when this returns.
    fn enqueue(&self, n: &NewNotification<'_>) -> Result<i64, OutboxError>;
    /// Adds several notifications, all or none; durable when this returns. Storage with
    /// transactions overrides this to pay for one durable write instead of many.
    fn enqueue_all(&self, batch: &[NewNotification<'_>]) -> Result<(), OutboxError> {
        for n in batch {
            self.enqueue(n)?;
        }
        Ok(())
    }
    /// Adds notifications and records, in the same write, which alert events they complete
    /// (so an event is either in the outbox and marked, or neither, whatever crashes) and
    /// which alerts the channels are now told about (see [`Outbox::told`]).
    fn enqueue_group(
        &self,
        batch: &[NewNotification<'_>],
        handed_over: &[HandedOver],
    ) -> Result<(), OutboxError> {
        let _ = handed_over;
        self.enqueue_all(batch)
    }
    /// Which alerts each channel was told about, as (channel, alert id): a `fired` or
    /// `reminder` for it was queued for the channel, and the alert's `resolved` is not yet
    /// handed over. Kept in the same write as the notifications, so a notifier started after a
    /// crash knows whom to tell about a resolution the crash left waiting. Storage that does
    /// not survive restarts has nothing to tell.
    fn told(&self) -> Result<Vec<(String, String)>, OutboxError> {
        Ok(Vec::new())
    }
    /// Pending notifications of a channel, oldest first, at most `limit`. A row whose payload
    /// cannot be read is marked dead and skipped.
    fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, OutboxError>;
    /// Records a failed attempt and when to try next.
    fn record_failure(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), OutboxError>;
    /// Marks a notification delivered.
    fn mark_delivered(&self, seq: i64, at_ms: i64) -> Result<(), OutboxError>;
    /// Marks a notification given up.
    fn mark_dead(&self, seq: i64, at_ms: i64, error: &str) -> Result<(), OutboxError>;
    /// Number of pending notifications of a channel.
    fn depth(&self, channel: &str) -> Result<u64, OutboxError>;
    /// Pending notifications per channel, for channels that have any.
    fn pending_by_channel(&self) -> Result<Vec<(String, u64)>, OutboxError>;
}
