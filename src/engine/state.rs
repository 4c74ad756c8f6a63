//! The engine's state as plain data: exported for the store, and restored from it after a
//! restart or a config reload.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::baseline::Baseline;
use super::routes::VpRoutes;
use super::watched::WatchId;
use super::{Engine, Route, detect, key};
use crate::alerts::{Alert, AlertTransition, Rule, TransitionKind};
use crate::config::{Config, WatchedPrefix};
use crate::event::{RouteAttrs, Timestamp, VantagePoint};

/// The routes of one prefix, by VP index into [`EngineState::vps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRoutes {
    /// The prefix (a watched prefix or a more-specific of one).
    pub prefix: IpNet,
    /// (VP index, route, since when).
    pub routes: Vec<(u32, Arc<RouteAttrs>, Timestamp)>,
}

/// Learned baselines of one watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedBaseline {
    /// The watched prefix.
    pub prefix: IpNet,
    /// Learned origins (empty when origins are configured).
    pub origins: Vec<u32>,
    /// Learned upstreams (empty when configured or not checked).
    pub upstreams: Vec<u32>,
    /// End of the learning window, once it started.
    pub learn_until: Option<Timestamp>,
    /// Origins an operator accepted (configured prefixes too).
    pub accepted_origins: Vec<u32>,
    /// Upstreams an operator accepted (configured prefixes too).
    pub accepted_upstreams: Vec<u32>,
}

/// A part of the engine's state: everything when exported whole, or what changed since the
/// last export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineState {
    /// Event time of the newest event processed.
    pub taken_at: Timestamp,
    /// VPs from index `first_vp` on (indices are stable for the life of the data).
    pub vps: Vec<VantagePoint>,
    /// Index of `vps[0]`.
    pub first_vp: u32,
    /// Routes of the prefixes included; a prefix with no routes means "none left".
    pub routes: Vec<PrefixRoutes>,
    /// Learned baselines of prefixes in learning mode.
    pub baselines: Vec<LearnedBaseline>,
    /// (watched prefix, prefix) pairs whose visibility threshold was reached.
    pub visibility_reached: Vec<(IpNet, IpNet)>,
    /// Alerts firing now.
    pub firing: Vec<Alert>,
}

impl Engine {
    /// Event time of the newest event processed.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The whole state.
    pub fn export_state(&self) -> EngineState {
        let mut exported = Exported::default();
        let mut routes: Vec<PrefixRoutes> = self
            .routes
            .iter()
            .map(|(p, by_vp)| exported.prefix_routes(*p, by_vp))
            .collect();
        routes.sort_by_key(|r| r.prefix);
        EngineState {
            taken_at: self.now,
            vps: (0..self.vps.len() as u32)
                .filter_map(|i| self.vps.get_vp(i).map(|v| (**v).clone()))
                .collect(),
            first_vp: 0,
            routes,
            baselines: self.baselines(),
            visibility_reached: self.reached(),
            firing: self.firing_alerts(),
        }
    }

    /// True when the next [`Engine::take_changes`] includes baselines and visibility flags,
    /// which then replace the saved ones whole (even when there are none).
    pub fn meta_changed(&self) -> bool {
        self.meta_dirty
    }

    /// Number of alerts firing now.
    pub fn firing_count(&self) -> usize {
        self.conditions
            .values()
            .filter(|c| c.firing.is_some())
            .count()
            + self
                .visibility
                .values()
                .filter(|v| v.firing.is_some())
                .count()
    }

