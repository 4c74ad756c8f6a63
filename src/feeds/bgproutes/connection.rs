//! The service's `bgproutes` feed: one reconnecting WebSocket connection per API key.
//!
//! Each connection associates the watched prefixes with its key (live manager), then reads the
//! WebSocket through the shared loop; it re-associates on every reconnect and periodically.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::parser::{Frame, parse_frame};
use crate::config::FeedConfig;
use crate::event::FeedEvent;
use crate::feeds::FeedContext;
use crate::feeds::error::FeedErrorReason;
use crate::feeds::warm_start;
use crate::feeds::websocket::{self, Backoff, FeedHandle, PeriodicFut, Protocol, Verdict};

/// The public WebSocket.
pub const DEFAULT_URL: &str = "wss://websocket.bgproutes.io";

/// The public live manager (prefix association).
pub const DEFAULT_LIVE_MANAGER_URL: &str = "https://live-manager-api.bgproutes.io";

/// Environment variable read for the API key unless configured otherwise.
pub const DEFAULT_KEY_ENV: &str = "BGP_API_KEY";

/// Re-association interval: well inside the 4-hour expiry of an unused association.
pub const DEFAULT_REASSOCIATE_SECS: f64 = 3600.0;

/// Errors of the bgproutes client, as the reference client distinguishes them.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// The WebSocket could not be opened, was rejected (`{"error": ...}`: invalid key,
    /// second session) or was cut.
    #[error("bgproutes connection error: {0}")]
    Connection(String),
    /// The live manager refused to associate the prefixes with the key; the server's reason.
    #[error("bgproutes prefix association failed: {0}")]
    PrefixAssociation(String),
    /// No API key could be read.
    #[error("no bgproutes API key: {0}")]
    NoKey(String),
}

