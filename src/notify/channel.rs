//! What every channel shares: building from config, secrets, sending, errors.

use std::path::Path;
use std::time::Duration;

use super::alertmanager::AlertmanagerChannel;
use super::chat::ChatChannel;
use super::email::EmailChannel;
use super::webhook::WebhookChannel;
use super::{NotifyEvent, Routing};
use crate::config::{ChannelConfig, ChannelKind, NotifyConfig};

/// Why one delivery attempt failed; the text is free of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub String);

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SendError {}

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
    ) -> Result<Channel, String> {
        let name = cfg.name().to_string();
        let timeout = Duration::from_secs_f64(cfg.timeout_seconds);
        let build = || -> Result<Sender, String> {
            Ok(match cfg.kind() {
                ChannelKind::Email => Sender::Email(EmailChannel::new(cfg, base_url, timeout)?),
                ChannelKind::Webhook => Sender::Webhook(WebhookChannel::new(cfg, timeout)?),
                ChannelKind::Slack
                | ChannelKind::Mattermost
                | ChannelKind::Discord
                | ChannelKind::Teams => Sender::Chat(ChatChannel::new(cfg, base_url, timeout)?),
                ChannelKind::Alertmanager => {
                    Sender::Alertmanager(AlertmanagerChannel::new(cfg, base_url, timeout)?)
                }
            })
        };
        let sender = build().map_err_name(&name)?;
        Ok(Channel {
            routing: Routing::from_config(cfg, notify),
            name,
            kind: cfg.kind(),
            sender,
            timeout,
        })
    }

    /// Whether a notification to this channel holds many events (one message per group) or
    /// one event each (webhooks, whose receivers deduplicate per event).
    pub fn groups_events(&self) -> bool {
        !matches!(self.sender, Sender::Webhook(_))
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

trait NameErr<T> {
    fn map_err_name(self, name: &str) -> Result<T, String>;
}

impl<T> NameErr<T> for Result<T, String> {
    fn map_err_name(self, name: &str) -> Result<T, String> {
        self.map_err(|e| format!("channel `{name}`: {e}"))
    }
}

/// Reads a secret from an environment variable or a file (trailing newline removed).
pub fn read_secret(
    env: Option<&str>,
    file: Option<&Path>,
    what: &str,
) -> Result<Option<String>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(format!(
                "the {what} is to come from environment variable {var}, which is not set; export it or use a file"
            )),
        };
    }
    if let Some(path) = file {
        return match std::fs::read_to_string(path) {
            Ok(v) => {
                let v = v.trim_end_matches(['\r', '\n']).to_string();
                if v.is_empty() {
                    Err(format!("the {what} file {} is empty", path.display()))
                } else {
                    Ok(Some(v))
                }
            }
            Err(e) => Err(format!(
                "cannot read the {what} file {}: {e}",
                path.display()
            )),
        };
    }
    Ok(None)
}

/// The channel's URL from `url`, `url_env` or `url_file`.
pub fn channel_url(cfg: &ChannelConfig) -> Result<reqwest::Url, String> {
    let text = match &cfg.url {
        Some(u) => u.value.trim().to_string(),
        None => read_secret(
            cfg.url_env.as_ref().map(|s| s.value.as_str()),
            cfg.url_file.as_ref().map(|s| s.value.as_path()),
            "URL",
        )?
        .ok_or_else(|| "no URL configured; set `url`, `url_env` or `url_file`".to_string())?,
    };
    match reqwest::Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        _ => Err(format!(
            "the URL {} is not an absolute http(s) URL",
            redact_url_str(&text)
        )),
    }
}

/// A URL fit for logs: scheme, host and port only (paths and queries of webhook URLs often
/// carry keys).
pub fn redact_url(u: &reqwest::Url) -> String {
    let host = u.host_str().unwrap_or("?");
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if u.path().len() > 1 || u.query().is_some() {
        "/…"
    } else {
        ""
    };
    format!("{}://{host}{port}{rest}", u.scheme())
}

fn redact_url_str(s: &str) -> String {
    reqwest::Url::parse(s)
        .map(|u| redact_url(&u))
        .unwrap_or_else(|_| "(unparsable)".into())
}

/// The extra HTTP headers of a webhook or Alertmanager channel (`headers:`).
pub fn channel_headers(cfg: &ChannelConfig) -> Result<reqwest::header::HeaderMap, String> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut headers = HeaderMap::new();
    if let Some(h) = &cfg.headers {
        for (k, v) in &h.value {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header name `{k}` is not valid"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header `{k}` is not valid"))?;
            headers.insert(name, value);
        }
    }
    Ok(headers)
}

/// An HTTP client with the channel's timeout.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("bgpsentry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// How much of an error answer's body is read.
const ERROR_BODY_LIMIT: usize = 4096;

/// Turns an HTTP outcome into a delivery result (2xx = delivered).
pub async fn check_response(
    result: Result<reqwest::Response, reqwest::Error>,
    url: &reqwest::Url,
) -> Result<(), SendError> {
    match result {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(mut resp) => {
            let status = resp.status();
            // Only the start of an error body is useful, and a hostile target could send
            // an endless one: read at most a few KiB.
            let mut body = Vec::new();
            while body.len() < ERROR_BODY_LIMIT {
                match resp.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            body.truncate(ERROR_BODY_LIMIT);
            let body = String::from_utf8_lossy(&body);
            let snippet: String = body
                .chars()
                .take(200)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            Err(SendError(format!(
                "{} answered HTTP {status}{}",
                redact_url(url),
                if snippet.is_empty() {
                    String::new()
                } else {
                    format!(": {}", snippet.trim())
                }
            )))
        }
        Err(e) => {
            // The error's own text would include the URL; drop it.
            let e = e.without_url();
            let what = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                format!("cannot connect ({})", source_chain(&e))
            } else {
                source_chain(&e)
            };
            Err(SendError(format!("{}: {what}", redact_url(url))))
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_path_and_query() {
        let u = reqwest::Url::parse("https://hooks.slack.com/services/T0/B0/SECRET?x=1").unwrap();
        assert_eq!(redact_url(&u), "https://hooks.slack.com/…");
        let u = reqwest::Url::parse("http://127.0.0.1:9093").unwrap();
        assert_eq!(redact_url(&u), "http://127.0.0.1:9093");
    }
}
