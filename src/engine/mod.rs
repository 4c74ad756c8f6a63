//! The rule engine: route state per watched prefix (and its more-specifics) per vantage point,
//! and the detectors that turn route changes into alerts that fire and resolve.
//!
//! The engine is single-threaded and runs on event time only, so a replay of the same input
//! gives the same alerts with the same timestamps.
//!
//! Thresholds are judged on the state after every event of one instant (one timestamp): an
//! instant is settled when an event of a later time arrives, when [`Engine::advance_to`] moves
//! time on (the service's tick), or at [`Engine::settle`] (the end of a replay). Hold-downs
//! (`for`, `keep_firing_for`) run out on event time too.

mod asns;
mod baseline;
mod detect;
mod learning;
mod routes;
mod state;
mod view;
mod vps;

use std::collections::{BTreeSet, HashMap, HashSet};

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use std::sync::Arc;

use ipnet::IpNet;
use prefix_trie::joint::map::JointPrefixMap;

use crate::alerts::{
    Alert, AlertDetail, AlertKey, AlertState, AlertTransition, Rule, Severity, TransitionKind,
    VpSample,
};
use crate::config::{CommunityLabel, Config, MonitoredAsn, WatchedPrefix};
use crate::event::{FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint};
use crate::rpki::RpkiSnapshot;

use baseline::Baseline;
pub use detect::{Finding, path_length};
pub use learning::{AcceptError, AcceptRequest, AcceptedBaseline};
use routes::VpRoutes;
pub use state::{EngineState, LearnedBaseline, PrefixRoutes};
pub use view::{AsnCount, MoreSpecificState, PrefixState, PrefixStore};
use vps::{VpId, VpTable};

/// The monitored-ASN detectors' view of the engine (a macro, so the borrows stay per field).
macro_rules! asns_out {
    ($e:expr) => {
        asns::Out {
            vps: &$e.vps,
            transitions: &mut $e.transitions,
            stats: &mut $e.stats,
            ctx: &$e.ctx,
        }
    };
}

/// How many VPs an alert lists with their AS paths.
pub const SAMPLE_SIZE: usize = 5;

/// How many communities a sample entry lists (a route may carry hundreds).
pub const MAX_SAMPLE_COMMUNITIES: usize = 32;

/// A route held for one prefix and one VP.
#[derive(Debug, Clone)]
struct Route {
    attrs: Arc<RouteAttrs>,
    since: Timestamp,
}

/// A watched prefix with its learned baselines.
#[derive(Debug)]
struct Watched {
    cfg: WatchedPrefix,
    origins: Baseline,
    upstreams: Option<Baseline>,
    /// End of the learning window, set by the first route to the prefix itself; `None`
    /// while learning has not started (see `learning`).
    learn_until: Option<Timestamp>,
    /// Path rules, compiled.
    paths: Vec<detect::CompiledPathRule>,
}

/// A condition shown by some VPs (below or above the firing threshold).
#[derive(Debug)]
struct Condition {
    vps: HashSet<VpId>,
    first_seen: Timestamp,
    peak: u32,
    firing: Option<Alert>,
    /// Not firing, at or over the threshold since then (waiting out `for`).
    pending_since: Option<Timestamp>,
    /// Firing, with no VP showing it since then (waiting out `keep_firing_for`).
    clearing_since: Option<Timestamp>,
}

impl Condition {
    fn new(first_seen: Timestamp) -> Self {
        Condition {
            vps: HashSet::new(),
            first_seen,
            peak: 0,
            firing: None,
            pending_since: None,
            clearing_since: None,
        }
    }
}

/// Visibility of one prefix under the watched prefix that judges it.
#[derive(Debug, Default)]
struct Visibility {
    reached: bool,
    /// VPs whose route has only allowed origins: the only routes that count as visibility (a
    /// hijacker's route is not the owner's prefix being seen).
    allowed: u32,
    /// Under the threshold since then, not firing yet (waiting out `for`).
    pending_since: Option<Timestamp>,
    /// Firing, back at the threshold since then (waiting out `keep_firing_for`).
    clearing_since: Option<Timestamp>,
    /// Boxed: every routed prefix has an entry, and few have a firing alert.
    firing: Option<Box<Alert>>,
}

/// A hold-down that runs out at some event time: what to judge again then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// A condition, by watched prefix index and key.
    Condition(usize, AlertKey),
    /// The visibility of a prefix, by watched prefix index.
    Visibility(usize, IpNet),
}

/// Watched prefixes (by index) covering a prefix, shortest first; rarely more than a few.
type Chain = smallvec::SmallVec<[usize; 8]>;

/// Counters the engine keeps for reports and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Announcements processed.
    pub announcements: u64,
    /// Withdrawals processed.
    pub withdrawals: u64,
    /// Peer-down events processed.
    pub peer_downs: u64,
    /// Route events for a watched prefix or a more-specific of one.
    pub matched: u64,
    /// Alerts fired.
    pub fired: u64,
    /// Alerts resolved.
    pub resolved: u64,
}

