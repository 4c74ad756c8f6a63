//! One alert lifecycle for every detector family: the VPs that show a condition and their peak,
//! the hold-downs before an alert fires and resolves, the sample and detail it lists, and its
//! id. The prefix detectors, visibility loss and the monitored-ASN detectors all raise their
//! alerts through here, so an alert means the same thing whichever rule raised it.

use std::collections::HashSet;
use std::sync::Arc;

use foldhash::HashMap as FastMap;

use super::detect::Context;
use super::routes::VpRoutes;
use super::vps::{VpId, VpTable};
use super::{MAX_SAMPLE_COMMUNITIES, Route, SAMPLE_SIZE};
use crate::alerts::{
    Alert, AlertDetail, AlertKey, AlertState, AlertTransition, Severity, TransitionKind, VpSample,
};
use crate::config::HoldDown;
use crate::event::{RouteAttrs, Timestamp};

/// A condition shown by some VPs, below or above its firing threshold.
#[derive(Debug)]
pub(super) struct Condition {
    /// The VPs that show it now.
    pub vps: HashSet<VpId>,
    /// When some VP first showed it (the alert's `first_seen`).
    pub first_seen: Timestamp,
    /// The most VPs that showed it at once.
    pub peak: u32,
    /// Its alert, while firing.
    pub firing: Option<Alert>,
    /// Not firing, at or over the threshold since then (waiting out `for`).
    pending_since: Option<Timestamp>,
    /// Firing, with no VP showing it since then (waiting out `keep_firing_for`).
    clearing_since: Option<Timestamp>,
    /// While firing: the routes its alert's sample shows, in sample order, so that the next
    /// sample formats only the routes that changed.
    sampled: SampledRoutes,
}

/// The routes a sample shows, by VP, in sample order.
pub(super) type SampledRoutes = Vec<(VpId, Arc<RouteAttrs>)>;

/// A sample already made, and the routes it shows: their text is taken from it, not made again.
#[derive(Clone, Copy)]
pub(super) struct Previous<'a> {
    sample: &'a [VpSample],
    routes: &'a [(VpId, Arc<RouteAttrs>)],
}

/// When a condition's alert fires and resolves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Thresholds {
    /// VPs that must show the condition.
    pub min_vantage_points: u32,
    /// How long it must hold before firing, and be gone before resolving.
    pub hold: HoldDown,
}

impl Thresholds {
    /// Fires at `min_vantage_points`, resolves when no VP shows it, both at once.
    pub fn immediate(min_vantage_points: u32) -> Self {
        Thresholds {
            min_vantage_points,
            hold: HoldDown {
                for_seconds: 0,
                keep_firing_for_seconds: 0,
            },
        }
    }
}

/// What the owner of a condition does after judging it.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(super) enum Next {
    /// Keep the condition.
    Keep,
    /// Keep it, and judge it again with [`Condition::run_out`] at this time.
    Wait(Timestamp),
    /// Drop it: no VP shows it, and its alert (if it fired) has resolved.
    Forget,
}

/// What an alert shows beyond its lifecycle, from its detector family: made when it fires and
/// each time it updates.
pub(super) struct Facts {
    /// From [`sample`].
    pub sample: Vec<VpSample>,
    /// The routes `sample` shows (empty where the sample is not made again from routes).
    pub sampled: SampledRoutes,
    /// Describes the sample's routes; its `rpki` is that of the first.
    pub detail: AlertDetail,
    /// The severity the routes call for, where the rule lets them (a path rule's).
    pub path_severity: Option<Severity>,
}

/// The parts of an alert its detector family decides once, when it fires (made only then).
pub(super) struct About {
    pub severity: Severity,
    pub description: String,
    pub origin: Option<u32>,
    pub upstream: Option<u32>,
    pub expected_origins: Vec<u32>,
    pub expected_upstreams: Vec<u32>,
    pub groups: Vec<String>,
}

/// Where every alert transition goes, in order, with the numbering that makes alert ids unique.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    transitions: Vec<AlertTransition>,
    /// Alerts fired so far per key: numbers each incident of a key for its id.
    incidents: FastMap<AlertKey, u32>,
    /// Alerts fired.
    pub fired: u64,
    /// Alerts resolved.
    pub resolved: u64,
}

