//! Chat webhooks: Slack (and Mattermost, which takes the same format), Discord, and Teams
//! workflow webhooks (an Adaptive Card). One message per group of events.

use std::time::Duration;

use serde_json::json;

use super::NotifyEvent;
use super::error::{ChannelError, SendError};
use super::http_client::{channel_url, check_response, http_client};
use super::template::{Context, DEFAULT_MARKDOWN_TEXT, DEFAULT_SLACK_TEXT, Templates};
use crate::config::{ChannelKind, ChatSettings};

/// Discord refuses messages over 2000 characters.
const DISCORD_LIMIT: usize = 2000;
/// Slack truncates text over 40,000 characters; stay well under.
const SLACK_LIMIT: usize = 39_000;

/// A configured chat webhook.
pub struct ChatChannel {
    kind: ChannelKind,
    client: reqwest::Client,
    url: reqwest::Url,
    templates: Templates,
    base_url: String,
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl ChatChannel {
    /// Builds from config, reading the URL.
    pub fn new(
        kind: ChannelKind,
        cfg: &ChatSettings,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let default = if kind == ChannelKind::Slack {
            DEFAULT_SLACK_TEXT
        } else {
            DEFAULT_MARKDOWN_TEXT
        };
        let text = cfg.text.as_deref().unwrap_or(default);
        Ok(ChatChannel {
            kind,
            client: http_client(timeout)?,
            url: channel_url(cfg.url_source())?,
            templates: Templates::new(&[("text", text)])?,
            base_url: base_url.to_string(),
        })
    }

    /// The JSON body for this kind of chat.
    pub fn payload(
        &self,
        channel: &str,
        delivery_id: &str,
        events: &[NotifyEvent],
    ) -> Result<serde_json::Value, SendError> {
        let ctx = Context::new(events, &self.base_url, delivery_id, channel);
        let text = self
            .templates
            .render("text", &ctx)
            .map_err(|e| SendError(e.to_string()))?;
        let text = text.trim();
        Ok(match self.kind {
            ChannelKind::Discord => json!({ "content": truncate(text, DISCORD_LIMIT) }),
            ChannelKind::Teams => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [{ "type": "TextBlock", "text": text, "wrap": true }]
                    }
                }]
            }),
            _ => json!({ "text": truncate(text, SLACK_LIMIT) }),
        })
    }

    /// Posts one message for the events.
    pub async fn send(
        &self,
        channel: &str,
        delivery_id: &str,
        events: &[NotifyEvent],
    ) -> Result<(), SendError> {
        let body = self.payload(channel, delivery_id, events)?;
        check_response(
            self.client.post(self.url.clone()).json(&body).send().await,
            &self.url,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate(&"x".repeat(5000), 2000).chars().count(), 2000);
    }
}