/// The rule engine. Feed it events with [`Engine::process`]; take the alert transitions with
/// [`Engine::drain_transitions`].
pub struct Engine {
    watch: JointPrefixMap<IpNet, usize>,
    /// Per watched prefix `w`: the watched prefixes that cover it (itself included), shortest
    /// first, at `chains[chain_at[w]..chain_at[w + 1]]`. An event then needs one longest-match
    /// lookup instead of a cover walk, which allocates.
    chains: Vec<usize>,
    chain_at: Vec<usize>,
    watched: Vec<Watched>,
    // Maps on the per-event path use foldhash: several times faster than SipHash for these
    // small keys, and still seeded per process, since prefixes come from outside.
    routes: FastMap<IpNet, VpRoutes>,
    route_count: usize,
    vps: VpTable,
    conditions: HashMap<AlertKey, Condition>,
    visibility: FastMap<(usize, IpNet), Visibility>,
    /// Conditions changed in the instant not yet settled, in the order they changed.
    unsettled: Vec<(usize, AlertKey)>,
    unsettled_keys: FastSet<AlertKey>,
    /// Visibility entries changed in the instant not yet settled, in the order they changed.
    unsettled_visibility: Vec<(usize, IpNet)>,
    unsettled_visibility_keys: FastSet<(usize, IpNet)>,
    /// Hold-downs running, by the event time they run out.
    timers: BTreeSet<(Timestamp, Due)>,
    /// Alerts fired so far per key: numbers each incident of a key for its id.
    incidents: FastMap<AlertKey, u32>,
    transitions: Vec<AlertTransition>,
    stats: EngineStats,
    /// While loading a table dump: learn every origin and upstream, raise nothing yet.
    loading_rib: bool,
    /// Open learning windows by end time: (end, watched prefix index).
    learning_windows: std::collections::BTreeSet<(Timestamp, usize)>,
    /// Watched prefixes whose own routes changed since [`Engine::take_touched`].
    touched: FastSet<IpNet>,
    /// Prefixes whose routes changed since [`Engine::take_changes`].
    dirty: FastSet<IpNet>,
    /// VPs already handed out by [`Engine::take_changes`].
    exported_vps: u32,
    /// Baselines or visibility flags changed since [`Engine::take_changes`].
    meta_dirty: bool,
    /// Event time of the newest event processed.
    now: Timestamp,
    /// Per watched prefix (by index): event time of the last route change under it.
    last_change: Vec<Option<Timestamp>>,
    /// Watched prefixes (by index) whose state changed since [`Engine::take_changed_states`].
    state_dirty: FastSet<usize>,
    /// Per watched prefix (by index): its more-specifics that some VP routes now.
    more_specifics: Vec<std::collections::BTreeSet<IpNet>>,
    /// RPKI data and community labels the detectors use.
    ctx: detect::Context,
    /// Monitored ASNs.
    asns: asns::AsnMonitor,
}

impl Engine {
    /// An engine watching these prefixes.
    pub fn new(prefixes: &[WatchedPrefix]) -> Self {
        let mut watch = JointPrefixMap::new();
        let mut watched = Vec::with_capacity(prefixes.len());
        for (i, cfg) in prefixes.iter().enumerate() {
            watch.insert(cfg.prefix, i);
            watched.push(Watched {
                origins: Baseline::new(&cfg.origins),
                upstreams: cfg
                    .upstreams
                    .as_ref()
                    .map_or(Some(Baseline::learning()), |u| {
                        (!u.is_empty()).then(|| Baseline::new(u))
                    }),
                learn_until: None,
                paths: detect::compile_paths(&cfg.paths),
                cfg: cfg.clone(),
            });
        }
        let mut chains = Vec::new();
        let mut chain_at = Vec::with_capacity(prefixes.len() + 1);
        for cfg in prefixes {
            chain_at.push(chains.len());
            chains.extend(watch.cover(&cfg.prefix).map(|(_, &i)| i));
        }
        chain_at.push(chains.len());
        Engine {
            watch,
            chains,
            chain_at,
            watched,
            routes: FastMap::default(),
            route_count: 0,
            vps: VpTable::default(),
            conditions: HashMap::new(),
            visibility: FastMap::default(),
            unsettled: Vec::new(),
            unsettled_keys: FastSet::default(),
            unsettled_visibility: Vec::new(),
            unsettled_visibility_keys: FastSet::default(),
            timers: BTreeSet::new(),
            incidents: FastMap::default(),
            transitions: Vec::new(),
            stats: EngineStats::default(),
            loading_rib: false,
            learning_windows: Default::default(),
            touched: FastSet::default(),
            dirty: FastSet::default(),
            exported_vps: 0,
            meta_dirty: false,
            now: Timestamp::default(),
            last_change: vec![None; prefixes.len()],
            state_dirty: FastSet::default(),
            more_specifics: vec![Default::default(); prefixes.len()],
            ctx: detect::Context::default(),
            asns: asns::AsnMonitor::default(),
        }
    }

    /// An engine for a whole config: watched prefixes, monitored ASNs, community labels (RPKI
    /// data comes later, with [`Engine::set_rpki`]).
    pub fn from_config(cfg: &Config) -> Self {
        let mut e = Engine::new(&cfg.prefixes);
        e.monitor_asns(&cfg.asns);
        e.label_communities(cfg.communities.clone());
        e
    }

    /// Monitors these ASNs (`unexpected_prefix`, `new_neighbor`, `rpki_invalid`).
    pub fn monitor_asns(&mut self, asns: &[MonitoredAsn]) {
        self.asns = asns::AsnMonitor::new(asns);
    }

    /// Communities to name in alerts.
    pub fn label_communities(&mut self, labels: Vec<CommunityLabel>) {
        self.ctx.communities = labels;
    }