impl Outbox {
    /// An alert of key `k` fires at `ts`; returns it to keep while it fires.
    pub fn fire(
        &mut self,
        k: &AlertKey,
        first_seen: Timestamp,
        ts: Timestamp,
        (vantage_points, peak_vantage_points): (u32, u32),
        facts: Facts,
        about: About,
    ) -> Alert {
        let counter = self.incidents.entry(*k).or_insert(0);
        let incident = *counter;
        *counter += 1;
        let About {
            severity,
            description,
            origin,
            upstream,
            expected_origins,
            expected_upstreams,
            groups,
        } = about;
        let mut alert = Alert {
            id: Alert::make_id(k, first_seen, ts, incident),
            rule: k.rule,
            severity,
            state: AlertState::Firing,
            prefix: k.prefix,
            watched_prefix: k.watched_prefix,
            description,
            origin,
            upstream,
            expected_origins,
            expected_upstreams,
            vantage_points,
            peak_vantage_points,
            sample: facts.sample,
            groups,
            first_seen,
            fired_at: ts,
            last_seen: ts,
            resolved_at: None,
            vp_history: Vec::new(),
            detail: facts.detail,
        };
        alert.record_vp_count(ts);
        self.fired += 1;
        self.transitions.push(AlertTransition {
            event: TransitionKind::Fired,
            alert: alert.clone(),
        });
        alert
    }

    /// A firing alert changed.
    pub fn updated(&mut self, alert: &Alert) {
        self.transitions.push(AlertTransition {
            event: TransitionKind::Updated,
            alert: alert.clone(),
        });
    }

    /// A firing alert resolves at `ts`.
    pub fn resolve(&mut self, mut alert: Alert, ts: Timestamp) {
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(ts);
        alert.last_seen = ts;
        alert.vantage_points = 0;
        alert.record_vp_count(ts);
        self.resolved += 1;
        self.transitions.push(AlertTransition {
            event: TransitionKind::Resolved,
            alert,
        });
    }

    /// The transitions not taken yet.
    pub fn transitions(&mut self) -> &mut Vec<AlertTransition> {
        &mut self.transitions
    }

    /// Number of transitions not taken yet.
    pub fn len(&self) -> usize {
        self.transitions.len()
    }
}

/// What a detector family needs from the engine to raise alerts: VP names for samples, RPKI
/// data and community labels for details, and the outbox. Borrowed per call, so the family's
/// own state stays borrowable beside it.
pub(super) struct Reporting<'a> {
    pub vps: &'a VpTable,
    pub ctx: &'a Context,
    pub alerts: &'a mut Outbox,
}

impl Condition {
    /// A condition first shown at `first_seen`, by no VP yet.
    pub fn new(first_seen: Timestamp) -> Self {
        Condition {
            vps: HashSet::new(),
            first_seen,
            peak: 0,
            firing: None,
            pending_since: None,
            clearing_since: None,
            sampled: Vec::new(),
        }
    }

