//! Hot reload: on SIGHUP, and when the config file changes, the file is read and validated
//! again, and the secrets it names (API tokens, channel secrets) are read; a config that passes
//! replaces the running one (watch list, thresholds, notification channels, API tokens), one
//! that does not is logged and counted while the old one keeps running.
//!
//! A reload is never how monitoring or authentication gets turned off: a config that would
//! leave nothing watched, no feed, or no API token where there were some is refused (see
//! [`refusal`]), because that is also what a file caught empty or half-written looks like. A
//! changed file is read only once it has stopped changing, and a file that does not load is
//! given a second chance before it is refused, in case its writer was only pausing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info};

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

/// How often the file is looked at for a change.
pub const POLL: Duration = Duration::from_secs(1);

/// A changed file is read once its size and modification time have stayed the same for this
/// long, so that a file being rewritten in place is not read half-way.
pub const SETTLE: Duration = Duration::from_secs(1);

/// How often a changing file is looked at while it settles.
const SETTLE_STEP: Duration = Duration::from_millis(100);

/// What tells one version of the file from another without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// A file replaced by a rename is another inode, whatever its size and time.
    #[cfg(unix)]
    inode: (u64, u64),
}

/// The file's stamp; None while it cannot be looked at (being replaced, or removed).
fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode,
    })
}

/// Why a reload happens.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Signal,
    FileChange,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FileChange => "file change",
        }
    }
}

/// Watches the config file until shutdown.
pub(super) async fn watch_config(
    path: PathBuf,
    config: watch::Sender<Arc<Config>>,
    live: Live,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = stamp(&path);
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
        let running = config.borrow().clone();
        let (read, trigger) = if by_signal {
            // Asked for: read at once, but only a file that did not change while it was read.
            let before = stamp(&path);
            let loaded = load(&path, &running);
            if stamp(&path) == before {
                (Some((before, loaded)), Trigger::Signal)
            } else {
                (None, Trigger::Signal)
            }
        } else if stamp(&path) != last {
            (None, Trigger::FileChange)
        } else {
            continue;
        };
        let (read_stamp, loaded) = match read {
            Some(read) => read,
            None => {
                info!(
                    "config file {} is changing; reading it once it has been unchanged for {} ms",
                    path.display(),
                    SETTLE.as_millis()
                );
                match load_when_settled(&path, &running, &mut shutdown).await {
                    Some(read) => read,
                    None => return,
                }
            }
        };
        // This version has been dealt with, whatever the outcome: the next change is a new one.
        last = read_stamp;
        match loaded {
            Ok(new) => apply(new, &config, &live, &metrics, trigger).await,
            Err(reasons) => {
                count_rejected(&metrics);
                for reason in &reasons {
                    error!(
                        "config reload rejected ({}), the running config stays: {reason}",
                        trigger.as_str()
                    );
                }
            }
        }
    }
}

/// Waits for the file to settle and loads it; a file that does not load (or would be refused)
/// is given one more settling period in case its writer paused, and a file that changed while
/// it was read is read again. None at shutdown.
async fn load_when_settled(
    path: &Path,
    running: &Config,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Option<Stamp>, Result<Config, Vec<String>>)> {
    let mut second_chance = true;
    loop {
        let settled = settle(path, shutdown).await?;
        let loaded = load(path, running);
        if stamp(path) != settled {
            continue;
        }
        match loaded {
            Err(reasons) if second_chance => {
                second_chance = false;
                debug!(
                    "config file {} does not load ({}); looking again in {} ms in case it is \
                     still being written",
                    path.display(),
                    reasons.join("; "),
                    SETTLE.as_millis()
                );
            }
            loaded => return Some((settled, loaded)),
        }
    }
}

/// Waits until the file's stamp has stayed the same for [`SETTLE`]; None at shutdown.
async fn settle(path: &Path, shutdown: &mut watch::Receiver<bool>) -> Option<Option<Stamp>> {
    let mut seen = stamp(path);
    let mut since = Instant::now();
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return None,
            _ = tokio::time::sleep(SETTLE_STEP) => {}
        }
        let now = stamp(path);
        if now != seen {
            seen = now;
            since = Instant::now();
        } else if since.elapsed() >= SETTLE {
            return Some(seen);
        }
    }
}

