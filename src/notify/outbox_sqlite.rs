//! The outbox in a SQLite database (WAL, synchronous writes), in the `store.path` file.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tracing::warn;

use super::NotifyEvent;
use super::outbox::{HandedOver, NewNotification, Outbox, OutboxError, Queued};

/// Delivered notifications are kept this long for inspection, then pruned.
const KEEP_DELIVERED_MS: i64 = 7 * 86_400_000;
/// Dead notifications are kept this long, then pruned.
const KEEP_DEAD_MS: i64 = 30 * 86_400_000;

/// The SQLite outbox; one connection behind a mutex (writes are few and small).
pub struct SqliteOutbox {
    conn: Mutex<Connection>,
    /// The store's queue of alert events is in the same file (the service creates it before
    /// the notifier opens the outbox); `notify test` and unit tests have no such table.
    has_alert_events: bool,
}

fn err(context: &str, e: rusqlite::Error) -> OutboxError {
    OutboxError(format!("{context}: {e}"))
}

impl SqliteOutbox {
    /// Opens (creating if needed) the database at `path` and prunes old finished rows.
    pub fn open(path: &Path, now_ms: i64) -> Result<Self, OutboxError> {
        let conn = Connection::open(path).map_err(|e| {
            OutboxError(format!(
                "cannot open {}: {e}; check that its directory exists and is writable, or set store.path",
                path.display()
            ))
        })?;
        Self::init(conn, now_ms)
    }

    /// An outbox that lives in memory only (for `notify test` and unit tests).
    pub fn in_memory() -> Result<Self, OutboxError> {
        let conn = Connection::open_in_memory().map_err(|e| err("cannot open", e))?;
        Self::init(conn, 0)
    }