    /// True when [`Engine::take_changes`] has something to hand out.
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty() || self.meta_dirty || self.exported_vps < self.vps.len() as u32
    }

    /// What changed since the last call: routes of touched prefixes, new VPs, and (when any
    /// changed) all baselines and visibility flags. Firing alerts are not included: the store
    /// has them from the transitions.
    pub fn take_changes(&mut self) -> EngineState {
        let mut dirty: Vec<IpNet> = self.dirty.drain().collect();
        dirty.sort_unstable();
        let mut exported = Exported::default();
        let routes = dirty
            .into_iter()
            .map(|p| match self.routes.get(&p) {
                Some(by_vp) => exported.prefix_routes(p, by_vp),
                None => PrefixRoutes {
                    prefix: p,
                    routes: Vec::new(),
                },
            })
            .collect();
        let first_vp = self.exported_vps;
        let vps = (first_vp..self.vps.len() as u32)
            .filter_map(|i| self.vps.get_vp(i).map(|v| (**v).clone()))
            .collect();
        self.exported_vps = self.vps.len() as u32;
        let meta = std::mem::take(&mut self.meta_dirty);
        EngineState {
            taken_at: self.now,
            vps,
            first_vp,
            routes,
            baselines: if meta { self.baselines() } else { Vec::new() },
            visibility_reached: if meta { self.reached() } else { Vec::new() },
            firing: Vec::new(),
        }
    }

    fn baselines(&self) -> Vec<LearnedBaseline> {
        self.watched
            .iter()
            .filter(|w| {
                w.origins.is_learning()
                    || !w.origins.accepted().is_empty()
                    || w.upstreams
                        .as_ref()
                        .is_some_and(|u| u.is_learning() || !u.accepted().is_empty())
            })
            .map(|w| LearnedBaseline {
                prefix: w.cfg.prefix,
                origins: if w.origins.is_learning() {
                    w.origins.asns().to_vec()
                } else {
                    Vec::new()
                },
                upstreams: w
                    .upstreams
                    .as_ref()
                    .filter(|u| u.is_learning())
                    .map(|u| u.asns().to_vec())
                    .unwrap_or_default(),
                learn_until: w.learn_until,
                accepted_origins: w.origins.accepted().to_vec(),
                accepted_upstreams: w
                    .upstreams
                    .as_ref()
                    .map(|u| u.accepted().to_vec())
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn reached(&self) -> Vec<(IpNet, IpNet)> {
        let mut out: Vec<(IpNet, IpNet)> = self
            .visibility
            .iter()
            .filter(|(_, v)| v.reached)
            .map(|((w, p), _)| (self.watched[*w].cfg.prefix, *p))
            .collect();
        out.sort_unstable();
        out
    }

    fn firing_alerts(&self) -> Vec<Alert> {
        let mut out: Vec<Alert> = self
            .conditions
            .values()
            .filter_map(|c| c.firing.clone())
            .chain(
                self.visibility
                    .values()
                    .filter_map(|v| v.firing.as_deref().cloned()),
            )
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// An engine for `prefixes` that continues from `state`: routes under the watched prefixes
    /// are kept, learned baselines of prefixes still in learning mode too, and firing alerts
    /// stay the same alerts (same id and first-seen time). Conditions are judged again with the
    /// new settings; what changed comes out as transitions at the state's time: alerts whose
    /// condition no longer holds resolve, conditions now over a threshold fire.
    ///
    /// The store saves alert transitions together with the routes of their prefixes, so a
    /// firing alert without routes that show its condition has ended.
    pub fn restore(prefixes: &[WatchedPrefix], state: EngineState) -> Engine {
        Engine::new(prefixes).restored(state)
    }

    /// Fills a freshly configured engine (monitored ASNs, community labels and RPKI data
    /// already set, no events yet) with saved state; see [`Engine::restore`]. Alerts of the
    /// monitored-ASN rules are not carried over: they end here and fire again on the next
    /// route that shows them. Afterwards [`Engine::take_changes`] hands out what differs from
    /// `state`.
    pub fn restored(self, state: EngineState) -> Engine {
        let mut e = self;
        let now = state.taken_at;
        e.now = now;
        // What is kept as it was given needs no saving again; see `dirty` below.
        let mut given_meta = (state.baselines.clone(), state.visibility_reached.clone());
        given_meta.0.sort_by_key(|b| b.prefix);
        given_meta.1.sort_unstable();
        let mut changed: super::FastSet<IpNet> = super::FastSet::default();
        let ids: Vec<u32> = state
            .vps
            .into_iter()
            .map(|vp| e.vps.intern(&Arc::new(vp)))
            .collect();
        let same_ids = ids.iter().enumerate().all(|(i, id)| i == *id as usize);
        // Sized up front: growing maps of millions of routes rehashes each of them repeatedly.
        e.routes.reserve(state.routes.len());
        for pr in state.routes {
            if e.watch.cover(&pr.prefix).next().is_none() || pr.routes.is_empty() {
                changed.insert(pr.prefix);
                continue;
            }
            let by_vp = e.routes.entry(pr.prefix).or_default();
            for (vp, attrs, since) in pr.routes {
                let Some(&id) = ids.get(vp as usize) else {
                    changed.insert(pr.prefix);
                    continue;
                };
                let attrs = e.attr_table.intern(&attrs);
                match by_vp.insert(id, Route { attrs, since }) {
                    None => e.route_count += 1,
                    Some(old) => e.attr_table.release(old.attrs),
                }
            }
        }
        // The per-prefix views: which more-specifics are routed, and that every view is new.
        let routed: Vec<IpNet> = e.routes.keys().copied().collect();
        for prefix in routed {
            let covering: Vec<WatchId> = e.watch.cover(&prefix).map(|(_, &w)| w).collect();
            for w in covering {
                e.last_change[w] = Some(now);
                if e.watched[w].cfg.prefix != prefix {
                    e.more_specifics[w].insert(prefix);
                }
            }
        }
        e.state_dirty = e.watched.ids().collect();
        let index: HashMap<IpNet, WatchId> = e
            .watched
            .enumerate()
            .map(|(w, watched)| (watched.cfg.prefix, w))
            .collect();
        for b in state.baselines {
            let Some(&i) = index.get(&b.prefix) else {
                continue;
            };
            let w = &mut e.watched[i];
            if w.origins.is_learning() {
                w.origins = Baseline::restored(&b.origins);
            }
            if let Some(u) = w.upstreams.as_mut().filter(|u| u.is_learning()) {
                *u = Baseline::restored(&b.upstreams);
            }
            w.origins.restore_accepted(&b.accepted_origins);
            if let Some(u) = w.upstreams.as_mut() {
                u.restore_accepted(&b.accepted_upstreams);
            }
            w.learn_until = b.learn_until;
        }
        // A window that was open when the state was saved goes on until its end.
        for w in e.watched.ids() {
            e.reopen_restored_window(w, now);
        }
        for (watched, prefix) in state.visibility_reached {
            // Only where that watched prefix still judges the prefix (the longest match).
            if let Some(&i) = index.get(&watched)
                && e.judge_of(&prefix) == Some(i)
            {
                e.visibility.entry((i, prefix)).or_default().reached = true;
            }
        }
        // Conditions from the routes, without firing anything yet: one pass over the routes,
        // each prefix judged by the longest watched prefix that covers it (a trie lookup).
        for (prefix, by_vp) in &e.routes {
            let Some(i) = e.judge_of(prefix) else {
                continue;
            };
            let w = &e.watched[i];
            let net = w.cfg.prefix;
            for (vp, route) in by_vp.iter() {
                for f in detect::findings(&e.ctx, w, *prefix, &route.attrs.to_attrs()) {
                    let c = e.conditions.get_or_new(key(net, *prefix, f), now);
                    c.vps.insert(vp);
                    c.peak = c.peak.max(c.vps.len() as u32);
                }
            }
        }
        // The alerts that were firing continue.
        for alert in state.firing {
            let k = alert.key();
            let Some(&w) = index.get(&alert.watched_prefix) else {
                // No longer watched: the alert ends here.
                e.alerts.resolve(alert, now);
                continue;
            };
            if alert.rule == Rule::VisibilityLoss {
                if e.judge_of(&alert.prefix) != Some(w) {
                    // A longer watched prefix judges it now (or nothing routes it).
                    e.alerts.resolve(alert, now);
                    continue;
                }
                let v = e.visibility.entry((w, alert.prefix)).or_default();
                v.reached = true;
                v.firing = Some(Box::new(alert));
                continue;
            }
            let c = e.conditions.get_or_new(k, alert.first_seen);
            c.first_seen = alert.first_seen;
            c.peak = c.peak.max(alert.peak_vantage_points);
            c.firing = Some(alert);
        }
        // Judge every condition and visibility once under the current settings.
        let mut keys: Vec<AlertKeyAt> = e
            .conditions
            .keys()
            .filter_map(|k| index.get(&k.watched_prefix).map(|w| (*w, *k)))
            .collect();
        keys.sort_unstable_by_key(|(_, k)| *k);
        for (w, k) in keys {
            e.unsettle(w, k);
        }
        let mut vis: Vec<(WatchId, IpNet)> = e
            .visibility
            .keys()
            .copied()
            .chain(
                e.routes
                    .keys()
                    .filter_map(|p| e.judge_of(p).map(|w| (w, *p))),
            )
            .collect();
        vis.sort_unstable();
        vis.dedup();
        for (w, prefix) in vis {
            e.recount_visibility(w, prefix);
        }
        e.settle_at(now);
        // Only fired and resolved matter after a restore; updates were already known.
        e.alerts
            .transitions()
            .retain(|t| t.event != TransitionKind::Updated);
        // Changes from the state given: prefixes dropped or cut, everything when VPs were
        // renumbered, baselines and visibility when they differ. Saving after a restart with
        // the same config then writes next to nothing.
        if same_ids {
            e.dirty = changed;
            e.exported_vps = e.vps.len() as u32;
        } else {
            e.dirty = changed
                .into_iter()
                .chain(e.routes.keys().copied())
                .collect();
            e.exported_vps = 0;
        }
        let mut baselines = e.baselines();
        baselines.sort_by_key(|b| b.prefix);
        e.meta_dirty = baselines != given_meta.0 || e.reached() != given_meta.1;
        e
    }

    /// Applies a new config without losing the state of prefixes that stay.
    pub fn reconfigure(&mut self, cfg: &Config) {
        let state = self.export_state();
        let pending: Vec<AlertTransition> = self.alerts.transitions().drain(..).collect();
        let stats = self.stats();
        let mut fresh = Engine::from_config(cfg);
        fresh.ctx.rpki = self.ctx.rpki.clone();
        *self = fresh.restored(state);
        self.stats = stats;
        self.alerts.fired = stats.fired;
        self.alerts.resolved = stats.resolved;
        let mut all = pending;
        all.append(self.alerts.transitions());
        *self.alerts.transitions() = all;
        // Everything may differ from what the store has: export it all next time.
        self.dirty = self.routes.keys().copied().collect();
        self.meta_dirty = true;
    }
}

type AlertKeyAt = (WatchId, crate::alerts::AlertKey);

/// Routes as exported: the engine holds a route's first hop and IPv4 next hop beside a
/// pointer to the rest, and hands each distinct attribute set out once per export as an
/// `Arc<RouteAttrs>` (its parts shared with the engine's), so the store still writes each
/// distinct set of a prefix once.
#[derive(Default)]
struct Exported {
    made: super::FastMap<(usize, u32, u32), Arc<RouteAttrs>>,
}

impl Exported {
    fn prefix_routes(&mut self, prefix: IpNet, by_vp: &VpRoutes) -> PrefixRoutes {
        let routes: Vec<(u32, Arc<RouteAttrs>, Timestamp)> = by_vp
            .iter()
            .map(|(vp, r)| {
                let attrs = self
                    .made
                    .entry(r.attrs.key())
                    .or_insert_with(|| Arc::new(r.attrs.to_attrs()));
                (vp, attrs.clone(), r.since)
            })
            .collect();
        // (In VP id order already: the slots iterate that way.)
        PrefixRoutes { prefix, routes }
    }
}
