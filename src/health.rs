//! Liveness and readiness of the service's parts, written by feeds and read by `/readyz` and
//! `/metrics` (the `bgpsentry_feed_*` state series follow every change).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::event::Timestamp;
use crate::metrics::FeedMetrics;

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
    /// For a BMP listener: the routers that connected to it, by address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<RouterHealth>,
    /// The warm start's state, when the feed has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStartHealth>,
}

/// One router of a BMP listener. Routers do not make the service unready: a router that is
/// down is the router's problem, and readiness gates the listener that routers connect to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RouterHealth {
    /// The address it connects from.
    pub address: String,
    /// Its sysName, from its Initiation message.
    pub name: Option<String>,
    /// Its sysDescr.
    pub description: Option<String>,
    /// Connected now.
    pub connected: bool,
    /// Disconnected, its routes kept until it reconnects or the hold time ends.
    pub held: bool,
    /// BGP peers up.
    pub peers_up: u64,
    /// Messages received.
    pub messages: u64,
    /// Messages that could not be used, and connections that ended in an error.
    pub errors: u64,
    /// Wall-clock time of its last message.
    pub last_message: Option<Timestamp>,
    /// Why its last connection ended badly, or its last unusable message.
    pub last_error: Option<String>,
}

/// What a feed's warm start is doing (see [`crate::feeds::warm_start`]).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WarmStartHealth {
    /// `loading` (running, or waiting to retry), `done` or `cold` (failing for longer than
    /// `ready_timeout_seconds`: the service is ready without it, and it keeps retrying).
    pub state: &'static str,
    /// Whether `/readyz` waits for it.
    pub holds_readiness: bool,
    /// Routes loaded by the last success.
    pub routes: u64,
    /// Vantage points loaded by the last success.
    pub vantage_points: u64,
    /// Wall-clock time of the last success.
    pub last_success: Option<Timestamp>,
    /// Failed attempts since the last success.
    pub failures: u64,
    /// The last failure, redacted of secrets.
    pub last_error: Option<String>,
}

/// Shared health of every feed, by feed name.
#[derive(Clone, Default)]
pub struct Health {
    feeds: Arc<Mutex<BTreeMap<String, FeedHealth>>>,
    metrics: Option<FeedMetrics>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("feeds", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl Health {
    /// Health whose changes are also exported as the `bgpsentry_feed_*` metrics.
    pub fn with_metrics(metrics: FeedMetrics) -> Self {
        Health {
            feeds: Arc::default(),
            metrics: Some(metrics),
        }
    }

    /// Brings the feed's series in line with its health; `reconnects_before` is the count the
    /// counter already holds, so the counter only ever grows by the difference.
    fn export(&self, name: &str, h: &FeedHealth, reconnects_before: u64) {
        let Some(m) = &self.metrics else { return };
        m.connected
            .with_label_values(&[name])
            .set(i64::from(h.connected));
        m.stale.with_label_values(&[name]).set(i64::from(h.stale));
        if let Some(t) = h.last_message {
            m.last_message_timestamp
                .with_label_values(&[name])
                .set(t.0 as f64 / 1e6);
        }
        let reconnects = m.reconnects.with_label_values(&[name]);
        if h.reconnects > reconnects_before {
            reconnects.inc_by(h.reconnects - reconnects_before);
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, FeedHealth>> {
        // A panic elsewhere must not take the health endpoint down with it.
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a feed (not connected yet).
    pub fn register(&self, name: &str, kind: &str) {
        let h = FeedHealth {
            kind: kind.to_string(),
            connected: false,
            stale: false,
            last_message: None,
            reconnects: 0,
            last_error: None,
            routers: Vec::new(),
            warm_start: None,
        };
        let mut feeds = self.lock();
        // A feed registered again starts counting from 0; its counter series keeps its total.
        self.export(name, &h, 0);
        feeds.insert(name.to_string(), h);
    }

    /// Changes one feed's entry (and its metrics: feeds only ever call this).
    pub fn update(&self, name: &str, f: impl FnOnce(&mut FeedHealth)) {
        let mut feeds = self.lock();
        if let Some(h) = feeds.get_mut(name) {
            let before = h.reconnects;
            f(h);
            self.export(name, h, before);
        }
    }

    /// Forgets feeds whose names are not in `names` (after a reload removed them).
    pub fn retain(&self, names: &[String]) {
        self.lock().retain(|name, _| {
            names
                .iter()
                .any(|n| n == name || name.starts_with(&format!("{n}/")))
        });
    }

    /// A copy of every feed's health.
    pub fn snapshot(&self) -> BTreeMap<String, FeedHealth> {
        self.lock().clone()
    }

    /// Ready when every registered feed is connected, not stale, and has no warm start that
    /// readiness waits for.
    pub fn ready(&self) -> bool {
        self.lock().values().all(|f| {
            f.connected && !f.stale && !f.warm_start.as_ref().is_some_and(|w| w.holds_readiness)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn updates_follow_into_the_feed_metrics() {
        let metrics = Metrics::new().unwrap();
        let health = Health::with_metrics(metrics.feed.clone());
        health.register("ris", "ris_live");
        let text = metrics.render();
        assert!(
            text.contains("bgpsentry_feed_connected{feed=\"ris\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("bgpsentry_feed_reconnects_total{feed=\"ris\"} 0"),
            "{text}"
        );
        assert!(!text.contains("bgpsentry_feed_last_message_timestamp_seconds{"));

        health.update("ris", |h| {
            h.connected = true;
            h.last_message = Some(Timestamp::from_parts(1_700_000_000, 500_000));
            h.reconnects = 2;
        });
        health.update("ris", |h| h.reconnects = 3);
        health.update("ris", |h| h.stale = true);
        // Unknown feeds are ignored, not created.
        health.update("nope", |h| h.connected = true);
        let text = metrics.render();
        assert!(
            text.contains("bgpsentry_feed_connected{feed=\"ris\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bgpsentry_feed_stale{feed=\"ris\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("bgpsentry_feed_reconnects_total{feed=\"ris\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "bgpsentry_feed_last_message_timestamp_seconds{feed=\"ris\"} 1700000000.5"
            ),
            "{text}"
        );
        assert!(!text.contains("feed=\"nope\""));

        // Registering again (a restarted feed task) never makes the counter go down.
        health.register("ris", "ris_live");
        health.update("ris", |h| h.reconnects = 1);
        let text = metrics.render();
        assert!(
            text.contains("bgpsentry_feed_reconnects_total{feed=\"ris\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("bgpsentry_feed_connected{feed=\"ris\"} 0"),
            "{text}"
        );
    }
}
