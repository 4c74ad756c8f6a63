//! The notifier's hand-over of alert events: an `alert_events` row is marked `notified` once
//! the notifier has queued its notifications for every channel that takes it (or none takes
//! it). The notifier's outbox calls these inside its own transaction, so that an event is
//! marked in the same write that queues its notifications, whatever crashes; the SQL stays
//! here, so that the store is the only module that writes its tables.

use rusqlite::{Connection, Transaction, params};

/// Readies a database for hand-overs; false when it has no `alert_events` table (an outbox
/// in a file the store has not opened, as in tests and `notify test`), and nothing is marked.
pub fn prepare(conn: &Connection) -> rusqlite::Result<bool> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_events')",
        [],
        |r| r.get(0),
    )?;
    if exists {
        // Hand-overs mark events by alert: without this index each mark reads the whole
        // queue, and an alert storm holds the store's write lock for seconds.
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, event);",
        )?;
    }
    Ok(exists)
}

/// Marks the `event` (`fired` or `resolved`) of each alert as handed over, in `tx`.
pub fn mark<'a>(
    tx: &Transaction<'_>,
    events: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> rusqlite::Result<()> {
    let mut mark = tx.prepare_cached(
        "UPDATE alert_events SET notified = 1 WHERE alert_id = ?1 AND event = ?2",
    )?;
    for (alert_id, event) in events {
        mark.execute(params![alert_id, event])?;
    }
    Ok(())
}