    /// Uses new RPKI data: every held route is judged again at event time `now`, so
    /// `rpki_invalid` and `route_leak` alerts fire or resolve as the data says.
    pub fn set_rpki(&mut self, snapshot: RpkiSnapshot, now: Timestamp) {
        let same_data = match (&self.ctx.rpki.data, &snapshot.data) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        let same = same_data && self.ctx.rpki.procedure == snapshot.procedure;
        self.ctx.rpki = snapshot;
        if same || self.loading_rib {
            return;
        }
        // Per-prefix RPKI gauges change with the data, not only with routes.
        self.touched
            .extend(self.watched.iter().map(|w| w.cfg.prefix));
        for i in 0..self.watched.len() {
            self.rebuild_conditions(i, now);
        }
        self.settle_at(now);
        let mut out = asns_out!(self);
        self.asns.rebuild(now, &mut out);
    }

    /// The RPKI data in use.
    pub fn rpki(&self) -> &RpkiSnapshot {
        &self.ctx.rpki
    }

    /// Watched prefixes whose own routes changed since the last call (for per-prefix gauges).
    pub fn take_touched(&mut self) -> Vec<IpNet> {
        self.touched.drain().collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Number of distinct VPs seen.
    pub fn vantage_point_count(&self) -> usize {
        self.vps.len()
    }

    /// Number of routes held (over all prefixes and VPs).
    pub fn route_count(&self) -> usize {
        self.route_count
    }

    /// The watched prefixes, in config order.
    pub fn watched_prefixes(&self) -> impl Iterator<Item = &WatchedPrefix> {
        self.watched.iter().map(|w| &w.cfg)
    }

    /// Learned (or configured) origins of a watched prefix.
    pub fn baseline_origins(&self, prefix: &IpNet) -> Option<Vec<u32>> {
        let i = *self.watch.get(prefix)?;
        Some(self.watched[i].origins.asns().to_vec())
    }

    /// Per watched prefix (exact match): how many VPs carry a route, and how many per origin
    /// and per upstream.
    pub fn visibility_of(&self, prefix: &IpNet) -> PrefixView {
        let mut view = PrefixView::default();
        if let Some(routes) = self.routes.get(prefix) {
            view.vantage_points = routes.len();
            for r in routes.values() {
                for o in r.attrs.path.origins() {
                    *view.origins.entry(*o).or_default() += 1;
                }
                if let Some(u) = r.attrs.path.origin_neighbor() {
                    *view.upstreams.entry(u).or_default() += 1;
                }
                if let Some(state) = self.ctx.rov(prefix, &r.attrs.path) {
                    *view.rpki.entry(state).or_default() += 1;
                }
            }
        }
        view
    }

    /// Starts loading a table dump: routes are stored and baselines learned, but no condition
    /// is evaluated until [`Engine::finish_rib`].
    pub fn begin_rib(&mut self) {
        self.loading_rib = true;
    }

    /// Ends a table-dump load: the learning windows it opened close (their baselines are what
    /// the dump showed), and every condition is evaluated on the loaded routes.
    pub fn finish_rib(&mut self, now: Timestamp) {
        self.loading_rib = false;
        self.now = self.now.max(now);
        self.close_all_learning_windows(now);
        for i in 0..self.watched.len() {
            self.rebuild_conditions(i, now);
        }
        self.settle_at(now);
        let mut out = asns_out!(self);
        self.asns.rebuild(now, &mut out);
    }

    /// Takes the alert transitions produced since the last call.
    pub fn drain_transitions(&mut self) -> std::vec::Drain<'_, AlertTransition> {
        self.transitions.drain(..)
    }

    /// Judges the instant in progress now: every condition and visibility changed by the events
    /// of the latest timestamp fires, updates or resolves, and hold-downs due by then run out.
    /// Call it at the end of the input; later events and [`Engine::advance_to`] do it anyway.
    pub fn settle(&mut self) {
        self.settle_at(self.now);
    }

    /// Moves event time on to `ts` with no event (the service's tick while the feeds are
    /// quiet): the instant in progress is settled, and hold-downs that run out before `ts` fire
    /// or resolve at the time they run out. Earlier times are ignored.
    pub fn advance_to(&mut self, ts: Timestamp) {
        if ts <= self.now {
            return;
        }
        self.settle_at(self.now);
        // Nothing changes between two instants: each hold-down ends on the state it saw.
        while let Some(&(due, what)) = self.timers.first()
            && due < ts
        {
            self.timers.pop_first();
            self.run_out(due, what);
        }
        self.now = ts;
    }

    /// Settles the unsettled changes at `ts`, then runs out the hold-downs due by `ts`.
    fn settle_at(&mut self, ts: Timestamp) {
        if !self.unsettled.is_empty() {
            let keys = std::mem::take(&mut self.unsettled);
            self.unsettled_keys.clear();
            for (w, k) in keys {
                self.evaluate(w, k, ts);
            }
        }
        if !self.unsettled_visibility.is_empty() {
            let entries = std::mem::take(&mut self.unsettled_visibility);
            self.unsettled_visibility_keys.clear();
            for (w, prefix) in entries {
                self.evaluate_visibility(w, prefix, ts);
            }
        }
        while let Some(&(due, what)) = self.timers.first()
            && due <= ts
        {
            self.timers.pop_first();
            self.run_out(due, what);
        }
    }

    /// Processes one feed event. Returns true when it touched a watched prefix.
    pub fn process(&mut self, event: &FeedEvent) -> bool {
        match event {
            FeedEvent::Route(ev) => self.process_route(ev),
            FeedEvent::PeerDown { timestamp, vp } => {
                self.stats.peer_downs += 1;
                let closed = self.close_learning_windows(*timestamp);
                self.peer_down(vp, *timestamp) || closed
            }
        }
    }

