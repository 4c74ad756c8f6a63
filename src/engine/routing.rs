//! Route changes: what a route event or a peer going down changes in the routes held, the
//! learning windows, the conditions of the watched prefix that judges the route and its
//! visibility count, and in the monitored-ASN detectors.

use std::collections::HashSet;
use std::sync::Arc;

use ipnet::IpNet;

use super::lifecycle;
use super::routes;
use super::vps::VpId;
use super::watched::WatchId;
use super::{Chain, Engine, FastMap, Finding, Route, detect, key};
use crate::alerts::AlertKey;
use crate::event::{RouteChange, RouteEvent, Timestamp, VantagePoint};

impl Engine {
    /// The monitored-ASN detectors: neighbours in any path, and the routes of unwatched
    /// prefixes that a monitored ASN originates.
    pub(super) fn monitored_asns(&mut self, ev: &RouteEvent) {
        // The cheap test first: most events concern no monitored origin.
        let outside =
            self.asns.wants(&ev.prefix, &ev.change) && self.watch.get_lpm(&ev.prefix).is_none();
        let attrs = match &ev.change {
            RouteChange::Announce(a) => Some(a),
            RouteChange::Withdraw => None,
        };
        if !outside && attrs.is_none() {
            let (asns, mut out) = self.asn_monitor();
            asns.expire(ev.timestamp, &mut out);
            return;
        }
        let vp = self.vps.intern(&ev.vp);
        let (asns, mut out) = self.asn_monitor();
        asns.expire(ev.timestamp, &mut out);
        if let Some(attrs) = attrs {
            asns.scan_path(ev.prefix, vp, attrs, ev.timestamp, &mut out);
        }
        if outside {
            asns.route(ev.prefix, vp, &ev.change, ev.timestamp, &mut out);
        }
    }

    /// The session of `vp` went down at `ts`: its routes are withdrawn, those under the roots
    /// `within` only when given. True when a route was withdrawn.
    pub(super) fn peer_down(
        &mut self,
        vp: &Arc<VantagePoint>,
        ts: Timestamp,
        within: Option<&[IpNet]>,
    ) -> bool {
        if ts > self.now {
            self.advance_to(ts);
        }
        let Some(id) = self.vps.get(vp) else {
            return false;
        };
        // The monitored-ASN detectors hold routes of unwatched prefixes, which no partition of
        // a scale-out deployment carries.
        if !self.asns.is_empty() && within.is_none() {
            let (asns, mut out) = self.asn_monitor();
            asns.peer_down(id, ts, &mut out);
        }
        let mut touched = false;
        for prefix in routes::routed_by(&self.routes, id) {
            let covering: Chain = self.watch.cover(&prefix).map(|(_, &i)| i).collect();
            // The least specific watched prefix covering the route is its root.
            let in_scope = within.is_none_or(|roots| {
                covering
                    .first()
                    .is_some_and(|&w| roots.binary_search(&self.watched[w].cfg.prefix).is_ok())
            });
            if in_scope {
                self.apply_route(&covering, prefix, id, &RouteChange::Withdraw, ts);
                touched = true;
            }
        }
        touched
    }

    pub(super) fn apply_route(
        &mut self,
        covering: &[WatchId],
        prefix: IpNet,
        vp: VpId,
        change: &RouteChange,
        ts: Timestamp,
    ) {
        // The route holds the one copy of equal attributes that every route shares; `new`
        // borrows from the event (equal to it).
        let held = match change {
            RouteChange::Announce(attrs) => Some((self.attr_table.intern(attrs), attrs)),
            RouteChange::Withdraw => None,
        };
        let by_vp = self.routes.entry(prefix).or_default();
        // `same`: a re-announcement of the route held (common in real streams), whose
        // findings need no second look.
        let (old, new, same) = match held {
            Some((held, attrs)) => {
                let old = by_vp.insert(
                    vp,
                    Route {
                        attrs: held,
                        since: ts,
                    },
                );
                let same = old
                    .as_ref()
                    .is_some_and(|o| by_vp.get(&vp).is_some_and(|r| r.attrs == o.attrs));
                (old.map(|r| r.attrs), Some(&**attrs), same)
            }
            None => (by_vp.remove(&vp).map(|r| r.attrs), None, false),
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
            if let Some(attrs) = new
                && self.learn(w, prefix, vp, attrs, ts)
            {
                // The baseline grew: every route under this watched prefix is judged anew.
                self.rebuild_conditions(w, ts);
            } else if !self.loading_rib {
                let watched = &self.watched[w];
                let after = new
                    .map(|a| detect::findings(&self.ctx, watched, prefix, a))
                    .unwrap_or_default();
                let before = match &old {
                    Some(_) if same => after.clone(),
                    Some(a) => detect::findings(&self.ctx, watched, prefix, &a.to_attrs()),
                    None => Default::default(),
                };
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
                let delta = i64::from(new.is_some_and(|a| self.allowed(w, a.path.origins())))
                    - i64::from(old.as_ref().is_some_and(|a| self.allowed(w, a.origins())));
                self.count_visibility(w, prefix, delta);
            }
        }
        if let Some(old) = old {
            self.attr_table.release(old);
        }
    }

