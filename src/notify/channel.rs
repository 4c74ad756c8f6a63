//! A configured channel: built from config, it sends one notification at a time through its
//! transport, and says how the events of a closed grouping window become notifications.

use std::collections::HashMap;
use std::time::Duration;

use super::alertmanager::AlertmanagerChannel;
use super::chat::ChatChannel;
use super::email::EmailChannel;
use super::error::{ChannelError, SendError};
use super::webhook::WebhookChannel;
use super::{NotifyEvent, Routing};
use crate::config::{ChannelConfig, ChannelKind, ChannelSettings, NotifyConfig};

/// Most alerts in one message: keeps a chat message or an email readable.
const MAX_EVENTS_PER_MESSAGE: usize = 200;

/// One notification to queue: not to be attempted before `not_before_ms` (Unix ms).
pub type Batch = (i64, Vec<NotifyEvent>);

/// Where a notification goes and how.
pub enum Sender {
    /// SMTP.
    Email(EmailChannel),
    /// Signed JSON webhook.
    Webhook(WebhookChannel),
    /// Slack, Mattermost, Discord, Teams.
    Chat(ChatChannel),
    /// Alertmanager API v2.
    Alertmanager(AlertmanagerChannel),
}

/// A configured channel, ready to send.
pub struct Channel {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ChannelKind,
    /// Which alerts it takes.
    pub routing: Routing,
    /// The transport.
    pub sender: Sender,
    /// Bound on one attempt.
    pub timeout: Duration,
}

impl Channel {
    /// Builds a channel, reading its secrets; `base_url` prefixes links to `/alerts/{id}`.
    pub fn build(
        cfg: &ChannelConfig,
        notify: &NotifyConfig,
        base_url: &str,
    ) -> Result<Channel, ChannelError> {
        let name = cfg.name().to_string();
        let timeout = Duration::from_secs_f64(cfg.common().timeout_seconds);
        let build = || -> Result<Sender, ChannelError> {
            Ok(match &cfg.settings {
                ChannelSettings::Email(s) => {
                    Sender::Email(EmailChannel::new(s, base_url, timeout)?)
                }
                ChannelSettings::Webhook(s) => Sender::Webhook(WebhookChannel::new(s, timeout)?),
                ChannelSettings::Slack(s)
                | ChannelSettings::Mattermost(s)
                | ChannelSettings::Discord(s)
                | ChannelSettings::Teams(s) => {
                    Sender::Chat(ChatChannel::new(cfg.kind(), s, base_url, timeout)?)
                }
                ChannelSettings::Alertmanager(s) => {
                    Sender::Alertmanager(AlertmanagerChannel::new(s, base_url, timeout)?)
                }
            })
        };
        let sender = build().map_err(|e| e.in_channel(&name))?;
        Ok(Channel {
            routing: Routing::from_config(cfg, notify),
            name,
            kind: cfg.kind(),
            sender,
            timeout,
        })
    }

    /// Turns the events of a closed grouping window, queued at `created_ms`, into
    /// notifications. A webhook's receivers deduplicate per event, so each event is one
    /// notification; Alertmanager holds some resolutions back (see
    /// [`AlertmanagerChannel::batches`], which keeps `first_push` up to date); the others send
    /// the group as one message, split only when it is very long.
    pub fn batches(
        &self,
        events: Vec<NotifyEvent>,
        first_push: &mut HashMap<String, i64>,
        created_ms: i64,
    ) -> Vec<Batch> {
        match &self.sender {
            Sender::Webhook(_) => events.into_iter().map(|e| (created_ms, vec![e])).collect(),
            Sender::Alertmanager(am) => am.batches(events, first_push, created_ms),
            Sender::Email(_) | Sender::Chat(_) => events
                .chunks(MAX_EVENTS_PER_MESSAGE)
                .map(|chunk| (created_ms, chunk.to_vec()))
                .collect(),
        }
    }

    /// The Alertmanager side of the channel, if it is one (re-pushes of firing alerts).
    pub fn alertmanager(&self) -> Option<&AlertmanagerChannel> {
        match &self.sender {
            Sender::Alertmanager(am) => Some(am),
            _ => None,
        }
    }

    /// One delivery attempt.
    pub async fn send(&self, delivery_id: &str, events: &[NotifyEvent]) -> Result<(), SendError> {
        // The transports have their own timeouts; this one bounds everything else too.
        let guard = self.timeout + Duration::from_secs(5);
        let attempt = async {
            match &self.sender {
                Sender::Email(c) => c.send(&self.name, delivery_id, events).await,
                Sender::Webhook(c) => c.send(delivery_id, events).await,
                Sender::Chat(c) => c.send(&self.name, delivery_id, events).await,
                Sender::Alertmanager(c) => c.send(events).await,
            }
        };
        match tokio::time::timeout(guard, attempt).await {
            Ok(r) => r,
            Err(_) => Err(SendError(format!(
                "no answer within {:.0} s",
                guard.as_secs_f64()
            ))),
        }
    }
}
