//! The engine thread: applies batches of feed events, config reloads and RPKI updates, keeps
//! the per-prefix gauges and views current, and hands alert transitions with the state changes
//! behind them to the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use crate::alerts::{AlertTransition, TransitionKind};
use crate::config::Config;
use crate::engine::{AcceptRequest, Engine, SharedPrefixStates};
use crate::event::Timestamp;
use crate::feeds::checkpoint::Checkpoint;
use crate::feeds::queue::{EventReceiver, Queued};
use crate::metrics::Metrics;
use crate::rpki::RpkiSnapshot;
use crate::store::Commit;

use super::commit_queue::CommitSender;
use super::latency::Stamps;
use super::store_thread::ToStore;

/// Per-prefix gauge labels last set, so labels of origins that went away are removed.
#[derive(Default)]
struct PrefixGauges {
    origins: HashMap<IpNet, Vec<String>>,
    upstreams: HashMap<IpNet, Vec<String>>,
    /// Prefixes to refresh at the next batch whatever happened (after a reload).
    pending: HashSet<IpNet>,
}

impl PrefixGauges {
    fn touch(&mut self, prefix: IpNet) {
        self.pending.insert(prefix);
    }

    fn take_pending(&mut self) -> Vec<IpNet> {
        self.pending.drain().collect()
    }

    /// Removes the series of prefixes that are no longer watched.
    fn forget_unwatched(&mut self, m: &Metrics, cfg: &Config) {
        m.set_visibility_thresholds(&cfg.prefixes);
        let watched: HashSet<IpNet> = cfg.prefixes.iter().map(|p| p.prefix).collect();
        let gone: Vec<IpNet> = self
            .origins
            .keys()
            .chain(self.upstreams.keys())
            .filter(|p| !watched.contains(p))
            .copied()
            .collect();
        for prefix in gone {
            let p = prefix.to_string();
            let _ = m.prefix_vantage_points.remove_label_values(&[&p]);
            for o in self.origins.remove(&prefix).unwrap_or_default() {
                let _ = m
                    .prefix_origin_vantage_points
                    .remove_label_values(&[&p, &o]);
            }
            for u in self.upstreams.remove(&prefix).unwrap_or_default() {
                let _ = m
                    .prefix_upstream_vantage_points
                    .remove_label_values(&[&p, &u]);
            }
        }
    }
}

/// What the engine thread wakes up for.
enum Input {
    /// Events from a feed (or an empty tick).
    Batch(Queued),
    /// An operator request.
    Command(AcceptRequest),
    /// Time to refresh the gauges and views.
    Idle,
    /// The feeds are gone: shut down.
    Closed,
}

/// Longest time the per-prefix gauges and views lag behind the engine. Refreshing them after
/// every batch cost more than the routing itself under a fast feed; scrapes and the status
/// page are far coarser than this.
const REFRESH_EVERY: Duration = Duration::from_millis(100);

/// Most route events applied before the alert transitions they raised are handed to the
/// store: a batch coalesced from a backlog holds up to 4096, tens of milliseconds of work.
const COMMIT_CHUNK_EVENTS: usize = 256;

/// Longest an alert's update (more or fewer VPs, a newer sample) waits to be saved and shown
/// while no alert fires or resolves: during a burst nearly every chunk updates some alert, and
/// saving each at once rewrote the routes of every changed prefix many times a second (119
/// commits for 9 alerts fired or resolved on a 0.4 s replay). A fired or resolved alert takes
/// the updates held before it along, in order.
const UPDATES_EVERY: Duration = Duration::from_millis(500);

/// How long the feeds must be quiet after a batch of events before the engine moves event time
/// on by itself: the last instant of a burst (a hijack in its last frames) is judged this long
/// after it arrived, not at the next tick (up to [`super::TICK`] later). Frames of one instant
/// come together, so a pause this long inside one is rare; an instant split by it is judged in
/// two parts, as a tick would split it.
const SETTLE_AFTER: Duration = Duration::from_millis(20);

/// Alert updates waiting for [`UPDATES_EVERY`] or for the next transition that cannot wait.
#[derive(Default)]
struct HeldUpdates {
    transitions: Vec<AlertTransition>,
    /// When the oldest of them was held.
    since: Option<Instant>,
}

