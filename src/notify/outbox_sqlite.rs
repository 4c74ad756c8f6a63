//! The outbox in a SQLite database (WAL, synchronous writes), in the `store.path` file.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tracing::warn;

use super::outbox::{HandedOver, NewNotification, Outbox, OutboxError, Queued};
use super::{EventKind, NotifyEvent};
use crate::store::hand_over;

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
        let has_told = table_exists(&conn, "notify_told")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS notify_told (
                 alert_id TEXT NOT NULL,
                 channel TEXT NOT NULL,
                 PRIMARY KEY (alert_id, channel)
             ) WITHOUT ROWID;",
        )
        .map_err(|e| err("cannot create its table", e))?;
        if !has_told {
            // A file from before this table: derive it from the history, while it is all there.
            backfill_told(&conn)?;
        }
        conn.execute(
            "DELETE FROM notify_outbox WHERE (state = 'delivered' AND finished_ms < ?1)
                 OR (state = 'dead' AND finished_ms < ?2)",
            params![now_ms - KEEP_DELIVERED_MS, now_ms - KEEP_DEAD_MS],
        )
        .map_err(|e| err("cannot prune", e))?;
        let has_alert_events =
            hand_over::prepare(&conn).map_err(|e| err("cannot prepare the hand-over", e))?;
        if has_alert_events {
            // What a channel was told matters only while the alert fires or has an event
            // waiting (resolutions recorded while no notifier ran leave rows behind).
            conn.execute(
                "DELETE FROM notify_told WHERE alert_id NOT IN
                     (SELECT id FROM alerts WHERE state = 'firing'
                      UNION SELECT alert_id FROM alert_events WHERE notified = 0)",
                [],
            )
            .map_err(|e| err("cannot prune", e))?;
        }
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

fn table_exists(conn: &Connection, name: &str) -> Result<bool, OutboxError> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| err("cannot read its schema", e))
}

