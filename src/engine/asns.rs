//! Monitored ASNs: prefixes they originate outside the watch list (`unexpected_prefix`, and
//! `rpki_invalid` for those), and new upstreams or downstreams in any path (`new_neighbor`).
//!
//! The cost for an event that concerns no monitored ASN is a binary search per path element
//! over a short sorted list, plus one hash lookup for a withdrawal.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ipnet::IpNet;

use super::baseline::Baseline;
use super::detect::{self, Context};
use super::routes::VpRoutes;
use super::vps::{VpId, VpTable};
use super::{EngineStats, FastMap, Route, SAMPLE_SIZE, sample_of};
use crate::alerts::{
    Alert, AlertDetail, AlertKey, AlertState, AlertTransition, NeighborSide, Rule, Severity,
    TransitionKind, VpSample,
};
use crate::config::MonitoredAsn;
use crate::event::{PathElem, RouteAttrs, RouteChange, Timestamp};
use crate::rpki::RovState;

#[derive(Debug)]
struct Monitored {
    cfg: MonitoredAsn,
    upstreams: Option<Baseline>,
    downstreams: Option<Baseline>,
    learn_until: Option<Timestamp>,
}

#[derive(Debug)]
struct Condition {
    vps: HashSet<VpId>,
    first_seen: Timestamp,
    peak: u32,
    firing: Option<Alert>,
}

#[derive(Debug)]
struct NeighborSighting {
    vps: HashSet<VpId>,
    first_seen: Timestamp,
    last_seen: Timestamp,
    prefix: IpNet,
    sample: Vec<VpSample>,
    firing: Option<Alert>,
}

/// Everything the engine keeps for monitored ASNs.
#[derive(Debug, Default)]
pub(super) struct AsnMonitor {
    sorted: Box<[u32]>,
    monitored: HashMap<u32, Monitored>,
    /// Routes of unwatched prefixes originated by a monitored ASN.
    routes: FastMap<IpNet, VpRoutes>,
    conditions: HashMap<AlertKey, Condition>,
    neighbors: HashMap<(u32, u32, NeighborSide), NeighborSighting>,
    next_expiry: Option<Timestamp>,
}

/// Where the monitor reports to: the engine's VP table, transitions and counters.
pub(super) struct Out<'a> {
    pub vps: &'a VpTable,
    pub transitions: &'a mut Vec<AlertTransition>,
    pub stats: &'a mut EngineStats,
    pub ctx: &'a Context,
}

