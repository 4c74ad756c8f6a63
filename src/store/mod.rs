//! The embedded store (SQLite, WAL): alerts and their history, the queue of alert events for
//! the notifier, learned baselines, and the route state of watched prefixes.
//!
//! One writer: the store thread applies each [`Commit`] (alert transitions together with the
//! routes of the prefixes they concern) in one transaction, and only then are the transitions
//! passed on. Whatever anyone saw of an alert was on disk first, with the routes behind it.
//!
//! Longer than most files here: it is the one type that reads and writes the database, and
//! each of its methods is one transaction that is easiest to check beside the others.

mod codec;
mod footprint;
pub mod hand_over;
mod schema;

use schema::MIGRATIONS;

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};

use crate::alerts::{Alert, AlertState, AlertTransition, TransitionKind};
use crate::engine::{EngineState, LearnedBaseline, PrefixRoutes};
use crate::event::Timestamp;

/// Encoding of the route blobs written now (`routes.format`).
const ROUTES_FORMAT: i64 = 2;

/// A store error, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("the store {path} failed: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file exists but is damaged (integrity check failed, not a database, or empty).
    #[error(
        "the store {path} is damaged ({problem}); bgpsentry will not run on it. Either restore it \
         from a backup, or move it aside to start with an empty store: stop bgpsentry, then \
         `mv {path} {path}.damaged` (with its -wal and -shm files if present) and start again. \
         Starting empty loses the alert history, the alert events not yet notified, learned \
         baselines and the saved routes (the feeds bring the routes back)"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The file was written by a newer bgpsentry.
    #[error(
        "the store {path} has schema version {found}, newer than this bgpsentry knows ({known}); run a newer bgpsentry or point store.path elsewhere"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
}

/// One unit of work for the store: alert transitions and the engine changes that go with them.
#[derive(Debug, Default)]
pub struct Commit {
    /// Alert transitions, in order.
    pub transitions: Vec<AlertTransition>,
    /// Routes, VPs, baselines and visibility flags that changed.
    pub changes: EngineState,
}

/// What the store held at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Route state, baselines, visibility flags and firing alerts, for [`crate::engine::Engine::restore`].
    pub state: EngineState,
    /// The most recent resolved alerts, newest last.
    pub resolved: Vec<Alert>,
    /// Wall-clock time of the last commit, if any.
    pub saved_at: Option<Timestamp>,
    /// Some rows could not be read or are in an older format: save the state whole
    /// ([`Store::replace_state`]) rather than only what changed.
    pub rewrite: bool,
}

/// An alert event waiting for the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// Position in the queue; stable, so it names the notification.
    pub seq: i64,
    /// The transition.
    pub transition: AlertTransition,
}

/// The SQLite store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Whether a notifier takes the alert events (else they are recorded as handled).
    events_wanted: bool,
}

