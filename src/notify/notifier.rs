//! Starting, reconfiguring and stopping the notifier: one delivery worker per channel, and
//! the [`Dispatcher`](super::dispatcher) task that feeds them through the outbox.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::channel::Channel;
use super::delivery::{RetryPolicy, Worker};
use super::dispatcher::{Dispatcher, Input, NotifierSink, Slot};
use super::metrics::NotifyMetrics;
use super::outbox::Outbox;
use super::{NotifyEvent, build_channels, open_outbox};
use crate::config::{ChannelKind, Config, NotifyConfig};

/// How long a stopping worker may take to finish the attempt it is in.
const WORKER_STOP: Duration = Duration::from_secs(15);

/// The running side of one channel's delivery worker.
struct WorkerHandle {
    kind: ChannelKind,
    wake: Arc<Notify>,
    repush: Option<mpsc::Sender<Vec<NotifyEvent>>>,
    /// Hands the worker a rebuilt channel and retry timing after a reload.
    update: watch::Sender<(Arc<Channel>, RetryPolicy)>,
    stop: watch::Sender<bool>,
    /// None until spawned (a worker replacing one of the same name waits for it to stop).
    join: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops the worker; one in the middle of an attempt gets the attempt's timeout to
    /// finish it (what it does not finish stays in the outbox).
    async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(w) = self.join {
            let abort = w.abort_handle();
            if tokio::time::timeout(WORKER_STOP, w).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// A handle on the running notifier.
pub struct Notifier {
    tx: Option<mpsc::UnboundedSender<Input>>,
    /// The dispatcher task.
    dispatcher: JoinHandle<()>,
    /// Workers by channel name.
    workers: HashMap<String, WorkerHandle>,
    metrics: NotifyMetrics,
    outbox: Arc<dyn Outbox>,
    /// Set when a stop bounds the routing: see [`Notifier::stop_routing_at`].
    route_until: Arc<OnceLock<Instant>>,
}

fn retry_policy(cfg: &NotifyConfig) -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_secs_f64(cfg.retry_initial_seconds),
        max: Duration::from_secs_f64(cfg.retry_max_seconds),
        max_age: Duration::from_secs(cfg.max_age_seconds),
    }
}

impl Notifier {
    /// Starts the notifier if any channel is configured: opens the outbox at `store.path`,
    /// builds the channels (reading their secrets) and starts their workers.
    pub fn start(cfg: &Config, registry: &prometheus::Registry) -> anyhow::Result<Option<Self>> {
        if cfg.notify.channels.is_empty() {
            return Ok(None);
        }
        Self::start_with(cfg, registry, open_outbox(cfg)?).map(Some)
    }

    /// Starts the notifier on a given outbox, registering its metrics on `registry`.
    pub fn start_with(
        cfg: &Config,
        registry: &prometheus::Registry,
        outbox: Arc<dyn Outbox>,
    ) -> anyhow::Result<Self> {
        let metrics = NotifyMetrics::new(registry)?;
        let channels = build_channels(cfg)?;
        Self::launch(
            cfg,
            metrics,
            channels,
            outbox,
            crate::triage::Triage::in_memory(),
        )
    }