    /// True when every origin of the route is allowed for watched prefix `w`: the route is
    /// the owner's, so it counts as visibility.
    fn allowed(&self, w: WatchId, origins: &[u32]) -> bool {
        let baseline = &self.watched[w].origins;
        !origins.is_empty() && origins.iter().all(|o| baseline.contains(*o))
    }

    /// Changes the number of VPs with an allowed route to `prefix` (judged by `w`) by `delta`,
    /// to be judged when the instant settles.
    fn count_visibility(&mut self, w: WatchId, prefix: IpNet, delta: i64) {
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
    pub(super) fn recount_visibility(&mut self, w: WatchId, prefix: IpNet) {
        if self.watched[w].cfg.visibility_min_vantage_points == 0 {
            return;
        }
        let allowed = self.routes.get(&prefix).map_or(0, |by_vp| {
            by_vp
                .values()
                .filter(|r| self.allowed(w, r.attrs.origins()))
                .count()
        });
        let state = self.visibility.entry((w, prefix)).or_default();
        state.allowed = allowed as u32;
        if self.unsettled_visibility_keys.insert((w, prefix)) {
            self.unsettled_visibility.push((w, prefix));
        }
    }

    /// Marks a condition to be judged when the instant settles.
    pub(super) fn unsettle(&mut self, w: WatchId, k: AlertKey) {
        if self.unsettled_keys.insert(k) {
            self.unsettled.push((w, k));
        }
    }

    /// Re-evaluates every route under a watched prefix against its current baselines.
    pub(super) fn rebuild_conditions(&mut self, w: WatchId, ts: Timestamp) {
        let watched = &self.watched[w];
        let net = watched.cfg.prefix;
        // The prefix itself and its routed more-specifics (kept per watched prefix), so a
        // rebuild costs the routes under this prefix, not all routes.
        // Only what `w` judges: not a more-specific that a longer watched prefix covers.
        let under: Vec<IpNet> = std::iter::once(net)
            .chain(self.more_specifics[w].iter().copied())
            .filter(|p| self.routes.contains_key(p) && self.judge_of(p) == Some(w))
            .collect();
        let mut fresh: FastMap<AlertKey, HashSet<VpId>> = FastMap::default();
        for prefix in &under {
            let Some(by_vp) = self.routes.get(prefix) else {
                continue;
            };
            for (vp, route) in by_vp.iter() {
                for f in detect::findings(&self.ctx, watched, *prefix, &route.attrs.to_attrs()) {
                    fresh.entry(key(net, *prefix, f)).or_default().insert(vp);
                }
            }
        }
        // In key order (the index keeps it): the order the conditions are judged in.
        let stale: Vec<AlertKey> = self
            .conditions
            .keys_of(&net)
            .filter(|k| !fresh.contains_key(k))
            .copied()
            .collect();
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
            if lifecycle::set_vps(self.conditions.get_or_new(k, ts), vps) {
                self.unsettle(w, k);
            }
        }
        let mut prefixes = under;
        prefixes.sort_unstable();
        for prefix in prefixes {
            self.recount_visibility(w, prefix);
        }
    }

    fn add_vp(&mut self, w: WatchId, prefix: IpNet, f: Finding, vp: VpId, ts: Timestamp) {
        let k = key(self.watched[w].cfg.prefix, prefix, f);
        if self.conditions.get_or_new(k, ts).vps.insert(vp) {
            self.unsettle(w, k);
        }
    }

    fn remove_vp(&mut self, w: WatchId, prefix: IpNet, f: Finding, vp: VpId, _ts: Timestamp) {
        let k = key(self.watched[w].cfg.prefix, prefix, f);
        if let Some(cond) = self.conditions.get_mut(&k)
            && cond.vps.remove(&vp)
        {
            self.unsettle(w, k);
        }
    }

    /// A VP that already showed a condition re-announced (new path, same finding): keep the
    /// alert's sample and last-seen time current.
    fn refresh(&mut self, w: WatchId, prefix: IpNet, f: Finding, _ts: Timestamp) {
        let k = key(self.watched[w].cfg.prefix, prefix, f);
        if self.conditions.get(&k).is_some_and(|c| c.firing.is_some()) {
            self.unsettle(w, k);
        }
    }
}