/// Reads an API key from a file or an environment variable (default `BGP_API_KEY`).
pub fn read_key(env: Option<&str>, file: Option<&Path>) -> Result<String, ClientError> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            ClientError::NoKey(format!("cannot read the API key file {}: {e}", f.display()))
        })?;
        let key = text.trim().to_string();
        if key.is_empty() {
            return Err(ClientError::NoKey(format!(
                "the API key file {} is empty",
                f.display()
            )));
        }
        return Ok(key);
    }
    let var = env.unwrap_or(DEFAULT_KEY_ENV);
    match std::env::var(var) {
        Ok(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
        _ => Err(ClientError::NoKey(format!(
            "set the environment variable {var} to your bgproutes.io API key (or use `api_key_file`)"
        ))),
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The WebSocket URL with the key (never log it unredacted).
pub fn ws_url(base: &str, key: &str) -> String {
    format!("{}/?api_key={}", base.trim_end_matches('/'), encode(key))
}

/// Associates `prefixes` (comma-separated) with the key through the live manager.
pub async fn associate(
    http: &reqwest::Client,
    manager: &str,
    key: &str,
    prefixes: &str,
) -> Result<(), ClientError> {
    let url = format!(
        "{}/update_live_prefixes?api_key={}&new_pfxs={}",
        manager.trim_end_matches('/'),
        encode(key),
        prefixes
    );
    let resp = http.get(&url).send().await.map_err(|e| {
        ClientError::PrefixAssociation(websocket::scrub(
            &format!(
                "cannot reach the live manager at {}: {}",
                websocket::redact_url(&url),
                e.without_url()
            ),
            key,
        ))
    })?;
    let status = resp.status();
    if status.as_u16() == 200 {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(1000).collect();
    Err(ClientError::PrefixAssociation(websocket::scrub(
        &format!(
            "the live manager refused to associate {prefixes} with the key (HTTP {status}): \
             {body}; check the API key and the prefixes (at most 10 per key)"
        ),
        key,
    )))
}

pub(super) fn http_client() -> reqwest::Client {
    crate::proxy::http_client_builder()
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("bgpsentry/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

struct BgpProto {
    feed: Arc<str>,
    collector: Arc<str>,
    http: reqwest::Client,
    manager: String,
    key: Arc<str>,
    prefixes: String,
    reassociate: Duration,
}

impl Protocol for BgpProto {
    fn on_open(&mut self) -> Vec<String> {
        Vec::new() // the server pushes; the client sends nothing
    }

    fn on_text(&mut self, text: &str, handle: &FeedHandle) -> (Vec<FeedEvent>, Verdict) {
        match parse_frame(text) {
            Err(bad) => {
                handle.message("invalid");
                handle.invalid(&bad);
                (Vec::new(), Verdict::Continue)
            }
            Ok(Frame::Error(reason)) => {
                handle.message("error");
                (
                    Vec::new(),
                    Verdict::Refused(websocket::scrub(
                        &format!(
                            "bgproutes rejected the connection: {reason} (check the API key; a \
                             key allows one session at a time)"
                        ),
                        &self.key,
                    )),
                )
            }
            Ok(Frame::Skipped(rt)) => {
                handle.message("other");
                debug!(feed = %handle.name, "skipping record type {rt}");
                (Vec::new(), Verdict::Continue)
            }
            Ok(Frame::Message(m)) => {
                handle.message(if m.exporter.is_some() {
                    "bmp_update"
                } else {
                    "update"
                });
                let (events, invalid) = m.to_events(&self.feed, &self.collector);
                for bad in &invalid {
                    handle.invalid(bad);
                }
                (events, Verdict::Continue)
            }
        }
    }

    fn periodic_every(&self) -> Option<Duration> {
        Some(self.reassociate)
    }

    fn periodic(&mut self) -> PeriodicFut {
        let (http, manager, key, prefixes) = (
            self.http.clone(),
            self.manager.clone(),
            self.key.clone(),
            self.prefixes.clone(),
        );
        Box::pin(async move {
            associate(&http, &manager, &key, &prefixes)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Starts one connection per API key. Returns no task when the feed is optional and has no key.
pub fn spawn(name: String, cfg: &FeedConfig, ctx: FeedContext) -> Vec<JoinHandle<()>> {
    let ws_base = cfg
        .url
        .as_ref()
        .map(|u| u.value.clone())
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let manager = cfg
        .live_manager_url
        .as_ref()
        .map(|u| u.value.clone())
        .unwrap_or_else(|| DEFAULT_LIVE_MANAGER_URL.to_string());
    let reassociate = Duration::from_secs_f64(
        cfg.reassociate_seconds
            .as_ref()
            .map(|s| s.value)
            .unwrap_or(DEFAULT_REASSOCIATE_SECS),
    );
    let timing = websocket::timing_from_config(cfg, None);
    // (env, file, own prefixes) per key.
    type KeySource = (
        Option<String>,
        Option<std::path::PathBuf>,
        Option<Vec<IpNet>>,
    );
    let sources: Vec<KeySource> = match &cfg.keys {
        Some(keys) => keys
            .value
            .iter()
            .map(|k| {
                let own = k.prefixes.as_ref().map(|p| {
                    p.value
                        .iter()
                        .filter_map(|s| s.parse::<IpNet>().ok())
                        .map(|n| n.trunc())
                        .collect()
                });
                (k.env.clone(), k.file.clone(), own)
            })
            .collect(),
        None => vec![(
            cfg.api_key_env.as_ref().map(|e| e.value.clone()),
            cfg.api_key_file.as_ref().map(|f| f.value.clone()),
            None,
        )],
    };
    let own: Vec<Option<Vec<IpNet>>> = sources.iter().map(|s| s.2.clone()).collect();
    let spread = match crate::config::spread_prefixes(&ctx.prefixes, &own) {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            // Config validation refuses this already; kept for configs built in code.
            ctx.health.register(&name, "bgproutes");
            ctx.health
                .update(&name, |h| h.last_error = Some(msg.clone()));
            warn!(feed = %name, "{msg}");
            return Vec::new();
        }
    };
    let keys: Vec<Result<String, ClientError>> = sources
        .iter()
        .map(|(env, file, _)| read_key(env.as_deref(), file.as_deref()))
        .collect();
    if cfg.optional && keys.iter().all(|k| k.is_err()) {
        info!(feed = %name, "optional bgproutes feed not started: no API key (set {DEFAULT_KEY_ENV} to add it)");
        return Vec::new();
    }
    let feed: Arc<str> = name.as_str().into();
    let http = http_client();
    let mut tasks = Vec::new();
    let several = sources.len() > 1;
    for (i, (key, prefixes)) in keys.into_iter().zip(spread).enumerate() {
        let conn_name = if several {
            format!("{name}/key{}", i + 1)
        } else {
            name.clone()
        };
        if prefixes.is_empty() {
            info!(feed = %conn_name, "no prefixes for this API key; not connecting it");
            continue;
        }
        let mut handle = FeedHandle::new(ctx.clone(), &conn_name, feed.clone(), "bgproutes");
        let key = match key {
            Ok(k) => Arc::<str>::from(k),
            Err(e) => {
                handle.error(FeedErrorReason::NoKey, &e.to_string());
                continue;
            }
        };
        let prefix_list = prefixes
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut proto = BgpProto {
            feed: feed.clone(),
            collector: "".into(),
            http: http.clone(),
            manager: manager.clone(),
            key: key.clone(),
            prefixes: prefix_list,
            reassociate,
        };
        let warm_cfg = cfg.warm_start();
        let warm = warm_cfg.is_enabled().then(|| {
            let source = warm_start::bgproutes_source(&warm_cfg, key.clone());
            info!(feed = %conn_name, "warm start from {}", warm_start::describe(&source));
            let settings = warm_start::Settings::from_config(&warm_cfg);
            warm_start::start(source, settings, &mut handle, prefixes.clone())
        });
        let url = ws_url(&ws_base, &key);
        let timing = timing.clone();
        tasks.push(tokio::spawn(async move {
            let mut backoff = Backoff::new(timing.backoff_initial, timing.backoff_max);
            info!(feed = %handle.name, url = %websocket::redact_url(&url), prefixes = %proto.prefixes, "starting bgproutes feed");
            loop {
                if handle.shutting_down() {
                    return;
                }
                let ended = match associate(&proto.http, &proto.manager, &proto.key, &proto.prefixes).await {
                    Err(e) => websocket::Ended::Failed {
                        reason: FeedErrorReason::Association,
                        message: e.to_string(),
                    },
                    Ok(()) => {
                        let key = proto.key.clone();
                        websocket::connect_and_drive(&url, Some(&key), &mut proto, &handle, &timing, &mut backoff, || {
                            info!(feed = %handle.name, "prefixes associated; connected");
                            if let Some(w) = &warm {
                                w.on_connected();
                            }
                        })
                        .await
                    }
                };
                if websocket::after_disconnect(&handle, &mut backoff, ended).await {
                    return;
                }
            }
        }));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_from_a_file_is_trimmed_and_errors_name_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "  file-key\n").unwrap();
        assert_eq!(read_key(None, Some(&f)).unwrap(), "file-key");
        std::fs::write(&f, "\n").unwrap();
        assert!(
            matches!(read_key(None, Some(&f)), Err(ClientError::NoKey(m)) if m.contains("is empty"))
        );
        let missing = dir.path().join("nope");
        assert!(
            matches!(read_key(None, Some(&missing)), Err(ClientError::NoKey(m)) if m.contains("cannot read"))
        );
        let e = read_key(Some("BGPSENTRY_TEST_SURELY_UNSET_VAR"), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("set the environment variable BGPSENTRY_TEST_SURELY_UNSET_VAR")
        );
    }

    #[test]
    fn urls_carry_the_encoded_key() {
        assert_eq!(
            ws_url("wss://websocket.bgproutes.io/", "a b&c"),
            "wss://websocket.bgproutes.io/?api_key=a%20b%26c"
        );
        assert_eq!(
            websocket::redact_url(&ws_url(DEFAULT_URL, "K")),
            "wss://websocket.bgproutes.io/?api_key=REDACTED"
        );
    }
}
