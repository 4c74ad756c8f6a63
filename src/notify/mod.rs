//! The notifier: routes alert transitions to channels (email, webhook, chat, Alertmanager),
//! groups what arrives together, and delivers through a durable outbox with retries.
//!
//! Flow: [`NotifierSink`] (an [`AlertSink`]) → router task (routing, grouping window,
//! re-notify, Alertmanager re-push) → outbox → one [`dispatch::Worker`] per channel.

pub mod alertmanager;
pub mod channel;
pub mod chat;
pub mod dispatch;
pub mod email;
pub mod metrics;
pub mod outbox;
pub mod outbox_sqlite;
pub mod template;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::alerts::{Alert, AlertSink, AlertTransition, Rule, Severity, TransitionKind};
use crate::config::{ChannelConfig, ChannelKind, Config, NotifyConfig};
use channel::{Channel, Sender};
use dispatch::{RetryPolicy, Worker};
use metrics::NotifyMetrics;
use outbox::{HandedOver, NewNotification, Outbox};

/// What a notification tells about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The alert started.
    Fired,
    /// The alert ended.
    Resolved,
    /// The alert is still firing (re-notify interval).
    Reminder,
}

impl EventKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fired => "fired",
            EventKind::Resolved => "resolved",
            EventKind::Reminder => "reminder",
        }
    }
}

/// One alert event in a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyEvent {
    /// What happened.
    pub event: EventKind,
    /// The alert as it was then.
    pub alert: Alert,
}

/// Wall-clock Unix milliseconds (the outbox's clock, which survives restarts).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new delivery id: 128 random bits in hex.
pub fn new_delivery_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Which alerts a channel takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routing {
    /// Any of these groups (empty = all).
    pub groups: Vec<String>,
    /// These rules (empty = all).
    pub rules: Vec<Rule>,
    /// These severities (empty = all).
    pub severities: Vec<Severity>,
    /// Send resolutions.
    pub send_resolved: bool,
    /// Remind about alerts still firing after this long (None = never).
    pub renotify: Option<Duration>,
}

impl Routing {
    /// The channel's routing, with the section's defaults.
    pub fn from_config(cfg: &ChannelConfig, notify: &NotifyConfig) -> Self {
        let renotify = cfg.renotify_seconds.unwrap_or(notify.renotify_seconds);
        Routing {
            groups: cfg.groups.clone(),
            rules: cfg.rules.clone(),
            severities: cfg.severities.clone(),
            send_resolved: cfg.send_resolved.unwrap_or(notify.send_resolved),
            renotify: (renotify > 0).then(|| Duration::from_secs(renotify)),
        }
    }

    /// Whether the channel takes this alert.
    pub fn accepts(&self, a: &Alert) -> bool {
        (self.groups.is_empty() || a.groups.iter().any(|g| self.groups.contains(g)))
            && (self.rules.is_empty() || self.rules.contains(&a.rule))
            && (self.severities.is_empty() || self.severities.contains(&a.severity))
    }
}

enum Input {
    Transition(Box<AlertTransition>),
    Flush(oneshot::Sender<()>),
    /// Alerts already firing when the notifier starts or takes over; with `tell`, channels
    /// that take them are told now (see [`NotifierSink::already_firing`]).
    Firing {
        alerts: Vec<Alert>,
        tell: bool,
    },
    /// A new channel set (config reload); acknowledged once windows of removed channels are
    /// in the outbox.
    Reconfigure {
        window: Duration,
        slots: Vec<Slot>,
        ack: oneshot::Sender<()>,
    },
    /// Flush and end, even if sinks are still around.
    Stop,
}

/// A channel as the router sees it: where to wake its worker and send its re-pushes.
struct Slot {
    ch: Arc<Channel>,
    wake: Arc<Notify>,
    repush: Option<mpsc::Sender<Vec<NotifyEvent>>>,
}

/// The [`AlertSink`] that hands transitions to the notifier.
pub struct NotifierSink {
    tx: mpsc::UnboundedSender<Input>,
}

impl AlertSink for NotifierSink {
    fn deliver(&mut self, t: &AlertTransition) {
        // If the notifier has stopped there is nobody left to tell; the service is ending.
        let _ = self.tx.send(Input::Transition(Box::new(t.clone())));
    }
}

