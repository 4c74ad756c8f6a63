//! Operator triage: acknowledgements of firing alerts and silences by matchers, kept in the
//! store's file and read by the HTTP API, the pages and the notifier. The engine knows nothing
//! of them: an acknowledged or silenced alert fires, updates and resolves as any other; what
//! changes is who is told (see the notifier's dispatcher) and what the pages show.

pub mod input;
mod metrics;
mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, Rule};
use crate::event::Timestamp;

pub use input::{AckRequest, InputError, SilenceRequest, parse_duration};
pub use metrics::TriageMetrics;

/// Expired silences stay listed (as `expired`) this long, then go from the store.
pub const EXPIRED_KEPT_DAYS: i64 = 7;

/// An operator's acknowledgement of a firing alert: someone is on it. It stops reminders for
/// that alert only; a later incident of the same condition is a new alert, not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Who acknowledged (free text: a name, a ticket queue).
    pub by: String,
    /// What they said.
    pub comment: String,
    /// When (wall clock).
    pub at: Timestamp,
}

/// What a silence matches: every matcher given must match; at least one is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matchers {
    /// The alert's rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// The watched prefix whose rules were broken (exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_prefix: Option<IpNet>,
    /// The affected prefix: this prefix or one inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<IpNet>,
    /// The offending origin ASN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<u32>,
    /// One of the watched prefix's notification groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Matchers {
    /// Whether the alert meets every matcher.
    pub fn matches(&self, a: &Alert) -> bool {
        self.rule.is_none_or(|r| r == a.rule)
            && self.watched_prefix.is_none_or(|p| p == a.watched_prefix)
            && self.prefix.is_none_or(|p| p.contains(&a.prefix))
            && self.origin.is_none_or(|o| a.origin == Some(o))
            && self
                .group
                .as_ref()
                .is_none_or(|g| a.groups.iter().any(|x| x == g))
    }

    /// True when no matcher is given (such a silence would silence everything).
    pub fn is_empty(&self) -> bool {
        *self == Matchers::default()
    }

    /// The matchers in words, for pages and the CLI: `rule=origin_hijack prefix=192.0.2.0/24`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.rule {
            parts.push(format!("rule={r}"));
        }
        if let Some(p) = self.watched_prefix {
            parts.push(format!("watched_prefix={p}"));
        }
        if let Some(p) = self.prefix {
            parts.push(format!("prefix={p}"));
        }
        if let Some(o) = self.origin {
            parts.push(format!("origin=AS{o}"));
        }
        if let Some(g) = &self.group {
            parts.push(format!("group={g}"));
        }
        parts.join(" ")
    }
}

/// A silence: alerts it matches still show (marked), but no channel is told about them until
/// it expires or is removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Random, 16 hex digits.
    pub id: String,
    /// What it silences.
    pub matchers: Matchers,
    /// Why.
    pub comment: String,
    /// Who added it.
    pub created_by: String,
    /// When it was added (wall clock).
    pub created_at: Timestamp,
    /// When it stops silencing.
    pub expires_at: Timestamp,
}

impl Silence {
    /// Whether it silences at `now`.
    pub fn active(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// Why a triage change was not made.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// Writing to the store failed; nothing changed.
    #[error("the store {path} failed: {source}; nothing was changed, try again")]
    Store {
        /// The database file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

#[derive(Debug, Default)]
struct State {
    /// Alert id → its acknowledgement.
    acks: HashMap<String, Ack>,
    /// By id.
    silences: HashMap<String, Silence>,
}

struct Inner {
    state: RwLock<State>,
    /// None: kept in memory only (tests, `notify test`).
    db: Option<Mutex<sqlite::TriageDb>>,
    metrics: Option<TriageMetrics>,
}

/// Acknowledgements and silences, shared by the HTTP server and the notifier. Changes are
/// written to the store first, then shown: what anyone saw survives a restart.
#[derive(Clone)]
pub struct Triage(Arc<Inner>);

impl Default for Triage {
    fn default() -> Self {
        Triage::in_memory()
    }
}

impl std::fmt::Debug for Triage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.read();
        f.debug_struct("Triage")
            .field("acks", &s.acks.len())
            .field("silences", &s.silences.len())
            .finish()
    }
}

impl Triage {
    /// Triage state kept in memory only.
    pub fn in_memory() -> Self {
        Triage(Arc::new(Inner {
            state: RwLock::default(),
            db: None,
            metrics: None,
        }))
    }