impl HeldUpdates {
    /// `fresh` with the held updates before it, when it cannot wait (an alert fired, resolved
    /// or handed over) or the held ones have waited long enough; else holds it and gives `None`.
    fn release(
        &mut self,
        fresh: Vec<AlertTransition>,
        now: Instant,
    ) -> Option<Vec<AlertTransition>> {
        let urgent = fresh.iter().any(|t| t.event != TransitionKind::Updated);
        let due = self
            .since
            .is_some_and(|t| now.saturating_duration_since(t) >= UPDATES_EVERY);
        if fresh.is_empty() && !due {
            return None;
        }
        if !fresh.is_empty() {
            self.since.get_or_insert(now);
        }
        self.transitions.extend(fresh);
        (urgent || due).then(|| self.take())
    }

    /// Everything held, in order.
    fn take(&mut self) -> Vec<AlertTransition> {
        self.since = None;
        std::mem::take(&mut self.transitions)
    }
}

/// When the per-prefix gauges and views were last refreshed, and whether the engine has
/// changed since.
#[derive(Clone, Copy)]
enum Refreshed {
    /// Up to date as of then.
    At(Instant),
    /// Changed since then.
    Behind(Instant),
}

/// What the engine thread works with besides the engine.
pub(super) struct EngineThread {
    /// Batches from the feeds (and empty ticks, so idle state is still saved).
    pub events: EventReceiver,
    /// Operator requests from the HTTP API.
    pub commands: mpsc::Receiver<AcceptRequest>,
    /// The current config; a change is a reload.
    pub config: watch::Receiver<Arc<Config>>,
    /// New RPKI data, when configured.
    pub rpki: Option<watch::Receiver<RpkiSnapshot>>,
    /// Where commits go (the store thread).
    pub commits: CommitSender,
    /// Metrics.
    pub metrics: Metrics,
    /// Per-prefix views for the HTTP API.
    pub views: SharedPrefixStates,
    /// The service's runtime, for waiting on the queue with a deadline.
    pub runtime: tokio::runtime::Handle,
    /// Becomes true when the service stops: the queue is then worked off for at most
    /// [`super::ENGINE_DRAIN`], and what is left of it dropped.
    pub shutdown: watch::Receiver<bool>,
}

