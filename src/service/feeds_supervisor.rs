//! Starts the configured feeds, and restarts the live ones when a reload changes the watch
//! list or the feeds (they subscribe to the prefixes when they connect). MRT feeds are read
//! once, at start. BMP listeners and Kafka consumers subscribe to no prefix: they restart only when their own
//! settings change, since a restart drops every router's session.

use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{Config, FeedKind};
use crate::feeds::{self, FeedContext};

/// The feeds that subscribe to the watched prefixes.
fn subscribing(k: FeedKind) -> bool {
    !matches!(k, FeedKind::Mrt | FeedKind::Bmp | FeedKind::Kafka)
}

/// What decides whether the subscribing live feeds must restart.
fn live_setup(cfg: &Config) -> (Vec<IpNet>, Vec<String>) {
    let prefixes = cfg.prefixes.iter().map(|p| p.prefix).collect();
    (prefixes, feed_settings(cfg, subscribing))
}

/// The settings of the feeds of some kinds, to compare across a reload.
fn feed_settings(cfg: &Config, kinds: impl Fn(FeedKind) -> bool) -> Vec<String> {
    cfg.feeds
        .iter()
        .filter(|f| kinds(f.kind.value))
        .map(|f| format!("{:?}", FeedSettings(f)))
        .collect()
}

/// A feed's settings without its position in the file.
struct FeedSettings<'a>(&'a crate::config::FeedConfig);

impl std::fmt::Debug for FeedSettings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut c = self.0.clone();
        // Moving an entry within the file is not a change.
        c.kind = serde_saphyr::Spanned::new(
            c.kind.value,
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        );
        write!(f, "{c:?}")
    }
}

fn spawn(
    cfg: &Config,
    base: &FeedContext,
    kinds: impl Fn(FeedKind) -> bool,
) -> Vec<JoinHandle<()>> {
    let ctx = FeedContext {
        prefixes: cfg.prefixes.iter().map(|p| p.prefix).collect(),
        ..base.clone()
    };
    cfg.feeds
        .iter()
        .filter(|f| kinds(f.kind.value))
        .map(|f| feeds::spawn(f, ctx.clone()))
        .collect()
}

/// Runs until shutdown; then waits for every feed to stop.
pub(super) async fn run(mut config: watch::Receiver<Arc<Config>>, base: FeedContext) {
    let mut shutdown = base.shutdown.clone();
    let mut current = config.borrow_and_update().clone();
    let mut fixed = spawn(&current, &base, |k| k == FeedKind::Mrt);
    let mut live = spawn(&current, &base, subscribing);
    // Kafka consumers subscribe to topics, not prefixes: like BMP listeners they restart only
    // when their own settings change (the group then rebalances once).
    let is_bmp = |k| matches!(k, FeedKind::Bmp | FeedKind::Kafka);
    let mut listening = spawn(&current, &base, is_bmp);
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                let new = config.borrow_and_update().clone();
                if live_setup(&new) != live_setup(&current) {
                    info!("the watch list or the feeds changed: restarting the live feeds");
                    for task in &live {
                        task.abort();
                    }
                    for task in live.drain(..) {
                        let _ = task.await;
                    }
                    let names: Vec<String> = new.feeds.iter().map(|f| f.name()).collect();
                    base.health.retain(&names);
                    live = spawn(&new, &base, subscribing);
                }
                if feed_settings(&new, is_bmp) != feed_settings(&current, is_bmp) {
                    info!("the BMP or Kafka feeds changed: restarting them (routers reconnect, consumers rejoin their group)");
                    for task in &listening {
                        task.abort();
                    }
                    for task in listening.drain(..) {
                        let _ = task.await;
                    }
                    let names: Vec<String> = new.feeds.iter().map(|f| f.name()).collect();
                    base.health.retain(&names);
                    listening = spawn(&new, &base, is_bmp);
                }
                current = new;
            }
        }
    }
    for task in live.into_iter().chain(listening).chain(fixed.drain(..)) {
        let _ = task.await;
    }
}