    /// Processes one route event. Returns true when it touched a watched prefix or raised an
    /// alert for a monitored ASN.
    pub fn process_route(&mut self, ev: &RouteEvent) -> bool {
        if ev.timestamp > self.now {
            self.advance_to(ev.timestamp);
        }
        match ev.change {
            RouteChange::Announce(_) => self.stats.announcements += 1,
            RouteChange::Withdraw => self.stats.withdrawals += 1,
        }
        let closed = self.close_learning_windows(ev.timestamp);
        // Alerts of monitored ASNs count as touching: the caller then takes the transitions.
        let asn_alerts = !self.asns.is_empty() && {
            let before = self.transitions.len();
            self.monitored_asns(ev);
            self.transitions.len() > before
        };
        // Copied out of `self` (without allocating at any depth): `apply_route` needs `self`.
        let covering = Chain::from_slice(self.covering(&ev.prefix));
        if covering.is_empty() {
            return asn_alerts || closed;
        }
        self.stats.matched += 1;
        let vp = self.vps.intern(&ev.vp);
        self.apply_route(&covering, ev.prefix, vp, &ev.change, ev.timestamp);
        true
    }

    /// The watched prefix that judges routes to `prefix`: the longest watched prefix that
    /// covers it. A nested watched prefix is judged by its own entry alone, never by the
    /// entries that cover it.
    fn judge_of(&self, prefix: &IpNet) -> Option<usize> {
        self.watch.get_lpm(prefix).map(|(_, &w)| w)
    }

    /// The watched prefixes (by index) that cover `prefix`, shortest first: the same as
    /// `self.watch.cover(prefix)`.
    fn covering(&self, prefix: &IpNet) -> &[usize] {
        match self.watch.get_lpm(prefix) {
            Some((_, &w)) => &self.chains[self.chain_at[w]..self.chain_at[w + 1]],
            None => &[],
        }
    }

    /// The monitored-ASN detectors: neighbours in any path, and the routes of unwatched
    /// prefixes that a monitored ASN originates.
    fn monitored_asns(&mut self, ev: &RouteEvent) {
        // The cheap test first: most events concern no monitored origin.
        let outside =
            self.asns.wants(&ev.prefix, &ev.change) && self.watch.get_lpm(&ev.prefix).is_none();
        let attrs = match &ev.change {
            RouteChange::Announce(a) => Some(a),
            RouteChange::Withdraw => None,
        };
        if !outside && attrs.is_none() {
            self.asns.expire(ev.timestamp, &mut asns_out!(self));
            return;
        }
        let vp = self.vps.intern(&ev.vp);
        let loading_rib = self.loading_rib;
        let mut out = asns_out!(self);
        self.asns.expire(ev.timestamp, &mut out);
        if let Some(attrs) = attrs {
            self.asns
                .scan_path(ev.prefix, vp, attrs, ev.timestamp, loading_rib, &mut out);
        }
        if outside {
            self.asns.route(
                ev.prefix,
                vp,
                &ev.change,
                ev.timestamp,
                loading_rib,
                &mut out,
            );
        }
    }