    /// Starts the notifier with channels already built, on metrics registered already (the
    /// service registers them once and keeps them across reloads and restarts of the
    /// notifier). Zero channels is allowed: alert events are then handed over at once.
    /// Acknowledgements and silences are read from `triage`.
    pub fn launch(
        cfg: &Config,
        metrics: NotifyMetrics,
        channels: Vec<Channel>,
        outbox: Arc<dyn Outbox>,
        triage: crate::triage::Triage,
    ) -> anyhow::Result<Self> {
        let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
        let waiting = outbox.pending_by_channel()?;
        for (name, n) in waiting {
            if names.contains(&name) {
                info!(channel = %name, "{n} notifications waiting in the outbox from before; delivering them");
            } else {
                warn!(channel = %name, "{n} notifications in the outbox are for a channel that is no longer configured; they stay there");
            }
        }
        let policy = retry_policy(&cfg.notify);
        let mut workers = HashMap::new();
        let mut slots = Vec::new();
        for ch in channels {
            let ch = Arc::new(ch);
            let (handle, worker) = prepare_worker(&ch, policy, &outbox, &metrics);
            slots.push(Slot {
                ch: ch.clone(),
                wake: handle.wake.clone(),
                repush: handle.repush.clone(),
            });
            workers.insert(ch.name.clone(), (handle, worker));
        }
        let workers = workers
            .into_iter()
            .map(|(name, (mut handle, worker))| {
                metrics.init_channel(&name);
                handle.join = Some(tokio::spawn(worker.run()));
                (name, handle)
            })
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let window = Duration::from_secs_f64(cfg.notify.group_window_seconds);
        let mut dispatcher = Dispatcher::new(window, outbox.clone());
        dispatcher.set_triage(triage);
        let route_until = dispatcher.route_until();
        dispatcher.switch(window, slots);
        dispatcher.restore_told(outbox.told()?);
        let dispatcher = tokio::spawn(dispatcher.run(rx));
        Ok(Notifier {
            tx: Some(tx),
            dispatcher,
            workers,
            metrics,
            outbox,
            route_until,
        })
    }

    /// Switches to a new channel set (after a config reload) without losing anything:
    ///
    /// - a channel that stays (same name and kind) keeps its worker, its queue in the outbox,
    ///   its open grouping window and what it was told (re-notify, Alertmanager re-push), and
    ///   takes its new settings from its next attempt on;
    /// - a removed channel's grouping window goes to the outbox as on a stop, its worker
    ///   stops, its undelivered notifications stay in the outbox, and its metric series go;
    /// - a new channel (or one whose routing now takes more alerts) is told about the alerts
    ///   already firing that it takes, with a `reminder`, then follows them like the others.
    pub async fn reconfigure(&mut self, cfg: &Config, channels: Vec<Channel>) {
        let policy = retry_policy(&cfg.notify);
        let mut old = std::mem::take(&mut self.workers);
        let mut slots = Vec::new();
        let mut fresh = Vec::new();
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for ch in channels {
            let ch = Arc::new(ch);
            let name = ch.name.clone();
            let handle = match old.remove(&name) {
                Some(h) if h.kind == ch.kind => {
                    h.update.send_replace((ch.clone(), policy));
                    kept.push(name.clone());
                    h
                }
                other => {
                    // Same name, other kind: a different channel; the old worker goes first.
                    removed.extend(other.map(|h| (name.clone(), h)));
                    let (h, worker) = prepare_worker(&ch, policy, &self.outbox, &self.metrics);
                    fresh.push((name.clone(), worker));
                    h
                }
            };
            slots.push(Slot {
                ch,
                wake: handle.wake.clone(),
                repush: handle.repush.clone(),
            });
            self.workers.insert(name, handle);
        }
        removed.extend(old);
        if let Some(tx) = &self.tx {
            let (ack, done) = oneshot::channel();
            let window = Duration::from_secs_f64(cfg.notify.group_window_seconds);
            if tx.send(Input::Reconfigure { window, slots, ack }).is_ok() {
                let _ = done.await;
            }
        }
        let mut gone = Vec::new();
        for (name, handle) in removed {
            handle.stop().await;
            if !self.workers.contains_key(&name) {
                self.metrics.remove_channel(&name);
                gone.push(name);
            }
        }
        let mut added = Vec::new();
        for (name, worker) in fresh {
            self.metrics.init_channel(&name);
            if let Some(h) = self.workers.get_mut(&name) {
                h.join = Some(tokio::spawn(worker.run()));
            }
            added.push(name);
        }
        let ob = self.outbox.clone();
        if let Ok(Ok(waiting)) = tokio::task::spawn_blocking(move || ob.pending_by_channel()).await
        {
            for (name, n) in waiting {
                if gone.contains(&name) {
                    warn!(channel = %name, "{n} notifications in the outbox are for a channel that is no longer configured; they stay there");
                } else if added.contains(&name) {
                    info!(channel = %name, "{n} notifications waiting in the outbox from before; delivering them");
                }
            }
        }
        if added.is_empty() && gone.is_empty() {
            debug!(
                channels = kept.len(),
                "notification channels reloaded, none added or removed"
            );
        } else {
            info!(
                "notification channels reloaded: added [{}], removed [{}], kept [{}]",
                added.join(", "),
                gone.join(", "),
                kept.join(", ")
            );
        }
    }

