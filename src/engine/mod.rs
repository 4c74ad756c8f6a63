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
//!
//! A route event goes through `routing` (routes held, learning windows, the conditions of the
//! watched prefix that judges it) and `detect` (what one route shows); `judging` settles the
//! conditions at the end of an instant; every alert, of any rule, fires, updates and resolves
//! through `lifecycle`. `asns` holds the monitored-ASN detectors, `learning` the learning
//! windows, `state` the export and restore, `view` the read-only views.

mod asns;
mod baseline;
mod conditions;
mod detect;
mod hand_over;
mod interner;
mod judging;
mod learning;
mod lifecycle;
mod routes;
mod routing;
mod state;
mod view;
mod vps;
mod warm;
mod watched;

use std::collections::BTreeSet;

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use std::sync::Arc;

use ipnet::IpNet;
use prefix_trie::joint::map::JointPrefixMap;

use crate::alerts::{Alert, AlertKey, AlertTransition, Rule, Severity};
use crate::config::{CommunityLabel, Config, MonitoredAsn, WatchedPrefix};
use crate::event::{FeedEvent, RouteChange, RouteEvent, Timestamp};
use crate::rpki::RpkiSnapshot;

use conditions::Conditions;
pub use detect::{Finding, path_length};
use interner::{AttrTable, HeldAttrs};
pub use learning::{AcceptError, AcceptRequest, AcceptedBaseline};
use lifecycle::{Outbox, Reporting};
use routes::VpRoutes;
pub use state::{EngineState, LearnedBaseline, PrefixRoutes};
pub use view::{AsnCount, MoreSpecificState, PrefixState, SharedPrefixStates};
use vps::VpTable;
use watched::{PerWatch, WatchId, Watched};

/// How many VPs an alert lists with their AS paths.
pub const SAMPLE_SIZE: usize = 5;

/// How many communities a sample entry lists (a route may carry hundreds).
pub const MAX_SAMPLE_COMMUNITIES: usize = 32;

/// A route held for one prefix and one VP.
#[derive(Debug, Clone)]
struct Route {
    /// 16 bytes: a route costs 24 in its slot.
    attrs: HeldAttrs,
    since: Timestamp,
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
    /// A condition, by the watched prefix that judges it and key.
    Condition(WatchId, AlertKey),
    /// The visibility of a prefix, by the watched prefix that judges it.
    Visibility(WatchId, IpNet),
}

/// Watched prefixes covering a prefix, shortest first: rarely more than a few, so they sit
/// inline up to 8 and spill to the heap beyond (nesting is unbounded).
type Chain = smallvec::SmallVec<[WatchId; 8]>;

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
    watch: JointPrefixMap<IpNet, WatchId>,
    /// Per watched prefix: the watched prefixes that cover it (itself included), shortest
    /// first, at `chains[chain_at[w].0..chain_at[w].1]`. An event then needs one longest-match
    /// lookup instead of a cover walk, which allocates.
    chains: Vec<WatchId>,
    chain_at: PerWatch<(usize, usize)>,
    watched: PerWatch<Watched>,
    // Maps on the per-event path use foldhash: several times faster than SipHash for these
    // small keys, and still seeded per process, since prefixes come from outside.
    routes: FastMap<IpNet, VpRoutes>,
    route_count: usize,
    /// The attribute sets the routes hold, each once.
    attr_table: AttrTable,
    vps: VpTable,
    conditions: Conditions,
    visibility: FastMap<(WatchId, IpNet), Visibility>,
    /// Conditions changed in the instant not yet settled, in the order they changed.
    unsettled: Vec<(WatchId, AlertKey)>,
    unsettled_keys: FastSet<AlertKey>,
    /// Visibility entries changed in the instant not yet settled, in the order they changed.
    unsettled_visibility: Vec<(WatchId, IpNet)>,
    unsettled_visibility_keys: FastSet<(WatchId, IpNet)>,
    /// Hold-downs running, by the event time they run out.
    timers: BTreeSet<(Timestamp, Due)>,
    /// Every alert transition, in order, and the alert counters.
    alerts: Outbox,
    /// Event counters (the alert counters are in `alerts`).
    stats: EngineStats,
    /// While loading a table dump: learn every origin and upstream, raise nothing yet.
    loading_rib: bool,
    /// Open learning windows by end time.
    learning_windows: BTreeSet<(Timestamp, WatchId)>,
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
    /// Per watched prefix: event time of the last route change under it.
    last_change: PerWatch<Option<Timestamp>>,
    /// Watched prefixes whose state changed since [`Engine::take_changed_states`].
    state_dirty: FastSet<WatchId>,
    /// Per watched prefix: its more-specifics that some VP routes now.
    more_specifics: PerWatch<BTreeSet<IpNet>>,
    /// RPKI data and community labels the detectors use.
    ctx: detect::Context,
    /// Monitored ASNs.
    asns: asns::AsnMonitor,
}

