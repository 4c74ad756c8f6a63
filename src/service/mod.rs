//! The running service: feeds → engine thread → alert sinks (alert book, metrics, notifier),
//! and the HTTP server beside them.

mod engine_thread;
mod feeds_supervisor;
mod http_serve;
mod notify_switch;
mod reload;
mod store_thread;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

pub use crate::alerts::AlertSink;
use crate::alerts::{AlertBook, AlertFilter, AlertState, AlertTransition, TransitionKind};
use crate::config::Config;
use crate::engine::{AcceptRequest, Engine, SharedPrefixStates};
use crate::event::Timestamp;
use crate::feeds::queue::{EventSender, engine_queue};
use crate::feeds::{Batch, FeedContext};
use crate::health::Health;
use crate::http::{AppState, router};
use crate::metrics::Metrics;
use crate::rpki::RpkiLoader;
use crate::store::{Commit, Store};

/// Route events waiting for (or being processed by) the engine; bounded so that a slow engine
/// slows the feeds down instead of growing memory. An event takes about 400 bytes with its
/// attributes (real RIS paths and communities), so a full queue holds about 13 MB.
pub const ENGINE_QUEUE_EVENTS: usize = 32 * 1024;

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

/// Keeps the alert book and the alert metrics current.
struct BookSink {
    book: Arc<RwLock<AlertBook>>,
    metrics: Metrics,
}

impl AlertSink for BookSink {
    fn deliver(&mut self, t: &AlertTransition) {
        self.book
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(t);
        match t.event {
            TransitionKind::Fired => self.metrics.alert_fired(&t.alert, false),
            TransitionKind::Resolved => self.metrics.alert_resolved(&t.alert),
            TransitionKind::Updated => {}
        }
    }
}

/// Options of `bgpsentry run` that override the config.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Listen here instead of the configured address.
    pub listen: Option<SocketAddr>,
    /// An MRT table dump to load as route state (and learned baseline) at start.
    pub rib: Option<PathBuf>,
}

/// Commits waiting for the store thread. Each is written in its own transaction, so a deeper
/// queue adds memory (a commit carries the route changes of its batch) but no throughput; when
/// the store is slow the engine waits, its queue fills and the feeds slow down.
const COMMIT_QUEUE: usize = 16;

/// How often the engine is woken when no events come, so that state is still saved.
const TICK: Duration = Duration::from_secs(1);

