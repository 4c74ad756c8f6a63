//! The service's `ris_live` feed: RIPE RIS Live over a reconnecting WebSocket.
//!
//! It subscribes once per watched prefix and per canary beacon, and reconnects with backoff
//! and resubscribes on every failure.

use std::sync::Arc;

use ipnet::IpNet;
use serde_json::json;
use tokio::task::JoinHandle;
use tracing::info;

use super::parser::{self, RisFrame};
use crate::config::FeedConfig;
use crate::event::FeedEvent;
use crate::feeds::FeedContext;
use crate::feeds::error::FeedErrorReason;
use crate::feeds::warm_start;
use crate::feeds::websocket::{self, Backoff, FeedHandle, Protocol, Verdict};

/// The public RIS Live WebSocket.
pub const DEFAULT_URL: &str = "wss://ris-live.ripe.net/v1/ws/";

/// Client name sent to RIS Live unless configured.
pub const DEFAULT_CLIENT: &str = "bgpsentry";

/// Canary subscriptions: every RIPE RIS routing beacon (84.205.64.0/24–84.205.79.0/24 and
/// 2001:7fb:fe00::/48–2001:7fb:fe0f::/48), announced and withdrawn every two hours, so a
/// healthy feed is never silent for long.
pub const DEFAULT_BEACONS: [&str; 2] = ["84.205.64.0/20", "2001:7fb:fe00::/44"];

/// No message for this long marks the feed stale: the beacons change state every two hours,
/// so 2.5 hours of silence means the subscription is dead.
pub const DEFAULT_STALE_AFTER_SECS: f64 = 9000.0;

/// The connection URL with the client name.
pub fn ws_url(base: &str, client: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let client: String = client
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{base}{sep}client={client}")
}

/// One `ris_subscribe` per prefix, more-specifics included, acknowledged by the server.
pub fn subscribe_frames(prefixes: &[IpNet]) -> Vec<String> {
    prefixes
        .iter()
        .map(|p| {
            json!({
                "type": "ris_subscribe",
                "data": {
                    "prefix": p.to_string(),
                    "moreSpecific": true,
                    "socketOptions": { "acknowledge": true }
                }
            })
            .to_string()
        })
        .collect()
}

struct RisProto {
    parser: parser::Parser,
    subscriptions: Vec<String>,
}

impl Protocol for RisProto {
    fn on_open(&mut self) -> Vec<String> {
        self.subscriptions.clone()
    }

    fn on_text(&mut self, text: &str, handle: &FeedHandle) -> (Vec<FeedEvent>, Verdict) {
        match self.parser.parse(text) {
            Err(bad) => {
                handle.message("invalid");
                handle.invalid(&bad);
                (Vec::new(), Verdict::Continue)
            }
            Ok(parsed) => {
                for bad in &parsed.invalid {
                    handle.invalid(bad);
                }
                match parsed.frame {
                    RisFrame::Message { kind, events } => {
                        handle.message(parser::metric_kind(&kind));
                        (events, Verdict::Continue)
                    }
                    RisFrame::SubscribeOk => {
                        handle.message("ris_subscribe_ok");
                        handle.ack();
                        (Vec::new(), Verdict::Continue)
                    }
                    RisFrame::Pong => {
                        handle.message("pong");
                        (Vec::new(), Verdict::Continue)
                    }
                    RisFrame::Error(m) => {
                        // RIS sends a final error before dropping a client; the close follows.
                        handle.message("ris_error");
                        handle.error(
                            FeedErrorReason::ServerError,
                            &format!("RIS Live error: {m}"),
                        );
                        (Vec::new(), Verdict::Continue)
                    }
                    RisFrame::Other(kind) => {
                        handle.message(parser::metric_kind(&kind));
                        (Vec::new(), Verdict::Continue)
                    }
                }
            }
        }
    }
}

/// Starts the feed: connect, subscribe, read; on any failure back off and do it again.
pub fn spawn(name: String, cfg: &FeedConfig, ctx: FeedContext) -> JoinHandle<()> {
    let base = cfg
        .url
        .as_ref()
        .map(|u| u.value.clone())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let url = ws_url(&base, cfg.client.as_deref().unwrap_or(DEFAULT_CLIENT));
    let beacons: Vec<IpNet> = match &cfg.beacons {
        Some(b) => b.iter().filter_map(|s| s.value.parse().ok()).collect(),
        None => DEFAULT_BEACONS
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
    };
    let timing = websocket::timing_from_config(cfg, Some(DEFAULT_STALE_AFTER_SECS));
    let mut prefixes = ctx.prefixes.clone();
    for b in beacons {
        if !prefixes.contains(&b) {
            prefixes.push(b);
        }
    }
    let feed: Arc<str> = name.as_str().into();
    let mut handle = FeedHandle::new(ctx, &name, feed.clone(), "ris_live");
    let warm_cfg = cfg.warm_start();
    let warm = warm_cfg.is_enabled().then(|| {
        let source = warm_start::ripestat_source(&warm_cfg);
        info!(feed = %name, "warm start from {}", warm_start::describe(&source));
        let settings = warm_start::Settings::from_config(&warm_cfg);
        warm_start::start(source, settings, &mut handle, prefixes.clone())
    });
    let mut proto = RisProto {
        parser: parser::Parser::new(feed),
        subscriptions: subscribe_frames(&prefixes),
    };
    tokio::spawn(async move {
        let mut backoff = Backoff::new(timing.backoff_initial, timing.backoff_max);
        info!(feed = %handle.name, url = %websocket::redact_url(&url), subscriptions = prefixes.len(), "starting RIS Live feed");
        loop {
            if handle.shutting_down() {
                return;
            }
            let ended = websocket::connect_and_drive(&url, None, &mut proto, &handle, &timing, &mut backoff, || {
                info!(feed = %handle.name, "connected; subscribing to {} prefixes", prefixes.len());
                if let Some(w) = &warm {
                    w.on_connected();
                }
            })
            .await;
            if websocket::after_disconnect(&handle, &mut backoff, ended).await {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_subscriptions() {
        assert_eq!(
            ws_url(DEFAULT_URL, "my monitor"),
            "wss://ris-live.ripe.net/v1/ws/?client=my_monitor"
        );
        let frames = subscribe_frames(&["2001:db8::/32".parse().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!(v["type"], "ris_subscribe");
        assert_eq!(v["data"]["prefix"], "2001:db8::/32");
        assert_eq!(v["data"]["moreSpecific"], true);
        assert_eq!(v["data"]["socketOptions"]["acknowledge"], true);
    }
}