impl NotifierSink {
    /// Tells the notifier which alerts are firing already, before any transition that
    /// follows. With `tell` (the first channels, added by a reload) every channel that takes
    /// one of them gets a `reminder` now: the alert is still firing, it did not just fire.
    /// Without (alerts restored at start) the channels that take them are taken to have been
    /// told before the restart. Either way reminders, Alertmanager re-pushes and resolutions
    /// follow for them, and channels added later learn about them.
    pub fn already_firing(&self, alerts: Vec<Alert>, tell: bool) {
        let _ = self.tx.send(Input::Firing { alerts, tell });
    }
}

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
    router: JoinHandle<()>,
    /// Workers by channel name.
    workers: HashMap<String, WorkerHandle>,
    metrics: NotifyMetrics,
    outbox: Arc<dyn Outbox>,
    /// Set when a stop bounds the routing: see [`Router::route_until`].
    route_until: Arc<OnceLock<Instant>>,
}

/// The base of links to alerts: `http.external_url`, else the listen address.
pub fn base_url(cfg: &Config) -> String {
    match &cfg.http.external_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", cfg.http.listen),
    }
}

/// Builds the configured channels, reading their secrets. The error names the channel and
/// what failed (a variable or file), never a secret's value.
pub fn build_channels(cfg: &Config) -> Result<Vec<Channel>, String> {
    let base = base_url(cfg);
    cfg.notify
        .channels
        .iter()
        .map(|c| Channel::build(c, &cfg.notify, &base))
        .collect()
}