impl EngineThread {
    /// Runs until the feeds and the tick are gone, then saves what is left.
    pub fn run(mut self, mut engine: Engine) {
        let mut gauges = PrefixGauges::default();
        let m = self.metrics.clone();
        m.set_visibility_thresholds(engine.watched_prefixes());
        for p in engine.watched_prefixes() {
            m.prefix_vantage_points
                .with_label_values(&[&p.prefix.to_string()])
                .set(0);
        }
        let commit_every =
            Duration::from_secs(self.config.borrow().store.commit_interval_seconds.max(1));
        let mut last_commit = Instant::now();
        let mut refreshed = Refreshed::Behind(Instant::now());
        // Event time of the last batch with events, and when it was taken: while the feeds
        // are quiet, a tick moves event time on by the wall-clock time since, so the last
        // instant is judged and hold-downs run out without waiting for another event.
        let mut clock = (engine.now(), Instant::now());
        // When the service began to stop, once it has.
        let mut stopping: Option<Instant> = None;
        // Checkpoints of batches applied since the last commit: they go with the next one,
        // and are acknowledged once it (and so everything they caused) is stored.
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        let mut held = HeldUpdates::default();
        // When the last batch of events came, while its last instant is not judged yet.
        let mut unsettled: Option<Instant> = None;
        loop {
            // With changes not yet in the gauges and views, or an instant not yet judged, wait
            // no longer than until they are due; otherwise sleep until the next batch or request.
            let refresh_wait = match refreshed {
                Refreshed::Behind(at) => Some(REFRESH_EVERY.saturating_sub(at.elapsed())),
                Refreshed::At(_) => None,
            };
            let settle_wait = unsettled.map(|at| SETTLE_AFTER.saturating_sub(at.elapsed()));
            let wait = match (refresh_wait, settle_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let input = self.next_input(wait);
            let dequeued = Instant::now();
            let batch = match input {
                Input::Batch(b) => Some(b),
                Input::Idle => {
                    if unsettled.is_some_and(|at| at.elapsed() >= SETTLE_AFTER) {
                        unsettled = None;
                        // As a tick would.
                        advance_while_quiet(&mut engine, clock);
                        let fresh: Vec<AlertTransition> = engine.drain_transitions().collect();
                        if let Some(transitions) = held.release(fresh, Instant::now()) {
                            let stamps = Stamps::new(dequeued, dequeued, 0);
                            let waiting = std::mem::take(&mut checkpoints);
                            if !self.commit(&mut engine, transitions, stamps, waiting) {
                                return;
                            }
                            last_commit = Instant::now();
                        }
                        if let Refreshed::At(at) = refreshed {
                            refreshed = Refreshed::Behind(at);
                        }
                    }
                    self.refresh_if_due(&mut engine, &mut gauges, &mut refreshed);
                    continue;
                }
                Input::Closed => break,
                Input::Command(req) => {
                    if !self.accept(&mut engine, &mut gauges, &mut held, req) {
                        return;
                    }
                    last_commit = Instant::now();
                    refreshed = Refreshed::At(Instant::now());
                    continue;
                }
            };
            // Dropped at the end of this iteration: only then is the batch's room in the queue
            // free, so the events queued and being processed stay within the bound.
            let Some(mut queued) = batch else { continue };
            if *self.shutdown.borrow() {
                let since = *stopping.get_or_insert_with(Instant::now);
                if since.elapsed() >= super::ENGINE_DRAIN {
                    self.drop_queue(queued);
                    break;
                }
            }
            checkpoints.extend(queued.batch.checkpoint.take());
            let batch = &queued.batch;
            // What is still queued behind this batch: a full queue means the feeds are waiting.
            m.engine_queue_batches.set(self.events.batches() as i64);
            m.engine_queue_events.set(self.events.events() as i64);
            if self.config.has_changed().unwrap_or(false) {
                let cfg = self.config.borrow_and_update().clone();
                engine.reconfigure(&cfg);
                m.watched_prefixes.set(cfg.prefixes.len() as i64);
                self.views.set_all(engine.prefix_states());
                gauges.forget_unwatched(&m, &cfg);
                for p in engine.watched_prefixes() {
                    gauges.touch(p.prefix);
                }
            }
            if let Some(rx) = self.rpki.as_mut()
                && rx.has_changed().unwrap_or(false)
            {
                let snapshot = rx.borrow_and_update().clone();
                engine.set_rpki(snapshot, engine.now());
            }
            let before = engine.stats();
            let stamps = Stamps::new(batch.received, dequeued, batch.events.len());
            // A large batch (a backlog read at once) is applied a chunk at a time, and the
            // transitions of each chunk go to the store before the next is applied: an alert
            // waits for at most one chunk of the engine's work, not for the whole batch.
            let mut chunks = batch.events.chunks(COMMIT_CHUNK_EVENTS).peekable();
            while let Some(chunk) = chunks.next() {
                for ev in chunk {
                    engine.process(ev);
                }
                if chunks.peek().is_none() {
                    break;
                }
                let fresh: Vec<AlertTransition> = engine.drain_transitions().collect();
                if let Some(transitions) = held.release(fresh, Instant::now()) {
                    // The batch's checkpoints wait for its last chunk.
                    if !self.commit(&mut engine, transitions, stamps, Vec::new()) {
                        return;
                    }
                    last_commit = Instant::now();
                }
            }
            if batch.events.is_empty() {
                advance_while_quiet(&mut engine, clock);
                unsettled = None;
            } else {
                clock = (engine.now(), Instant::now());
                unsettled = Some(clock.1);
            }
            let fresh: Vec<AlertTransition> = engine.drain_transitions().collect();
            let after = engine.stats();
            let feed = &*batch.feed;
            let count = |label: &str, n: u64| {
                if n > 0 {
                    m.events.with_label_values(&[feed, label]).inc_by(n);
                }
            };
            count("announce", after.announcements - before.announcements);
            count("withdraw", after.withdrawals - before.withdrawals);
            count("peer_down", after.peer_downs - before.peer_downs);
            if after.matched > before.matched {
                m.events_matched
                    .with_label_values(&[feed])
                    .inc_by(after.matched - before.matched);
            }
            if let Refreshed::At(at) = refreshed {
                refreshed = Refreshed::Behind(at);
            }
            // Alert transitions are saved at once, with the routes behind them (updates at
            // least every `UPDATES_EVERY`); other route changes, and checkpoints waiting for
            // theirs, at least every commit interval.
            let due = last_commit.elapsed() >= commit_every
                && (engine.has_changes() || !checkpoints.is_empty());
            let released = held.release(fresh, Instant::now());
            if released.is_some() || due {
                let transitions = released.unwrap_or_else(|| held.take());
                let waiting = std::mem::take(&mut checkpoints);
                if !self.commit(&mut engine, transitions, stamps, waiting) {
                    return;
                }
                last_commit = Instant::now();
            }
            if !batch.events.is_empty() {
                m.processing_latency
                    .observe(batch.received.elapsed().as_secs_f64());
            }
            // After the commit is on its way: an alert does not wait for the gauges.
            self.refresh_if_due(&mut engine, &mut gauges, &mut refreshed);
        }
        let mut transitions = held.take();
        transitions.extend(engine.drain_transitions());
        if !transitions.is_empty() || engine.has_changes() || !checkpoints.is_empty() {
            let _ = self.commits.send(ToStore {
                commit: Commit {
                    transitions,
                    changes: engine.take_changes(),
                },
                published: None,
                stamps: None,
                checkpoints,
            });
        }
    }

    /// Hands `transitions`, with the changes behind them, to the store thread; false when it
    /// is gone.
    fn commit(
        &mut self,
        engine: &mut Engine,
        transitions: Vec<AlertTransition>,
        mut stamps: Stamps,
        checkpoints: Vec<Checkpoint>,
    ) -> bool {
        stamps.applied = Instant::now();
        let to_store = ToStore {
            commit: Commit {
                transitions,
                changes: engine.take_changes(),
            },
            published: None,
            stamps: Some(stamps),
            checkpoints,
        };
        self.commits.send(to_store).is_ok()
    }

    /// Refreshes the gauges and views if they are behind by [`REFRESH_EVERY`] or more.
    fn refresh_if_due(
        &mut self,
        engine: &mut Engine,
        gauges: &mut PrefixGauges,
        refreshed: &mut Refreshed,
    ) {
        if let Refreshed::Behind(at) = *refreshed
            && at.elapsed() >= REFRESH_EVERY
        {
            self.refresh(engine, gauges);
            *refreshed = Refreshed::At(Instant::now());
        }
    }

    /// Waits for the next batch or operator request, at most `wait` when given.
    fn next_input(&mut self, wait: Option<Duration>) -> Input {
        let events = &mut self.events;
        let commands = &mut self.commands;
        // The timer must be made inside the runtime's context.
        self.runtime.block_on(async {
            let idle = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                b = events.recv() => b.map_or(Input::Closed, Input::Batch),
                Some(c) = commands.recv() => Input::Command(c),
                _ = idle => Input::Idle,
            }
        })
    }

