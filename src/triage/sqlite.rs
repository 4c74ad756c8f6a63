//! The triage tables in the store's file (created by the store's schema migrations): one
//! connection of its own, beside the store thread's, for writes that are few and small.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{Ack, EXPIRED_KEPT_DAYS, Matchers, Silence, TriageError};
use crate::event::Timestamp;

pub(super) struct TriageDb {
    conn: Connection,
    path: PathBuf,
}

impl TriageDb {
    /// Opens the store's file, which must have the triage tables, and drops what is no longer
    /// needed: acknowledgements of alerts pruned from the store, silences long expired.
    pub(super) fn open(path: &Path, now: Timestamp) -> anyhow::Result<Self> {
        let conn = Connection::open(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the store {} for acknowledgements and silences: {e}",
                path.display()
            )
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Per connection: an acknowledgement answered is on disk, as every store write is.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let db = TriageDb {
            conn,
            path: path.to_path_buf(),
        };
        let cutoff = now.0 - EXPIRED_KEPT_DAYS * 86_400 * 1_000_000;
        db.conn
            .execute_batch("DELETE FROM acks WHERE alert_id NOT IN (SELECT id FROM alerts);")
            .map_err(|e| db.err(e))?;
        db.conn
            .execute("DELETE FROM silences WHERE expires_at < ?1", [cutoff])
            .map_err(|e| db.err(e))?;
        Ok(db)
    }

    fn err(&self, source: rusqlite::Error) -> TriageError {
        TriageError::Store {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Every acknowledgement and silence; rows that cannot be read are skipped with a warning.
    pub(super) fn load(&self) -> Result<(HashMap<String, Ack>, Vec<Silence>), TriageError> {
        let mut acks = HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT alert_id, acked_by, comment, acked_at FROM acks")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Ack {
                        by: r.get(1)?,
                        comment: r.get(2)?,
                        at: Timestamp(r.get(3)?),
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (id, ack) = row.map_err(|e| self.err(e))?;
            acks.insert(id, ack);
        }
        let mut silences = Vec::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, matchers, comment, created_by, created_at, expires_at FROM silences",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (id, matchers, comment, created_by, created_at, expires_at) =
                row.map_err(|e| self.err(e))?;
            match serde_json::from_str::<Matchers>(&matchers) {
                Ok(matchers) if !matchers.is_empty() => silences.push(Silence {
                    id,
                    matchers,
                    comment,
                    created_by,
                    created_at: Timestamp(created_at),
                    expires_at: Timestamp(expires_at),
                }),
                Ok(_) => tracing::warn!(silence = %id, "store: a silence without matchers skipped"),
                Err(e) => tracing::warn!(silence = %id, "store: unreadable silence skipped: {e}"),
            }
        }
        Ok((acks, silences))
    }

    pub(super) fn put_ack(&mut self, alert_id: &str, ack: &Ack) -> Result<(), TriageError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO acks (alert_id, acked_by, comment, acked_at) VALUES (?1, ?2, ?3, ?4)",
                params![alert_id, ack.by, ack.comment, ack.at.0],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(super) fn delete_ack(&mut self, alert_id: &str) -> Result<(), TriageError> {
        self.conn
            .execute("DELETE FROM acks WHERE alert_id = ?1", [alert_id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(super) fn put_silence(&mut self, s: &Silence) -> Result<(), TriageError> {
        let matchers = serde_json::to_string(&s.matchers).unwrap_or_default();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO silences (id, matchers, comment, created_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![s.id, matchers, s.comment, s.created_by, s.created_at.0, s.expires_at.0],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub(super) fn delete_silence(&mut self, id: &str) -> Result<(), TriageError> {
        self.conn
            .execute("DELETE FROM silences WHERE id = ?1", [id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