/// Opens the durable outbox in the store's file (`store.path`).
pub fn open_outbox(cfg: &Config) -> anyhow::Result<Arc<dyn Outbox>> {
    let outbox = outbox_sqlite::SqliteOutbox::open(&cfg.store_file(), now_ms())?;
    Ok(Arc::new(outbox))
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
        let channels = build_channels(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
        Self::launch(cfg, metrics, channels, outbox)
    }

    /// Starts the notifier with channels already built, on metrics registered already (the
    /// service registers them once and keeps them across reloads and restarts of the
    /// notifier). Zero channels is allowed: alert events are then handed over at once.
    pub fn launch(
        cfg: &Config,
        metrics: NotifyMetrics,
        channels: Vec<Channel>,
        outbox: Arc<dyn Outbox>,
    ) -> anyhow::Result<Self> {
        let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
        let waiting = outbox
            .pending_by_channel()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
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
        let mut router = Router {
            window: Duration::from_secs_f64(cfg.notify.group_window_seconds),
            channels: Vec::new(),
            firing: HashMap::new(),
            outbox: outbox.clone(),
            inflight: HashMap::new(),
            handed: Vec::new(),
            route_until: Arc::new(OnceLock::new()),
        };
        let route_until = router.route_until.clone();
        router.switch(router.window, slots);
        router.restore_told(outbox.told().map_err(|e| anyhow::anyhow!("{e}"))?);
        let router = tokio::spawn(router.run(rx));
        Ok(Notifier {
            tx: Some(tx),
            router,
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
        NotifierSink {
            tx: self
                .tx
                .clone()
                .unwrap_or_else(|| mpsc::unbounded_channel().0),
        }
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
        if let Err(e) = (&mut self.router).await {
            error!("the notification router failed: {e}");
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
    let (repush_tx, repush_rx) = match &ch.sender {
        Sender::Alertmanager(_) => {
            let (tx, rx) = mpsc::channel(1);
            (Some(tx), Some(rx))
        }
        _ => (None, None),
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

struct RouteState {
    ch: Arc<Channel>,
    wake: Arc<Notify>,
    /// Events waiting for the grouping window to close.
    group: Vec<NotifyEvent>,
    deadline: Option<Instant>,
    /// Alert id → when this channel last told about it (for re-notify).
    last_told: HashMap<String, Instant>,
    /// Alert id → Unix ms of its first push (Alertmanager's resolution hold).
    am_first_push: HashMap<String, i64>,
    next_repush: Option<Instant>,
    /// Hands re-pushes to the channel's worker (Alertmanager only).
    repush: Option<mpsc::Sender<Vec<NotifyEvent>>>,
    /// Removed by a reload: takes nothing new, and goes once its window is in the outbox.
    retired: bool,
}

impl RouteState {
    fn new(s: Slot) -> Self {
        RouteState {
            next_repush: match &s.ch.sender {
                Sender::Alertmanager(am) => Some(Instant::now() + am.repush),
                _ => None,
            },
            ch: s.ch,
            wake: s.wake,
            repush: s.repush,
            group: Vec::new(),
            deadline: None,
            last_told: HashMap::new(),
            am_first_push: HashMap::new(),
            retired: false,
        }
    }
}

struct Router {
    window: Duration,
    channels: Vec<RouteState>,
    /// Firing alerts by id, as last updated.
    firing: HashMap<String, Alert>,
    outbox: Arc<dyn Outbox>,
    /// Alert event → channel groups that hold it and are not yet in the outbox.
    inflight: HashMap<(String, &'static str), usize>,
    /// Alert events fully queued (or routed nowhere) whose hand-over is not yet recorded.
    handed: Vec<HandedOver>,
    /// Set by a stop: inputs still waiting after this instant are not routed. What was
    /// routed is then a prefix of the transitions, so the store's unmarked alert events are
    /// exactly the rest, and the next start queues them in order.
    route_until: Arc<OnceLock<Instant>>,
}

/// How often the router looks at re-notify and re-push timers.
const TICK: Duration = Duration::from_millis(500);

impl Router {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        // A fixed schedule, so that a steady stream of transitions cannot postpone the
        // timers forever.
        let mut next_tick = Instant::now() + TICK;
        loop {
            if self.route_until.get().is_some_and(|t| Instant::now() >= *t) {
                self.stop_routing(rx).await;
                return;
            }
            let mut wake_at = next_tick;
            for c in &self.channels {
                if let Some(d) = c.deadline {
                    wake_at = wake_at.min(d);
                }
            }
            tokio::select! {
                input = rx.recv() => match input {
                    Some(Input::Transition(t)) => self.transition(*t),
                    Some(Input::Flush(ack)) => {
                        self.flush(true).await;
                        let _ = ack.send(());
                    }
                    Some(Input::Firing { alerts, tell }) => self.already_firing(alerts, tell),
                    Some(Input::Reconfigure { window, slots, ack }) => {
                        self.switch(window, slots);
                        // Windows of removed channels are due now.
                        self.flush(false).await;
                        let _ = ack.send(());
                    }
                    Some(Input::Stop) | None => {
                        self.flush(true).await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(wake_at.into()) => {
                    if Instant::now() >= next_tick {
                        self.timers();
                        next_tick = Instant::now() + TICK;
                    }
                    self.flush(false).await;
                }
            }
        }
    }

    /// Ends a stop whose routing time is up: what is still waiting is dropped unrouted (the
    /// store keeps its alert events unmarked for the next start), and the groups routed so far
    /// go to the outbox.
    async fn stop_routing(&mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        rx.close();
        let mut left = 0u64;
        while let Ok(input) = rx.try_recv() {
            if matches!(input, Input::Transition(_)) {
                left += 1;
            }
        }
        if left > 0 {
            warn!(
                "stopping: {left} alert transitions were not routed in time; the next start \
                 queues their notifications"
            );
        }
        self.flush(true).await;
    }

    fn add(&mut self, i: usize, ev: NotifyEvent) {
        let c = &mut self.channels[i];
        if c.group.is_empty() {
            c.deadline = Some(Instant::now() + self.window);
        }
        c.group.push(ev);
    }

    fn transition(&mut self, t: AlertTransition) {
        let a = t.alert;
        match t.event {
            TransitionKind::Updated => {
                self.firing.insert(a.id.clone(), a);
            }
            TransitionKind::Fired => {
                let now = Instant::now();
                let mut taken = 0;
                for i in 0..self.channels.len() {
                    if !self.channels[i].retired && self.channels[i].ch.routing.accepts(&a) {
                        taken += 1;
                        self.channels[i].last_told.insert(a.id.clone(), now);
                        self.add(
                            i,
                            NotifyEvent {
                                event: EventKind::Fired,
                                alert: a.clone(),
                            },
                        );
                    }
                }
                self.track(&a.id, "fired", taken);
                self.firing.insert(a.id.clone(), a);
            }
            TransitionKind::Resolved => {
                self.firing.remove(&a.id);
                let mut taken = 0;
                for i in 0..self.channels.len() {
                    let c = &mut self.channels[i];
                    let told = c.last_told.remove(&a.id).is_some();
                    if !(told && c.ch.routing.send_resolved) {
                        c.am_first_push.remove(&a.id);
                    }
                    if told && c.ch.routing.send_resolved && c.ch.routing.accepts(&a) {
                        taken += 1;
                        self.add(
                            i,
                            NotifyEvent {
                                event: EventKind::Resolved,
                                alert: a.clone(),
                            },
                        );
                    }
                }
                self.track(&a.id, "resolved", taken);
            }
        }
    }

    /// Takes a new channel set: channels that stay (same name and kind) keep their window
    /// and what they were told; removed ones retire once their window is in the outbox.
    fn switch(&mut self, window: Duration, slots: Vec<Slot>) {
        self.window = window;
        let now = Instant::now();
        let mut old = std::mem::take(&mut self.channels);
        let mut rerouted = Vec::new();
        for s in slots {
            let same = old
                .iter()
                .position(|c| !c.retired && c.ch.name == s.ch.name && c.ch.kind == s.ch.kind);
            let state = match same {
                Some(p) => {
                    let mut st = old.remove(p);
                    rerouted.push(st.ch.routing != s.ch.routing);
                    st.ch = s.ch;
                    st.wake = s.wake;
                    st.repush = s.repush;
                    st
                }
                None => {
                    rerouted.push(true);
                    RouteState::new(s)
                }
            };
            self.channels.push(state);
        }
        for mut st in old {
            // What a removed channel's window holds was routed to it and goes to the outbox,
            // as on a stop; it is told nothing more.
            if st.group.is_empty() {
                continue;
            }
            st.retired = true;
            st.deadline = Some(st.deadline.map_or(now, |d| d.min(now)));
            st.last_told.clear();
            st.am_first_push.clear();
            st.next_repush = None;
            st.repush = None;
            self.channels.push(st);
        }
        for (i, changed) in rerouted.into_iter().enumerate() {
            if changed {
                self.reroute(i);
            }
        }
    }

    /// After a channel's routing changed (or it is new): it forgets alerts it no longer
    /// takes (no reminders, re-pushes or resolutions for them) and is told, with a
    /// `reminder`, about firing alerts it now takes and was not told about.
    fn reroute(&mut self, i: usize) {
        let now = Instant::now();
        let firing = &self.firing;
        let c = &mut self.channels[i];
        let routing = &c.ch.routing;
        let dropped: Vec<String> = c
            .last_told
            .keys()
            .filter(|id| firing.get(*id).is_some_and(|a| !routing.accepts(a)))
            .cloned()
            .collect();
        for id in &dropped {
            c.last_told.remove(id);
            c.am_first_push.remove(id);
        }
        let mut missing: Vec<Alert> = firing
            .values()
            .filter(|a| routing.accepts(a) && !c.last_told.contains_key(&a.id))
            .cloned()
            .collect();
        missing.sort_by(|a, b| a.fired_at.cmp(&b.fired_at).then_with(|| a.id.cmp(&b.id)));
        for a in missing {
            self.channels[i].last_told.insert(a.id.clone(), now);
            self.add(
                i,
                NotifyEvent {
                    event: EventKind::Reminder,
                    alert: a,
                },
            );
        }
    }

    /// Learns, from the outbox, which alerts each channel was told about before this notifier
    /// started: a resolution that a crash left waiting in the store is queued again at start,
    /// and must reach the channels that were told its alert fired, although the alert is no
    /// longer among those restored as firing.
    fn restore_told(&mut self, told: Vec<(String, String)>) {
        let now = Instant::now();
        for (channel, alert_id) in told {
            if let Some(c) = self
                .channels
                .iter_mut()
                .find(|c| !c.retired && c.ch.name == channel)
            {
                c.last_told.entry(alert_id).or_insert(now);
            }
        }
    }

    /// Learns alerts that were firing before this notifier saw them; with `tell`, channels
    /// that take them hear about them now, else they are taken to have heard before.
    fn already_firing(&mut self, alerts: Vec<Alert>, tell: bool) {
        let now = Instant::now();
        for a in alerts {
            if !tell {
                for c in self.channels.iter_mut().filter(|c| !c.retired) {
                    if c.ch.routing.accepts(&a) {
                        c.last_told.entry(a.id.clone()).or_insert(now);
                    }
                }
            }
            self.firing.insert(a.id.clone(), a);
        }
        if tell {
            for i in 0..self.channels.len() {
                if !self.channels[i].retired {
                    self.reroute(i);
                }
            }
        }
    }

    /// Notes how many channel groups took an alert event; one taken by none is handed over
    /// at once.
    fn track(&mut self, alert_id: &str, event: &'static str, groups: usize) {
        if groups == 0 {
            self.handed.push(HandedOver {
                alert_id: alert_id.to_string(),
                event,
            });
        } else {
            *self
                .inflight
                .entry((alert_id.to_string(), event))
                .or_default() += groups;
        }
    }

    /// Re-notify reminders and Alertmanager re-pushes.
    fn timers(&mut self) {
        let now = Instant::now();
        for i in 0..self.channels.len() {
            if let Some(every) = self.channels[i].ch.routing.renotify {
                let due: Vec<String> = self.channels[i]
                    .last_told
                    .iter()
                    .filter(|(_, at)| now.duration_since(**at) >= every)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in due {
                    self.channels[i].last_told.insert(id.clone(), now);
                    if let Some(a) = self.firing.get(&id).cloned() {
                        self.add(
                            i,
                            NotifyEvent {
                                event: EventKind::Reminder,
                                alert: a,
                            },
                        );
                    }
                }
            }
            let c = &mut self.channels[i];
            if let (Some(at), Sender::Alertmanager(am)) = (c.next_repush, &c.ch.sender)
                && now >= at
            {
                c.next_repush = Some(now + am.repush);
                // Alerts still waiting in the grouping window are pushed when it closes.
                let pending: Vec<&str> = c.group.iter().map(|e| e.alert.id.as_str()).collect();
                let events: Vec<NotifyEvent> = c
                    .last_told
                    .keys()
                    .filter(|id| !pending.contains(&id.as_str()))
                    .filter_map(|id| self.firing.get(id))
                    .map(|a| NotifyEvent {
                        event: EventKind::Fired,
                        alert: a.clone(),
                    })
                    .collect();
                if !events.is_empty()
                    && let Some(tx) = &c.repush
                {
                    // A re-push is state, not a notification: if it fails, or the worker is
                    // still busy with the previous one, the next one covers it; so it does
                    // not go through the outbox.
                    if tx.try_send(events).is_err() {
                        debug!(channel = %c.ch.name, "previous re-push still pending; skipping one");
                    }
                }
            }
        }
    }

    /// Turns closed groups (all groups if `all`) into queued notifications.
    async fn flush(&mut self, all: bool) {
        let now = Instant::now();
        for i in 0..self.channels.len() {
            let c = &mut self.channels[i];
            let due = c.deadline.is_some_and(|d| all || d <= now);
            if !due || c.group.is_empty() {
                continue;
            }
            c.deadline = None;
            let events = std::mem::take(&mut c.group);
            let kept = events.clone();
            // Alert events this group completes: no other channel group still holds them.
            let mut handed: Vec<HandedOver> = std::mem::take(&mut self.handed);
            let mut completes: Vec<(String, &'static str)> = Vec::new();
            for e in &events {
                let kind = match e.event {
                    EventKind::Fired => "fired",
                    EventKind::Resolved => "resolved",
                    EventKind::Reminder => continue,
                };
                let key = (e.alert.id.clone(), kind);
                if self.inflight.get(&key) == Some(&1) {
                    handed.push(HandedOver {
                        alert_id: key.0.clone(),
                        event: kind,
                    });
                }
                completes.push(key);
            }
            let created = now_ms();
            // (not before, events) per notification.
            let mut batches: Vec<(i64, Vec<NotifyEvent>)> = Vec::new();
            if !c.ch.groups_events() {
                batches.extend(events.into_iter().map(|e| (created, vec![e])));
            } else if let Sender::Alertmanager(am) = &c.ch.sender {
                let hold = am.hold_resolved.as_millis() as i64;
                let mut now_batch = Vec::new();
                for e in events {
                    match e.event {
                        EventKind::Fired | EventKind::Reminder => {
                            c.am_first_push.entry(e.alert.id.clone()).or_insert(created);
                            now_batch.push(e);
                        }
                        EventKind::Resolved => {
                            let first = c.am_first_push.remove(&e.alert.id).unwrap_or(created);
                            let not_before = first + hold;
                            if not_before > created {
                                batches.push((not_before, vec![e]));
                            } else {
                                now_batch.push(e);
                            }
                        }
                    }
                }
                if !now_batch.is_empty() {
                    batches.insert(0, (created, now_batch));
                }
            } else {
                // Keep a message readable: at most this many alerts in one.
                for chunk in events.chunks(200) {
                    batches.push((created, chunk.to_vec()));
                }
            }
            let name = c.ch.name.clone();
            let ob = self.outbox.clone();
            let count = batches.len();
            // One durable write for the whole group, with the hand-over of what it completes.
            let handed_copy = handed.clone();
            let stored = tokio::task::spawn_blocking(move || {
                let ids: Vec<String> = batches.iter().map(|_| new_delivery_id()).collect();
                let rows: Vec<NewNotification<'_>> = batches
                    .iter()
                    .zip(&ids)
                    .map(|((not_before, events), id)| NewNotification {
                        delivery_id: id,
                        channel: &name,
                        created_ms: created,
                        not_before_ms: *not_before,
                        events,
                    })
                    .collect();
                ob.enqueue_group(&rows, &handed_copy)
            })
            .await;
            let failure = match stored {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            match failure {
                None => {
                    for key in completes {
                        if let Some(n) = self.inflight.get_mut(&key) {
                            *n -= 1;
                            if *n == 0 {
                                self.inflight.remove(&key);
                            }
                        }
                    }
                }
                Some(e) => {
                    // Nothing is dropped: the group waits for the next attempt (and the alert
                    // events stay unhanded in the store, so a restart offers them again).
                    let c = &mut self.channels[i];
                    error!(channel = %c.ch.name, "{count} notifications could not be queued, retrying: {e}");
                    let mut back = kept;
                    back.append(&mut c.group);
                    c.group = back;
                    c.deadline = Some(Instant::now() + Duration::from_secs(1));
                    self.handed.extend(handed);
                    continue;
                }
            }
            self.channels[i].wake.notify_one();
        }
        if !self.handed.is_empty() {
            // Events routed to no channel: record their hand-over on their own.
            let handed = std::mem::take(&mut self.handed);
            let ob = self.outbox.clone();
            let copy = handed.clone();
            let ok = tokio::task::spawn_blocking(move || ob.enqueue_group(&[], &copy))
                .await
                .is_ok_and(|r| r.is_ok());
            if !ok {
                self.handed = handed;
            }
        }
        self.channels.retain(|c| !(c.retired && c.group.is_empty()));
    }
}

/// A made-up alert for `notify test`.
pub fn sample_alert(cfg: &Config) -> Alert {
    use crate::alerts::{AlertState, VpSample};
    use crate::event::Timestamp;
    let watched = cfg.prefixes.first();
    let prefix = watched
        .map(|p| p.prefix)
        .unwrap_or_else(|| "192.0.2.0/24".parse().unwrap_or_default());
    let now = Timestamp::now();
    let expected = watched
        .map(|p| p.origins.clone())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| vec![64500]);
    Alert {
        id: format!("test-{}", &new_delivery_id()[..16]),
        rule: Rule::OriginHijack,
        severity: Severity::Critical,
        state: AlertState::Firing,
        prefix,
        watched_prefix: prefix,
        description: "TEST from `bgpsentry notify test`; not a real incident".into(),
        origin: Some(64511),
        upstream: None,
        expected_origins: expected.clone(),
        expected_upstreams: Vec::new(),
        vantage_points: 2,
        peak_vantage_points: 2,
        sample: vec![
            VpSample {
                vantage_point: "test/rrc00/AS64496/192.0.2.1".into(),
                as_path: "64496 64510 64511".into(),
                seen_at: now,
                communities: Vec::new(),
            },
            VpSample {
                vantage_point: "test/rrc01/AS64497/192.0.2.2".into(),
                as_path: "64497 64511".into(),
                seen_at: now,
                communities: Vec::new(),
            },
        ],
        groups: watched.map(|p| p.groups.clone()).unwrap_or_default(),
        first_seen: now,
        fired_at: now,
        last_seen: now,
        resolved_at: None,
        detail: Default::default(),
    }
}