    /// The sample its alert shows now, to make the next one from.
    pub fn previous_sample(&self) -> Option<Previous<'_>> {
        self.firing.as_ref().map(|a| Previous {
            sample: &a.sample,
            routes: &self.sampled,
        })
    }

    /// Judges the condition on its VPs as they are at `ts`: fires, updates or resolves its
    /// alert, or starts or stops a hold-down. `facts` is asked only when the alert fires or
    /// updates, `about` only when it fires.
    pub fn judge(
        &mut self,
        k: &AlertKey,
        th: Thresholds,
        ts: Timestamp,
        out: &mut Outbox,
        facts: impl FnOnce(&Condition) -> Facts,
        about: impl FnOnce(&Facts) -> About,
    ) -> Next {
        let count = self.vps.len() as u32;
        self.peak = self.peak.max(count);
        if count == 0 {
            self.pending_since = None;
            return match self.firing.as_mut() {
                None => Next::Forget,
                Some(alert) if th.hold.keep_firing_for_seconds > 0 => {
                    if self.clearing_since.is_some() {
                        return Next::Keep;
                    }
                    self.clearing_since = Some(ts);
                    alert.vantage_points = 0;
                    alert.last_seen = ts;
                    alert.record_vp_count(ts);
                    out.updated(alert);
                    Next::Wait(ts.plus_secs(th.hold.keep_firing_for_seconds))
                }
                Some(_) => {
                    self.end(ts, out);
                    Next::Forget
                }
            };
        }
        if self.firing.is_some() {
            self.clearing_since = None;
            self.update(ts, out, facts);
        } else if count < th.min_vantage_points {
            self.pending_since = None;
        } else if th.hold.for_seconds == 0 {
            self.fire(k, ts, out, facts, about);
        } else if self.pending_since.is_none() {
            self.pending_since = Some(ts);
            return Next::Wait(ts.plus_secs(th.hold.for_seconds));
        }
        Next::Keep
    }

    /// A hold-down of this condition ran out at `due`: fires or resolves what waited for it,
    /// if it still holds.
    pub fn run_out(
        &mut self,
        k: &AlertKey,
        th: Thresholds,
        due: Timestamp,
        out: &mut Outbox,
        facts: impl FnOnce(&Condition) -> Facts,
        about: impl FnOnce(&Facts) -> About,
    ) -> Next {
        let ends =
            |since: Option<Timestamp>, secs: u64| since.is_some_and(|s| s.plus_secs(secs) == due);
        if self.firing.is_none()
            && ends(self.pending_since, th.hold.for_seconds)
            && self.vps.len() >= th.min_vantage_points as usize
        {
            self.pending_since = None;
            self.fire(k, due, out, facts, about);
            Next::Keep
        } else if self.firing.is_some()
            && ends(self.clearing_since, th.hold.keep_firing_for_seconds)
            && self.vps.is_empty()
        {
            self.end(due, out);
            Next::Forget
        } else {
            Next::Keep
        }
    }

    /// Resolves its alert at `ts`, if it fired.
    pub fn end(&mut self, ts: Timestamp, out: &mut Outbox) {
        if let Some(alert) = self.firing.take() {
            out.resolve(alert, ts);
        }
        self.sampled = Vec::new();
    }

    fn fire(
        &mut self,
        k: &AlertKey,
        ts: Timestamp,
        out: &mut Outbox,
        facts: impl FnOnce(&Condition) -> Facts,
        about: impl FnOnce(&Facts) -> About,
    ) {
        let mut facts = facts(self);
        let about = about(&facts);
        let counts = (self.vps.len() as u32, self.peak);
        self.sampled = std::mem::take(&mut facts.sampled);
        self.firing = Some(out.fire(k, self.first_seen, ts, counts, facts, about));
    }

    fn update(&mut self, ts: Timestamp, out: &mut Outbox, facts: impl FnOnce(&Condition) -> Facts) {
        let facts = facts(self);
        let (count, peak) = (self.vps.len() as u32, self.peak);
        let Some(alert) = self.firing.as_mut() else {
            return;
        };
        alert.vantage_points = count;
        alert.record_vp_count(ts);
        alert.peak_vantage_points = peak;
        alert.sample = facts.sample;
        alert.last_seen = ts;
        alert.detail = facts.detail;
        self.sampled = facts.sampled;
        out.updated(alert);
    }
}

/// Sets the VPs that show a condition; true when they changed, so the condition must be judged
/// again.
pub(super) fn set_vps(cond: &mut Condition, vps: HashSet<VpId>) -> bool {
    if cond.vps == vps {
        return false;
    }
    cond.vps = vps;
    true
}

/// The sample of the VPs that show a condition, from the routes to its prefix (see [`sample`]).
pub(super) fn sample_of(
    vps: &VpTable,
    by_vp: Option<&VpRoutes>,
    shown: &HashSet<VpId>,
    previous: Option<Previous<'_>>,
) -> (Vec<VpSample>, SampledRoutes) {
    match by_vp {
        Some(by_vp) => sample(
            vps,
            shown
                .iter()
                .filter_map(|id| by_vp.get(id).map(|r| (*id, r))),
            previous,
        ),
        None => (Vec::new(), Vec::new()),
    }
}