    fn peer_down(&mut self, vp: &Arc<VantagePoint>, ts: Timestamp) -> bool {
        if ts > self.now {
            self.advance_to(ts);
        }
        let Some(id) = self.vps.get(vp) else {
            return false;
        };
        if !self.asns.is_empty() {
            let mut out = asns_out!(self);
            self.asns.peer_down(id, ts, &mut out);
        }
        let mut prefixes: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|(_, by_vp)| by_vp.contains_key(&id))
            .map(|(p, _)| *p)
            .collect();
        // Map order is random per process; replays must give the same output every time.
        prefixes.sort_unstable();
        for prefix in &prefixes {
            let covering: Chain = self.watch.cover(prefix).map(|(_, &i)| i).collect();
            self.apply_route(&covering, *prefix, id, &RouteChange::Withdraw, ts);
        }
        !prefixes.is_empty()
    }

    fn apply_route(
        &mut self,
        covering: &[usize],
        prefix: IpNet,
        vp: VpId,
        change: &RouteChange,
        ts: Timestamp,
    ) {
        let by_vp = self.routes.entry(prefix).or_default();
        // `new` borrows from the event: one reference-count increment per route, not two.
        let (old, new) = match change {
            RouteChange::Announce(attrs) => {
                let old = by_vp.insert(
                    vp,
                    Route {
                        attrs: attrs.clone(),
                        since: ts,
                    },
                );
                (old.map(|r| r.attrs), Some(attrs))
            }
            RouteChange::Withdraw => (by_vp.remove(&vp).map(|r| r.attrs), None),
        };
        let visible = by_vp.len();
        if visible == 0 {
            self.routes.remove(&prefix);
        }
        match (&old, &new) {
            (None, Some(_)) => self.route_count += 1,
            (Some(_), None) => self.route_count -= 1,
            (None, None) => return, // withdrawal of a route this VP did not have
            (Some(_), Some(_)) => {}
        }
        self.dirty.insert(prefix);
        if covering
            .iter()
            .any(|&w| self.watched[w].cfg.prefix == prefix)
        {
            self.touched.insert(prefix);
        }
        for &w in covering {
            self.last_change[w] = Some(ts);
            self.state_dirty.insert(w);
            if self.watched[w].cfg.prefix != prefix {
                if visible == 0 {
                    self.more_specifics[w].remove(&prefix);
                } else {
                    self.more_specifics[w].insert(prefix);
                }
            }
        }
        // Only the longest watched prefix covering the route judges it (`covering` is
        // shortest first); the others just list it among their routed more-specifics.
        if let Some(&w) = covering.last() {
            if let Some(attrs) = &new
                && self.learn(w, prefix, vp, attrs, ts)
            {
                // The baseline grew: every route under this watched prefix is judged anew.
                self.rebuild_conditions(w, ts);
            } else if !self.loading_rib {
                let watched = &self.watched[w];
                let before = old
                    .as_deref()
                    .map(|a| detect::findings(&self.ctx, watched, prefix, a))
                    .unwrap_or_default();
                let after = new
                    .map(|a| detect::findings(&self.ctx, watched, prefix, a))
                    .unwrap_or_default();
                for f in before.iter().filter(|f| !after.contains(f)) {
                    self.remove_vp(w, prefix, *f, vp, ts);
                }
                for f in after.iter() {
                    if before.contains(f) {
                        self.refresh(w, prefix, *f, ts);
                    } else {
                        self.add_vp(w, prefix, *f, vp, ts);
                    }
                }
                // (After a rebuild the count is already fresh.)
                let delta = i64::from(new.is_some_and(|a| self.allowed(w, a)))
                    - i64::from(old.as_deref().is_some_and(|a| self.allowed(w, a)));
                self.count_visibility(w, prefix, delta);
            }
        }
    }

    /// True when every origin of the route is allowed for watched prefix `w`: the route is
    /// the owner's, so it counts as visibility.
    fn allowed(&self, w: usize, attrs: &RouteAttrs) -> bool {
        let origins = attrs.path.origins();
        let baseline = &self.watched[w].origins;
        !origins.is_empty() && origins.iter().all(|o| baseline.contains(*o))
    }

    /// Changes the number of VPs with an allowed route to `prefix` (judged by `w`) by `delta`,
    /// to be judged when the instant settles.
    fn count_visibility(&mut self, w: usize, prefix: IpNet, delta: i64) {
        if self.watched[w].cfg.visibility_min_vantage_points == 0 {
            return;
        }
        let state = self.visibility.entry((w, prefix)).or_default();
        state.allowed = (i64::from(state.allowed) + delta).max(0) as u32;
        if self.unsettled_visibility_keys.insert((w, prefix)) {
            self.unsettled_visibility.push((w, prefix));
        }
    }

    /// Counts the allowed routes to `prefix` (judged by `w`) afresh, after its baseline changed.
    fn recount_visibility(&mut self, w: usize, prefix: IpNet) {
        if self.watched[w].cfg.visibility_min_vantage_points == 0 {
            return;
        }
        let allowed = self.routes.get(&prefix).map_or(0, |by_vp| {
            by_vp.values().filter(|r| self.allowed(w, &r.attrs)).count()
        });
        let state = self.visibility.entry((w, prefix)).or_default();
        state.allowed = allowed as u32;
        if self.unsettled_visibility_keys.insert((w, prefix)) {
            self.unsettled_visibility.push((w, prefix));
        }
    }

    /// Marks a condition to be judged when the instant settles.
    fn unsettle(&mut self, w: usize, k: AlertKey) {
        if self.unsettled_keys.insert(k) {
            self.unsettled.push((w, k));
        }
    }

    /// Re-evaluates every route under a watched prefix against its current baselines.
    fn rebuild_conditions(&mut self, w: usize, ts: Timestamp) {
        let watched = &self.watched[w];
        let net = watched.cfg.prefix;
        // The prefix itself and its routed more-specifics (kept per watched prefix), so a
        // rebuild costs the routes under this prefix, not all routes.
        // Only what `w` judges: not a more-specific that a longer watched prefix covers.
        let under: Vec<IpNet> = std::iter::once(net)
            .chain(self.more_specifics[w].iter().copied())
            .filter(|p| self.routes.contains_key(p) && self.judge_of(p) == Some(w))
            .collect();
        let mut fresh: HashMap<AlertKey, HashSet<VpId>> = HashMap::new();
        for prefix in &under {
            let Some(by_vp) = self.routes.get(prefix) else {
                continue;
            };
            for (vp, route) in by_vp.iter() {
                for f in detect::findings(&self.ctx, watched, *prefix, &route.attrs) {
                    fresh.entry(key(net, *prefix, f)).or_default().insert(vp);
                }
            }
        }
        let mut stale: Vec<AlertKey> = self
            .conditions
            .keys()
            .filter(|k| k.watched_prefix == net && !fresh.contains_key(k))
            .copied()
            .collect();
        stale.sort_unstable();
        for k in stale {
            if let Some(cond) = self.conditions.get_mut(&k) {
                cond.vps.clear();
                self.unsettle(w, k);
            }
        }
        let mut keys: Vec<AlertKey> = fresh.keys().copied().collect();
        keys.sort();
        for k in keys {
            let vps = fresh.remove(&k).unwrap_or_default();
            let cond = self
                .conditions
                .entry(k)
                .or_insert_with(|| Condition::new(ts));
            if cond.vps == vps {
                continue;
            }
            cond.vps = vps;
            self.unsettle(w, k);
        }
        let mut prefixes = under;
        prefixes.sort_unstable();
        for prefix in prefixes {
            self.recount_visibility(w, prefix);
        }
    }

    fn add_vp(&mut self, w: usize, prefix: IpNet, f: Finding, vp: VpId, ts: Timestamp) {
        let k = key(self.watched[w].cfg.prefix, prefix, f);
        let cond = self
            .conditions
            .entry(k)
            .or_insert_with(|| Condition::new(ts));
        if cond.vps.insert(vp) {
            self.unsettle(w, k);
        }
    }

    fn remove_vp(&mut self, w: usize, prefix: IpNet, f: Finding, vp: VpId, _ts: Timestamp) {
        let k = key(self.watched[w].cfg.prefix, prefix, f);
        if let Some(cond) = self.conditions.get_mut(&k)
            && cond.vps.remove(&vp)
        {
            self.unsettle(w, k);
        }
    }

    /// A VP that already showed a condition re-announced (new path, same finding): keep the
    /// alert's sample and last-seen time current.
    fn refresh(&mut self, w: usize, prefix: IpNet, f: Finding, _ts: Timestamp) {
        let k = key(self.watched[w].cfg.prefix, prefix, f);
        if self.conditions.get(&k).is_some_and(|c| c.firing.is_some()) {
            self.unsettle(w, k);
        }
    }

    /// Judges a condition on the settled state of an instant: fires, updates or resolves its
    /// alert, or starts or stops a hold-down.
    fn evaluate(&mut self, w: usize, k: AlertKey, ts: Timestamp) {
        let cfg = &self.watched[w].cfg;
        let hold = cfg.hold_downs.get(k.rule);
        let min = cfg.min_vantage_points;
        let Some(cond) = self.conditions.get_mut(&k) else {
            return;
        };
        let count = cond.vps.len() as u32;
        cond.peak = cond.peak.max(count);
        if count == 0 {
            cond.pending_since = None;
            match cond.firing.as_mut() {
                None => {
                    self.conditions.remove(&k);
                }
                Some(alert) if hold.keep_firing_for_seconds > 0 => {
                    if cond.clearing_since.is_none() {
                        cond.clearing_since = Some(ts);
                        self.timers.insert((
                            ts.plus_secs(hold.keep_firing_for_seconds),
                            Due::Condition(w, k),
                        ));
                        alert.vantage_points = 0;
                        alert.last_seen = ts;
                        let alert = alert.clone();
                        self.transitions.push(AlertTransition {
                            event: TransitionKind::Updated,
                            alert,
                        });
                    }
                }
                Some(_) => {
                    if let Some(alert) = self.conditions.remove(&k).and_then(|c| c.firing) {
                        self.resolve(alert, ts);
                    }
                }
            }
            return;
        }
        if cond.firing.is_some() {
            cond.clearing_since = None;
            self.update(w, k, ts);
        } else if count < min {
            cond.pending_since = None;
        } else if hold.for_seconds == 0 {
            self.fire(w, k, ts);
        } else if cond.pending_since.is_none() {
            cond.pending_since = Some(ts);
            self.timers
                .insert((ts.plus_secs(hold.for_seconds), Due::Condition(w, k)));
        }
    }

    /// A hold-down ran out at `due`: fires or resolves what waited for it, if it still holds.
    fn run_out(&mut self, due: Timestamp, what: Due) {
        match what {
            Due::Condition(w, k) => {
                let cfg = &self.watched[w].cfg;
                let hold = cfg.hold_downs.get(k.rule);
                let min = cfg.min_vantage_points as usize;
                let Some(cond) = self.conditions.get_mut(&k) else {
                    return;
                };
                let ends = |since: Option<Timestamp>, secs: u64| {
                    since.is_some_and(|s| s.plus_secs(secs) == due)
                };
                if cond.firing.is_none()
                    && ends(cond.pending_since, hold.for_seconds)
                    && cond.vps.len() >= min
                {
                    cond.pending_since = None;
                    self.fire(w, k, due);
                } else if cond.firing.is_some()
                    && ends(cond.clearing_since, hold.keep_firing_for_seconds)
                    && cond.vps.is_empty()
                    && let Some(alert) = self.conditions.remove(&k).and_then(|c| c.firing)
                {
                    self.resolve(alert, due);
                }
            }
            Due::Visibility(w, prefix) => {
                let cfg = &self.watched[w].cfg;
                let hold = cfg.hold_downs.get(Rule::VisibilityLoss);
                let threshold = cfg.visibility_min_vantage_points;
                let Some(state) = self.visibility.get_mut(&(w, prefix)) else {
                    return;
                };
                let ends = |since: Option<Timestamp>, secs: u64| {
                    since.is_some_and(|s| s.plus_secs(secs) == due)
                };
                if state.firing.is_none()
                    && ends(state.pending_since, hold.for_seconds)
                    && state.allowed < threshold
                {
                    let since = state.pending_since.take().unwrap_or(due);
                    self.fire_visibility(w, prefix, since, due);
                } else if state.firing.is_some()
                    && ends(state.clearing_since, hold.keep_firing_for_seconds)
                    && state.allowed >= threshold
                {
                    state.clearing_since = None;
                    if let Some(alert) = state.firing.take() {
                        self.resolve(*alert, due);
                    }
                }
            }
        }
    }

    /// The next incident number of a key (0 for its first alert).
    fn next_incident(&mut self, k: AlertKey) -> u32 {
        let n = self.incidents.entry(k).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// The VPs, sample and facts of a condition's alert as they are now.
    fn alert_facts(&self, w: usize, k: &AlertKey) -> Option<AlertFacts> {
        let cond = self.conditions.get(k)?;
        let sample = sample_of(&self.routes, &self.vps, k.prefix, cond.vps.iter().copied());
        let attrs = sample_attrs(&self.routes, &self.vps, k.prefix, cond.vps.iter().copied());
        let (detail, path_severity) = detect::detail(&self.ctx, &self.watched[w], k, &attrs);
        let first_origin = attrs.first().and_then(|a| match a.path.0.last() {
            Some(crate::event::PathElem::Asn(o)) => Some(*o),
            _ => None,
        });
        Some(AlertFacts {
            count: cond.vps.len() as u32,
            peak: cond.peak,
            sample,
            detail,
            path_severity,
            first_origin,
        })
    }

    /// A firing alert's VPs or routes changed.
    fn update(&mut self, w: usize, k: AlertKey, ts: Timestamp) {
        let Some(AlertFacts {
            count,
            peak,
            sample,
            detail,
            ..
        }) = self.alert_facts(w, &k)
        else {
            return;
        };
        let Some(alert) = self.conditions.get_mut(&k).and_then(|c| c.firing.as_mut()) else {
            return;
        };
        alert.vantage_points = count;
        alert.peak_vantage_points = peak;
        alert.sample = sample;
        alert.last_seen = ts;
        alert.detail = detail;
        let alert = alert.clone();
        self.transitions.push(AlertTransition {
            event: TransitionKind::Updated,
            alert,
        });
    }

    /// A condition's alert fires at `ts`.
    fn fire(&mut self, w: usize, k: AlertKey, ts: Timestamp) {
        let Some(facts) = self.alert_facts(w, &k) else {
            return;
        };
        let incident = self.next_incident(k);
        let Some(cond) = self.conditions.get_mut(&k) else {
            return;
        };
        let watched = &self.watched[w];
        let alert = Alert {
            id: Alert::make_id(&k, cond.first_seen, ts, incident),
            rule: k.rule,
            severity: facts
                .path_severity
                .unwrap_or_else(|| severity(k.rule, &watched.cfg)),
            state: AlertState::Firing,
            prefix: k.prefix,
            watched_prefix: k.watched_prefix,
            description: watched.cfg.description.clone(),
            // The origin of the routes that show it: the offending one for hijacks, the
            // allowed one reached through a new upstream.
            origin: match k.rule {
                Rule::RouteLeak => None,
                Rule::NewUpstream => facts.first_origin,
                _ => (k.asn != 0).then_some(k.asn),
            },
            upstream: (k.rule == Rule::NewUpstream).then_some(k.asn),
            expected_origins: watched.origins.asns().to_vec(),
            expected_upstreams: watched
                .upstreams
                .as_ref()
                .map(|u| u.asns().to_vec())
                .unwrap_or_default(),
            vantage_points: facts.count,
            peak_vantage_points: facts.peak,
            sample: facts.sample,
            groups: watched.cfg.groups.clone(),
            first_seen: cond.first_seen,
            fired_at: ts,
            last_seen: ts,
            resolved_at: None,
            detail: facts.detail,
        };
        cond.firing = Some(alert.clone());
        self.stats.fired += 1;
        self.transitions.push(AlertTransition {
            event: TransitionKind::Fired,
            alert,
        });
    }

    fn resolve(&mut self, mut alert: Alert, ts: Timestamp) {
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(ts);
        alert.last_seen = ts;
        alert.vantage_points = 0;
        self.stats.resolved += 1;
        self.transitions.push(AlertTransition {
            event: TransitionKind::Resolved,
            alert,
        });
    }

    /// Judges the visibility of `prefix` (judged by `w`) on the settled state of an instant.
    fn evaluate_visibility(&mut self, w: usize, prefix: IpNet, ts: Timestamp) {
        let cfg = &self.watched[w].cfg;
        let threshold = cfg.visibility_min_vantage_points;
        let hold = cfg.hold_downs.get(Rule::VisibilityLoss);
        if threshold == 0 {
            return;
        }
        let Some(state) = self.visibility.get_mut(&(w, prefix)) else {
            return;
        };
        let visible = state.allowed;
        if visible >= threshold {
            self.meta_dirty |= !state.reached;
            state.reached = true;
            state.pending_since = None;
            if state.firing.is_none() {
                return;
            }
            if hold.keep_firing_for_seconds == 0 {
                if let Some(alert) = state.firing.take() {
                    self.resolve(*alert, ts);
                }
            } else if state.clearing_since.is_none() {
                state.clearing_since = Some(ts);
                self.timers.insert((
                    ts.plus_secs(hold.keep_firing_for_seconds),
                    Due::Visibility(w, prefix),
                ));
            }
            return;
        }
        if !state.reached {
            return;
        }
        state.clearing_since = None;
        match state.firing.as_mut() {
            Some(alert) if alert.vantage_points != visible => {
                alert.vantage_points = visible;
                alert.last_seen = ts;
                alert.sample = sample_of(&self.routes, &self.vps, prefix, None);
                let alert = (**alert).clone();
                self.transitions.push(AlertTransition {
                    event: TransitionKind::Updated,
                    alert,
                });
            }
            Some(_) => {}
            None if hold.for_seconds == 0 => self.fire_visibility(w, prefix, ts, ts),
            None => {
                if state.pending_since.is_none() {
                    state.pending_since = Some(ts);
                    self.timers
                        .insert((ts.plus_secs(hold.for_seconds), Due::Visibility(w, prefix)));
                }
            }
        }
    }

    /// A visibility loss first seen at `since` fires at `ts`.
    fn fire_visibility(&mut self, w: usize, prefix: IpNet, since: Timestamp, ts: Timestamp) {
        let cfg = &self.watched[w].cfg;
        let k = AlertKey {
            rule: Rule::VisibilityLoss,
            watched_prefix: cfg.prefix,
            prefix,
            asn: 0,
        };
        let incident = self.next_incident(k);
        let cfg = &self.watched[w].cfg;
        let Some(state) = self.visibility.get_mut(&(w, prefix)) else {
            return;
        };
        let alert = Alert {
            id: Alert::make_id(&k, since, ts, incident),
            rule: Rule::VisibilityLoss,
            severity: cfg.visibility_severity,
            state: AlertState::Firing,
            prefix,
            watched_prefix: cfg.prefix,
            description: cfg.description.clone(),
            origin: None,
            upstream: None,
            expected_origins: self.watched[w].origins.asns().to_vec(),
            expected_upstreams: Vec::new(),
            vantage_points: state.allowed,
            peak_vantage_points: cfg.visibility_min_vantage_points,
            sample: sample_of(&self.routes, &self.vps, prefix, None),
            groups: cfg.groups.clone(),
            first_seen: since,
            fired_at: ts,
            last_seen: ts,
            resolved_at: None,
            detail: AlertDetail {
                rpki_stale: self.ctx.rpki.stale,
                ..AlertDetail::default()
            },
        };
        state.firing = Some(Box::new(alert.clone()));
        self.stats.fired += 1;
        self.transitions.push(AlertTransition {
            event: TransitionKind::Fired,
            alert,
        });
    }
}

