//! Hot reload: on SIGHUP, and when the config file changes, the file is read and validated
//! again, and the secrets it names (API tokens, channel secrets) are read; a config that passes
//! replaces the running one (watch list, thresholds, notification channels, API tokens), one
//! that does not is logged and counted while the old one keeps running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info};

use super::http_serve::read_tokens;
use super::notify_switch::NotifyUpdate;
use crate::config::Config;
use crate::http::Tokens;
use crate::metrics::Metrics;

/// What a reload changes besides the config itself.
pub(super) struct Live {
    /// The API tokens the HTTP server checks.
    pub tokens: Tokens,
    /// The notifier's switch.
    pub notify: mpsc::UnboundedSender<NotifyUpdate>,
}

/// How often the file's modification time is looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// Watches the config file until shutdown.
pub(super) async fn watch_config(
    path: PathBuf,
    config: watch::Sender<Arc<Config>>,
    live: Live,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = modified(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let by_signal = tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            _ = signalled => true,
            _ = tokio::time::sleep(POLL) => false,
        };
        let now = modified(&path);
        if !by_signal && now == last {
            continue;
        }
        last = now;
        reload(
            &path,
            &config,
            &live,
            &metrics,
            if by_signal { "SIGHUP" } else { "file change" },
        )
        .await;
    }
}

async fn reload(
    path: &Path,
    config: &watch::Sender<Arc<Config>>,
    live: &Live,
    metrics: &Metrics,
    why: &str,
) {
    let new = match Config::load(path) {
        Ok(new) => Arc::new(new),
        Err(errors) => {
            count_rejected(metrics);
            for e in &errors.0 {
                error!("config reload rejected ({why}), the running config stays: {e}");
            }
            return;
        }
    };
    // Everything that can fail comes before anything is applied: a reload is taken whole or
    // not at all.
    let tokens = match read_tokens(&new) {
        Ok(t) => t,
        Err(e) => return reject(metrics, why, &e.to_string()),
    };
    let (verdict, answer) = oneshot::channel();
    let update = NotifyUpdate {
        cfg: new.clone(),
        verdict,
    };
    if live.notify.send(update).is_err() {
        return reject(metrics, why, "the notifier is not running");
    }
    match answer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return reject(metrics, why, &e),
        Err(_) => return reject(metrics, why, "the notifier is not running"),
    }
    live.tokens.replace(&tokens);
    metrics.config_reloads.with_label_values(&["ok"]).inc();
    info!(
        "config reloaded ({why}): {} watched prefixes, {} feeds, {} notification channels",
        new.prefixes.len(),
        new.feeds.len(),
        new.notify.channels.len()
    );
    config.send_replace(new);
}

fn count_rejected(metrics: &Metrics) {
    metrics.config_reloads.with_label_values(&["error"]).inc();
}

/// A config that is valid but cannot be applied (a secret that cannot be read, say).
fn reject(metrics: &Metrics, why: &str, e: &str) {
    count_rejected(metrics);
    error!("config reload rejected ({why}), the running config stays: {e}");
}