/// Up to [`SAMPLE_SIZE`] of these routes, ordered by VP (the one order every alert lists): the
/// sample, and the routes it shows, so that `routes[0]` is the route of `sample[0]`.
///
/// An alert updates each time a VP that shows it announces again, and most of its sample stays
/// the same: the text of a route that `previous` already shows (same VP, equal attributes) is
/// copied from it rather than formatted again.
pub(super) fn sample<'a>(
    vps: &VpTable,
    routes: impl IntoIterator<Item = (VpId, &'a Route)>,
    previous: Option<Previous<'_>>,
) -> (Vec<VpSample>, SampledRoutes) {
    let mut picked: Vec<(VpId, &Route)> = routes.into_iter().collect();
    // The first SAMPLE_SIZE in VP order, without sorting the rest.
    if picked.len() > SAMPLE_SIZE {
        picked.select_nth_unstable_by_key(SAMPLE_SIZE - 1, |(id, _)| vps.rank(*id));
        picked.truncate(SAMPLE_SIZE);
    }
    picked.sort_unstable_by_key(|(id, _)| vps.rank(*id));
    let sample = picked
        .iter()
        .map(|&(id, route)| {
            let known = previous.and_then(|p| {
                let i = p
                    .routes
                    .iter()
                    .position(|(v, a)| *v == id && route.attrs.is(a))?;
                p.sample.get(i)
            });
            VpSample {
                vantage_point: vps.name(id).to_owned(),
                as_path: known
                    .map_or_else(|| route.attrs.path().to_string(), |s| s.as_path.clone()),
                communities: known.map_or_else(
                    || {
                        route
                            .attrs
                            .communities()
                            .iter()
                            .take(MAX_SAMPLE_COMMUNITIES)
                            .map(|c| c.to_string())
                            .collect()
                    },
                    |s| s.communities.clone(),
                ),
                seen_at: route.since,
            }
        })
        .collect();
    let routes = picked
        .into_iter()
        .map(|(id, route)| (id, Arc::new(route.attrs.to_attrs())))
        .collect();
    (sample, routes)
}

#[cfg(test)]
mod tests {
    use super::super::Engine;
    use super::super::test_support::{
        announce, announce_path, engine_from_config, rpki, vp, withdraw,
    };
    use crate::alerts::{Alert, Rule, TransitionKind};
    use crate::event::{AsPath, FeedEvent, PathElem, Timestamp};
    use crate::rpki::{AspaProcedure, RovState};

    const MONITORED: &str = "asns:\n  - asn: 100\n    description: us\n    upstreams: [7]\n    downstreams: []\n    min_vantage_points: 2\n";

    /// Runs events to the end; returns the alerts that fired, in order.
    fn fired(e: &mut Engine, events: &[FeedEvent]) -> Vec<Alert> {
        let mut out = Vec::new();
        for ev in events {
            e.process(ev);
        }
        e.settle();
        for t in e.drain_transitions() {
            if t.event == TransitionKind::Fired {
                out.push(t.alert);
            }
        }
        out
    }

    /// The VPs a sample lists, by number.
    fn sampled_vps(a: &Alert) -> Vec<String> {
        a.sample.iter().map(|s| s.vantage_point.clone()).collect()
    }

    #[test]
    fn the_rpki_state_of_a_monitored_asn_alert_is_that_of_its_first_sampled_route() {
        let mut e = engine_from_config(MONITORED);
        e.set_rpki(
            rpki(
                &[("192.168.0.0/16", 16, 100)],
                &[],
                AspaProcedure::Downstream,
            ),
            Timestamp(0),
        );
        // VP 2 is seen first (the lower internal id) with an AS_SET origin, which no VRP
        // matches; VP 1, first in the sample's order, with a plain valid origin.
        let set = AsPath::from(vec![PathElem::Asn(2), PathElem::Set(vec![100].into())]);
        let got = fired(
            &mut e,
            &[
                announce_path(1, 2, "192.168.0.0/16", set),
                announce(2, 1, "192.168.0.0/16", &[1, 100]),
            ],
        );
        let a = got
            .iter()
            .find(|a| a.rule == Rule::UnexpectedPrefix)
            .expect("unexpected_prefix fires at the second VP");
        assert_eq!(sampled_vps(a), [vp(1).to_string(), vp(2).to_string()]);
        assert_eq!(a.sample[0].as_path, "1 100");
        assert_eq!(a.detail.rpki, Some(RovState::Valid));
    }

