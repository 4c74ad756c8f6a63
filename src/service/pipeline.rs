//! Starts the running flow: the store and engine threads, the publish stage, the notifier's
//! switch, the feeds, the config watcher and the HTTP server, wired by bounded queues.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::alerts::AlertBook;
use crate::config::Config;
use crate::engine::{AcceptRequest, SharedPrefixStates};
use crate::feeds::FeedContext;
use crate::feeds::queue::engine_queue;
use crate::health::Health;
use crate::http::{AppState, router};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::notify::metrics::NotifyMetrics;
use crate::rpki::RpkiSnapshot;

use super::publish::Publisher;
use super::restore::Restored;
use super::{
    ENGINE_COMMANDS, ENGINE_QUEUE_EVENTS, RESOLVED_HISTORY, commit_queue, engine_thread,
    feeds_supervisor, http_serve, notify_switch, reload, shutdown, store_thread,
};

/// What the pipeline needs besides the restored state.
pub(super) struct Parts {
    pub cfg: Config,
    pub listen: Option<SocketAddr>,
    pub metrics: Metrics,
    pub notify_metrics: NotifyMetrics,
    pub notifier: Option<Notifier>,
    pub triage: crate::triage::Triage,
    pub rpki: Option<watch::Receiver<RpkiSnapshot>>,
    pub max_http_connections: usize,
    pub shutdown: watch::Receiver<bool>,
}

/// The running flow: what a stop waits for, in the order it waits.
pub(super) struct Pipeline {
    pub switch: JoinHandle<Option<Notifier>>,
    pub feeds: JoinHandle<()>,
    pub tick: JoinHandle<()>,
    pub server: JoinHandle<std::io::Result<()>>,
    pub engine_thread: std::thread::JoinHandle<()>,
    pub store_thread: std::thread::JoinHandle<()>,
    pub publish: JoinHandle<()>,
    /// Answers when the engine thread ends: before shutdown that means it died.
    pub engine_ended: oneshot::Receiver<()>,
    /// Answers when the store thread ends: before shutdown that means it died.
    pub store_ended: oneshot::Receiver<()>,
}

impl Pipeline {
    /// Starts everything; the first alerts published are the restored ones.
    pub async fn start(parts: Parts, restored: Restored) -> anyhow::Result<Self> {
        let Parts {
            cfg,
            listen,
            metrics,
            notify_metrics,
            notifier,
            triage,
            rpki,
            max_http_connections,
            shutdown,
        } = parts;
        let Restored {
            store,
            engine,
            was_firing,
            resolved,
            pending,
            initial,
        } = restored;
        let health = Health::with_metrics(metrics.feed.clone());
        let book = Arc::new(RwLock::new(AlertBook::new(RESOLVED_HISTORY)));
        book.write()
            .unwrap_or_else(|p| p.into_inner())
            .restore(&resolved, &was_firing);
        for a in &was_firing {
            metrics.alert_fired(a, true);
        }
        metrics.watched_prefixes.set(cfg.prefixes.len() as i64);
        for feed in &cfg.feeds {
            metrics.init_feed(&feed.name());
        }
        let views = SharedPrefixStates::default();
        views.set_all(engine.prefix_states());

        let (events_tx, events_rx) = engine_queue(ENGINE_QUEUE_EVENTS);
        let (committed_tx, committed_rx) = mpsc::unbounded_channel::<store_thread::Committed>();
        let (commits_tx, commits_rx) = commit_queue::commit_queue(super::COMMIT_QUEUE_BYTES);
        // Operator requests (accepted baselines) for the engine thread, which owns the engine.
        let (commands_tx, commands_rx) = mpsc::channel::<AcceptRequest>(ENGINE_COMMANDS);

        // Each worker thread drops its sender when it ends: before shutdown that means it died,
        // and a service that no longer routes or stores must not look healthy.
        let (store_alive, store_ended) = oneshot::channel::<()>();
        let (engine_alive, engine_ended) = oneshot::channel::<()>();
        let notifier_running = Arc::new(AtomicBool::new(notifier.is_some()));
        let store_thread = {
            let retention = cfg.store.retention_days;
            let metrics = metrics.clone();
            let running = notifier_running.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("store".into())
                .spawn(move || {
                    let _alive = store_alive;
                    store_thread::run(
                        store,
                        commits_rx,
                        committed_tx,
                        metrics,
                        retention,
                        running,
                        shutdown,
                    )
                })?
        };

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
                shutdown: shutdown.clone(),
            };
            std::thread::Builder::new()
                .name("engine".into())
                .spawn(move || {
                    let _alive = engine_alive;
                    worker.run(engine)
                })?
        };

        let mut publisher = Publisher::new(
            book.clone(),
            metrics.clone(),
            notifier.as_ref().map(|n| n.sink()),
        );
        publisher.start_from(&was_firing, &pending, &initial);
        let (install_tx, install_rx) = mpsc::unbounded_channel::<notify_switch::Install>();
        let publish = publisher.spawn(committed_rx, install_rx);
        let (notify_tx, notify_rx) = mpsc::unbounded_channel();
        let switch = tokio::spawn(
            notify_switch::Switch {
                notifier,
                metrics: notify_metrics,
                install: install_tx,
                notifier_running,
                triage: triage.clone(),
            }
            .run(notify_rx),
        );

        let tick = tokio::spawn(shutdown::tick(
            events_tx.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        let base = FeedContext {
            events: events_tx,
            health: health.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
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
                shutdown.clone(),
            ));
        } else {
            // Nothing reloads: the notifier switch ends at once and hands its notifier back.
            drop(notify_tx);
        }

        let listen = listen.unwrap_or(cfg.http.listen);
        let http_metrics = metrics.clone();
        let app = router(
            AppState {
                book,
                metrics,
                health,
                prefixes: views,
                engine_commands: Some(commands_tx),
                triage,
                external_url: cfg.http.external_url.clone(),
            },
            guard,
        );
        let server = http_serve::serve(
            app,
            listen,
            &cfg.http,
            max_http_connections,
            &http_metrics,
            shutdown,
        )
        .await?;
        Ok(Self {
            switch,
            feeds,
            tick,
            server,
            engine_thread,
            store_thread,
            publish,
            engine_ended,
            store_ended,
        })
    }
}
