//! How many bytes a [`Commit`] holds, roughly: the queue to the store thread is bounded by it.
//! An estimate that errs high: shared route attributes are counted in every route that holds
//! them, string and vector capacities as their lengths.

use std::mem::size_of;

use crate::alerts::{Alert, AlertTransition, VpSample};
use crate::engine::{LearnedBaseline, PrefixRoutes};
use crate::event::{PathElem, RouteAttrs, VantagePoint};

use super::Commit;

impl Commit {
    /// Bytes held by this commit and what it owns (an estimate).
    pub fn footprint(&self) -> usize {
        let ch = &self.changes;
        size_of::<Commit>()
            + self.transitions.iter().map(transition).sum::<usize>()
            + ch.vps.iter().map(vp).sum::<usize>()
            + ch.routes.iter().map(routes).sum::<usize>()
            + ch.baselines.iter().map(baseline).sum::<usize>()
            + ch.visibility_reached.len() * size_of::<(ipnet::IpNet, ipnet::IpNet)>()
            + ch.firing.iter().map(alert).sum::<usize>()
    }
}

fn transition(t: &AlertTransition) -> usize {
    size_of::<AlertTransition>() - size_of::<Alert>() + alert(&t.alert)
}

fn alert(a: &Alert) -> usize {
    let d = &a.detail;
    size_of::<Alert>()
        + a.id.len()
        + a.description.len()
        + (a.expected_origins.len() + a.expected_upstreams.len()) * 4
        + a.sample.iter().map(sample).sum::<usize>()
        + strings(&a.groups)
        + strings(&d.path_rules)
        + strings(&d.communities)
}

fn sample(s: &VpSample) -> usize {
    size_of::<VpSample>() + s.vantage_point.len() + s.as_path.len() + strings(&s.communities)
}

fn strings(v: &[String]) -> usize {
    v.iter().map(|s| size_of::<String>() + s.len()).sum()
}

fn vp(v: &VantagePoint) -> usize {
    size_of::<VantagePoint>() + v.feed.len() + v.collector.len()
}

fn routes(r: &PrefixRoutes) -> usize {
    size_of::<PrefixRoutes>()
        + r.routes
            .iter()
            .map(|(_, attrs, _)| size_of::<(u32, usize, i64)>() + route_attrs(attrs))
            .sum::<usize>()
}

fn route_attrs(a: &RouteAttrs) -> usize {
    size_of::<RouteAttrs>()
        + a.path
            .iter()
            .map(|e| {
                size_of::<PathElem>()
                    + match e {
                        PathElem::Asn(_) => 0,
                        PathElem::Set(s) => s.len() * 4,
                    }
            })
            .sum::<usize>()
        + a.communities.len() * size_of::<crate::event::Community>()
}

fn baseline(b: &LearnedBaseline) -> usize {
    size_of::<LearnedBaseline>()
        + (b.origins.len()
            + b.upstreams.len()
            + b.accepted_origins.len()
            + b.accepted_upstreams.len())
            * 4
}