impl Store {
    /// Opens (or creates) the store, checks its integrity and brings its schema up to date. A
    /// damaged store is refused ([`StoreError::Damaged`]): running on it would lose alerts
    /// silently.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let damaged = |problem: String| StoreError::Damaged {
            path: path.to_path_buf(),
            problem,
        };
        let created = match std::fs::metadata(path) {
            // SQLite would take an empty file for a new database, but a store file that exists
            // and is empty was truncated (a full disk, a bad copy): its alerts are gone.
            Ok(m) if m.is_file() && m.len() == 0 => {
                return Err(damaged(
                    "the file is empty (0 bytes): it was most likely truncated".into(),
                ));
            }
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            // Connection::open below reports what is wrong with the path.
            Err(_) => false,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        let not_a_db = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                damaged(e.to_string())
            }
            _ => err(e),
        };
        // WAL: readers never block the writer; FULL: a commit survives power loss too.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(not_a_db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(not_a_db)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        if !created {
            // quick_check reads every page once (no index cross-checks): a fraction of a second
            // for a store of watched prefixes, and it finds torn or overwritten pages.
            let problems = quick_check(&conn).map_err(|e| match not_a_db(e) {
                StoreError::Damaged { path, problem } => StoreError::Damaged {
                    path,
                    problem: format!("integrity check: {problem}"),
                },
                other => other,
            })?;
            if !problems.is_empty() {
                return Err(damaged(format!("integrity check: {}", problems.join("; "))));
            }
        }
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(not_a_db)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                known,
            });
        }
        let tx = conn.transaction().map_err(err)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        if created {
            tracing::info!(store = %path.display(), "created an empty store (the file did not exist)");
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            events_wanted: true,
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads everything needed to continue after a restart. Rows that cannot be decoded are
    /// skipped with a warning rather than stopping the service.
    pub fn load(&self, resolved_limit: usize) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let state = &mut loaded.state;
        let meta = |key: &str| -> Result<Option<String>, StoreError> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(|e| self.err(e))
        };
        state.taken_at = meta("taken_at")?
            .and_then(|v| v.parse().ok())
            .map(Timestamp)
            .unwrap_or_default();
        loaded.saved_at = meta("saved_at")?
            .and_then(|v| v.parse().ok())
            .map(Timestamp);

        let mut stmt = self
            .conn
            .prepare("SELECT id, data FROM vps ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (id, data) = row.map_err(|e| self.err(e))?;
            match codec::decode_vp(&data) {
                // VP ids are dense from 0: a gap would shift every later index.
                Ok(vp) if id as usize == state.vps.len() => state.vps.push(vp),
                Ok(_) => {
                    loaded.rewrite = true;
                    tracing::warn!(
                        id,
                        "store: vantage point ids are not dense; later ones skipped"
                    )
                }
                Err(e) => {
                    loaded.rewrite = true;
                    tracing::warn!(id, "store: unreadable vantage point skipped: {e}")
                }
            }
        }

        // Borrowed column values: no copy of the blobs, which make up most of the file.
        let mut stmt = self
            .conn
            .prepare("SELECT prefix, format, data FROM routes")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut decoder = codec::RoutesDecoder::default();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let column = |i| row.get_ref(i).map_err(|e| self.err(e));
            let text = column(0)?.as_str().unwrap_or("");
            let format = column(1)?.as_i64().unwrap_or(0);
            let data = column(2)?.as_blob().unwrap_or(&[]);
            loaded.rewrite |= format != ROUTES_FORMAT;
            let routes = match format {
                1 => codec::decode_routes_v1(data).map_err(|e| e.to_string()),
                ROUTES_FORMAT => decoder.decode(data).map_err(|e| e.to_string()),
                other => Err(format!("unknown format {other}")),
            };
            match (text.parse::<IpNet>(), routes) {
                (Ok(prefix), Ok(routes)) => state.routes.push(PrefixRoutes { prefix, routes }),
                (_, Err(e)) => {
                    loaded.rewrite = true;
                    tracing::warn!(prefix = text, "store: unreadable routes skipped: {e}")
                }
                (Err(_), _) => {
                    loaded.rewrite = true;
                    tracing::warn!(
                        prefix = text,
                        "store: routes of an unreadable prefix skipped"
                    )
                }
            }
        }
        state.routes.sort_by_key(|r| r.prefix);

        let mut stmt = self
            .conn
            .prepare(
                "SELECT prefix, origins, upstreams, learn_until, accepted_origins, accepted_upstreams FROM baselines",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (prefix, origins, upstreams, until, accepted_origins, accepted_upstreams) =
                row.map_err(|e| self.err(e))?;
            let Ok(prefix) = prefix.parse() else { continue };
            state.baselines.push(LearnedBaseline {
                prefix,
                origins: asn_list(&origins),
                upstreams: asn_list(&upstreams),
                learn_until: until.map(Timestamp),
                accepted_origins: asn_list(&accepted_origins),
                accepted_upstreams: asn_list(&accepted_upstreams),
            });
        }

        let mut stmt = self
            .conn
            .prepare("SELECT watched, prefix FROM visibility")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (w, p) = row.map_err(|e| self.err(e))?;
            if let (Ok(w), Ok(p)) = (w.parse(), p.parse()) {
                state.visibility_reached.push((w, p));
            }
        }

        state.firing = self.alerts_where("state = 'firing' ORDER BY fired_at", [])?;
        let mut resolved = self.alerts_where(
            "state = 'resolved' ORDER BY resolved_at DESC LIMIT ?1",
            [resolved_limit as i64],
        )?;
        resolved.reverse();
        loaded.resolved = resolved;
        Ok(loaded)
    }

    fn alerts_where<P: rusqlite::Params>(
        &self,
        clause: &str,
        params: P,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT id, json FROM alerts WHERE {clause}"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            match serde_json::from_str::<Alert>(&json) {
                Ok(a) => out.push(a),
                Err(e) => tracing::warn!(%id, "store: unreadable alert skipped: {e}"),
            }
        }
        Ok(out)
    }

    /// Applies one commit in one transaction.
    pub fn commit(&mut self, c: &Commit) -> Result<(), StoreError> {
        self.commit_all(std::slice::from_ref(c))
    }

    /// Applies commits, in order, in one transaction: a backlog costs one durable write
    /// instead of one per commit, and what later commits overwrite is written once (see
    /// [`Store::write_group`]).
    pub fn commit_all(&mut self, commits: &[Commit]) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN").map_err(|e| self.err(e))?;
        let result = self.write_group(commits);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.execute_batch(end).map_err(|e| self.err(e))?;
        result
    }

    /// Writes commits, in order, into the open transaction, leaving the store as if each had
    /// been written in turn but writing each row once: an alert's row as of its last
    /// transition (every `fired` and `resolved` still gets its own event), a prefix's routes as
    /// of the last commit that touched it, the baselines and visibility flags of the last
    /// commit that carried them. Under an alert storm the same alerts and prefixes change in
    /// commit after commit; writing each version cost most of the store's time.
    fn write_group(&mut self, commits: &[Commit]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = &self.conn;
        let now = Timestamp::now();
        let transitions = || commits.iter().flat_map(|c| &c.transitions);
        // Index of each alert's last transition in the group.
        let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, t) in transitions().enumerate() {
            last.insert(t.alert.id.as_str(), i);
        }
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO alerts (id, state, rule, watched_prefix, prefix, fired_at, resolved_at, json, stored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (id) DO UPDATE SET state = ?2, resolved_at = ?7, json = ?8, stored_at = ?9",
                )
                .map_err(err)?;
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO alert_events (alert_id, event, json, recorded_at, notified) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            let mut json: Vec<u8> = Vec::new();
            for (i, t) in transitions().enumerate() {
                let a = &t.alert;
                let kind = match t.event {
                    TransitionKind::Fired => Some("fired"),
                    TransitionKind::Resolved => Some("resolved"),
                    TransitionKind::Updated | TransitionKind::HandedOver => None,
                };
                let is_last = last.get(a.id.as_str()) == Some(&i);
                if kind.is_none() && !is_last {
                    continue;
                }
                // Built once, for the event and the row alike, in a buffer kept across alerts.
                json.clear();
                // Serialising plain data into memory cannot fail.
                let _ = serde_json::to_writer(&mut json, a);
                let json = std::str::from_utf8(&json).unwrap_or_default();
                if let Some(kind) = kind {
                    event
                        .execute(params![a.id, kind, json, now.0, !self.events_wanted])
                        .map_err(err)?;
                }
                if !is_last {
                    continue;
                }
                if t.event == TransitionKind::HandedOver {
                    // Another instance holds it now: not this one's to restore or list.
                    tx.prepare_cached("DELETE FROM alerts WHERE id = ?1")
                        .map_err(err)?
                        .execute(params![a.id])
                        .map_err(err)?;
                    continue;
                }
                let state = match a.state {
                    AlertState::Firing => "firing",
                    AlertState::Resolved => "resolved",
                };
                upsert
                    .execute(params![
                        a.id,
                        state,
                        a.rule.as_str(),
                        a.watched_prefix.to_string(),
                        a.prefix.to_string(),
                        a.fired_at.0,
                        a.resolved_at.map(|t| t.0),
                        json,
                        now.0
                    ])
                    .map_err(err)?;
            }
            let mut vp = tx
                .prepare_cached("INSERT OR REPLACE INTO vps (id, data) VALUES (?1, ?2)")
                .map_err(err)?;
            for ch in commits.iter().map(|c| &c.changes) {
                for (i, v) in ch.vps.iter().enumerate() {
                    vp.execute(params![ch.first_vp as i64 + i as i64, codec::encode_vp(v)])
                        .map_err(err)?;
                }
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO routes (prefix, format, data) VALUES (?1, ?2, ?3)",
                )
                .map_err(err)?;
            let mut encoder = codec::RoutesEncoder::default();
            let mut del = tx
                .prepare_cached("DELETE FROM routes WHERE prefix = ?1")
                .map_err(err)?;
            // Newest first: a prefix's routes are written as of the last commit that has them.
            let mut written = std::collections::HashSet::new();
            for pr in commits.iter().rev().flat_map(|c| &c.changes.routes) {
                if !written.insert(pr.prefix) {
                    continue;
                }
                if pr.routes.is_empty() {
                    del.execute([pr.prefix.to_string()]).map_err(err)?;
                } else {
                    put.execute(params![
                        pr.prefix.to_string(),
                        ROUTES_FORMAT,
                        encoder.encode(&pr.routes)
                    ])
                    .map_err(err)?;
                }
            }
            // Each commit that carries them replaces them whole: the last one stands.
            if let Some(ch) = commits
                .iter()
                .rev()
                .map(|c| &c.changes)
                .find(|ch| !ch.baselines.is_empty() || !ch.visibility_reached.is_empty())
            {
                tx.execute("DELETE FROM baselines", []).map_err(err)?;
                let mut b = tx
                    .prepare_cached(
                        "INSERT INTO baselines (prefix, origins, upstreams, learn_until, accepted_origins, accepted_upstreams) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(err)?;
                for bl in &ch.baselines {
                    b.execute(params![
                        bl.prefix.to_string(),
                        join(&bl.origins),
                        join(&bl.upstreams),
                        bl.learn_until.map(|t| t.0),
                        join(&bl.accepted_origins),
                        join(&bl.accepted_upstreams)
                    ])
                    .map_err(err)?;
                }
                tx.execute("DELETE FROM visibility", []).map_err(err)?;
                let mut v = tx
                    .prepare_cached("INSERT INTO visibility (watched, prefix) VALUES (?1, ?2)")
                    .map_err(err)?;
                for (w, p) in &ch.visibility_reached {
                    v.execute(params![w.to_string(), p.to_string()])
                        .map_err(err)?;
                }
            }
            if let Some(c) = commits.last() {
                let mut meta = tx
                    .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
                    .map_err(err)?;
                meta.execute(params!["taken_at", c.changes.taken_at.0.to_string()])
                    .map_err(err)?;
                meta.execute(params!["saved_at", now.0.to_string()])
                    .map_err(err)?;
            }
        }
        Ok(())
    }

    /// Saves what a restore changed (see [`crate::engine::Engine::restored`]): `changes` from
    /// `take_changes` right after it, with `meta_changed` telling whether they carry the
    /// baselines and visibility flags, which then replace the saved ones even when empty.
    pub fn save_restored(
        &mut self,
        transitions: &[AlertTransition],
        changes: EngineState,
        meta_changed: bool,
    ) -> Result<(), StoreError> {
        let begin = if meta_changed {
            "BEGIN; DELETE FROM baselines; DELETE FROM visibility;"
        } else {
            "BEGIN;"
        };
        self.conn.execute_batch(begin).map_err(|e| self.err(e))?;
        let result = self.write_group(&[Commit {
            transitions: transitions.to_vec(),
            changes,
        }]);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.execute_batch(end).map_err(|e| self.err(e))?;
        result
    }

    /// Replaces the whole route state with `state` and records `transitions`, in one
    /// transaction (after a restore, when the config or a RIB changed what is held).
    pub fn replace_state(
        &mut self,
        transitions: &[AlertTransition],
        state: &EngineState,
    ) -> Result<(), StoreError> {
        let mut all = state.clone();
        all.firing.clear();
        all.first_vp = 0;
        // Baselines and visibility are replaced whole only when some are given; here an empty
        // list means "none", so clear them first.
        self.conn
            .execute_batch(
                "BEGIN; DELETE FROM routes; DELETE FROM vps; DELETE FROM baselines; DELETE FROM visibility;",
            )
            .map_err(|e| self.err(e))?;
        let result = self.write_group(&[Commit {
            transitions: transitions.to_vec(),
            changes: all,
        }]);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.execute_batch(end).map_err(|e| self.err(e))?;
        result
    }

    /// Alert events not yet handed to the notifier, oldest first.
    pub fn pending_events(&self) -> Result<Vec<PendingEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, event, json FROM alert_events WHERE notified = 0 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, event, json) = row.map_err(|e| self.err(e))?;
            let Ok(alert) = serde_json::from_str::<Alert>(&json) else {
                continue;
            };
            let event = if event == "fired" {
                TransitionKind::Fired
            } else {
                TransitionKind::Resolved
            };
            out.push(PendingEvent {
                seq,
                transition: AlertTransition { event, alert },
            });
        }
        Ok(out)
    }

    /// Without a notifier nobody takes the alert events: record them as handled from now on,
    /// and those waiting too.
    pub fn no_notifier(&mut self) -> Result<(), StoreError> {
        self.events_wanted = false;
        self.mark_notified(i64::MAX)
    }

    /// A notifier takes the alert events from now on (one started by a config reload).
    pub fn notifier_started(&mut self) {
        self.events_wanted = true;
    }

    /// Marks alert events as handed to the notifier.
    pub fn mark_notified(&mut self, up_to_seq: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE alert_events SET notified = 1 WHERE notified = 0 AND seq <= ?1",
                [up_to_seq],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Deletes resolved alerts stored, and notified events recorded, more than `keep_days`
    /// ago by the wall clock. Event times play no part: a replay or an MRT feed stores alerts
    /// of long ago that must stay as long as any other.
    pub fn prune(&mut self, keep_days: u64) -> Result<usize, StoreError> {
        let cutoff = Timestamp::now().0 - (keep_days as i64) * 86_400 * 1_000_000;
        let a = self
            .conn
            .execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND stored_at < ?1",
                [cutoff],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "DELETE FROM alert_events WHERE notified = 1 AND recorded_at < ?1",
                [cutoff],
            )
            .map_err(|e| self.err(e))?;
        Ok(a)
    }
}

/// The problems `PRAGMA quick_check` finds (none: the store is sound).
fn quick_check(conn: &Connection) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA quick_check(20)")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let line = row?;
        if line != "ok" {
            problems.push(line);
        }
    }
    Ok(problems)
}

fn join(asns: &[u32]) -> String {
    asns.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn asn_list(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|a| a.parse().ok()).collect()
}

#[cfg(test)]
mod tests;