impl Out<'_> {
    fn fire(&mut self, alert: Alert) {
        self.stats.fired += 1;
        self.transitions.push(AlertTransition {
            event: TransitionKind::Fired,
            alert,
        });
    }

    fn update(&mut self, alert: Alert) {
        self.transitions.push(AlertTransition {
            event: TransitionKind::Updated,
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
}

fn baseline(list: &Option<Vec<u32>>) -> Option<Baseline> {
    match list {
        None => Some(Baseline::learning()),
        Some(l) if l.is_empty() => None,
        Some(l) => Some(Baseline::new(l)),
    }
}

impl AsnMonitor {
    /// A monitor for these ASNs.
    pub fn new(asns: &[MonitoredAsn]) -> Self {
        let mut sorted: Vec<u32> = asns.iter().map(|a| a.asn).collect();
        sorted.sort_unstable();
        sorted.dedup();
        AsnMonitor {
            sorted: sorted.into_boxed_slice(),
            monitored: asns
                .iter()
                .map(|a| {
                    (
                        a.asn,
                        Monitored {
                            upstreams: baseline(&a.upstreams),
                            downstreams: baseline(&a.downstreams),
                            learn_until: None,
                            cfg: a.clone(),
                        },
                    )
                })
                .collect(),
            ..AsnMonitor::default()
        }
    }

    /// True when no ASN is monitored.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    fn is_monitored(&self, asn: u32) -> bool {
        self.sorted.binary_search(&asn).is_ok()
    }

    /// True when this unwatched prefix needs the monitor: announced by a monitored origin, or
    /// a prefix it holds routes for.
    pub fn wants(&self, prefix: &IpNet, change: &RouteChange) -> bool {
        if self.is_empty() {
            return false;
        }
        match change {
            RouteChange::Announce(a) => {
                a.path.origins().iter().any(|o| self.is_monitored(*o))
                    || (!self.routes.is_empty() && self.routes.contains_key(prefix))
            }
            RouteChange::Withdraw => !self.routes.is_empty() && self.routes.contains_key(prefix),
        }
    }

    fn findings(&self, ctx: &Context, prefix: &IpNet, attrs: &RouteAttrs) -> detect::Findings {
        let mut out = detect::Findings::new();
        let rov = ctx.rov(prefix, &attrs.path);
        for &o in attrs.path.origins() {
            let Some(m) = self.monitored.get(&o) else {
                continue;
            };
            if m.cfg.unexpected_prefix {
                out.push(detect::Finding {
                    rule: Rule::UnexpectedPrefix,
                    asn: o,
                });
            }
            if rov == Some(RovState::Invalid) {
                out.push(detect::Finding {
                    rule: Rule::RpkiInvalid,
                    asn: o,
                });
            }
        }
        out
    }

    /// A route event for a prefix outside the watch list (see [`AsnMonitor::wants`]).
    pub fn route(
        &mut self,
        prefix: IpNet,
        vp: VpId,
        change: &RouteChange,
        ts: Timestamp,
        loading_rib: bool,
        out: &mut Out<'_>,
    ) {
        let by_vp = self.routes.entry(prefix).or_default();
        let old = match change {
            RouteChange::Announce(attrs)
                if attrs
                    .path
                    .origins()
                    .iter()
                    .any(|o| self.sorted.binary_search(o).is_ok()) =>
            {
                by_vp
                    .insert(
                        vp,
                        Route {
                            attrs: attrs.clone(),
                            since: ts,
                        },
                    )
                    .map(|r| r.attrs)
            }
            // A monitored origin's route replaced by another origin's, or withdrawn.
            _ => by_vp.remove(&vp).map(|r| r.attrs),
        };
        let new = self
            .routes
            .get(&prefix)
            .and_then(|m| m.get(&vp))
            .map(|r| r.attrs.clone());
        if self.routes.get(&prefix).is_some_and(|m| m.is_empty()) {
            self.routes.remove(&prefix);
        }
        if loading_rib {
            return;
        }
        let before = old
            .as_deref()
            .map(|a| self.findings(out.ctx, &prefix, a))
            .unwrap_or_default();
        let after = new
            .as_deref()
            .map(|a| self.findings(out.ctx, &prefix, a))
            .unwrap_or_default();
        for f in before.iter().filter(|f| !after.contains(f)) {
            self.set_vp(prefix, *f, vp, false, ts, out);
        }
        for f in after.iter() {
            self.set_vp(prefix, *f, vp, true, ts, out);
        }
    }

    fn set_vp(
        &mut self,
        prefix: IpNet,
        f: detect::Finding,
        vp: VpId,
        present: bool,
        ts: Timestamp,
        out: &mut Out<'_>,
    ) {
        let k = AlertKey {
            rule: f.rule,
            watched_prefix: prefix,
            prefix,
            asn: f.asn,
        };
        let changed = if present {
            let cond = self.conditions.entry(k).or_insert_with(|| Condition {
                vps: HashSet::new(),
                first_seen: ts,
                peak: 0,
                firing: None,
            });
            cond.vps.insert(vp) || cond.firing.is_some()
        } else {
            // Never create an empty condition on removal.
            self.conditions
                .get_mut(&k)
                .is_some_and(|cond| cond.vps.remove(&vp))
        };
        if changed {
            self.after_change(k, ts, out);
        }
    }

    fn after_change(&mut self, k: AlertKey, ts: Timestamp, out: &mut Out<'_>) {
        let Some(cond) = self.conditions.get_mut(&k) else {
            return;
        };
        let count = cond.vps.len() as u32;
        cond.peak = cond.peak.max(count);
        if count == 0 {
            if let Some(c) = self.conditions.remove(&k)
                && let Some(alert) = c.firing
            {
                out.resolve(alert, ts);
            }
            return;
        }
        let Some(m) = self.monitored.get(&k.asn) else {
            return;
        };
        let sample = sample_of(&self.routes, out.vps, k.prefix, cond.vps.iter().copied());
        let attrs: Vec<Arc<RouteAttrs>> = self
            .routes
            .get(&k.prefix)
            .map(|by_vp| {
                let mut ids: Vec<&VpId> = cond.vps.iter().collect();
                ids.sort_unstable();
                ids.into_iter()
                    .filter_map(|id| by_vp.get(id).map(|r| r.attrs.clone()))
                    .take(SAMPLE_SIZE)
                    .collect()
            })
            .unwrap_or_default();
        let detail = AlertDetail {
            rpki: attrs.first().and_then(|a| out.ctx.rov(&k.prefix, &a.path)),
            rpki_stale: out.ctx.rpki.stale,
            monitored_asn: Some(k.asn),
            communities: detect::labelled_communities(out.ctx, &attrs),
            ..AlertDetail::default()
        };
        match cond.firing.as_mut() {
            Some(alert) => {
                alert.vantage_points = count;
                alert.peak_vantage_points = cond.peak;
                alert.sample = sample;
                alert.last_seen = ts;
                alert.detail = detail;
                let alert = alert.clone();
                out.update(alert);
            }
            None if count >= m.cfg.min_vantage_points => {
                let alert = Alert {
                    id: Alert::make_id(&k, cond.first_seen, ts, 0),
                    rule: k.rule,
                    severity: match k.rule {
                        Rule::RpkiInvalid => Severity::Critical,
                        _ => Severity::Warning,
                    },
                    state: AlertState::Firing,
                    prefix: k.prefix,
                    watched_prefix: k.watched_prefix,
                    description: m.cfg.description.clone(),
                    origin: Some(k.asn),
                    upstream: None,
                    expected_origins: Vec::new(),
                    expected_upstreams: Vec::new(),
                    vantage_points: count,
                    peak_vantage_points: cond.peak,
                    sample,
                    groups: m.cfg.groups.clone(),
                    first_seen: cond.first_seen,
                    fired_at: ts,
                    last_seen: ts,
                    resolved_at: None,
                    detail,
                };
                cond.firing = Some(alert.clone());
                out.fire(alert);
            }
            None => {}
        }
    }

    /// A VP's session went down: its routes are gone.
    pub fn peer_down(&mut self, vp: VpId, ts: Timestamp, out: &mut Out<'_>) {
        let mut prefixes: Vec<IpNet> = self
            .routes
            .iter()
            .filter(|(_, m)| m.contains_key(&vp))
            .map(|(p, _)| *p)
            .collect();
        prefixes.sort_unstable();
        for p in prefixes {
            self.route(p, vp, &RouteChange::Withdraw, ts, false, out);
        }
    }

    /// Judges every held route anew (after new RPKI data or a table dump).
    pub fn rebuild(&mut self, ts: Timestamp, out: &mut Out<'_>) {
        let mut fresh: HashMap<AlertKey, HashSet<VpId>> = HashMap::new();
        for (prefix, by_vp) in &self.routes {
            for (vp, r) in by_vp.iter() {
                for f in self.findings(out.ctx, prefix, &r.attrs) {
                    let k = AlertKey {
                        rule: f.rule,
                        watched_prefix: *prefix,
                        prefix: *prefix,
                        asn: f.asn,
                    };
                    fresh.entry(k).or_default().insert(vp);
                }
            }
        }
        let mut keys: Vec<AlertKey> = self
            .conditions
            .keys()
            .chain(fresh.keys())
            .copied()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            let vps = fresh.remove(&k).unwrap_or_default();
            let cond = self.conditions.entry(k).or_insert_with(|| Condition {
                vps: HashSet::new(),
                first_seen: ts,
                peak: 0,
                firing: None,
            });
            if cond.vps != vps {
                cond.vps = vps;
                self.after_change(k, ts, out);
            }
        }
    }

    /// Looks for monitored ASNs in an announced path and checks their neighbours.
    pub fn scan_path(
        &mut self,
        prefix: IpNet,
        vp: VpId,
        attrs: &RouteAttrs,
        ts: Timestamp,
        loading_rib: bool,
        out: &mut Out<'_>,
    ) {
        let path = &attrs.path.0;
        if !path.iter().any(|e| match e {
            PathElem::Asn(a) => self.is_monitored(*a),
            PathElem::Set(_) => false,
        }) {
            return;
        }
        // Collapse prepends; an AS_SET breaks adjacency (None).
        let mut seq: Vec<Option<u32>> = Vec::with_capacity(path.len());
        for e in path {
            let v = match e {
                PathElem::Asn(a) => Some(*a),
                PathElem::Set(_) => None,
            };
            if v.is_none() || seq.last() != Some(&v) {
                seq.push(v);
            }
        }
        // A loop (an ASN again after another one) makes every adjacency doubtful: skip it.
        let asns: Vec<u32> = seq.iter().flatten().copied().collect();
        let looped = if asns.len() <= 32 {
            asns.iter()
                .enumerate()
                .any(|(i, a)| asns[i + 1..].contains(a))
        } else {
            let mut seen = HashSet::with_capacity(asns.len());
            !asns.iter().all(|a| seen.insert(*a))
        };
        if looped {
            return;
        }
        for i in 0..seq.len() {
            let Some(m) = seq[i] else { continue };
            if !self.is_monitored(m) {
                continue;
            }
            if i > 0
                && let Some(up) = seq[i - 1]
            {
                self.neighbor(
                    m,
                    up,
                    NeighborSide::Upstream,
                    prefix,
                    vp,
                    attrs,
                    ts,
                    loading_rib,
                    out,
                );
            }
            if let Some(Some(down)) = seq.get(i + 1) {
                self.neighbor(
                    m,
                    *down,
                    NeighborSide::Downstream,
                    prefix,
                    vp,
                    attrs,
                    ts,
                    loading_rib,
                    out,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn neighbor(
        &mut self,
        m: u32,
        n: u32,
        side: NeighborSide,
        prefix: IpNet,
        vp: VpId,
        attrs: &RouteAttrs,
        ts: Timestamp,
        loading_rib: bool,
        out: &mut Out<'_>,
    ) {
        let Some(mon) = self.monitored.get_mut(&m) else {
            return;
        };
        let until = *mon
            .learn_until
            .get_or_insert_with(|| ts.plus_secs(mon.cfg.learning_window_seconds));
        let base = match side {
            NeighborSide::Upstream => &mut mon.upstreams,
            NeighborSide::Downstream => &mut mon.downstreams,
        };
        let Some(base) = base.as_mut() else { return };
        if base.contains(n) {
            return;
        }
        if base.is_learning() && (loading_rib || ts <= until) {
            base.learn(n);
            return;
        }
        let learning = base.is_learning();
        let min = mon.cfg.min_vantage_points;
        let hold = mon.cfg.neighbor_hold_seconds;
        let s = self
            .neighbors
            .entry((m, n, side))
            .or_insert_with(|| NeighborSighting {
                vps: HashSet::new(),
                first_seen: ts,
                last_seen: ts,
                prefix,
                sample: Vec::new(),
                firing: None,
            });
        s.last_seen = ts;
        let expiry = ts.plus_secs(hold);
        self.next_expiry = Some(self.next_expiry.map_or(expiry, |e| e.min(expiry)));
        if !s.vps.insert(vp) {
            return;
        }
        if s.sample.len() < SAMPLE_SIZE {
            s.sample.push(VpSample {
                vantage_point: out
                    .vps
                    .get_vp(vp)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                as_path: attrs.path.to_string(),
                communities: attrs.communities.iter().map(|c| c.to_string()).collect(),
                seen_at: ts,
            });
        }
        let count = s.vps.len() as u32;
        if let Some(alert) = s.firing.as_mut() {
            alert.vantage_points = count;
            alert.peak_vantage_points = count;
            alert.last_seen = ts;
            alert.sample = s.sample.clone();
            let alert = alert.clone();
            out.update(alert);
            return;
        }
        if count < min {
            return;
        }
        let Some(mon) = self.monitored.get_mut(&m) else {
            return;
        };
        let k = AlertKey {
            rule: Rule::NewNeighbor,
            watched_prefix: s.prefix,
            prefix: s.prefix,
            asn: n,
        };
        let alert = Alert {
            id: crate::alerts::stable_id(&[
                k.rule.as_str(),
                &k.prefix.to_string(),
                &n.to_string(),
                &m.to_string(),
                match side {
                    NeighborSide::Upstream => "upstream",
                    NeighborSide::Downstream => "downstream",
                },
                &s.first_seen.0.to_string(),
                &ts.0.to_string(),
            ]),
            rule: Rule::NewNeighbor,
            severity: Severity::Warning,
            state: AlertState::Firing,
            prefix: s.prefix,
            watched_prefix: s.prefix,
            description: mon.cfg.description.clone(),
            origin: None,
            upstream: None,
            expected_origins: Vec::new(),
            expected_upstreams: Vec::new(),
            vantage_points: count,
            peak_vantage_points: count,
            sample: s.sample.clone(),
            groups: mon.cfg.groups.clone(),
            first_seen: s.first_seen,
            fired_at: ts,
            last_seen: ts,
            resolved_at: None,
            detail: AlertDetail {
                monitored_asn: Some(m),
                neighbor: Some(n),
                neighbor_side: Some(side),
                rpki_stale: out.ctx.rpki.stale,
                communities: detect::labelled_communities(
                    out.ctx,
                    std::slice::from_ref(&Arc::new(attrs.clone())),
                ),
                ..AlertDetail::default()
            },
        };
        s.firing = Some(alert.clone());
        out.fire(alert);
        if learning {
            // Known from now on: the alert resolves once the hold time passes.
            let base = match side {
                NeighborSide::Upstream => &mut mon.upstreams,
                NeighborSide::Downstream => &mut mon.downstreams,
            };
            if let Some(b) = base.as_mut() {
                b.learn(n);
            }
        }
    }

    /// Resolves `new_neighbor` alerts (and forgets sightings) not seen for their hold time.
    pub fn expire(&mut self, ts: Timestamp, out: &mut Out<'_>) {
        if self.next_expiry.is_none_or(|e| ts < e) {
            return;
        }
        let mut gone: Vec<(u32, u32, NeighborSide)> = Vec::new();
        let mut next: Option<Timestamp> = None;
        for (key, s) in &self.neighbors {
            let hold = self
                .monitored
                .get(&key.0)
                .map_or(3600, |m| m.cfg.neighbor_hold_seconds);
            let e = s.last_seen.plus_secs(hold);
            if ts >= e {
                gone.push(*key);
            } else {
                next = Some(next.map_or(e, |n| n.min(e)));
            }
        }
        gone.sort_unstable();
        for key in gone {
            if let Some(s) = self.neighbors.remove(&key)
                && let Some(alert) = s.firing
            {
                out.resolve(alert, ts);
            }
        }
        self.next_expiry = next;
    }
}