/// What a condition's alert shows now.
struct AlertFacts {
    /// VPs that show it.
    count: u32,
    /// The most VPs that showed it at once.
    peak: u32,
    sample: Vec<VpSample>,
    detail: AlertDetail,
    /// The severity of a `path_match` alert (from its rules).
    path_severity: Option<Severity>,
    /// The origin of the first sampled route (none for an AS_SET origin).
    first_origin: Option<u32>,
}

/// What the engine knows of one watched prefix right now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrefixView {
    /// VPs with a route to the exact prefix.
    pub vantage_points: usize,
    /// VPs per origin ASN.
    pub origins: HashMap<u32, usize>,
    /// VPs per upstream ASN.
    pub upstreams: HashMap<u32, usize>,
    /// VPs per RPKI origin validation state of their route (empty without RPKI data).
    pub rpki: HashMap<crate::rpki::RovState, usize>,
}

fn key(watched_prefix: IpNet, prefix: IpNet, f: Finding) -> AlertKey {
    AlertKey {
        rule: f.rule,
        watched_prefix,
        prefix,
        asn: f.asn,
    }
}

fn severity(rule: Rule, cfg: &WatchedPrefix) -> Severity {
    match rule {
        Rule::OriginHijack
        | Rule::SubprefixHijack
        | Rule::OriginChange
        | Rule::RpkiInvalid
        | Rule::RouteLeak
        | Rule::Squatting => Severity::Critical,
        Rule::MoreSpecific
        | Rule::NewUpstream
        | Rule::PathMatch
        | Rule::UnexpectedPrefix
        | Rule::NewNeighbor => Severity::Warning,
        Rule::VisibilityLoss => cfg.visibility_severity,
    }
}