/// Runs the service until SIGINT or SIGTERM.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    // First, before anything holds a file: the HTTP connection limit is derived from it.
    let max_http_connections = http_serve::http_connection_limit(http_serve::raise_file_limit());
    let metrics = Metrics::new()?;
    reload::mark_loaded(&metrics);
    let health = Health::with_metrics(metrics.feed.clone());
    let book = Arc::new(RwLock::new(AlertBook::new(RESOLVED_HISTORY)));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (events_tx, events_rx) = engine_queue(ENGINE_QUEUE_EVENTS);
    let (alerts_tx, mut alerts_rx) = mpsc::unbounded_channel::<AlertTransition>();
    let (commits_tx, commits_rx) = std::sync::mpsc::sync_channel::<Commit>(COMMIT_QUEUE);
    // Operator requests (accepted baselines) for the engine thread, which owns the engine.
    let (commands_tx, commands_rx) = mpsc::channel::<AcceptRequest>(ENGINE_COMMANDS);

    let rpki = match &cfg.rpki {
        Some(r) => {
            let (loader, rx) = RpkiLoader::start(r.clone(), &metrics.registry)?;
            tokio::spawn(loader.run(shutdown_rx.clone()));
            Some(rx)
        }
        None => None,
    };

    // Continue from the store: routes, baselines and firing alerts as they were.
    let store_path = cfg.store_file();
    crate::config::check_store_writable(&store_path).map_err(anyhow::Error::msg)?;
    let mut store = Store::open(&store_path)?;
    let loaded = store.load(RESOLVED_HISTORY)?;
    let mut engine = Engine::from_config(&cfg);
    if let Some(rx) = &rpki {
        engine.set_rpki(rx.borrow().clone(), Timestamp::now());
    }
    let restored_routes: usize = loaded.state.routes.iter().map(|r| r.routes.len()).sum();
    let was_firing = loaded.state.firing.clone();
    let mut engine = engine.restored(loaded.state);
    if let Some(saved) = loaded.saved_at.filter(|_| restored_routes > 0) {
        let age = (Timestamp::now().0 - saved.0).max(0) as f64 / 1e6;
        metrics.restored_state_age.set(age);
        info!(
            store = %store_path.display(),
            "restored {restored_routes} routes and {} firing alerts saved {age:.0} s ago",
            engine.firing_count()
        );
    }
    if let Some(rib) = &opts.rib {
        let stats = crate::replay::load_rib(&mut engine, rib)?;
        info!(rib = %rib.display(), "loaded {} routes from the table dump", stats.announcements);
    }
    // Registered once: a notifier started or switched by a reload uses the same families.
    let notify_metrics = crate::notify::metrics::NotifyMetrics::new(&metrics.registry)?;
    let channels = crate::notify::build_channels(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Read before the restore's own transitions are saved: those are delivered below.
    let notifier = if channels.is_empty() {
        None
    } else {
        let outbox = crate::notify::open_outbox(&cfg)?;
        Some(crate::notify::Notifier::launch(
            &cfg,
            notify_metrics.clone(),
            channels,
            outbox,
        )?)
    };
    let pending = if notifier.is_some() {
        store.pending_events()?
    } else {
        store.no_notifier()?;
        Vec::new()
    };
    if !pending.is_empty() {
        info!(
            "{} alert events were not yet queued for notification; queueing them",
            pending.len()
        );
    }
    let initial: Vec<AlertTransition> = engine.drain_transitions().collect();
    // The restored engine may differ from the store (config changed, RIB loaded): save what
    // differs, or everything when the file had rows it could not use.
    if loaded.rewrite {
        store.replace_state(&initial, &engine.export_state())?;
    } else {
        let meta = engine.meta_changed();
        store.save_restored(&initial, engine.take_changes(), meta)?;
    }
    {
        let mut b = book.write().unwrap_or_else(|p| p.into_inner());
        b.restore(&loaded.resolved, &was_firing);
    }
    for a in &was_firing {
        metrics.alert_fired(a, true);
    }
    metrics.watched_prefixes.set(cfg.prefixes.len() as i64);
    for feed in &cfg.feeds {
        metrics.init_feed(&feed.name());
    }
    let views = SharedPrefixStates::default();
    views.set_all(engine.prefix_states());

    let retention = cfg.store.retention_days;
    let store_metrics = metrics.clone();
    let notifier_running = Arc::new(AtomicBool::new(notifier.is_some()));
    let running = notifier_running.clone();
    let store_shutdown = shutdown_rx.clone();
    // Each worker thread drops its sender when it ends: before shutdown that means it died,
    // and a service that no longer routes or stores must not look healthy.
    let (store_alive, store_ended) = tokio::sync::oneshot::channel::<()>();
    let (engine_alive, engine_ended) = tokio::sync::oneshot::channel::<()>();
    let store_thread = std::thread::Builder::new()
        .name("store".into())
        .spawn(move || {
            let _alive = store_alive;
            store_thread::run(
                store,
                commits_rx,
                alerts_tx,
                store_metrics,
                retention,
                running,
                store_shutdown,
            )
        })?;

    // Shared rather than copied: a watch list of 100,000 prefixes takes a while to clone.
    let cfg = Arc::new(cfg);
    let (config_tx, config_rx) = watch::channel(cfg.clone());
    let engine_thread = {
        let worker = engine_thread::EngineThread {
            events: events_rx,
            commands: commands_rx,
            config: config_rx.clone(),
            rpki,
            commits: commits_tx,
            metrics: metrics.clone(),
            views: views.clone(),
            runtime: tokio::runtime::Handle::current(),
            shutdown: shutdown_rx.clone(),
        };
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let _alive = engine_alive;
                worker.run(engine)
            })?
    };

    let mut book_sink = BookSink {
        book: book.clone(),
        metrics: metrics.clone(),
    };
    let mut notifier_sink = notifier.as_ref().map(|n| n.sink());
    if let Some(sink) = &mut notifier_sink {
        // Alerts restored as firing: the channels were told before the restart, so their
        // reminders, re-pushes and resolutions carry on; channels added later learn of them.
        sink.already_firing(was_firing.clone(), false);
        // Alert events that never reached the outbox (a crash inside a grouping window) go
        // first, in their order.
        for p in &pending {
            sink.deliver(&p.transition);
        }
    }
    // What the restore itself decided (alerts that ended with a config change, conditions now
    // over a threshold) goes out first.
    for t in &initial {
        book_sink.deliver(t);
        if let Some(sink) = &mut notifier_sink {
            sink.deliver(t);
        }
    }
    let (install_tx, mut install_rx) = mpsc::unbounded_channel::<notify_switch::Install>();
    let sink_book = book.clone();
    let sink_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                t = alerts_rx.recv() => {
                    let Some(t) = t else { break };
                    book_sink.deliver(&t);
                    if let Some(sink) = &mut notifier_sink {
                        sink.deliver(&t);
                    }
                }
                Some(install) = install_rx.recv() => {
                    // Here, between two transitions, the book holds exactly the alerts firing
                    // so far: the new notifier starts from them.
                    let firing: Vec<_> = sink_book
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .list(&AlertFilter {
                            state: Some(AlertState::Firing),
                            ..AlertFilter::default()
                        })
                        .into_iter()
                        .cloned()
                        .collect();
                    install.sink.already_firing(firing, true);
                    notifier_sink = Some(install.sink);
                    let _ = install.done.send(());
                }
            }
        }
    });
    let (notify_tx, notify_rx) = mpsc::unbounded_channel();
    let switch = tokio::spawn(
        notify_switch::Switch {
            notifier,
            metrics: notify_metrics,
            install: install_tx,
            notifier_running,
        }
        .run(notify_rx),
    );

    let tick = tokio::spawn(tick(
        events_tx.clone(),
        metrics.clone(),
        shutdown_rx.clone(),
    ));
    let base = FeedContext {
        events: events_tx,
        health: health.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown_rx.clone(),
        prefixes: Vec::new(),
    };
    let feeds = tokio::spawn(feeds_supervisor::run(config_rx, base));
    let guard = http_serve::guard(&cfg)?;
    if cfg.source.exists() {
        tokio::spawn(reload::watch_config(
            cfg.source.clone(),
            config_tx,
            reload::Live {
                tokens: guard.tokens.clone(),
                notify: notify_tx,
            },
            metrics.clone(),
            shutdown_rx.clone(),
        ));
    } else {
        // Nothing reloads: the notifier switch ends at once and hands its notifier back.
        drop(notify_tx);
    }

    let listen = opts.listen.unwrap_or(cfg.http.listen);
    let http_metrics = metrics.clone();
    let app = router(
        AppState {
            book,
            metrics,
            health,
            prefixes: views,
            engine_commands: Some(commands_tx),
        },
        guard,
    );
    let server = http_serve::serve(
        app,
        listen,
        &cfg.http,
        max_http_connections,
        &http_metrics,
        shutdown_rx.clone(),
    )
    .await?;

    let died = tokio::select! {
        _ = wait_for_signal() => None,
        _ = engine_ended => Some("engine"),
        _ = store_ended => Some("store"),
    };
    match died {
        Some(which) => error!(
            "the {which} thread stopped unexpectedly (see the error above); shutting down so \
             that the service can be restarted"
        ),
        None => info!("shutting down"),
    }
    let stop_started = std::time::Instant::now();
    stop_deadline_watchdog();
    let _ = shutdown_tx.send(true);
    // The reload watcher stops at once, so the switch ends and hands the notifier back; its
    // routing is bounded from now, while the engine and the store drain.
    let notifier = match switch.await {
        Ok(n) => n,
        Err(e) => {
            error!("the notifier switch failed: {e}");
            None
        }
    };
    if let Some(n) = &notifier {
        n.stop_routing_at(stop_started + NOTIFIER_ROUTE);
    }
    let _ = feeds.await;
    let _ = tick.await;
    match server.await {
        Ok(Err(e)) => error!("HTTP server failed: {e}"),
        Err(e) => error!("HTTP server task failed: {e}"),
        Ok(Ok(())) => {}
    }
    // The feeds have stopped and dropped their senders: the engine drains its queue, saves the
    // rest and ends; the store writes it; then every transition reaches the sinks.
    if engine_thread.join().is_err() {
        error!("the engine thread panicked");
    }
    debug!("stopping: engine done after {:?}", stop_started.elapsed());
    if store_thread.join().is_err() {
        error!("the store thread panicked");
    }
    debug!("stopping: store written after {:?}", stop_started.elapsed());
    let _ = sink_task.await;
    if let Some(n) = notifier {
        let left = STOP_WITHIN
            .saturating_sub(stop_started.elapsed())
            .saturating_sub(NOTIFIER_GRACE_MARGIN)
            .min(NOTIFIER_GRACE);
        n.shutdown_within(left).await;
        debug!("stopping: notifier done after {:?}", stop_started.elapsed());
    }
    if let Some(which) = died {
        anyhow::bail!("the {which} thread stopped unexpectedly");
    }
    info!("stopped");
    Ok(())
}