    /// The number of configured channels.
    pub fn channel_count(&self) -> usize {
        self.workers.len()
    }

    /// A sink to register with the service.
    pub fn sink(&self) -> NotifierSink {
        NotifierSink::new(
            self.tx
                .clone()
                .unwrap_or_else(|| mpsc::unbounded_channel().0),
        )
    }

    /// Ends the grouping windows now: everything received is in the outbox when this returns.
    pub async fn flush(&self) {
        if let Some(tx) = &self.tx {
            let (ack, done) = oneshot::channel();
            if tx.send(Input::Flush(ack)).is_ok() {
                let _ = done.await;
            }
        }
    }

    /// Stops: what the sinks sent so far goes into the outbox, then the workers stop
    /// (undelivered notifications stay in the outbox for the next start); a delivery in
    /// flight gets the attempt's timeout to finish.
    pub async fn shutdown(self) {
        self.shutdown_within(WORKER_STOP).await
    }

    /// Bounds the routing for a stop: transitions still waiting to be routed at `at` are left
    /// unrouted (their alert events stay unmarked in the store, so the next start queues
    /// them), and the groups routed so far go to the outbox. The first call counts.
    pub fn stop_routing_at(&self, at: Instant) {
        let _ = self.route_until.set(at);
    }

    /// Stops as [`Notifier::shutdown`] does, but within about `grace`: routing stops after
    /// half of it at the latest (see [`Notifier::stop_routing_at`]), and deliveries still in
    /// flight at its end are abandoned (the outbox has them, and the next start sends them
    /// again under the same delivery id). The service calls this after the engine and the
    /// sinks have finished.
    pub async fn shutdown_within(mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        // The other half is for the groups routed so far to reach the outbox.
        self.stop_routing_at(Instant::now() + grace / 2);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Input::Stop);
        }
        // The grouping windows go to the outbox whatever the grace: the hand-over of the
        // alert events routed so far, and what the channels were told, are recorded with them.
        if let Err(e) = (&mut self.dispatcher).await {
            error!("the notification dispatcher failed: {e}");
        }
        for h in self.workers.values() {
            let _ = h.stop.send(true);
        }
        for (name, h) in self.workers {
            let Some(w) = h.join else { continue };
            let abort = w.abort_handle();
            if tokio::time::timeout_at(deadline, w).await.is_err() {
                abort.abort();
                info!(channel = %name, "stopping: a delivery still in flight is abandoned; the outbox keeps it for the next start");
            }
        }
    }
}

/// A worker for a channel, not yet spawned, and its handle.
fn prepare_worker(
    ch: &Arc<Channel>,
    policy: RetryPolicy,
    outbox: &Arc<dyn Outbox>,
    metrics: &NotifyMetrics,
) -> (WorkerHandle, Worker) {
    let wake = Arc::new(Notify::new());
    // Re-pushes go through the channel's worker, so that they are ordered with its
    // deliveries: a re-push never lands after the resolution of the same alert.
    let (repush_tx, repush_rx) = match ch.alertmanager() {
        Some(_) => {
            let (tx, rx) = mpsc::channel(1);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let (stop, stop_rx) = watch::channel(false);
    let (update, update_rx) = watch::channel((ch.clone(), policy));
    let worker = Worker {
        channel: ch.clone(),
        outbox: outbox.clone(),
        metrics: metrics.clone(),
        policy,
        wake: wake.clone(),
        shutdown: stop_rx,
        repush: repush_rx,
        resolved: HashMap::new(),
        updates: Some(update_rx),
    };
    let handle = WorkerHandle {
        kind: ch.kind,
        wake,
        repush: repush_tx,
        update,
        stop,
        join: None,
    };
    (handle, worker)
}