    #[test]
    fn new_neighbor_ids_are_made_like_every_other_alert_id() {
        let mut e = engine_from_config(MONITORED);
        let got = fired(
            &mut e,
            &[
                announce(1, 2, "172.16.0.0/12", &[2, 66, 100]),
                announce(2, 1, "172.17.0.0/16", &[1, 66, 100]),
            ],
        );
        assert_eq!(got.len(), 1);
        let a = &got[0];
        assert_eq!(a.rule, Rule::NewNeighbor);
        assert_eq!(a.id, Alert::make_id(&a.key(), a.first_seen, a.fired_at, 0));
        // One order for every sample: by VP, not by arrival.
        assert_eq!(sampled_vps(a), [vp(1).to_string(), vp(2).to_string()]);
    }

    #[test]
    fn a_monitored_asn_alert_that_fires_again_is_numbered_as_a_new_incident() {
        let mut e = engine_from_config(MONITORED);
        let events = |t: i64| {
            [
                announce(t, 1, "192.168.0.0/16", &[1, 7, 100]),
                announce(t, 2, "192.168.0.0/16", &[2, 7, 100]),
            ]
        };
        let first = fired(&mut e, &events(1));
        fired(&mut e, &[withdraw(2, 1, "192.168.0.0/16")]);
        fired(&mut e, &[withdraw(2, 2, "192.168.0.0/16")]);
        let again = fired(&mut e, &events(3));
        let (a, b) = (&first[0], &again[0]);
        assert_eq!(a.key(), b.key());
        assert_eq!(a.id, Alert::make_id(&a.key(), a.first_seen, a.fired_at, 0));
        assert_eq!(b.id, Alert::make_id(&b.key(), b.first_seen, b.fired_at, 1));
    }

    #[test]
    fn a_sample_made_from_the_previous_one_is_the_sample_made_afresh() {
        use super::super::vps::VpTable;
        use super::super::{Route, SAMPLE_SIZE};
        use super::{Previous, sample};
        use crate::event::{Community, RouteAttrs};
        use std::sync::Arc;

        let mut vps = VpTable::default();
        // Ids in an order unlike VP order, and more VPs than a sample lists.
        let ids: Vec<u32> = [7u32, 3, 9, 1, 5, 8, 2, 6]
            .iter()
            .map(|&n| vps.intern(&vp(n)))
            .collect();
        let mut table = super::super::interner::AttrTable::default();
        let mut route = |path: &[u32], c: u16, t: i64| Route {
            attrs: table.intern(&Arc::new(RouteAttrs {
                path: AsPath::from_asns(path.iter().copied()),
                communities: vec![Community::Standard(c, 1), Community::Large(1, 2, 3)].into(),
                next_hop: None,
            })),
            since: Timestamp(t),
        };
        let before: Vec<(u32, Route)> = ids
            .iter()
            .map(|&id| (id, route(&[id, 2, 666], id as u16, 1)))
            .collect();
        let (first, first_routes) = sample(&vps, before.iter().map(|(id, r)| (*id, r)), None);
        assert_eq!(first.len(), SAMPLE_SIZE);
        // One route changes path, one only its time, one VP leaves.
        let mut after = before.clone();
        after[1].1 = route(&[3, 4, 666], 9, 2);
        after[3].1.since = Timestamp(3);
        after.remove(6);
        let previous = Previous {
            sample: &first,
            routes: &first_routes,
        };
        let reused = sample(&vps, after.iter().map(|(id, r)| (*id, r)), Some(previous));
        let fresh = sample(&vps, after.iter().map(|(id, r)| (*id, r)), None);
        assert_eq!(reused.0, fresh.0);
        let names = |s: &[crate::alerts::VpSample]| -> Vec<String> {
            s.iter().map(|e| e.vantage_point.clone()).collect()
        };
        // VP order is the order of the VPs themselves, whatever their ids.
        let mut want: Vec<String> = after
            .iter()
            .filter_map(|(id, _)| vps.get_vp(*id))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|v| v.to_string())
            .collect();
        want.truncate(SAMPLE_SIZE);
        assert_eq!(names(&fresh.0), want, "the first VPs in VP order");
        assert_eq!(reused.1.len(), fresh.1.len());
    }
}