impl Engine {
    /// An engine watching these prefixes.
    pub fn new(prefixes: &[WatchedPrefix]) -> Self {
        let watched = PerWatch::new(prefixes.iter().map(Watched::new).collect());
        let mut watch = JointPrefixMap::new();
        for (w, cfg) in watched.enumerate() {
            watch.insert(cfg.cfg.prefix, w);
        }
        let mut chains = Vec::new();
        let mut chain_at = Vec::with_capacity(prefixes.len());
        for cfg in prefixes {
            let start = chains.len();
            chains.extend(watch.cover(&cfg.prefix).map(|(_, &w)| w));
            chain_at.push((start, chains.len()));
        }
        Engine {
            watch,
            chains,
            chain_at: PerWatch::new(chain_at),
            watched,
            routes: FastMap::default(),
            route_count: 0,
            attr_table: AttrTable::default(),
            vps: VpTable::default(),
            conditions: Conditions::default(),
            visibility: FastMap::default(),
            unsettled: Vec::new(),
            unsettled_keys: FastSet::default(),
            unsettled_visibility: Vec::new(),
            unsettled_visibility_keys: FastSet::default(),
            timers: BTreeSet::new(),
            alerts: Outbox::default(),
            stats: EngineStats::default(),
            loading_rib: false,
            learning_windows: Default::default(),
            touched: FastSet::default(),
            dirty: FastSet::default(),
            exported_vps: 0,
            meta_dirty: false,
            now: Timestamp::default(),
            last_change: PerWatch::new(vec![None; prefixes.len()]),
            state_dirty: FastSet::default(),
            more_specifics: PerWatch::new(vec![BTreeSet::new(); prefixes.len()]),
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
        for w in self.watched.ids() {
            self.rebuild_conditions(w, now);
        }
        self.settle_at(now);
        let (asns, mut out) = self.asn_monitor();
        asns.rebuild(now, &mut out);
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
        EngineStats {
            fired: self.alerts.fired,
            resolved: self.alerts.resolved,
            ..self.stats
        }
    }

    /// Number of distinct VPs seen.
    pub fn vantage_point_count(&self) -> usize {
        self.vps.len()
    }

    /// Number of routes held (over all prefixes and VPs).
    pub fn route_count(&self) -> usize {
        self.route_count
    }

    /// Number of distinct attribute sets the routes hold: AS path after the first hop,
    /// communities, and the next hop unless it is IPv4 (routes hold those two themselves).
    pub fn attribute_set_count(&self) -> usize {
        self.attr_table.len()
    }

    /// Numbers of distinct attribute sets (first hop and IPv4 next hop aside), paths after
    /// the first hop, and community lists that the routes held share.
    pub fn interned_counts(&self) -> (usize, usize, usize) {
        self.attr_table.counts()
    }

    /// The watched prefixes, in config order.
    pub fn watched_prefixes(&self) -> impl Iterator<Item = &WatchedPrefix> {
        self.watched.iter().map(|w| &w.cfg)
    }

    /// Learned (or configured) origins of a watched prefix.
    pub fn baseline_origins(&self, prefix: &IpNet) -> Option<Vec<u32>> {
        let w = *self.watch.get(prefix)?;
        Some(self.watched[w].origins.asns().to_vec())
    }

    /// Per watched prefix (exact match): how many VPs carry a route, and how many per origin
    /// and per upstream.
    pub fn visibility_of(&self, prefix: &IpNet) -> PrefixView {
        let mut view = PrefixView::default();
        if let Some(routes) = self.routes.get(prefix) {
            view.vantage_points = routes.len();
            for r in routes.values() {
                for o in r.attrs.origins() {
                    *view.origins.entry(*o).or_default() += 1;
                }
                let path = r.attrs.path();
                if let Some(u) = path.origin_neighbor() {
                    *view.upstreams.entry(u).or_default() += 1;
                }
                if let Some(state) = self.ctx.rov(prefix, &path) {
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
        self.asns.loading_rib = true;
    }

    /// Ends a table-dump load: the learning windows it opened close (their baselines are what
    /// the dump showed), and every condition is evaluated on the loaded routes.
    pub fn finish_rib(&mut self, now: Timestamp) {
        self.loading_rib = false;
        self.asns.loading_rib = false;
        self.now = self.now.max(now);
        self.close_all_learning_windows(now);
        for w in self.watched.ids() {
            self.rebuild_conditions(w, now);
        }
        self.settle_at(now);
        let (asns, mut out) = self.asn_monitor();
        asns.rebuild(now, &mut out);
    }

    /// Takes the alert transitions produced since the last call.
    pub fn drain_transitions(&mut self) -> std::vec::Drain<'_, AlertTransition> {
        self.alerts.transitions().drain(..)
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
            FeedEvent::PeerDown {
                timestamp,
                vp,
                within,
            } => {
                self.stats.peer_downs += 1;
                let closed = self.close_learning_windows(*timestamp);
                self.peer_down(vp, *timestamp, within.as_deref()) || closed
            }
            FeedEvent::Loaded(state) => self.load_state(state),
            FeedEvent::HandOver(h) => self.hand_over(&h.scope) > 0 || !h.scope.is_empty(),
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
            let before = self.alerts.len();
            self.monitored_asns(ev);
            self.alerts.len() > before
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
    fn judge_of(&self, prefix: &IpNet) -> Option<WatchId> {
        self.watch.get_lpm(prefix).map(|(_, &w)| w)
    }

    /// The watched prefixes (by index) that cover `prefix`, shortest first: the same as
    /// `self.watch.cover(prefix)`.
    fn covering(&self, prefix: &IpNet) -> &[WatchId] {
        match self.watch.get_lpm(prefix) {
            Some((_, &w)) => {
                let (start, end) = self.chain_at[w];
                &self.chains[start..end]
            }
            None => &[],
        }
    }

    /// The monitored-ASN detectors, and what they raise alerts with (borrowed apart, so both
    /// can be used at once).
    fn asn_monitor(&mut self) -> (&mut asns::AsnMonitor, Reporting<'_>) {
        (
            &mut self.asns,
            Reporting {
                vps: &self.vps,
                ctx: &self.ctx,
                alerts: &mut self.alerts,
            },
        )
    }
}

/// What the engine knows of one watched prefix right now.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PrefixView {
    /// VPs with a route to the exact prefix.
    pub vantage_points: usize,
    /// VPs per origin ASN (foldhash: made for every changed prefix at each refresh).
    pub origins: FastMap<u32, usize>,
    /// VPs per upstream ASN.
    pub upstreams: FastMap<u32, usize>,
    /// VPs per RPKI origin validation state of their route (empty without RPKI data).
    pub rpki: FastMap<crate::rpki::RovState, usize>,
}

/// The key of a condition a route under `watched_prefix` shows.
fn key(watched_prefix: IpNet, prefix: IpNet, f: Finding) -> AlertKey {
    AlertKey {
        rule: f.rule,
        watched_prefix,
        prefix,
        asn: f.asn,
    }
}

/// The severity of a rule's alerts under a watched prefix (a path rule may set its own).
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

#[cfg(test)]
mod asns_tests;
#[cfg(test)]
mod detect_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
