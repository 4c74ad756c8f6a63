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
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::alerts::{Alert, AlertSink, AlertTransition, Rule, Severity, TransitionKind};
use crate::config::{ChannelConfig, Config, NotifyConfig};
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
#[derive(Debug, Clone, Default)]
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
    /// Flush and end, even if sinks are still around.
    Stop,
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

/// A handle on the running notifier.
pub struct Notifier {
    tx: Option<mpsc::UnboundedSender<Input>>,
    router: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

/// The base of links to alerts: `http.external_url`, else the listen address.
pub fn base_url(cfg: &Config) -> String {
    match &cfg.http.external_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", cfg.http.listen),
    }
}

impl Notifier {
    /// Starts the notifier if any channel is configured: opens the outbox at `store.path`,
    /// builds the channels (reading their secrets) and starts their workers.
    pub fn start(cfg: &Config, registry: &prometheus::Registry) -> anyhow::Result<Option<Self>> {
        if cfg.notify.channels.is_empty() {
            return Ok(None);
        }
        let outbox =
            outbox_sqlite::SqliteOutbox::open(&cfg.resolve_path(&cfg.store.path), now_ms())?;
        Self::start_with(cfg, registry, Arc::new(outbox)).map(Some)
    }

    /// Starts the notifier on a given outbox.
    pub fn start_with(
        cfg: &Config,
        registry: &prometheus::Registry,
        outbox: Arc<dyn Outbox>,
    ) -> anyhow::Result<Self> {
        let metrics = NotifyMetrics::new(registry)?;
        let base = base_url(cfg);
        let mut channels = Vec::new();
        for c in &cfg.notify.channels {
            let ch = Channel::build(c, &cfg.notify, &base).map_err(|e| anyhow::anyhow!("{e}"))?;
            metrics.init_channel(&ch.name);
            channels.push(Arc::new(ch));
        }
        match outbox.pending_by_channel() {
            Ok(list) => {
                for (name, n) in list {
                    if channels.iter().any(|c| c.name == name) {
                        info!(channel = %name, "{n} notifications waiting in the outbox from before; delivering them");
                    } else {
                        warn!(channel = %name, "{n} notifications in the outbox are for a channel that is no longer configured; they stay there");
                    }
                }
            }
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        }
        let policy = RetryPolicy {
            initial: Duration::from_secs_f64(cfg.notify.retry_initial_seconds),
            max: Duration::from_secs_f64(cfg.notify.retry_max_seconds),
            max_age: Duration::from_secs(cfg.notify.max_age_seconds),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut wakes = Vec::new();
        let mut workers = Vec::new();
        let mut repushers = Vec::new();
        for ch in &channels {
            let wake = Arc::new(Notify::new());
            wakes.push(wake.clone());
            // Re-pushes go through the channel's worker, so that they are ordered with its
            // deliveries: a re-push never lands after the resolution of the same alert.
            let (repush_tx, repush_rx) = match &ch.sender {
                Sender::Alertmanager(_) => {
                    let (tx, rx) = mpsc::channel(1);
                    (Some(tx), Some(rx))
                }
                _ => (None, None),
            };
            repushers.push(repush_tx);
            workers.push(tokio::spawn(
                Worker {
                    channel: ch.clone(),
                    outbox: outbox.clone(),
                    metrics: metrics.clone(),
                    policy,
                    wake,
                    shutdown: shutdown_rx.clone(),
                    repush: repush_rx,
                    resolved: HashMap::new(),
                }
                .run(),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let router = Router {
            window: Duration::from_secs_f64(cfg.notify.group_window_seconds),
            channels: channels
                .into_iter()
                .zip(wakes)
                .zip(repushers)
                .map(|((ch, wake), repush)| RouteState {
                    repush,
                    next_repush: match &ch.sender {
                        Sender::Alertmanager(am) => Some(Instant::now() + am.repush),
                        _ => None,
                    },
                    ch,
                    wake,
                    group: Vec::new(),
                    deadline: None,
                    last_told: HashMap::new(),
                    am_first_push: HashMap::new(),
                })
                .collect(),
            firing: HashMap::new(),
            outbox,
            inflight: HashMap::new(),
            handed: Vec::new(),
        };
        let router = tokio::spawn(router.run(rx));
        Ok(Notifier {
            tx: Some(tx),
            router,
            workers,
            shutdown,
        })
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
    /// (undelivered notifications stay in the outbox for the next start). The service calls
    /// this after the engine and the sinks have finished.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Input::Stop);
        }
        if let Err(e) = (&mut self.router).await {
            error!("the notification router failed: {e}");
        }
        let _ = self.shutdown.send(true);
        for w in self.workers {
            // A worker in the middle of an attempt gets the attempt's timeout to finish it.
            let abort = w.abort_handle();
            if tokio::time::timeout(Duration::from_secs(15), w)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
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
}

/// How often the router looks at re-notify and re-push timers.
const TICK: Duration = Duration::from_millis(500);

impl Router {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        // A fixed schedule, so that a steady stream of transitions cannot postpone the
        // timers forever.
        let mut next_tick = Instant::now() + TICK;
        loop {
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
                    if self.channels[i].ch.routing.accepts(&a) {
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