    fn init(conn: Connection, now_ms: i64) -> Result<Self, OutboxError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| err("cannot configure", e))?;
        // WAL keeps readers and the writer apart; FULL makes an enqueue durable on return.
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| err("cannot switch to WAL", e))?;
        conn.execute_batch(
            "PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS notify_outbox (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 delivery_id TEXT NOT NULL UNIQUE,
                 channel TEXT NOT NULL,
                 created_ms INTEGER NOT NULL,
                 next_attempt_ms INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 state TEXT NOT NULL DEFAULT 'pending',
                 finished_ms INTEGER,
                 last_error TEXT,
                 payload TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS notify_outbox_pending
                 ON notify_outbox (channel, state, seq);",
        )
        .map_err(|e| {
            OutboxError(format!(
                "cannot create its table: {e}; is the file a bgpsentry database?"
            ))
        })?;
        conn.execute(
            "DELETE FROM notify_outbox WHERE (state = 'delivered' AND finished_ms < ?1)
                 OR (state = 'dead' AND finished_ms < ?2)",
            params![now_ms - KEEP_DELIVERED_MS, now_ms - KEEP_DEAD_MS],
        )
        .map_err(|e| err("cannot prune", e))?;
        let has_alert_events = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alert_events'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| err("cannot read its schema", e))?;
        Ok(SqliteOutbox {
            conn: Mutex::new(conn),
            has_alert_events,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state (`pending`, `delivered`, `dead`) and attempts of a delivery, if known.
    pub fn status(&self, delivery_id: &str) -> Result<Option<(String, u32)>, OutboxError> {
        self.lock()
            .query_row(
                "SELECT state, attempts FROM notify_outbox WHERE delivery_id = ?1",
                params![delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| err("cannot read", e))
    }
}

fn insert(conn: &Connection, n: &NewNotification<'_>) -> Result<(), OutboxError> {
    let payload = serde_json::to_string(n.events)
        .map_err(|e| OutboxError(format!("cannot encode a notification: {e}")))?;
    conn.execute(
        "INSERT INTO notify_outbox (delivery_id, channel, created_ms, next_attempt_ms, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            n.delivery_id,
            n.channel,
            n.created_ms,
            n.not_before_ms,
            payload
        ],
    )
    .map(|_| ())
    .map_err(|e| err("cannot store a notification", e))
}

impl Outbox for SqliteOutbox {
    fn enqueue(&self, n: &NewNotification<'_>) -> Result<i64, OutboxError> {
        let conn = self.lock();
        insert(&conn, n)?;
        Ok(conn.last_insert_rowid())
    }

    fn enqueue_all(&self, batch: &[NewNotification<'_>]) -> Result<(), OutboxError> {
        self.enqueue_group(batch, &[])
    }

    fn enqueue_group(
        &self,
        batch: &[NewNotification<'_>],
        handed_over: &[HandedOver],
    ) -> Result<(), OutboxError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(|e| err("cannot store notifications", e))?;
        for n in batch {
            insert(&tx, n)?;
        }
        if self.has_alert_events {
            let mut mark = tx
                .prepare_cached(
                    "UPDATE alert_events SET notified = 1 WHERE alert_id = ?1 AND event = ?2",
                )
                .map_err(|e| err("cannot store notifications", e))?;
            for h in handed_over {
                mark.execute(params![h.alert_id, h.event])
                    .map_err(|e| err("cannot store notifications", e))?;
            }
        }
        tx.commit()
            .map_err(|e| err("cannot store notifications", e))
    }

    fn pending(&self, channel: &str, limit: usize) -> Result<Vec<Queued>, OutboxError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, delivery_id, created_ms, next_attempt_ms, attempts, payload
                 FROM notify_outbox WHERE channel = ?1 AND state = 'pending'
                 ORDER BY seq LIMIT ?2",
            )
            .map_err(|e| err("cannot read", e))?;
        let rows = stmt
            .query_map(params![channel, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| err("cannot read", e))?;
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for row in rows {
            let (seq, delivery_id, created_ms, next_attempt_ms, attempts, payload) =
                row.map_err(|e| err("cannot read", e))?;
            match serde_json::from_str::<Vec<NotifyEvent>>(&payload) {
                Ok(events) => out.push(Queued {
                    seq,
                    delivery_id,
                    channel: channel.to_string(),
                    created_ms,
                    next_attempt_ms,
                    attempts,
                    events,
                }),
                Err(e) => unreadable.push((seq, delivery_id, e.to_string())),
            }
        }
        drop(stmt);
        for (seq, id, e) in unreadable {
            warn!(channel, delivery_id = %id, "notification in the outbox cannot be read ({e}); giving it up");
            conn.execute(
                "UPDATE notify_outbox SET state = 'dead', last_error = ?2 WHERE seq = ?1",
                params![seq, format!("unreadable payload: {e}")],
            )
            .map_err(|e| err("cannot update", e))?;
        }
        Ok(out)
    }

    fn record_failure(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), OutboxError> {
        self.lock()
            .execute(
                "UPDATE notify_outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4
                 WHERE seq = ?1",
                params![seq, attempts, next_attempt_ms, error],
            )
            .map(|_| ())
            .map_err(|e| err("cannot update", e))
    }

    fn mark_delivered(&self, seq: i64, at_ms: i64) -> Result<(), OutboxError> {
        self.lock()
            .execute(
                "UPDATE notify_outbox SET state = 'delivered', finished_ms = ?2,
                     attempts = attempts + 1 WHERE seq = ?1",
                params![seq, at_ms],
            )
            .map(|_| ())
            .map_err(|e| err("cannot update", e))
    }

    fn mark_dead(&self, seq: i64, at_ms: i64, error: &str) -> Result<(), OutboxError> {
        self.lock()
            .execute(
                "UPDATE notify_outbox SET state = 'dead', finished_ms = ?2, last_error = ?3
                 WHERE seq = ?1",
                params![seq, at_ms, error],
            )
            .map(|_| ())
            .map_err(|e| err("cannot update", e))
    }

    fn depth(&self, channel: &str) -> Result<u64, OutboxError> {
        self.lock()
            .query_row(
                "SELECT COUNT(*) FROM notify_outbox WHERE channel = ?1 AND state = 'pending'",
                params![channel],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| err("cannot count", e))
    }

    fn pending_by_channel(&self) -> Result<Vec<(String, u64)>, OutboxError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT channel, COUNT(*) FROM notify_outbox WHERE state = 'pending'
                 GROUP BY channel ORDER BY channel",
            )
            .map_err(|e| err("cannot count", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| err("cannot count", e))?;
        rows.map(|r| {
            r.map(|(c, n)| (c, n.max(0) as u64))
                .map_err(|e| err("cannot count", e))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_reopen_and_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let ob = SqliteOutbox::open(&path, 1000).unwrap();
        for id in ["a", "b", "c"] {
            ob.enqueue(&NewNotification {
                delivery_id: id,
                channel: "ch",
                created_ms: 1000,
                not_before_ms: 1000,
                events: &[],
            })
            .unwrap();
        }
        let first = ob.pending("ch", 10).unwrap();
        ob.mark_delivered(first[0].seq, 1001).unwrap();
        ob.record_failure(first[1].seq, 1, 5000, "down").unwrap();
        drop(ob);
        let ob = SqliteOutbox::open(&path, 2000).unwrap();
        let p = ob.pending("ch", 10).unwrap();
        let ids: Vec<&str> = p.iter().map(|q| q.delivery_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(p[0].attempts, 1);
        assert_eq!(p[0].next_attempt_ms, 5000);
        assert_eq!(ob.depth("ch").unwrap(), 2);
        assert_eq!(
            ob.pending_by_channel().unwrap(),
            vec![("ch".to_string(), 2)]
        );
        assert_eq!(ob.status("a").unwrap(), Some(("delivered".into(), 1)));
    }

    #[test]
    fn a_batch_is_stored_all_or_nothing() {
        let ob = SqliteOutbox::in_memory().unwrap();
        let n = |id: &'static str| NewNotification {
            delivery_id: id,
            channel: "ch",
            created_ms: 1,
            not_before_ms: 1,
            events: &[],
        };
        ob.enqueue_all(&[n("a"), n("b")]).unwrap();
        assert_eq!(ob.depth("ch").unwrap(), 2);
        // "b" again violates uniqueness: nothing of this batch is kept.
        assert!(ob.enqueue_all(&[n("c"), n("b")]).is_err());
        assert_eq!(ob.depth("ch").unwrap(), 2);
        assert_eq!(ob.status("c").unwrap(), None);
    }

    #[test]
    fn duplicate_delivery_id_is_refused() {
        let ob = SqliteOutbox::in_memory().unwrap();
        let n = NewNotification {
            delivery_id: "x",
            channel: "ch",
            created_ms: 1,
            not_before_ms: 1,
            events: &[],
        };
        ob.enqueue(&n).unwrap();
        assert!(ob.enqueue(&n).is_err());
    }

    #[test]
    fn unreadable_payload_goes_dead_instead_of_blocking() {
        let ob = SqliteOutbox::in_memory().unwrap();
        ob.lock()
            .execute(
                "INSERT INTO notify_outbox (delivery_id, channel, created_ms, next_attempt_ms, payload)
                 VALUES ('bad', 'ch', 1, 1, '{not json')",
                [],
            )
            .unwrap();
        assert!(ob.pending("ch", 10).unwrap().is_empty());
        assert_eq!(ob.status("bad").unwrap().unwrap().0, "dead");
        assert_eq!(ob.depth("ch").unwrap(), 0);
    }
}