    /// Opens the triage tables in the store's file (the store has brought its schema up to
    /// date) and loads them; acknowledgements of alerts no longer stored, and silences expired
    /// more than [`EXPIRED_KEPT_DAYS`] ago, are dropped. The metrics are registered on
    /// `registry` and read at each scrape.
    pub fn open(path: &Path, registry: &prometheus::Registry) -> anyhow::Result<Self> {
        let db = sqlite::TriageDb::open(path, Timestamp::now())?;
        let (acks, silences) = db.load()?;
        let state = State {
            acks,
            silences: silences.into_iter().map(|s| (s.id.clone(), s)).collect(),
        };
        Ok(Triage(Arc::new(Inner {
            state: RwLock::new(state),
            db: Some(Mutex::new(db)),
            metrics: Some(TriageMetrics::new(registry)?),
        })))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.0.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.0.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the database, if there is one. Blocking: call it off the async runtime.
    fn persist(
        &self,
        f: impl FnOnce(&mut sqlite::TriageDb) -> Result<(), TriageError>,
    ) -> Result<(), TriageError> {
        match &self.0.db {
            Some(db) => f(&mut db.lock().unwrap_or_else(|p| p.into_inner())),
            None => Ok(()),
        }
    }

    /// Acknowledges an alert (replacing an earlier acknowledgement of it). Blocking.
    pub fn acknowledge(&self, alert_id: &str, ack: Ack) -> Result<(), TriageError> {
        self.persist(|db| db.put_ack(alert_id, &ack))?;
        self.write().acks.insert(alert_id.to_string(), ack);
        Ok(())
    }

    /// Withdraws an alert's acknowledgement; false if it had none. Blocking.
    pub fn unacknowledge(&self, alert_id: &str) -> Result<bool, TriageError> {
        if !self.read().acks.contains_key(alert_id) {
            return Ok(false);
        }
        self.persist(|db| db.delete_ack(alert_id))?;
        Ok(self.write().acks.remove(alert_id).is_some())
    }

    /// Adds a silence. Blocking.
    pub fn add_silence(&self, silence: Silence) -> Result<(), TriageError> {
        self.persist(|db| db.put_silence(&silence))?;
        self.write().silences.insert(silence.id.clone(), silence);
        Ok(())
    }

    /// Removes a silence (active or expired); false if there is none of that id. Blocking.
    pub fn remove_silence(&self, id: &str) -> Result<bool, TriageError> {
        if !self.read().silences.contains_key(id) {
            return Ok(false);
        }
        self.persist(|db| db.delete_silence(id))?;
        Ok(self.write().silences.remove(id).is_some())
    }

    /// The acknowledgement of an alert.
    pub fn ack_of(&self, alert_id: &str) -> Option<Ack> {
        self.read().acks.get(alert_id).cloned()
    }

    /// Ids of the silences active at `now` that match the alert, sorted.
    pub fn silenced_by(&self, a: &Alert, now: Timestamp) -> Vec<String> {
        let mut ids: Vec<String> = self
            .read()
            .silences
            .values()
            .filter(|s| s.active(now) && s.matchers.matches(a))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Whether an active silence matches the alert at `now`.
    pub fn is_silenced(&self, a: &Alert, now: Timestamp) -> bool {
        self.read()
            .silences
            .values()
            .any(|s| s.active(now) && s.matchers.matches(a))
    }

    /// Whether a silence kept in the store matches the alert, in force or expired (within
    /// [`EXPIRED_KEPT_DAYS`]): at a restart, such an alert may have been held back by a silence
    /// that ended while the service was stopped.
    pub fn ever_silenced(&self, a: &Alert) -> bool {
        self.read().silences.values().any(|s| s.matchers.matches(a))
    }

    /// The silences active at `now`, by id, to check many alerts under one look.
    pub fn active_silences(&self, now: Timestamp) -> Vec<Silence> {
        let mut active: Vec<Silence> = self
            .read()
            .silences
            .values()
            .filter(|s| s.active(now))
            .cloned()
            .collect();
        active.sort_by(|a, b| a.id.cmp(&b.id));
        active
    }

    /// Every silence, active ones first (soonest to expire first), then expired ones (most
    /// recent first).
    pub fn silences(&self, now: Timestamp) -> Vec<Silence> {
        let mut all: Vec<Silence> = self.read().silences.values().cloned().collect();
        all.sort_by(|a, b| {
            b.active(now)
                .cmp(&a.active(now))
                .then_with(|| {
                    if a.active(now) {
                        a.expires_at.cmp(&b.expires_at)
                    } else {
                        b.expires_at.cmp(&a.expires_at)
                    }
                })
                .then_with(|| a.id.cmp(&b.id))
        });
        all
    }

    /// One silence by id.
    pub fn silence(&self, id: &str) -> Option<Silence> {
        self.read().silences.get(id).cloned()
    }

    /// Sets the triage metrics from the firing alerts (called at each scrape).
    pub fn observe<'a>(&self, firing: impl IntoIterator<Item = &'a Alert>, now: Timestamp) {
        let Some(m) = &self.0.metrics else { return };
        let state = self.read();
        let active: Vec<&Silence> = state.silences.values().filter(|s| s.active(now)).collect();
        let mut counts = [[0i64; 2]; 2];
        for a in firing {
            let acked = state.acks.contains_key(&a.id);
            let silenced = active.iter().any(|s| s.matchers.matches(a));
            counts[acked as usize][silenced as usize] += 1;
        }
        m.set(counts, active.len());
    }
}

/// A new silence id: 64 random bits in hex.
pub fn new_silence_id() -> String {
    let bits: u64 = rand::random();
    format!("{bits:016x}")
}

#[cfg(test)]
mod tests;