/// Ends the process if a stop takes longer than [`STOP_WITHIN`] after all (a store that
/// cannot be written, say): better exit than be killed by the service manager half-way. What
/// was committed is safe either way, and alert events not yet in the outbox are queued at the
/// next start.
fn stop_deadline_watchdog() {
    let spawned = std::thread::Builder::new()
        .name("stop-deadline".into())
        .spawn(|| {
            std::thread::sleep(STOP_WITHIN);
            error!(
                "the stop did not finish within {} s; exiting now. What was committed is in \
                 the store; the next start queues the alert events not yet notified",
                STOP_WITHIN.as_secs()
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        warn!("cannot bound the stop ({e}); it may take longer than {STOP_WITHIN:?}");
    }
}

/// Wakes the engine when nothing else does, until shutdown.
async fn tick(events: EventSender, metrics: Metrics, mut shutdown: watch::Receiver<bool>) {
    let feed: Arc<str> = "tick".into();
    loop {
        // Read here too, not only when the engine takes a batch: an engine held up by the store
        // takes none, and the gauge must show the queue filling meanwhile.
        metrics.engine_queue_events.set(events.events() as i64);
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let batch = Batch {
            feed: feed.clone(),
            events: Vec::new(),
            received: std::time::Instant::now(),
        };
        // A full queue means the engine is busy anyway.
        let _ = events.try_send(batch);
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM ({e}); stop with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
