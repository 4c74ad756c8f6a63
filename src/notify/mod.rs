//! The notifier: routes alert transitions to channels (email, webhook, chat, Alertmanager),
//! groups what arrives together, and delivers through a durable outbox with retries.
//!
//! Flow: [`NotifierSink`] (an [`AlertSink`](crate::alerts::AlertSink)) → the
//! [`dispatcher`] task (which channels take an event, grouping window, re-notify,
//! Alertmanager re-push) → outbox → one [`delivery::Worker`] per channel. The [`notifier`]
//! starts, reconfigures and stops all of it.

pub mod alertmanager;
pub mod channel;
pub mod chat;
pub mod delivery;
pub mod dispatcher;
pub mod email;
pub mod error;
pub mod http_client;
pub mod metrics;
pub mod notifier;
pub mod outbox;
pub mod outbox_sqlite;
pub mod sample;
pub mod secret;
pub mod template;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, Rule, Severity};
use crate::config::{ChannelConfig, Config, NotifyConfig};
use channel::Channel;
pub use dispatcher::NotifierSink;
pub use error::{ChannelError, SendError};
pub use notifier::Notifier;
use outbox::Outbox;
pub use sample::sample_alert;

/// What a notification tells about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The alert started.
    Fired,
    /// The alert ended.
    Resolved,
    /// The alert is still firing (re-notify interval).
    Reminder,
}

impl EventKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fired => "fired",
            EventKind::Resolved => "resolved",
            EventKind::Reminder => "reminder",
        }
    }
}

/// One alert event in a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyEvent {
    /// What happened.
    pub event: EventKind,
    /// The alert as it was then.
    pub alert: Alert,
    /// Who acknowledged the alert, when it is acknowledged (see [`crate::triage`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<crate::triage::Ack>,
}

impl NotifyEvent {
    /// An event about an alert nobody acknowledged.
    pub fn new(event: EventKind, alert: Alert) -> Self {
        NotifyEvent {
            event,
            alert,
            acknowledged: None,
        }
    }
}

/// Wall-clock Unix milliseconds (the outbox's clock, which survives restarts).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new delivery id: 128 random bits in hex.
pub fn new_delivery_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Which alerts a channel takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    /// Any of these groups (empty = all).
    pub groups: Vec<String>,
    /// These rules (empty = all).
    pub rules: Vec<Rule>,
    /// These severities (empty = all).
    pub severities: Vec<Severity>,
    /// Send resolutions.
    pub send_resolved: bool,
    /// Remind about alerts still firing after this long (None = never).
    pub renotify: Option<Duration>,
}

impl Routing {
    /// The channel's routing, with the section's defaults.
    pub fn from_config(cfg: &ChannelConfig, notify: &NotifyConfig) -> Self {
        let cfg = cfg.common();
        let renotify = cfg.renotify_seconds.unwrap_or(notify.renotify_seconds);
        Routing {
            groups: cfg.groups.to_vec(),
            rules: cfg.rules.to_vec(),
            severities: cfg.severities.to_vec(),
            send_resolved: cfg.send_resolved.unwrap_or(notify.send_resolved),
            renotify: (renotify > 0).then(|| Duration::from_secs(renotify)),
        }
    }

    /// Whether the channel takes this alert.
    pub fn accepts(&self, a: &Alert) -> bool {
        (self.groups.is_empty() || a.groups.iter().any(|g| self.groups.contains(g)))
            && (self.rules.is_empty() || self.rules.contains(&a.rule))
            && (self.severities.is_empty() || self.severities.contains(&a.severity))
    }
}

/// The base of links to alerts: `http.external_url`, else the listen address.
pub fn base_url(cfg: &Config) -> String {
    match &cfg.http.external_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", cfg.http.listen),
    }
}

/// Builds the configured channels, reading their secrets. The error names the channel and
/// what failed (a variable or file), never a secret's value.
pub fn build_channels(cfg: &Config) -> Result<Vec<Channel>, ChannelError> {
    let base = base_url(cfg);
    cfg.notify
        .channels
        .iter()
        .map(|c| Channel::build(c, &cfg.notify, &base).map_err(|e| e.at(&cfg.source, &c.location)))
        .collect()
}

/// Opens the durable outbox in the store's file (`store.path`).
pub fn open_outbox(cfg: &Config) -> anyhow::Result<Arc<dyn Outbox>> {
    let outbox = outbox_sqlite::SqliteOutbox::open(&cfg.store_file(), now_ms())?;
    Ok(Arc::new(outbox))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_channel_that_cannot_be_built_is_named_and_located() {
        let cfg = Config::parse(
            "notify:\n  channels:\n    - name: ok\n      kind: webhook\n      url: http://127.0.0.1:9/\n    - name: chat\n      kind: slack\n      url_env: BGPSENTRY_TEST_SURELY_UNSET_URL\n",
            Path::new("c.yml"),
        )
        .expect("valid config");
        let e = build_channels(&cfg)
            .err()
            .expect("the variable is not set")
            .to_string();
        assert!(
            e.starts_with("c.yml:6:7: channel `chat`: the URL is to come from environment variable BGPSENTRY_TEST_SURELY_UNSET_URL"),
            "{e}"
        );
    }
}
