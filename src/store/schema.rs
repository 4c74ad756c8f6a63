//! The store's schema as a list of migrations: a database is brought up to date by applying
//! the ones it has not had yet, in order, and never rewritten in place.

/// The schema, one migration per version; `PRAGMA user_version` says how many are applied.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        rule TEXT NOT NULL,
        watched_prefix TEXT NOT NULL,
        prefix TEXT NOT NULL,
        fired_at INTEGER NOT NULL,
        resolved_at INTEGER,
        json TEXT NOT NULL);
     CREATE INDEX alerts_state ON alerts (state, resolved_at);
     CREATE TABLE alert_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL,
        event TEXT NOT NULL,
        json TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        notified INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX alert_events_pending ON alert_events (notified, seq);
     CREATE TABLE vps (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
     CREATE TABLE routes (prefix TEXT PRIMARY KEY, data BLOB NOT NULL);
     CREATE TABLE baselines (
        prefix TEXT PRIMARY KEY,
        origins TEXT NOT NULL,
        upstreams TEXT NOT NULL,
        learn_until INTEGER);
     CREATE TABLE visibility (watched TEXT NOT NULL, prefix TEXT NOT NULL,
        PRIMARY KEY (watched, prefix));",
    // 2: route blobs say their encoding (see `codec`); rows written before are format 1.
    "ALTER TABLE routes ADD COLUMN format INTEGER NOT NULL DEFAULT 1;",
    // 3: when an alert's current state was written (wall clock, µs), so that retention counts
    // from there and not from its event time (a replay or an MRT feed stores old event times).
    // Rows written before count as stored now.
    "ALTER TABLE alerts ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0;
     UPDATE alerts SET stored_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000;
     CREATE INDEX alerts_stored ON alerts (state, stored_at);",
    // 4: origins and upstreams an operator accepted into a baseline.
    "ALTER TABLE baselines ADD COLUMN accepted_origins TEXT NOT NULL DEFAULT '';
     ALTER TABLE baselines ADD COLUMN accepted_upstreams TEXT NOT NULL DEFAULT '';",
    // 5: operator triage (`crate::triage`): acknowledged alerts and silences. Times are wall
    // clock, µs; matchers are JSON.
    "CREATE TABLE acks (
        alert_id TEXT PRIMARY KEY,
        acked_by TEXT NOT NULL,
        comment TEXT NOT NULL,
        acked_at INTEGER NOT NULL);
     CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        comment TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL);",
];
