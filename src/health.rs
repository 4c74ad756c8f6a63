//! Liveness and readiness of the service's parts, written by feeds and read by `/readyz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::event::Timestamp;

/// What one feed is doing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeedHealth {
    /// The feed's kind (`mrt`, `ris_live`, `bgproutes`).
    pub kind: String,
    /// Connected and receiving (for MRT: all files read).
    pub connected: bool,
    /// Marked stale: connected but silent for too long.
    pub stale: bool,
    /// Wall-clock time of the last message received.
    pub last_message: Option<Timestamp>,
    /// Reconnections since start.
    pub reconnects: u64,
    /// The last error, redacted of secrets.
    pub last_error: Option<String>,
}

/// Shared health of every feed, by feed name.
#[derive(Debug, Clone, Default)]
pub struct Health {
    feeds: Arc<Mutex<BTreeMap<String, FeedHealth>>>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, FeedHealth>> {
        // A panic elsewhere must not take the health endpoint down with it.
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a feed (not connected yet).
    pub fn register(&self, name: &str, kind: &str) {
        self.lock().insert(
            name.to_string(),
            FeedHealth {
                kind: kind.to_string(),
                connected: false,
                stale: false,
                last_message: None,
                reconnects: 0,
                last_error: None,
            },
        );
    }

    /// Changes one feed's entry.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut FeedHealth)) {
        if let Some(h) = self.lock().get_mut(name) {
            f(h);
        }
    }

    /// A copy of every feed's health.
    pub fn snapshot(&self) -> BTreeMap<String, FeedHealth> {
        self.lock().clone()
    }

    /// Ready when every registered feed is connected and not stale.
    pub fn ready(&self) -> bool {
        self.lock().values().all(|f| f.connected && !f.stale)
    }
}
