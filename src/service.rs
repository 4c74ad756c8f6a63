//! The running service: feeds → engine thread → alert sinks (alert book, metrics, notifier),
//! and the HTTP server beside them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::alerts::{AlertBook, AlertTransition, TransitionKind};
use crate::config::{Config, FeedKind};
use crate::engine::Engine;
use crate::feeds::{self, Batch, FeedContext};
use crate::health::Health;
use crate::http::{AppState, router};
use crate::metrics::Metrics;

/// Batches of events waiting for the engine; bounded so that a slow engine slows the feeds
/// down instead of growing memory.
pub const ENGINE_QUEUE_BATCHES: usize = 1024;

/// Resolved alerts kept in memory for `/alerts?state=resolved`.
pub const RESOLVED_HISTORY: usize = 10_000;

/// Receives every alert transition, in order.
pub trait AlertSink: Send {
    /// Called for each transition.
    fn deliver(&mut self, t: &AlertTransition);
}

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
        let a = &t.alert;
        let rule = a.rule.as_str();
        let sev = a.severity.as_str();
        let prefix = a.watched_prefix.to_string();
        match t.event {
            TransitionKind::Fired => {
                self.metrics
                    .alerts_fired
                    .with_label_values(&[rule, sev])
                    .inc();
                self.metrics
                    .alerts_firing
                    .with_label_values(&[rule, sev, &prefix])
                    .inc();
            }
            TransitionKind::Resolved => {
                self.metrics
                    .alerts_resolved
                    .with_label_values(&[rule, sev])
                    .inc();
                self.metrics
                    .alerts_firing
                    .with_label_values(&[rule, sev, &prefix])
                    .dec();
            }
            TransitionKind::Updated => {}
        }
    }
}

/// Options of `bgpsentry run` that override the config.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Listen here instead of the configured address.
    pub listen: Option<SocketAddr>,
}

/// Runs the service until SIGINT or SIGTERM.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<()> {
    let metrics = Metrics::new()?;
    let health = Health::default();
    let book = Arc::new(RwLock::new(AlertBook::new(RESOLVED_HISTORY)));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (events_tx, events_rx) = mpsc::channel::<Batch>(ENGINE_QUEUE_BATCHES);
    let (alerts_tx, mut alerts_rx) = mpsc::unbounded_channel::<AlertTransition>();

    metrics.watched_prefixes.set(cfg.prefixes.len() as i64);
    let engine = Engine::new(&cfg.prefixes);
    let engine_metrics = metrics.clone();
    let engine_thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || engine_loop(engine, events_rx, alerts_tx, engine_metrics))?;

    let mut sinks: Vec<Box<dyn AlertSink>> = vec![Box::new(BookSink {
        book: book.clone(),
        metrics: metrics.clone(),
    })];
    let notifier = crate::notify::Notifier::start(&cfg, &metrics.registry)?;
    if let Some(n) = &notifier {
        sinks.push(Box::new(n.sink()));
    }
    let sink_task = tokio::spawn(async move {
        while let Some(t) = alerts_rx.recv().await {
            for sink in sinks.iter_mut() {
                sink.deliver(&t);
            }
        }
    });

    let ctx = FeedContext {
        events: events_tx,
        health: health.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown_rx.clone(),
        prefixes: cfg.prefixes.iter().map(|p| p.prefix).collect(),
    };
    let mut feed_tasks = Vec::new();
    for feed in &cfg.feeds {
        feed_tasks.push(feeds::spawn(feed, ctx.clone()));
    }
    drop(ctx);

    let listen = opts.listen.unwrap_or(cfg.http.listen);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen}: {e}; set http.listen to a free address")
    })?;
    let bound = listener.local_addr()?;
    info!(address = %bound, "listening on http://{bound}");
    let app = router(AppState {
        book,
        metrics,
        health,
    });
    let mut http_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|s| *s).await;
            })
            .await
    });

    wait_for_signal().await;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    for task in feed_tasks {
        let _ = task.await;
    }
    match server.await {
        Ok(Err(e)) => error!("HTTP server failed: {e}"),
        Err(e) => error!("HTTP server task failed: {e}"),
        Ok(Ok(())) => {}
    }
    // The feeds have stopped and dropped their senders: the engine drains its queue and ends,
    // then every transition reaches the sinks.
    if engine_thread.join().is_err() {
        error!("the engine thread panicked");
    }
    let _ = sink_task.await;
    if let Some(n) = notifier {
        n.shutdown().await;
    }
    Ok(())
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

