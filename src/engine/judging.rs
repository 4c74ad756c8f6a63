//! Judging the conditions of watched prefixes on the settled state of an instant, and when
//! their hold-downs run out: each through the one alert lifecycle (`lifecycle`), with the
//! facts its alert shows. Visibility loss counts the other way (it fires when too few VPs see
//! the prefix), so it keeps its own thresholds but raises its alerts through the same outbox.

use ipnet::IpNet;

use super::detect::{self, Context};
use super::lifecycle::{self, About, Condition, Facts, Next, Thresholds};
use super::routes::VpRoutes;
use super::vps::VpTable;
use super::watched::{WatchId, Watched};
use super::{Due, Engine, FastMap, severity};
use crate::alerts::{AlertDetail, AlertKey, Rule};
use crate::event::{PathElem, Timestamp};

impl Engine {
    /// Judges a condition on the settled state of an instant: fires, updates or resolves its
    /// alert, or starts or stops a hold-down.
    pub(super) fn evaluate(&mut self, w: WatchId, k: AlertKey, ts: Timestamp) {
        let watched = &self.watched[w];
        let Some(cond) = self.conditions.get_mut(&k) else {
            return;
        };
        let (routes, vps, ctx) = (&self.routes, &self.vps, &self.ctx);
        let next = cond.judge(
            &k,
            thresholds(watched, k.rule),
            ts,
            &mut self.alerts,
            |c| condition_facts(routes, vps, ctx, watched, &k, c),
            |f| condition_about(watched, &k, f),
        );
        self.follow(w, k, next);
    }

    /// Does what judging condition `k` of `w` asked.
    fn follow(&mut self, w: WatchId, k: AlertKey, next: Next) {
        match next {
            Next::Keep => {}
            Next::Wait(due) => {
                self.timers.insert((due, Due::Condition(w, k)));
            }
            Next::Forget => {
                self.conditions.remove(&k);
            }
        }
    }

    /// A hold-down ran out at `due`: fires or resolves what waited for it, if it still holds.
    pub(super) fn run_out(&mut self, due: Timestamp, what: Due) {
        match what {
            Due::Condition(w, k) => {
                let watched = &self.watched[w];
                let Some(cond) = self.conditions.get_mut(&k) else {
                    return;
                };
                let (routes, vps, ctx) = (&self.routes, &self.vps, &self.ctx);
                let next = cond.run_out(
                    &k,
                    thresholds(watched, k.rule),
                    due,
                    &mut self.alerts,
                    |c| condition_facts(routes, vps, ctx, watched, &k, c),
                    |f| condition_about(watched, &k, f),
                );
                self.follow(w, k, next);
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
                        self.alerts.resolve(*alert, due);
                    }
                }
            }
        }
    }

    /// Judges the visibility of `prefix` (judged by `w`) on the settled state of an instant.
    pub(super) fn evaluate_visibility(&mut self, w: WatchId, prefix: IpNet, ts: Timestamp) {
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
                    self.alerts.resolve(*alert, ts);
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
                alert.record_vp_count(ts);
                alert.last_seen = ts;
                alert.sample = any_sample(&self.routes, &self.vps, prefix);
                self.alerts.updated(alert);
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
    fn fire_visibility(&mut self, w: WatchId, prefix: IpNet, since: Timestamp, ts: Timestamp) {
        let watched = &self.watched[w];
        let cfg = &watched.cfg;
        let k = AlertKey {
            rule: Rule::VisibilityLoss,
            watched_prefix: cfg.prefix,
            prefix,
            asn: 0,
        };
        let Some(state) = self.visibility.get_mut(&(w, prefix)) else {
            return;
        };
        let facts = Facts {
            sample: any_sample(&self.routes, &self.vps, prefix),
            sampled: Vec::new(),
            detail: AlertDetail {
                rpki_stale: self.ctx.rpki.stale,
                ..AlertDetail::default()
            },
            path_severity: None,
        };
        let about = About {
            severity: cfg.visibility_severity,
            description: cfg.description.clone(),
            origin: None,
            upstream: None,
            expected_origins: watched.origins.asns().to_vec(),
            expected_upstreams: Vec::new(),
            groups: cfg.groups.clone(),
        };
        let counts = (state.allowed, cfg.visibility_min_vantage_points);
        let alert = self.alerts.fire(&k, since, ts, counts, facts, about);
        state.firing = Some(Box::new(alert));
    }
}

/// When a condition of rule `rule` under `watched` fires and resolves.
fn thresholds(watched: &Watched, rule: Rule) -> Thresholds {
    Thresholds {
        min_vantage_points: watched.cfg.min_vantage_points,
        hold: watched.cfg.hold_downs.get(rule),
    }
}

/// The sample of any VPs that route `prefix` (a visibility loss has no VPs of its own).
fn any_sample(
    routes: &FastMap<IpNet, VpRoutes>,
    vps: &VpTable,
    prefix: IpNet,
) -> Vec<crate::alerts::VpSample> {
    routes
        .get(&prefix)
        .map(|by_vp| lifecycle::sample(vps, by_vp.iter(), None).0)
        .unwrap_or_default()
}

/// What the alert of condition `k` under `watched` shows now, from the routes of its VPs.
fn condition_facts(
    routes: &FastMap<IpNet, VpRoutes>,
    vps: &VpTable,
    ctx: &Context,
    watched: &Watched,
    k: &AlertKey,
    cond: &Condition,
) -> Facts {
    let (sample, sampled) = lifecycle::sample_of(
        vps,
        routes.get(&k.prefix),
        &cond.vps,
        cond.previous_sample(),
    );
    let (detail, path_severity) = detect::detail(ctx, watched, k, &sampled, &sample);
    Facts {
        sample,
        sampled,
        detail,
        path_severity,
    }
}

/// What the alert of condition `k` under `watched` says when it fires.
fn condition_about(watched: &Watched, k: &AlertKey, facts: &Facts) -> About {
    // The origin of the routes that show it: the offending one for hijacks, the allowed one
    // reached through a new upstream.
    let first_origin = facts
        .sampled
        .first()
        .and_then(|(_, a)| match a.path.last() {
            Some(PathElem::Asn(o)) => Some(*o),
            _ => None,
        });
    let cfg = &watched.cfg;
    About {
        severity: facts.path_severity.unwrap_or_else(|| severity(k.rule, cfg)),
        description: cfg.description.clone(),
        origin: match k.rule {
            Rule::RouteLeak => None,
            Rule::NewUpstream => first_origin,
            _ => (k.asn != 0).then_some(k.asn),
        },
        upstream: (k.rule == Rule::NewUpstream).then_some(k.asn),
        expected_origins: watched.origins.asns().to_vec(),
        expected_upstreams: watched
            .upstreams
            .as_ref()
            .map(|u| u.asns().to_vec())
            .unwrap_or_default(),
        groups: cfg.groups.clone(),
    }
}