/// Fills `notify_told` from the notifications kept in the outbox, oldest first: a `fired` or
/// `reminder` tells the channel, a `resolved` ends it.
fn backfill_told(conn: &Connection) -> Result<(), OutboxError> {
    let mut told = std::collections::BTreeSet::new();
    {
        let mut stmt = conn
            .prepare("SELECT channel, payload FROM notify_outbox ORDER BY seq")
            .map_err(|e| err("cannot read", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| err("cannot read", e))?;
        for row in rows {
            let (channel, payload) = row.map_err(|e| err("cannot read", e))?;
            // An unreadable row is given up when it is next read; it tells nothing here.
            let Ok(events) = serde_json::from_str::<Vec<NotifyEvent>>(&payload) else {
                continue;
            };
            for e in events {
                let key = (channel.clone(), e.alert.id);
                match e.event {
                    EventKind::Fired | EventKind::Reminder => told.insert(key),
                    EventKind::Resolved => told.remove(&key),
                };
            }
        }
    }
    let mut add = conn
        .prepare("INSERT OR IGNORE INTO notify_told (channel, alert_id) VALUES (?1, ?2)")
        .map_err(|e| err("cannot store", e))?;
    for (channel, alert_id) in told {
        add.execute(params![channel, alert_id])
            .map_err(|e| err("cannot store", e))?;
    }
    Ok(())
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
        {
            let mut tell = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO notify_told (channel, alert_id) VALUES (?1, ?2)",
                )
                .map_err(|e| err("cannot store notifications", e))?;
            for n in batch {
                insert(&tx, n)?;
                for e in n.events {
                    if matches!(e.event, EventKind::Fired | EventKind::Reminder) {
                        tell.execute(params![n.channel, e.alert.id])
                            .map_err(|e| err("cannot store notifications", e))?;
                    }
                }
            }
            // Its resolution is queued for every channel that takes it: nobody needs to be
            // told about the alert again.
            let mut forget = tx
                .prepare_cached("DELETE FROM notify_told WHERE alert_id = ?1")
                .map_err(|e| err("cannot store notifications", e))?;
            for h in handed_over.iter().filter(|h| h.event == "resolved") {
                forget
                    .execute(params![h.alert_id])
                    .map_err(|e| err("cannot store notifications", e))?;
            }
        }
        if self.has_alert_events {
            hand_over::mark(
                &tx,
                handed_over.iter().map(|h| (h.alert_id.as_str(), h.event)),
            )
            .map_err(|e| err("cannot store notifications", e))?;
        }
        tx.commit()
            .map_err(|e| err("cannot store notifications", e))
    }

    fn told(&self) -> Result<Vec<(String, String)>, OutboxError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT channel, alert_id FROM notify_told ORDER BY channel, alert_id")
            .map_err(|e| err("cannot read", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| err("cannot read", e))?;
        rows.map(|r| r.map_err(|e| err("cannot read", e))).collect()
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

    fn event(event: EventKind, alert_id: &str) -> NotifyEvent {
        let cfg = crate::config::Config::parse("", std::path::Path::new("t.yml")).unwrap();
        let mut alert = crate::notify::sample_alert(&cfg);
        alert.id = alert_id.to_string();
        NotifyEvent::new(event, alert)
    }

    #[test]
    fn told_follows_what_is_queued_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let ob = SqliteOutbox::open(&path, 1000).unwrap();
        let fired = [event(EventKind::Fired, "a1"), event(EventKind::Fired, "a2")];
        let reminder = [event(EventKind::Reminder, "a3")];
        let row = |id, ch, events| NewNotification {
            delivery_id: id,
            channel: ch,
            created_ms: 1000,
            not_before_ms: 1000,
            events,
        };
        ob.enqueue_group(
            &[row("d1", "hook", &fired), row("d2", "mail", &reminder)],
            &[],
        )
        .unwrap();
        // a1 resolves: queued for hook, which completes it; nobody is told about it any more.
        let resolved = [event(EventKind::Resolved, "a1")];
        let handed = [HandedOver {
            alert_id: "a1".into(),
            event: "resolved",
        }];
        ob.enqueue_group(&[row("d3", "hook", &resolved)], &handed)
            .unwrap();
        drop(ob);
        let ob = SqliteOutbox::open(&path, 2000).unwrap();
        let pair = |c: &str, a: &str| (c.to_string(), a.to_string());
        assert_eq!(
            ob.told().unwrap(),
            vec![pair("hook", "a2"), pair("mail", "a3")]
        );
    }

    #[test]
    fn told_is_derived_from_the_history_of_a_file_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let ob = SqliteOutbox::open(&path, 1000).unwrap();
        let fired = [event(EventKind::Fired, "a1"), event(EventKind::Fired, "a2")];
        let resolved = [event(EventKind::Resolved, "a2")];
        for (id, events) in [("d1", &fired[..]), ("d2", &resolved[..])] {
            ob.enqueue(&NewNotification {
                delivery_id: id,
                channel: "hook",
                created_ms: 1000,
                not_before_ms: 1000,
                events,
            })
            .unwrap();
        }
        // As a file written before the table existed.
        ob.lock().execute_batch("DROP TABLE notify_told").unwrap();
        drop(ob);
        let ob = SqliteOutbox::open(&path, 2000).unwrap();
        assert_eq!(
            ob.told().unwrap(),
            vec![("hook".to_string(), "a1".to_string())]
        );
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

    #[test]
    fn a_group_marks_the_alert_events_it_completes_in_the_store() {
        use crate::alerts::{AlertTransition, TransitionKind};
        use crate::store::{Commit, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path).unwrap();
        let fired = |id: &str| AlertTransition {
            event: TransitionKind::Fired,
            alert: event(EventKind::Fired, id).alert,
        };
        store
            .commit(&Commit {
                transitions: vec![fired("a1"), fired("a2")],
                changes: Default::default(),
            })
            .unwrap();
        assert_eq!(store.pending_events().unwrap().len(), 2);
        let ob = SqliteOutbox::open(&path, 1000).unwrap();
        let events = [event(EventKind::Fired, "a1")];
        ob.enqueue_group(
            &[NewNotification {
                delivery_id: "d1",
                channel: "hook",
                created_ms: 1000,
                not_before_ms: 1000,
                events: &events,
            }],
            &[HandedOver {
                alert_id: "a1".into(),
                event: "fired",
            }],
        )
        .unwrap();
        // The store sees a1's event handed over, and a2's still waiting.
        let pending: Vec<String> = store
            .pending_events()
            .unwrap()
            .into_iter()
            .map(|p| p.transition.alert.id)
            .collect();
        assert_eq!(pending, ["a2"]);
    }
}
