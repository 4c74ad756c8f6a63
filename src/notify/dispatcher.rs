//! The dispatcher: the task between the alert sinks and the outbox. It decides which
//! channels take each alert event, holds events in a channel's grouping window, sends
//! reminders and Alertmanager re-pushes, and writes each closed window to the outbox together
//! with the hand-over of the alert events it completes.
//!
//! It reads the operators' triage ([`Triage`]): an acknowledged alert gets no reminders, and
//! its events say who acknowledged it; a silenced alert is told to no channel (its
//! resolution still reaches channels told it fired before the silence), and when the silence
//! ends, the channels that take it are told it is still firing. Alertmanager channels are the
//! exception: Alertmanager keeps its own state and silences, so it gets every firing alert,
//! silenced or not, with the acknowledgement as annotations.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{debug, error, warn};

use super::channel::Channel;
use super::outbox::{HandedOver, NewNotification, Outbox};
use super::{EventKind, NotifyEvent, new_delivery_id, now_ms};
use crate::alerts::{Alert, AlertSink, AlertTransition, TransitionKind};
use crate::event::Timestamp;
use crate::triage::Triage;

/// What the dispatcher task is asked to do, in order.
pub(super) enum Input {
    /// An alert fired, changed or resolved.
    Transition(Box<AlertTransition>),
    /// Close every grouping window now; acknowledged once they are in the outbox.
    Flush(oneshot::Sender<()>),
    /// Alerts already firing when the notifier starts or takes over; with `tell`, channels
    /// that take them are told now (see [`NotifierSink::already_firing`]).
    Firing { alerts: Vec<Alert>, tell: bool },
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

/// A channel as the dispatcher sees it: where to wake its worker and send its re-pushes.
pub(super) struct Slot {
    /// The channel.
    pub(super) ch: Arc<Channel>,
    /// Poked when a notification for it is in the outbox.
    pub(super) wake: Arc<Notify>,
    /// Hands re-pushes to its worker (Alertmanager only).
    pub(super) repush: Option<mpsc::Sender<Vec<NotifyEvent>>>,
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
    pub(super) fn new(tx: mpsc::UnboundedSender<Input>) -> Self {
        NotifierSink { tx }
    }

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

/// One channel's delivery state in the dispatcher: its open grouping window and what it
/// was told.
struct DeliveryState {
    ch: Arc<Channel>,
    wake: Arc<Notify>,
    /// Events waiting for the grouping window to close.
    group: Vec<NotifyEvent>,
    deadline: Option<Instant>,
    /// Alert id → when this channel last told about it (for re-notify).
    last_told: HashMap<String, Instant>,
    /// Alert id → Unix ms of its first push (Alertmanager's resolution hold).
    first_push: HashMap<String, i64>,
    next_repush: Option<Instant>,
    /// Hands re-pushes to the channel's worker (Alertmanager only).
    repush: Option<mpsc::Sender<Vec<NotifyEvent>>>,
    /// Removed by a reload: takes nothing new, and goes once its window is in the outbox.
    retired: bool,
}

impl DeliveryState {
    /// Whether silences apply to this channel (all but Alertmanager, which has its own).
    fn heeds_silences(&self) -> bool {
        self.ch.alertmanager().is_none()
    }
}

impl DeliveryState {
    fn new(s: Slot) -> Self {
        DeliveryState {
            next_repush: s.ch.alertmanager().map(|am| Instant::now() + am.repush),
            ch: s.ch,
            wake: s.wake,
            repush: s.repush,
            group: Vec::new(),
            deadline: None,
            last_told: HashMap::new(),
            first_push: HashMap::new(),
            retired: false,
        }
    }
}

/// The dispatcher task's state; see the module's documentation.
pub(super) struct Dispatcher {
    /// How long a channel's grouping window stays open after its first event.
    window: Duration,
    channels: Vec<DeliveryState>,
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
    /// Acknowledgements and silences, as operators set them.
    triage: Triage,
    /// Firing alerts that a silence held back at the last look: when none holds one any more,
    /// the channels are told it is still firing.
    held: HashSet<String>,
    /// Held alerts restored at a start that no silence in force held: their silence may have
    /// ended while the service was stopped. When released they are told only to the channels
    /// with no record of having been told (the outbox's), so a restart does not repeat them.
    held_untold_only: HashSet<String>,
}

/// How often the dispatcher looks at re-notify and re-push timers.
const TICK: Duration = Duration::from_millis(500);

impl Dispatcher {
    /// A dispatcher with no channel yet, grouping over `window`, queueing into `outbox`.
    pub(super) fn new(window: Duration, outbox: Arc<dyn Outbox>) -> Self {
        Dispatcher {
            window,
            channels: Vec::new(),
            firing: HashMap::new(),
            outbox,
            inflight: HashMap::new(),
            handed: Vec::new(),
            route_until: Arc::new(OnceLock::new()),
            triage: Triage::in_memory(),
            held: HashSet::new(),
            held_untold_only: HashSet::new(),
        }
    }