/// Reads and validates the file, and checks that it may replace the running config.
fn load(path: &Path, running: &Config) -> Result<Config, Vec<String>> {
    let new = Config::load(path)
        .map_err(|errors| errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    match refusal(running, &new) {
        Some(why) => Err(vec![format!("{}: {why}", path.display())]),
        None => {
            // Connections opened from now on use the new proxy setting.
            crate::proxy::configure(new.proxy.as_ref());
            Ok(new)
        }
    }
}

/// Why `new` may not replace `running` by a reload, if it may not: it would stop all
/// monitoring (no watched prefix and no monitored ASN, or no feed) or turn API authentication
/// off. These are what an emptied or half-written file looks like, so only a restart does them.
fn refusal(running: &Config, new: &Config) -> Option<String> {
    const RESTART: &str = "a reload never does that, since a file caught empty or half-written \
                           would; if it is meant, restart bgpsentry with this config";
    let watched = running.prefixes.len() + running.asns.len();
    if watched > 0 && new.prefixes.is_empty() && new.asns.is_empty() {
        return Some(format!(
            "the new config watches no prefix and no ASN, which would stop all monitoring (the \
             running one watches {} prefixes and {} ASNs); {RESTART}",
            running.prefixes.len(),
            running.asns.len()
        ));
    }
    if !running.feeds.is_empty() && new.feeds.is_empty() {
        return Some(format!(
            "the new config has no feeds, which would stop all monitoring (the running one has \
             {}); {RESTART}",
            running.feeds.len()
        ));
    }
    if !running.http.auth.tokens.is_empty() && new.http.auth.tokens.is_empty() {
        return Some(format!(
            "the new config has no `http.auth.tokens`, which would open the API to anyone who \
             can reach it (the running one has {}); {RESTART}",
            running.http.auth.tokens.len()
        ));
    }
    None
}

/// Applies a loaded config: everything that can fail comes before anything is applied, so a
/// reload is taken whole or not at all.
async fn apply(
    new: Config,
    config: &watch::Sender<Arc<Config>>,
    live: &Live,
    metrics: &Metrics,
    trigger: Trigger,
) {
    let why = trigger.as_str();
    let new = Arc::new(new);
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
    mark_loaded(metrics);
    info!(
        "config reloaded ({why}): {} watched prefixes, {} feeds, {} notification channels",
        new.prefixes.len(),
        new.feeds.len(),
        new.notify.channels.len()
    );
    config.send_replace(new);
}

/// Records a config taken into use (at start, or by a reload).
pub(super) fn mark_loaded(metrics: &Metrics) {
    metrics.config_last_reload_successful.set(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics.config_last_reload_success_timestamp.set(now);
}

fn count_rejected(metrics: &Metrics) {
    metrics.config_reloads.with_label_values(&["error"]).inc();
    metrics.config_last_reload_successful.set(0);
}

/// A config that is valid but cannot be applied (a secret that cannot be read, say).
fn reject(metrics: &Metrics, why: &str, e: &str) {
    count_rejected(metrics);
    error!("config reload rejected ({why}), the running config stays: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Config {
        Config::parse(yaml, Path::new("t.yml")).unwrap()
    }

    const WATCHED: &str = "prefixes:\n  - prefix: 192.0.2.0/24\n";
    const FEED: &str = "feeds:\n  - kind: ris_live\n";
    const TOKEN: &str = "http:\n  auth:\n    tokens:\n      - env: T\n";

    #[test]
    fn a_reload_may_not_stop_monitoring_or_open_the_api() {
        let running = parse(&format!("{WATCHED}{FEED}{TOKEN}"));
        for (new, what) in [
            ("", "watches no prefix and no ASN"),
            ("# being rewritten\n", "watches no prefix and no ASN"),
            (&format!("{FEED}{TOKEN}"), "watches no prefix and no ASN"),
            (&format!("{WATCHED}{TOKEN}"), "has no feeds"),
            (&format!("{WATCHED}{FEED}"), "has no `http.auth.tokens`"),
        ] {
            let why = refusal(&running, &parse(new)).unwrap_or_default();
            assert!(
                why.contains(what) && why.contains("restart"),
                "{new:?}: {why}"
            );
        }
    }

    #[test]
    fn a_reload_may_change_anything_short_of_that() {
        let running = parse(&format!("{WATCHED}{FEED}{TOKEN}"));
        let asn_only = "asns:\n  - asn: 64496\n";
        for new in [
            format!("{WATCHED}{FEED}{TOKEN}"),
            format!("prefixes:\n  - prefix: 198.51.100.0/24\n{FEED}{TOKEN}"),
            format!("{asn_only}{FEED}{TOKEN}"),
            format!("{WATCHED}feeds:\n  - kind: mrt\n    files: [x.mrt]\n{TOKEN}"),
            format!("{WATCHED}{FEED}http:\n  auth:\n    tokens:\n      - file: t\n"),
        ] {
            assert_eq!(refusal(&running, &parse(&new)), None, "{new}");
        }
        // What was never there cannot be removed: an empty service may reload to empty.
        assert_eq!(refusal(&parse(""), &parse("")), None);
    }
}
