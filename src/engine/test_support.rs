//! Helpers the engine's unit tests share: engines from YAML, hand-built events, RPKI data, and
//! transitions in brief.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::Engine;
use crate::alerts::{Alert, Rule, TransitionKind};
use crate::config::Config;
use crate::event::{
    AsPath, Community, FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use crate::rpki::{AspaProcedure, RpkiData, RpkiSnapshot, Vrp};

/// An engine for a whole config (monitored ASNs and community labels too), with the
/// hold-downs it gives (built-in ones unless it says otherwise).
pub fn engine_from_config(yaml: &str) -> Engine {
    let cfg = Config::parse(yaml, Path::new("t.yml")).unwrap();
    Engine::from_config(&cfg)
}

/// An engine for the watched prefixes of a config, without hold-downs: for tests about when
/// conditions hold.
pub fn engine_without_hold_downs(yaml: &str) -> Engine {
    let mut cfg = Config::parse(yaml, Path::new("t.yml")).unwrap();
    for p in &mut cfg.prefixes {
        p.hold_downs = crate::config::HoldDowns::NONE;
    }
    Engine::new(&cfg.prefixes)
}

/// An engine for the watched prefixes of a config, with the hold-downs it gives.
pub fn engine_with_hold_downs(yaml: &str) -> Engine {
    let cfg = Config::parse(yaml, Path::new("t.yml")).unwrap();
    Engine::new(&cfg.prefixes)
}

/// Test VP number `n` (peer AS64500 + n); VPs order by `n`.
pub fn vp(n: u32) -> Arc<VantagePoint> {
    Arc::new(VantagePoint {
        feed: "test".into(),
        collector: "rrc00".into(),
        peer_asn: 64500 + n,
        peer_ip: IpAddr::from([192, 0, 2, n as u8]),
        exporter: None,
    })
}

/// VP `v` announces `prefix` with this path and these communities at second `t`.
pub fn announce_with(
    t: i64,
    v: u32,
    prefix: &str,
    path: AsPath,
    communities: &[Community],
) -> FeedEvent {
    FeedEvent::Route(RouteEvent {
        timestamp: Timestamp::from_parts(t, 0),
        vp: vp(v),
        prefix: prefix.parse().unwrap(),
        change: RouteChange::Announce(Arc::new(RouteAttrs {
            path,
            communities: communities.into(),
            next_hop: None,
        })),
    })
}

/// VP `v` announces `prefix` with this path at second `t`.
pub fn announce_path(t: i64, v: u32, prefix: &str, path: AsPath) -> FeedEvent {
    announce_with(t, v, prefix, path, &[])
}

/// VP `v` announces `prefix` with a path of these ASNs at second `t`.
pub fn announce(t: i64, v: u32, prefix: &str, path: &[u32]) -> FeedEvent {
    announce_path(t, v, prefix, AsPath::from_asns(path.iter().copied()))
}

/// VP `v` withdraws `prefix` at second `t`.
pub fn withdraw(t: i64, v: u32, prefix: &str) -> FeedEvent {
    FeedEvent::Route(RouteEvent {
        timestamp: Timestamp::from_parts(t, 0),
        vp: vp(v),
        prefix: prefix.parse().unwrap(),
        change: RouteChange::Withdraw,
    })
}

/// Runs events and returns the fired/resolved transitions as `(event, rule, prefix, asn, secs)`.
pub fn run(e: &mut Engine, events: &[FeedEvent]) -> Vec<Brief> {
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        e.process(ev);
        // The last instant has no later event to settle it.
        if i + 1 == events.len() {
            e.settle();
        }
        for t in e.drain_transitions() {
            if t.event == TransitionKind::Updated {
                continue;
            }
            let a = &t.alert;
            let when = a.resolved_at.unwrap_or(a.fired_at).secs();
            out.push((
                t.event,
                a.rule,
                a.prefix.to_string(),
                a.upstream.or(a.origin).unwrap_or(0),
                when,
            ));
        }
    }
    out
}

/// Runs events; returns fired and resolved alerts (the full alert, for its fields).
pub fn run_alerts(e: &mut Engine, events: &[FeedEvent]) -> Vec<(TransitionKind, Alert)> {
    let mut out = Vec::new();
    for ev in events {
        e.process(ev);
        out.extend(take(e));
    }
    e.settle();
    out.extend(take(e));
    out
}

/// Settles the instant in progress and takes what it raised.
pub fn take(e: &mut Engine) -> Vec<(TransitionKind, Alert)> {
    e.settle();
    e.drain_transitions()
        .filter(|t| t.event != TransitionKind::Updated)
        .map(|t| (t.event, t.alert))
        .collect()
}

/// Transitions in brief: the ASN is that of the alert's key.
pub fn brief(got: &[(TransitionKind, Alert)]) -> Vec<Brief> {
    got.iter()
        .map(|(k, a)| {
            (
                *k,
                a.rule,
                a.prefix.to_string(),
                a.key().asn,
                a.resolved_at.unwrap_or(a.fired_at).secs(),
            )
        })
        .collect()
}

/// RPKI data of these VRPs `(prefix, max length, ASN)` and ASPAs `(customer, providers)`.
pub fn rpki(
    vrps: &[(&str, u8, u32)],
    aspas: &[(u32, &[u32])],
    procedure: AspaProcedure,
) -> RpkiSnapshot {
    RpkiSnapshot {
        data: Some(Arc::new(RpkiData::new(
            vrps.iter().map(|&(p, m, a)| Vrp {
                prefix: p.parse().unwrap(),
                max_length: m,
                asn: a,
            }),
            aspas.iter().map(|&(c, p)| (c, p.to_vec())),
        ))),
        stale: false,
        procedure,
    }
}

/// A transition in brief: (fired or resolved, rule, prefix, ASN, second).
pub type Brief = (TransitionKind, Rule, String, u32, i64);

/// An alert of `rule` for `prefix` and `asn` fired at second `t`.
pub fn fired(rule: Rule, prefix: &str, asn: u32, t: i64) -> Brief {
    (TransitionKind::Fired, rule, prefix.into(), asn, t)
}

/// An alert of `rule` for `prefix` and `asn` resolved at second `t`.
pub fn resolved(rule: Rule, prefix: &str, asn: u32, t: i64) -> Brief {
    (TransitionKind::Resolved, rule, prefix.into(), asn, t)
}