    /// Reads acknowledgements and silences from `triage` from now on.
    pub(super) fn set_triage(&mut self, triage: Triage) {
        self.triage = triage;
    }

    /// An event about `a`, with its acknowledgement if it has one.
    fn event(&self, event: EventKind, a: &Alert) -> NotifyEvent {
        NotifyEvent {
            event,
            alert: a.clone(),
            acknowledged: self.triage.ack_of(&a.id),
        }
    }

    /// Where a stop sets the instant after which nothing more is routed.
    pub(super) fn route_until(&self) -> Arc<OnceLock<Instant>> {
        self.route_until.clone()
    }

    /// Routes inputs until told to stop, or until every sender is gone.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
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
                let silenced = self.triage.is_silenced(&a, Timestamp::now());
                if silenced {
                    self.held.insert(a.id.clone());
                } else {
                    // Told now: nothing held any more (a restored alert event).
                    self.held.remove(&a.id);
                    self.held_untold_only.remove(&a.id);
                }
                let mut taken = 0;
                for i in 0..self.channels.len() {
                    let c = &self.channels[i];
                    if !c.retired && c.ch.routing.accepts(&a) && !(silenced && c.heeds_silences()) {
                        taken += 1;
                        self.channels[i].last_told.insert(a.id.clone(), now);
                        let ev = self.event(EventKind::Fired, &a);
                        self.add(i, ev);
                    }
                }
                self.track(&a.id, "fired", taken);
                self.firing.insert(a.id.clone(), a);
            }
            TransitionKind::HandedOver => {
                // Another instance owns it now and tells of it; this one only forgets it.
                self.firing.remove(&a.id);
                self.held.remove(&a.id);
                self.held_untold_only.remove(&a.id);
                for c in &mut self.channels {
                    c.last_told.remove(&a.id);
                    c.first_push.remove(&a.id);
                }
            }
            TransitionKind::Resolved => {
                self.firing.remove(&a.id);
                self.held.remove(&a.id);
                self.held_untold_only.remove(&a.id);
                let acknowledged = self.triage.ack_of(&a.id);
                let mut taken = 0;
                for i in 0..self.channels.len() {
                    let c = &mut self.channels[i];
                    let told = c.last_told.remove(&a.id).is_some();
                    if !(told && c.ch.routing.send_resolved) {
                        c.first_push.remove(&a.id);
                    }
                    if told && c.ch.routing.send_resolved && c.ch.routing.accepts(&a) {
                        taken += 1;
                        self.add(
                            i,
                            NotifyEvent {
                                event: EventKind::Resolved,
                                alert: a.clone(),
                                acknowledged: acknowledged.clone(),
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
    pub(super) fn switch(&mut self, window: Duration, slots: Vec<Slot>) {
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
                    DeliveryState::new(s)
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
            st.first_push.clear();
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
        let held = &self.held;
        let c = &mut self.channels[i];
        let heeds = c.heeds_silences();
        let routing = &c.ch.routing;
        let dropped: Vec<String> = c
            .last_told
            .keys()
            .filter(|id| firing.get(*id).is_some_and(|a| !routing.accepts(a)))
            .cloned()
            .collect();
        for id in &dropped {
            c.last_told.remove(id);
            c.first_push.remove(id);
        }
        let mut missing: Vec<Alert> = firing
            .values()
            .filter(|a| routing.accepts(a) && !c.last_told.contains_key(&a.id))
            // A silenced alert is told when its silence ends.
            .filter(|a| !(heeds && held.contains(&a.id)))
            .cloned()
            .collect();
        missing.sort_by(|a, b| a.fired_at.cmp(&b.fired_at).then_with(|| a.id.cmp(&b.id)));
        for a in missing {
            self.channels[i].last_told.insert(a.id.clone(), now);
            let ev = self.event(EventKind::Reminder, &a);
            self.add(i, ev);
        }
    }

    /// Learns, from the outbox, which alerts each channel was told about before this notifier
    /// started: a resolution that a crash left waiting in the store is queued again at start,
    /// and must reach the channels that were told its alert fired, although the alert is no
    /// longer among those restored as firing.
    pub(super) fn restore_told(&mut self, told: Vec<(String, String)>) {
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
    /// that take them hear about them now, else they are taken to have heard before, except
    /// for an alert a silence may have held back: for it, what the outbox recorded as told
    /// ([`Dispatcher::restore_told`]) counts.
    fn already_firing(&mut self, alerts: Vec<Alert>, tell: bool) {
        let now = Instant::now();
        let wall = Timestamp::now();
        for a in alerts {
            let maybe_held = if self.triage.is_silenced(&a, wall) {
                self.held.insert(a.id.clone());
                true
            } else if !tell && self.triage.ever_silenced(&a) {
                self.held.insert(a.id.clone());
                self.held_untold_only.insert(a.id.clone());
                true
            } else {
                false
            };
            if !tell {
                for c in self.channels.iter_mut().filter(|c| !c.retired) {
                    if maybe_held && c.heeds_silences() {
                        continue;
                    }
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

    /// Looks at the silences: firing alerts a silence now holds are held back from then on;
    /// those no silence holds any more (it expired or was removed) are told, as still firing,
    /// to the channels that take them: all that were not told, and those that were unless the
    /// alert is acknowledged.
    fn review_silences(&mut self) {
        let active = self.triage.active_silences(Timestamp::now());
        if self.held.is_empty() && active.is_empty() {
            return;
        }
        let mut released = Vec::new();
        for a in self.firing.values() {
            if active.iter().any(|s| s.matchers.matches(a)) {
                self.held.insert(a.id.clone());
            } else if self.held.remove(&a.id) {
                released.push(a.clone());
            }
        }
        let firing = &self.firing;
        self.held.retain(|id| firing.contains_key(id));
        released.sort_by(|a, b| a.fired_at.cmp(&b.fired_at).then_with(|| a.id.cmp(&b.id)));
        let now = Instant::now();
        for a in released {
            let ev = self.event(EventKind::Reminder, &a);
            let untold_only = self.held_untold_only.remove(&a.id);
            let mut told = 0;
            for i in 0..self.channels.len() {
                let c = &self.channels[i];
                if c.retired || !c.heeds_silences() || !c.ch.routing.accepts(&a) {
                    continue;
                }
                if c.last_told.contains_key(&a.id) && (ev.acknowledged.is_some() || untold_only) {
                    continue;
                }
                told += 1;
                self.channels[i].last_told.insert(a.id.clone(), now);
                self.add(i, ev.clone());
            }
            debug!(alert = %a.id, channels = told, "silence over: alert still firing, told");
        }
        let held = &self.held;
        self.held_untold_only.retain(|id| held.contains(id));
    }

    /// Re-notify reminders (none for acknowledged or silenced alerts), Alertmanager re-pushes,
    /// and the end of silences.
    fn timers(&mut self) {
        self.review_silences();
        let now = Instant::now();
        for i in 0..self.channels.len() {
            if let Some(every) = self.channels[i].ch.routing.renotify {
                let due: Vec<String> = self.channels[i]
                    .last_told
                    .iter()
                    .filter(|(_, at)| now.duration_since(**at) >= every)
                    .map(|(id, _)| id.clone())
                    .collect();
                let heeds = self.channels[i].heeds_silences();
                for id in due {
                    self.channels[i].last_told.insert(id.clone(), now);
                    if self.triage.ack_of(&id).is_some() || (heeds && self.held.contains(&id)) {
                        continue;
                    }
                    if let Some(a) = self.firing.get(&id) {
                        let ev = self.event(EventKind::Reminder, a);
                        self.add(i, ev);
                    }
                }
            }
            let c = &mut self.channels[i];
            if let (Some(at), Some(am)) = (c.next_repush, c.ch.alertmanager())
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
                        acknowledged: self.triage.ack_of(&a.id),
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
            let batches = c.ch.batches(events, &mut c.first_push, created);
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

#[cfg(test)]
#[path = "dispatcher_tests.rs"]
mod tests;
