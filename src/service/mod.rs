//! The running service: feeds → engine thread → store thread → publish stage (alert book,
//! metrics, notifier), and the HTTP server beside them. [`run`] restores the state
//! (`restore`), starts the flow (`pipeline`) and stops it within a bound (`shutdown`).

mod commit_queue;
mod engine_thread;
mod feeds_supervisor;
mod http_serve;
mod latency;
mod notify_switch;
mod pipeline;
mod publish;
mod reload;
mod restore;
mod shutdown;
mod store_thread;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

pub use crate::alerts::AlertSink;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::metrics::NotifyMetrics;
use crate::rpki::RpkiLoader;

pub use crate::feeds::queue::ENGINE_QUEUE_EVENTS;
pub use commit_queue::COMMIT_QUEUE_BYTES;

/// Operator requests waiting for the engine thread (they are rare and answered at once).
const ENGINE_COMMANDS: usize = 16;

/// A stop (SIGTERM, SIGINT) ends the process within this long, well inside systemd's
/// `TimeoutStopSec` (deploy/systemd sets 30 s), so that it is never killed half-way.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// How long a stopping engine keeps working off its queue; the rest is dropped.
pub const ENGINE_DRAIN: Duration = Duration::from_secs(2);

/// How long a stopping store keeps writing the commits queued for it; the rest is dropped
/// (the store then stands as after a crash at that point).
pub const STORE_DRAIN: Duration = Duration::from_secs(6);

/// How long a stopping notifier keeps routing the transitions it has; the rest is left to
/// the next start (their alert events stay unmarked in the store). It routes while the engine
/// and the store drain, and stops before the store's bound so as not to hold its write lock.
pub const NOTIFIER_ROUTE: Duration = Duration::from_secs(4);

/// What is left of [`STOP_WITHIN`] once the notifier is reached: grouping windows go to the
/// outbox, and deliveries still in flight then are abandoned (the outbox keeps them for the
/// next start).
const NOTIFIER_GRACE_MARGIN: Duration = Duration::from_secs(1);

/// The most a stop waits for deliveries in flight: a target that does not answer must not
/// use up the whole bound.
const NOTIFIER_GRACE: Duration = Duration::from_secs(1);

/// Resolved alerts kept in memory for `/alerts?state=resolved`.
pub const RESOLVED_HISTORY: usize = 10_000;

/// Options of `bgpsentry run` that override the config.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Listen here instead of the configured address.
    pub listen: Option<SocketAddr>,
    /// An MRT table dump to load as route state (and learned baseline) at start.
    pub rib: Option<PathBuf>,
}

/// How often the engine is woken when no events come, so that state is still saved and event
/// time moves on: hold-downs that run out while the feeds are quiet are judged within this long
/// (the last instant of a burst sooner, see `SETTLE_AFTER` in the engine thread). Each tick is
/// an empty batch, nearly free when nothing changed.
const TICK: Duration = Duration::from_millis(100);

/// Runs the service until SIGINT or SIGTERM.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    // First, before anything holds a file: the HTTP connection limit is derived from it.
    let max_http_connections = http_serve::http_connection_limit(http_serve::raise_file_limit());
    let metrics = Metrics::new()?;
    reload::mark_loaded(&metrics);
    crate::proxy::configure(cfg.proxy.as_ref());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let rpki = match &cfg.rpki {
        Some(r) => {
            let (loader, rx) = RpkiLoader::start(r.clone(), &metrics.registry)?;
            tokio::spawn(loader.run(shutdown_rx.clone()));
            Some(rx)
        }
        None => None,
    };
    // Built before the restore (a config error stops the start before the store is touched),
    // launched after it (the outbox lives in the store, checked by the restore).
    let channels = crate::notify::build_channels(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let restored = restore::restore(
        &cfg,
        opts.rib.as_deref(),
        rpki.as_ref().map(|rx| rx.borrow().clone()),
        !channels.is_empty(),
        &metrics,
    )?;
    // Registered once: a notifier started or switched by a reload uses the same families.
    let notify_metrics = NotifyMetrics::new(&metrics.registry)?;
    // In the store's file, whose schema the restore brought up to date.
    let triage = crate::triage::Triage::open(&cfg.store_file(), &metrics.registry)?;
    let notifier = if channels.is_empty() {
        None
    } else {
        let outbox = crate::notify::open_outbox(&cfg)?;
        Some(crate::notify::Notifier::launch(
            &cfg,
            notify_metrics.clone(),
            channels,
            outbox,
            triage.clone(),
        )?)
    };
    let parts = pipeline::Parts {
        cfg,
        listen: opts.listen,
        metrics,
        notify_metrics,
        notifier,
        triage,
        rpki,
        max_http_connections,
        shutdown: shutdown_rx,
    };
    pipeline::Pipeline::start(parts, restored)
        .await?
        .run_until_stopped(shutdown_tx)
        .await
}
