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
use super::interner::AttrTable;
use super::lifecycle::{self, About, Condition, Facts, Next, Reporting, Thresholds};
use super::routes::{self, VpRoutes};
use super::vps::VpId;
use super::{FastMap, Route, SAMPLE_SIZE};
use crate::alerts::{AlertDetail, AlertKey, NeighborSide, Rule, Severity};
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

/// A new neighbour of a monitored ASN, seen in some paths.
#[derive(Debug)]
struct NeighborSighting {
    /// The VPs that showed it, and its alert.
    cond: Condition,
    /// When some VP last showed it: it is forgotten `neighbor_hold_seconds` later.
    last_seen: Timestamp,
    /// The prefix of the first path that showed it (the alert's prefix).
    prefix: IpNet,
    /// The paths of the first [`SAMPLE_SIZE`] VPs that showed it, and when.
    routes: Vec<(VpId, Route)>,
}

/// One announcement, as a neighbour sighting sees it.
struct Seen<'a> {
    prefix: IpNet,
    vp: VpId,
    attrs: &'a Arc<RouteAttrs>,
    ts: Timestamp,
}

/// Everything the engine keeps for monitored ASNs.
#[derive(Debug, Default)]
pub(super) struct AsnMonitor {
    sorted: Box<[u32]>,
    monitored: HashMap<u32, Monitored>,
    /// Routes of unwatched prefixes originated by a monitored ASN.
    routes: FastMap<IpNet, VpRoutes>,
    /// The attributes of `routes` and of the sightings' sample routes, each held once.
    table: AttrTable,
    conditions: HashMap<AlertKey, Condition>,
    neighbors: HashMap<(u32, u32, NeighborSide), NeighborSighting>,
    next_expiry: Option<Timestamp>,
    /// While the engine loads a table dump: learn and hold routes, raise nothing.
    pub loading_rib: bool,
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
        out: &mut Reporting<'_>,
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
                let attrs = self.table.intern(attrs);
                by_vp
                    .insert(vp, Route { attrs, since: ts })
                    .map(|r| r.attrs)
            }
            // A monitored origin's route replaced by another origin's, or withdrawn.
            _ => by_vp.remove(&vp).map(|r| r.attrs),
        };
        let new = self
            .routes
            .get(&prefix)
            .and_then(|m| m.get(&vp))
            .map(|r| r.attrs.to_attrs());
        if self.routes.get(&prefix).is_some_and(|m| m.is_empty()) {
            self.routes.remove(&prefix);
        }
        if self.loading_rib {
            if let Some(old) = old {
                self.table.release(old);
            }
            return;
        }
        let before = old
            .as_ref()
            .map(|a| self.findings(out.ctx, &prefix, &a.to_attrs()))
            .unwrap_or_default();
        if let Some(old) = old {
            self.table.release(old);
        }
        let after = new
            .as_ref()
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
        out: &mut Reporting<'_>,
    ) {
        let k = AlertKey {
            rule: f.rule,
            watched_prefix: prefix,
            prefix,
            asn: f.asn,
        };
        let changed = if present {
            let cond = self
                .conditions
                .entry(k)
                .or_insert_with(|| Condition::new(ts));
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

    /// Judges condition `k` on its VPs now (the monitored-ASN rules have no hold-downs).
    fn after_change(&mut self, k: AlertKey, ts: Timestamp, out: &mut Reporting<'_>) {
        let Some(cond) = self.conditions.get_mut(&k) else {
            return;
        };
        let Some(m) = self.monitored.get(&k.asn) else {
            return;
        };
        let th = Thresholds::immediate(m.cfg.min_vantage_points);
        let (routes, vps, ctx) = (&self.routes, out.vps, out.ctx);
        let facts = |c: &Condition| {
            let (sample, sampled) =
                lifecycle::sample_of(vps, routes.get(&k.prefix), &c.vps, c.previous_sample());
            Facts {
                detail: AlertDetail {
                    rpki: sampled
                        .first()
                        .and_then(|(_, a)| ctx.rov(&k.prefix, &a.path)),
                    rpki_stale: ctx.rpki.stale,
                    monitored_asn: Some(k.asn),
                    communities: detect::labelled_communities(
                        ctx,
                        sampled.iter().map(|(_, a)| &**a),
                    ),
                    ..AlertDetail::default()
                },
                sample,
                sampled,
                path_severity: None,
            }
        };
        let about = |_: &Facts| About {
            severity: match k.rule {
                Rule::RpkiInvalid => Severity::Critical,
                _ => Severity::Warning,
            },
            description: m.cfg.description.clone(),
            origin: Some(k.asn),
            upstream: None,
            expected_origins: Vec::new(),
            expected_upstreams: Vec::new(),
            groups: m.cfg.groups.clone(),
        };
        let next = cond.judge(&k, th, ts, out.alerts, facts, about);
        if next == Next::Forget {
            self.conditions.remove(&k);
        }
    }

    /// A VP's session went down: its routes are gone.
    pub fn peer_down(&mut self, vp: VpId, ts: Timestamp, out: &mut Reporting<'_>) {
        for p in routes::routed_by(&self.routes, vp) {
            self.route(p, vp, &RouteChange::Withdraw, ts, out);
        }
    }

    /// Judges every held route anew (after new RPKI data or a table dump).
    pub fn rebuild(&mut self, ts: Timestamp, out: &mut Reporting<'_>) {
        let mut fresh: HashMap<AlertKey, HashSet<VpId>> = HashMap::new();
        for (prefix, by_vp) in &self.routes {
            for (vp, r) in by_vp.iter() {
                for f in self.findings(out.ctx, prefix, &r.attrs.to_attrs()) {
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
            let cond = self
                .conditions
                .entry(k)
                .or_insert_with(|| Condition::new(ts));
            if lifecycle::set_vps(cond, vps) {
                self.after_change(k, ts, out);
            }
        }
    }

    /// Looks for monitored ASNs in an announced path and checks their neighbours.
    pub fn scan_path(
        &mut self,
        prefix: IpNet,
        vp: VpId,
        attrs: &Arc<RouteAttrs>,
        ts: Timestamp,
        out: &mut Reporting<'_>,
    ) {
        let path: Vec<&PathElem> = attrs.path.iter().collect();
        if !path.iter().any(|e| match e {
            PathElem::Asn(a) => self.is_monitored(*a),
            PathElem::Set(_) => false,
        }) {
            return;
        }
        // Collapse prepends; an AS_SET breaks adjacency (None).
        let mut seq: Vec<Option<u32>> = Vec::with_capacity(path.len());
        for e in path.iter().copied() {
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
            let upstream = i.checked_sub(1).and_then(|j| seq[j]);
            let downstream = seq.get(i + 1).copied().flatten();
            for (n, side) in [
                (upstream, NeighborSide::Upstream),
                (downstream, NeighborSide::Downstream),
            ] {
                if let Some(n) = n {
                    let seen = Seen {
                        prefix,
                        vp,
                        attrs,
                        ts,
                    };
                    self.neighbor(m, n, side, &seen, out);
                }
            }
        }
    }

    /// A path shows monitored ASN `m` with neighbour `n` on `side`: learned, or sighted.
    fn neighbor(
        &mut self,
        m: u32,
        n: u32,
        side: NeighborSide,
        seen: &Seen<'_>,
        out: &mut Reporting<'_>,
    ) {
        let &Seen {
            prefix,
            vp,
            attrs,
            ts,
        } = seen;
        let loading_rib = self.loading_rib;
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
        let hold = mon.cfg.neighbor_hold_seconds;
        let s = self
            .neighbors
            .entry((m, n, side))
            .or_insert_with(|| NeighborSighting {
                cond: Condition::new(ts),
                last_seen: ts,
                prefix,
                routes: Vec::new(),
            });
        s.last_seen = ts;
        let expiry = ts.plus_secs(hold);
        self.next_expiry = Some(self.next_expiry.map_or(expiry, |e| e.min(expiry)));
        if !s.cond.vps.insert(vp) {
            return;
        }
        if s.routes.len() < SAMPLE_SIZE {
            let route = Route {
                attrs: self.table.intern(attrs),
                since: ts,
            };
            s.routes.push((vp, route));
        }
        let k = AlertKey {
            rule: Rule::NewNeighbor,
            watched_prefix: s.prefix,
            prefix: s.prefix,
            asn: n,
        };
        let th = Thresholds::immediate(mon.cfg.min_vantage_points);
        let (vps, ctx) = (out.vps, out.ctx);
        let NeighborSighting { cond, routes, .. } = s;
        let fired_before = cond.firing.is_some();
        // Sightings end by expiry (see `expire`), never by judging: VPs are only added.
        let facts = |c: &Condition| {
            let (sample, sampled) = lifecycle::sample(
                vps,
                routes.iter().map(|(id, r)| (*id, r)),
                c.previous_sample(),
            );
            Facts {
                sample,
                sampled,
                // The labelled communities of the path that made it fire.
                detail: c.firing.as_ref().map_or_else(
                    || AlertDetail {
                        monitored_asn: Some(m),
                        neighbor: Some(n),
                        neighbor_side: Some(side),
                        rpki_stale: ctx.rpki.stale,
                        communities: detect::labelled_communities(ctx, [&**attrs]),
                        ..AlertDetail::default()
                    },
                    |a| a.detail.clone(),
                ),
                path_severity: None,
            }
        };
        let about = |_: &Facts| About {
            severity: Severity::Warning,
            description: mon.cfg.description.clone(),
            origin: None,
            upstream: None,
            expected_origins: Vec::new(),
            expected_upstreams: Vec::new(),
            groups: mon.cfg.groups.clone(),
        };
        let _ = cond.judge(&k, th, ts, out.alerts, facts, about);
        if learning && !fired_before && cond.firing.is_some() {
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
    pub fn expire(&mut self, ts: Timestamp, out: &mut Reporting<'_>) {
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
            if let Some(mut s) = self.neighbors.remove(&key) {
                s.cond.end(ts, out.alerts);
            }
        }
        self.next_expiry = next;
    }
}
