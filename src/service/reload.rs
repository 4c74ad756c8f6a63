//! Hot reload: on SIGHUP, and when the config file changes, the file is read and validated
//! again; a valid config replaces the running one, an invalid one is logged and counted while
//! the old one keeps running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{error, info};

use crate::config::Config;
use crate::metrics::Metrics;

/// How often the file's modification time is looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// Watches the config file until shutdown.
pub(super) async fn watch_config(
    path: PathBuf,
    config: watch::Sender<Arc<Config>>,
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
            &metrics,
            if by_signal { "SIGHUP" } else { "file change" },
        );
    }
}

fn reload(path: &Path, config: &watch::Sender<Arc<Config>>, metrics: &Metrics, why: &str) {
    match Config::load(path) {
        Ok(new) => {
            metrics.config_reloads.with_label_values(&["ok"]).inc();
            info!(
                "config reloaded ({why}): {} watched prefixes, {} feeds",
                new.prefixes.len(),
                new.feeds.len()
            );
            config.send_replace(Arc::new(new));
        }
        Err(errors) => {
            metrics.config_reloads.with_label_values(&["error"]).inc();
            metrics.config_errors.inc();
            for e in &errors.0 {
                error!("config reload rejected ({why}), the running config stays: {e}");
            }
        }
    }
}