    /// Applies an accepted baseline: the alerts it explains resolve, the change is saved with
    /// them and shown at once, and the requester gets the new baseline. False when the store
    /// thread is gone.
    fn accept(
        &mut self,
        engine: &mut Engine,
        gauges: &mut PrefixGauges,
        held: &mut HeldUpdates,
        req: AcceptRequest,
    ) -> bool {
        let result = engine.accept_baseline(&req.prefix, &req.origins, &req.upstreams);
        match &result {
            Ok(a) => tracing::info!(
                prefix = %a.prefix,
                "baseline accepted: origins {:?}, upstreams {:?}; now allowed: origins {:?}, upstreams {:?}; {} alerts resolved",
                req.origins,
                req.upstreams,
                a.origins,
                a.upstreams,
                a.resolved_alerts
            ),
            Err(e) => tracing::warn!(prefix = %req.prefix, "baseline not changed: {e}"),
        }
        let mut published = None;
        if result.is_ok() {
            let (done, wait) = tokio::sync::oneshot::channel();
            let mut transitions = held.take();
            transitions.extend(engine.drain_transitions());
            let commit = ToStore {
                commit: Commit {
                    transitions,
                    changes: engine.take_changes(),
                },
                published: Some(done),
                stamps: None,
                checkpoints: Vec::new(),
            };
            if self.commits.send(commit).is_err() {
                return false;
            }
            published = Some(wait);
        }
        self.refresh(engine, gauges);
        // Answered once the alerts it resolved are out of `/alerts`, so that what the operator
        // sees next agrees with the answer; the engine goes on meanwhile. The requester may have
        // gone (timeout): the change stands anyway. A store that stops first drops the barrier,
        // and the answer goes out then.
        let reply = req.reply;
        match published {
            Some(wait) => {
                self.runtime.spawn(async move {
                    let _ = wait.await;
                    let _ = reply.send(result);
                });
            }
            None => {
                let _ = reply.send(result);
            }
        }
        true
    }

    /// Drops `first` and every batch still queued, so that a stop does not wait for a backlog
    /// (the feeds blocked on the full queue see it closed and end). Nothing of these events
    /// was committed: as with a crash, the feeds' next updates bring the routes up to date.
    fn drop_queue(&mut self, first: Queued) {
        self.events.close();
        let mut batches = 1u64;
        let mut events = first.batch.events.len() as u64;
        while let Some(q) = self.events.try_recv() {
            batches += 1;
            events += q.batch.events.len() as u64;
        }
        tracing::warn!(
            "stopping: {events} feed events in {batches} batches were still queued after {} s \
             and are dropped",
            super::ENGINE_DRAIN.as_secs()
        );
    }