/// Per-prefix gauge labels last set, so labels of origins that went away are removed.
#[derive(Default)]
struct PrefixGauges {
    origins: HashMap<IpNet, Vec<String>>,
    upstreams: HashMap<IpNet, Vec<String>>,
}

fn engine_loop(
    mut engine: Engine,
    mut rx: mpsc::Receiver<Batch>,
    tx: mpsc::UnboundedSender<AlertTransition>,
    metrics: Metrics,
) {
    let mut gauges = PrefixGauges::default();
    for p in engine.watched_prefixes() {
        metrics
            .prefix_vantage_points
            .with_label_values(&[&p.prefix.to_string()])
            .set(0);
    }
    while let Some(batch) = rx.blocking_recv() {
        let before = engine.stats();
        for ev in &batch.events {
            engine.process(ev);
        }
        for t in engine.drain_transitions() {
            if tx.send(t).is_err() {
                return;
            }
        }
        let after = engine.stats();
        let feed = &*batch.feed;
        let count = |label: &str, n: u64| {
            if n > 0 {
                metrics.events.with_label_values(&[feed, label]).inc_by(n);
            }
        };
        count("announce", after.announcements - before.announcements);
        count("withdraw", after.withdrawals - before.withdrawals);
        count("peer_down", after.peer_downs - before.peer_downs);
        if after.matched > before.matched {
            metrics
                .events_matched
                .with_label_values(&[feed])
                .inc_by(after.matched - before.matched);
        }
        for prefix in engine.take_touched() {
            refresh_prefix_gauges(&engine, &metrics, &mut gauges, prefix);
        }
        metrics
            .vantage_points
            .set(engine.vantage_point_count() as i64);
        metrics.routes.set(engine.route_count() as i64);
        metrics
            .engine_batch_seconds
            .observe(batch.received.elapsed().as_secs_f64());
    }
}

fn refresh_prefix_gauges(engine: &Engine, m: &Metrics, gauges: &mut PrefixGauges, prefix: IpNet) {
    let view = engine.visibility_of(&prefix);
    let p = prefix.to_string();
    m.prefix_vantage_points
        .with_label_values(&[&p])
        .set(view.vantage_points as i64);
    let set = |vec: &prometheus::IntGaugeVec, old: &mut Vec<String>, now: &HashMap<u32, usize>| {
        let labels: Vec<String> = now.keys().map(|a| a.to_string()).collect();
        for gone in old.iter().filter(|o| !labels.contains(o)) {
            let _ = vec.remove_label_values(&[&p, gone]);
        }
        for (asn, n) in now {
            vec.with_label_values(&[&p, &asn.to_string()])
                .set(*n as i64);
        }
        *old = labels;
    };
    set(
        &m.prefix_origin_vantage_points,
        gauges.origins.entry(prefix).or_default(),
        &view.origins,
    );
    set(
        &m.prefix_upstream_vantage_points,
        gauges.upstreams.entry(prefix).or_default(),
        &view.upstreams,
    );
}

/// Names the feed kinds for health and logs.
pub fn kind_name(kind: FeedKind) -> &'static str {
    match kind {
        FeedKind::Mrt => "mrt",
        FeedKind::RisLive => "ris_live",
        FeedKind::Bgproutes => "bgproutes",
    }
}