/// The routes of the same VPs as [`sample_of`] picks, in the same order.
fn sample_attrs(
    routes: &FastMap<IpNet, VpRoutes>,
    vps: &VpTable,
    prefix: IpNet,
    only: impl IntoIterator<Item = VpId>,
) -> Vec<Arc<RouteAttrs>> {
    let Some(by_vp) = routes.get(&prefix) else {
        return Vec::new();
    };
    let mut ids: Vec<VpId> = only.into_iter().collect();
    ids.sort_by(|a, b| vps.get_vp(*a).cmp(&vps.get_vp(*b)));
    ids.into_iter()
        .filter_map(|id| by_vp.get(&id).map(|r| r.attrs.clone()))
        .take(SAMPLE_SIZE)
        .collect()
}

/// Up to [`SAMPLE_SIZE`] VPs with their routes to `prefix`, in a stable order. With `only`,
/// just those VPs; without, any VPs that carry the prefix.
fn sample_of(
    routes: &FastMap<IpNet, VpRoutes>,
    vps: &VpTable,
    prefix: IpNet,
    only: impl IntoIterator<Item = VpId>,
) -> Vec<VpSample> {
    let Some(by_vp) = routes.get(&prefix) else {
        return Vec::new();
    };
    let mut ids: Vec<VpId> = only.into_iter().collect();
    if ids.is_empty() {
        ids = by_vp.keys().collect();
    }
    ids.sort_by(|a, b| vps.get_vp(*a).cmp(&vps.get_vp(*b)));
    ids.into_iter()
        .filter_map(|id| {
            let route = by_vp.get(&id)?;
            Some(VpSample {
                vantage_point: vps.get_vp(id).map(|v| v.to_string()).unwrap_or_default(),
                as_path: route.attrs.path.to_string(),
                communities: route
                    .attrs
                    .communities
                    .iter()
                    .take(MAX_SAMPLE_COMMUNITIES)
                    .map(|c| c.to_string())
                    .collect(),
                seen_at: route.since,
            })
        })
        .take(SAMPLE_SIZE)
        .collect()
}

#[cfg(test)]
mod detect_tests;
#[cfg(test)]
mod tests;