    /// Brings the per-prefix gauges and the HTTP views up to date with the engine.
    fn refresh(&mut self, engine: &mut Engine, gauges: &mut PrefixGauges) {
        let m = &self.metrics;
        for prefix in engine
            .take_touched()
            .into_iter()
            .chain(gauges.take_pending())
        {
            refresh_prefix_gauges(engine, m, gauges, prefix);
        }
        m.vantage_points.set(engine.vantage_point_count() as i64);
        m.routes.set(engine.route_count() as i64);
        self.views
            .update(engine.take_changed_states(), engine.vantage_point_count());
    }
}

/// Moves event time on by the wall-clock time since the last batch of events, `clock` (its
/// event time, when it was taken): while the feeds are quiet, time passes for the engine too.
fn advance_while_quiet(engine: &mut Engine, clock: (Timestamp, Instant)) {
    let quiet = i64::try_from(clock.1.elapsed().as_micros()).unwrap_or(i64::MAX);
    engine.advance_to(Timestamp(clock.0.0.saturating_add(quiet)));
}

fn refresh_prefix_gauges(engine: &Engine, m: &Metrics, gauges: &mut PrefixGauges, prefix: IpNet) {
    let view = engine.visibility_of(&prefix);
    let p = prefix.to_string();
    m.prefix_vantage_points
        .with_label_values(&[&p])
        .set(view.vantage_points as i64);
    if engine.rpki().data.is_some() {
        use crate::rpki::RovState;
        for state in [RovState::Valid, RovState::Invalid, RovState::NotFound] {
            m.prefix_rpki_vantage_points
                .with_label_values(&[&p, state.as_str()])
                .set(view.rpki.get(&state).copied().unwrap_or(0) as i64);
        }
    }
    let set = |vec: &prometheus::IntGaugeVec,
               old: &mut Vec<String>,
               now: &foldhash::HashMap<u32, usize>| {
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

#[cfg(test)]
mod tests {
    use super::super::store_thread::tests::t;
    use super::*;
    use crate::alerts::TransitionKind::{Fired, HandedOver, Resolved, Updated};

    fn ids(ts: &[AlertTransition]) -> Vec<(&str, TransitionKind)> {
        ts.iter().map(|t| (t.alert.id.as_str(), t.event)).collect()
    }

    #[test]
    fn updates_wait_until_an_alert_fires_or_resolves_and_go_before_it() {
        let start = Instant::now();
        let mut held = HeldUpdates::default();
        assert!(held.release(vec![t("a", Updated, 3)], start).is_none());
        assert!(held.release(vec![], start).is_none());
        assert!(held.release(vec![t("a", Updated, 4)], start).is_none());
        let out = held
            .release(vec![t("b", Fired, 2), t("a", Updated, 5)], start)
            .expect("a fired alert cannot wait");
        assert_eq!(
            ids(&out),
            [("a", Updated), ("a", Updated), ("b", Fired), ("a", Updated)]
        );
        assert!(held.release(vec![], start + UPDATES_EVERY * 2).is_none());
        for urgent in [Resolved, HandedOver] {
            let out = held.release(vec![t("c", urgent, 0)], start).unwrap();
            assert_eq!(ids(&out), [("c", urgent)]);
        }
    }

    #[test]
    fn updates_wait_at_most_updates_every_from_the_oldest() {
        let start = Instant::now();
        let mut held = HeldUpdates::default();
        assert!(held.release(vec![t("a", Updated, 3)], start).is_none());
        let later = start + UPDATES_EVERY / 2;
        assert!(held.release(vec![t("b", Updated, 3)], later).is_none());
        let almost = start + UPDATES_EVERY - Duration::from_millis(1);
        assert!(held.release(vec![], almost).is_none());
        let out = held
            .release(vec![], start + UPDATES_EVERY)
            .expect("due with nothing new");
        assert_eq!(ids(&out), [("a", Updated), ("b", Updated)]);
        // The next one waits its own full time.
        let next = start + UPDATES_EVERY * 3;
        assert!(held.release(vec![t("c", Updated, 1)], next).is_none());
        assert!(
            held.release(vec![], next + UPDATES_EVERY / 2).is_none(),
            "timed from the first update held after the last release"
        );
        assert_eq!(ids(&held.take()), [("c", Updated)]);
        assert!(held.take().is_empty());
    }
}
