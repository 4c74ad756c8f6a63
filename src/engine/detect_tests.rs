//! Hand-built events for the detectors that the real data in the test set does not show (or
//! not in every variant): RPKI states, ASPA leaks, path rules, monitored ASNs, squatting,
//! community labels.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::alerts::NeighborSide;
use crate::config::Config;
use crate::event::{AsPath, Community, PathElem};
use crate::rpki::{AspaProcedure, AspaState, RovState, RpkiData, Vrp};

fn engine(yaml: &str) -> Engine {
    let cfg = Config::parse(yaml, Path::new("t.yml")).unwrap();
    Engine::from_config(&cfg)
}

fn vp(n: u32) -> Arc<VantagePoint> {
    Arc::new(VantagePoint {
        feed: "test".into(),
        collector: "rrc00".into(),
        peer_asn: 64500 + n,
        peer_ip: IpAddr::from([192, 0, 2, n as u8]),
        exporter: None,
    })
}

fn announce_with(
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
            communities: communities.to_vec(),
            next_hop: None,
        })),
    })
}

fn announce(t: i64, v: u32, prefix: &str, path: &[u32]) -> FeedEvent {
    announce_with(t, v, prefix, AsPath::from_asns(path.iter().copied()), &[])
}

fn withdraw(t: i64, v: u32, prefix: &str) -> FeedEvent {
    FeedEvent::Route(RouteEvent {
        timestamp: Timestamp::from_parts(t, 0),
        vp: vp(v),
        prefix: prefix.parse().unwrap(),
        change: RouteChange::Withdraw,
    })
}

/// Runs events; returns fired and resolved alerts (the full alert, for its fields).
fn run(e: &mut Engine, events: &[FeedEvent]) -> Vec<(TransitionKind, Alert)> {
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
fn take(e: &mut Engine) -> Vec<(TransitionKind, Alert)> {
    e.settle();
    e.drain_transitions()
        .filter(|t| t.event != TransitionKind::Updated)
        .map(|t| (t.event, t.alert))
        .collect()
}

fn brief(got: &[(TransitionKind, Alert)]) -> Vec<(TransitionKind, Rule, String, u32, i64)> {
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

fn rpki(
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

use TransitionKind::{Fired, Resolved};

const ONE: &str = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\n";

#[test]
fn rpki_invalid_fires_for_an_invalid_route_and_hijacks_carry_the_rov_state() {
    let mut e = engine(ONE);
    e.set_rpki(
        rpki(&[("10.0.0.0/16", 16, 100)], &[], AspaProcedure::Downstream),
        Timestamp(0),
    );
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(2, 2, "10.0.0.0/16", &[2, 666]),
            withdraw(3, 2, "10.0.0.0/16"),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (Fired, Rule::RpkiInvalid, "10.0.0.0/16".into(), 666, 2),
            (Fired, Rule::OriginHijack, "10.0.0.0/16".into(), 666, 2),
            (Resolved, Rule::RpkiInvalid, "10.0.0.0/16".into(), 666, 3),
            (Resolved, Rule::OriginHijack, "10.0.0.0/16".into(), 666, 3),
        ]
    );
    assert_eq!(got[1].1.detail.rpki, Some(RovState::Invalid));
    assert_eq!(got[0].1.severity, Severity::Critical);
    let json = serde_json::to_value(&got[1].1).unwrap();
    assert_eq!(json["rpki"], "invalid");
    assert!(json.get("rpki_stale").is_none());
    // A more-specific beyond maxLength by the right origin is invalid too (and a
    // more_specific), with no hijack.
    let got = run(&mut e, &[announce(4, 1, "10.0.1.0/24", &[1, 200, 100])]);
    assert_eq!(
        brief(&got),
        vec![
            (Fired, Rule::RpkiInvalid, "10.0.1.0/24".into(), 100, 4),
            (Fired, Rule::MoreSpecific, "10.0.1.0/24".into(), 100, 4)
        ]
    );
}

#[test]
fn without_rpki_data_alerts_have_no_rov_state() {
    let mut e = engine(ONE);
    let got = run(&mut e, &[announce(1, 1, "10.0.0.0/16", &[1, 666])]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.detail.rpki, None);
    let json = serde_json::to_value(&got[0].1).unwrap();
    assert!(json.get("rpki").is_none());
}

#[test]
fn new_rpki_data_fires_and_resolves_on_routes_already_held() {
    let mut e = engine(ONE);
    assert!(run(&mut e, &[announce(1, 1, "10.0.0.0/16", &[1, 200, 100])]).is_empty());
    // A ROA for someone else appears: the held route turns invalid at once.
    e.set_rpki(
        rpki(&[("10.0.0.0/16", 16, 300)], &[], AspaProcedure::Downstream),
        Timestamp::from_parts(5, 0),
    );
    assert_eq!(
        brief(&take(&mut e)),
        vec![(Fired, Rule::RpkiInvalid, "10.0.0.0/16".into(), 100, 5)]
    );
    // Fixed: valid again.
    e.set_rpki(
        rpki(&[("10.0.0.0/16", 16, 100)], &[], AspaProcedure::Downstream),
        Timestamp::from_parts(9, 0),
    );
    assert_eq!(
        brief(&take(&mut e)),
        vec![(Resolved, Rule::RpkiInvalid, "10.0.0.0/16".into(), 100, 9)]
    );
    // Stale data is named on new alerts.
    let mut stale = rpki(&[("10.0.0.0/16", 16, 100)], &[], AspaProcedure::Downstream);
    stale.stale = true;
    e.set_rpki(stale, Timestamp::from_parts(10, 0));
    let got = run(&mut e, &[announce(11, 2, "10.0.0.0/16", &[2, 666])]);
    assert!(got.iter().all(|(_, a)| a.detail.rpki_stale));
    let json = serde_json::to_value(&got[0].1).unwrap();
    assert_eq!(json["rpki_stale"], true);
}

#[test]
fn hijacks_of_rpki_valid_routes_are_suppressed_only_when_asked() {
    // A second authorised origin (say a DDoS scrubbing service) that the config does not list.
    let data = || {
        rpki(
            &[("10.0.0.0/16", 24, 100), ("10.0.0.0/16", 16, 300)],
            &[],
            AspaProcedure::Downstream,
        )
    };
    let mut e = engine(ONE);
    e.set_rpki(data(), Timestamp(0));
    let got = run(&mut e, &[announce(1, 1, "10.0.0.0/16", &[1, 300])]);
    assert_eq!(
        brief(&got),
        vec![(Fired, Rule::OriginHijack, "10.0.0.0/16".into(), 300, 1)]
    );
    assert_eq!(got[0].1.detail.rpki, Some(RovState::Valid));

    let mut e = engine(&format!("{ONE}    suppress_rpki_valid_hijacks: true\n"));
    e.set_rpki(data(), Timestamp(0));
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 300]),
            // Not valid: still a hijack.
            announce(2, 2, "10.0.0.0/16", &[2, 666]),
            // Valid because of a loose maxLength: suppressed, though this is the textbook
            // forged-origin sub-prefix hijack (docs/src/detectors.md says why the option is off).
            announce(3, 3, "10.0.5.0/24", &[3, 666, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (Fired, Rule::RpkiInvalid, "10.0.0.0/16".into(), 666, 2),
            (Fired, Rule::OriginHijack, "10.0.0.0/16".into(), 666, 2),
            (Fired, Rule::MoreSpecific, "10.0.5.0/24".into(), 100, 3),
        ]
    );
}

#[test]
fn route_leak_fires_for_aspa_invalid_paths_only() {
    // 100 buys transit from 10; 10, 20 and 40 are tier-1s; 30 is a customer of 20 and 40.
    let data = rpki(
        &[],
        &[
            (100, &[10]),
            (10, &[0]),
            (20, &[0]),
            (40, &[0]),
            (30, &[20, 40]),
        ],
        AspaProcedure::Downstream,
    );
    let mut e = engine(ONE);
    e.set_rpki(data, Timestamp(0));
    let got = run(
        &mut e,
        &[
            // Up to 10, across to 20, down to 30: fine.
            announce(1, 1, "10.0.0.0/16", &[30, 20, 10, 100]),
            // 30 hands its provider 20's route to its other provider 40: a leak by 30.
            announce(2, 2, "10.0.0.0/16", &[40, 30, 20, 10, 100, 100]),
            // No ASPA for 50: cannot be decided, no alert.
            announce(3, 3, "10.0.0.0/16", &[50, 60, 10, 100]),
            // Back to a valid path: resolved.
            announce(4, 2, "10.0.0.0/16", &[40, 10, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (Fired, Rule::RouteLeak, "10.0.0.0/16".into(), 30, 2),
            (Resolved, Rule::RouteLeak, "10.0.0.0/16".into(), 30, 4),
        ]
    );
    let a = &got[0].1;
    assert_eq!(a.detail.aspa, Some(AspaState::Invalid));
    assert_eq!(a.detail.leaker, Some(30));
    assert_eq!(a.origin, None);
    assert_eq!(a.sample[0].as_path, "40 30 20 10 100 100");
    assert!(
        a.summary().contains("suspected leaker AS30"),
        "{}",
        a.summary()
    );
    // An AS_SET makes the path unverifiable: no leak claimed.
    let set = AsPath(vec![
        PathElem::Asn(40),
        PathElem::Asn(30),
        PathElem::Asn(20),
        PathElem::Set(vec![10, 100].into()),
    ]);
    assert!(
        run(&mut e, &[announce_with(5, 4, "10.0.0.0/16", set, &[])])
            .iter()
            .all(|(_, a)| a.rule != Rule::RouteLeak)
    );
}

#[test]
fn the_upstream_procedure_flags_any_route_that_went_down() {
    let data = rpki(
        &[],
        &[(100, &[10]), (10, &[0]), (20, &[0])],
        AspaProcedure::Upstream,
    );
    let mut e = engine(ONE);
    e.set_rpki(data, Timestamp(0));
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[10, 100]),
            announce(2, 2, "10.0.0.0/16", &[30, 20, 10, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![(Fired, Rule::RouteLeak, "10.0.0.0/16".into(), 20, 2)]
    );
}

fn paths_engine(rules: &str) -> Engine {
    engine(&format!("{ONE}    paths:\n{rules}"))
}

#[test]
fn a_path_rule_with_only_min_length_checks_the_length_alone() {
    let mut e = paths_engine("      - name: short\n        min_length: 3\n");
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            // Two ASes: shorter than 3.
            announce(2, 2, "10.0.0.0/16", &[2, 100]),
            // Prepends do not make a path longer.
            announce(3, 3, "10.0.0.0/16", &[3, 100, 100, 100, 100]),
            announce(4, 2, "10.0.0.0/16", &[2, 200, 100]),
            announce(5, 3, "10.0.0.0/16", &[3, 200, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (Fired, Rule::PathMatch, "10.0.0.0/16".into(), 100, 2),
            (Resolved, Rule::PathMatch, "10.0.0.0/16".into(), 100, 5),
        ]
    );
    assert_eq!(got[0].1.detail.path_rules, vec!["short".to_string()]);
    assert_eq!(got[0].1.severity, Severity::Warning);
}

#[test]
fn path_rules_combine_regexes_and_lengths() {
    let mut e = paths_engine(
        "      - name: via-666\n        match: ' 666 '\n        severity: critical\n      - name: not-via-200\n        not_match: ' 200 100$'\n        max_length: 3\n",
    );
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(2, 2, "10.0.0.0/16", &[2, 666, 200, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![(Fired, Rule::PathMatch, "10.0.0.0/16".into(), 100, 2)]
    );
    assert_eq!(got[0].1.detail.path_rules, vec!["via-666".to_string()]);
    assert_eq!(got[0].1.severity, Severity::Critical);
    // not_match and max_length together: a path not via 200 that is also longer than 3.
    let mut e = paths_engine("      - not_match: ' 200 100$'\n        max_length: 3\n");
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 300, 100]),
            announce(2, 2, "10.0.0.0/16", &[2, 5, 6, 200, 100]),
            announce(3, 3, "10.0.0.0/16", &[3, 5, 6, 300, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![(Fired, Rule::PathMatch, "10.0.0.0/16".into(), 100, 3)]
    );
    assert_eq!(got[0].1.detail.path_rules, vec!["paths[0]".to_string()]);
}

#[test]
fn squatting_fires_on_any_announcement_of_squat_space() {
    let mut e = engine(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    squat: true\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\n",
    );
    let got = run(
        &mut e,
        &[
            announce(1, 1, "192.0.2.0/24", &[1, 666]),
            announce(2, 1, "192.0.2.128/25", &[1, 777]),
            withdraw(3, 1, "192.0.2.0/24"),
            withdraw(4, 1, "192.0.2.128/25"),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (Fired, Rule::Squatting, "192.0.2.0/24".into(), 666, 1),
            (Fired, Rule::Squatting, "192.0.2.128/25".into(), 777, 2),
            (Resolved, Rule::Squatting, "192.0.2.0/24".into(), 666, 3),
            (Resolved, Rule::Squatting, "192.0.2.128/25".into(), 777, 4),
        ]
    );
    assert_eq!(got[0].1.severity, Severity::Critical);
    assert!(got[0].1.expected_origins.is_empty());
}

#[test]
fn squat_prefixes_with_origins_are_a_config_error() {
    let err = Config::parse(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    squat: true\n    origins: [1]\n",
        Path::new("t.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("t.yml:2:"), "{err}");
    assert!(err.contains("remove `origins`"), "{err}");
}

#[test]
fn communities_show_on_samples_and_labelled_ones_on_the_alert() {
    let mut e = engine(&format!(
        "{ONE}communities:\n  - community: '64496:*'\n    label: from a peer of AS64496\n"
    ));
    let got = run(
        &mut e,
        &[announce_with(
            1,
            1,
            "10.0.0.0/16",
            AsPath::from_asns([1, 666]),
            &[
                Community::Standard(64496, 7),
                Community::Standard(65535, 666),
                Community::Standard(3, 3),
                Community::Large(64496, 1, 2),
            ],
        )],
    );
    let a = &got[0].1;
    assert_eq!(
        a.sample[0].communities,
        vec!["64496:7", "65535:666", "3:3", "64496:1:2"]
    );
    assert_eq!(
        a.detail.communities,
        vec!["64496:7 (from a peer of AS64496)", "65535:666 (blackhole)"]
    );
}

const ASN: &str = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\nasns:\n  - asn: 100\n    description: us\n";

#[test]
fn unexpected_prefix_fires_for_unwatched_prefixes_of_a_monitored_asn() {
    let mut e = engine(&format!(
        "{ASN}    upstreams: []\n    downstreams: []\n    min_vantage_points: 2\n"
    ));
    let got = run(
        &mut e,
        &[
            // Watched: no unexpected_prefix.
            announce(1, 1, "10.0.0.0/16", &[1, 100]),
            announce(1, 2, "10.0.0.0/16", &[2, 100]),
            // Not watched, by someone else: ignored.
            announce(2, 1, "172.16.0.0/12", &[1, 5]),
            announce(2, 2, "172.16.0.0/12", &[2, 5]),
            // Not watched, by us: fires at the second VP.
            announce(3, 1, "192.168.0.0/16", &[1, 100]),
            announce(4, 2, "192.168.0.0/16", &[2, 7, 100]),
            // One VP moves to another origin (implicit withdrawal), the other withdraws.
            announce(5, 1, "192.168.0.0/16", &[1, 5]),
            withdraw(6, 2, "192.168.0.0/16"),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (
                Fired,
                Rule::UnexpectedPrefix,
                "192.168.0.0/16".into(),
                100,
                4
            ),
            (
                Resolved,
                Rule::UnexpectedPrefix,
                "192.168.0.0/16".into(),
                100,
                6
            ),
        ]
    );
    let a = &got[0].1;
    assert_eq!(a.detail.monitored_asn, Some(100));
    assert_eq!(a.description, "us");
    assert_eq!(a.severity, Severity::Warning);
    assert_eq!(a.sample.len(), 2);
    assert!(
        a.summary()
            .contains("monitored AS100 originates 192.168.0.0/16")
    );
    // A session going down takes its routes along.
    let got = run(
        &mut e,
        &[
            announce(7, 1, "192.168.0.0/16", &[1, 100]),
            announce(8, 2, "192.168.0.0/16", &[2, 100]),
            FeedEvent::PeerDown {
                timestamp: Timestamp::from_parts(9, 0),
                vp: vp(1),
            },
            FeedEvent::PeerDown {
                timestamp: Timestamp::from_parts(10, 0),
                vp: vp(2),
            },
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            (
                Fired,
                Rule::UnexpectedPrefix,
                "192.168.0.0/16".into(),
                100,
                8
            ),
            (
                Resolved,
                Rule::UnexpectedPrefix,
                "192.168.0.0/16".into(),
                100,
                10
            ),
        ]
    );
}

#[test]
fn rpki_invalid_fires_for_unwatched_announcements_of_a_monitored_asn() {
    let mut e = engine(&format!(
        "{ASN}    upstreams: []\n    downstreams: []\n    unexpected_prefix: false\n    min_vantage_points: 2\n"
    ));
    e.set_rpki(
        rpki(
            &[("192.168.0.0/16", 16, 64999)],
            &[],
            AspaProcedure::Downstream,
        ),
        Timestamp(0),
    );
    let got = run(
        &mut e,
        &[
            announce(1, 1, "192.168.0.0/16", &[1, 100]),
            announce(2, 2, "192.168.0.0/16", &[2, 100]),
        ],
    );
    assert_eq!(
        brief(&got),
        vec![(Fired, Rule::RpkiInvalid, "192.168.0.0/16".into(), 100, 2)]
    );
    assert_eq!(got[0].1.detail.rpki, Some(RovState::Invalid));
    // A ROA for us arrives: resolved without any new route.
    e.set_rpki(
        rpki(
            &[("192.168.0.0/16", 16, 100)],
            &[],
            AspaProcedure::Downstream,
        ),
        Timestamp::from_parts(3, 0),
    );
    assert_eq!(
        brief(&take(&mut e)),
        vec![(Resolved, Rule::RpkiInvalid, "192.168.0.0/16".into(), 100, 3)]
    );
}

fn neighbors(got: &[(TransitionKind, Alert)]) -> Vec<(TransitionKind, u32, NeighborSide, i64)> {
    got.iter()
        .filter(|(_, a)| a.rule == Rule::NewNeighbor)
        .map(|(k, a)| {
            (
                *k,
                a.detail.neighbor.unwrap(),
                a.detail.neighbor_side.unwrap(),
                a.resolved_at.unwrap_or(a.fired_at).secs(),
            )
        })
        .collect()
}

#[test]
fn new_neighbor_with_configured_lists() {
    let mut e = engine(&format!(
        "{ASN}    upstreams: [7]\n    downstreams: [8]\n    unexpected_prefix: false\n    neighbor_hold_seconds: 100\n    min_vantage_points: 2\n"
    ));
    let got = run(
        &mut e,
        &[
            // Known on both sides, any prefix; prepends collapse.
            announce(1, 1, "172.16.0.0/12", &[1, 7, 100, 100, 100, 8, 8]),
            announce(1, 2, "172.16.0.0/12", &[2, 7, 7, 100, 8]),
            // A loop: skipped, whatever it shows.
            announce(2, 1, "172.17.0.0/16", &[1, 66, 100, 9, 66]),
            announce(2, 2, "172.17.0.0/16", &[2, 66, 100, 9, 66]),
            // A new upstream (66) and a new downstream (9), seen by two VPs.
            announce(3, 1, "172.18.0.0/16", &[1, 66, 100, 9]),
            announce(4, 2, "172.19.0.0/16", &[2, 66, 100, 9]),
            // An AS_SET next to us names nobody.
            announce_with(
                5,
                1,
                "172.20.0.0/16",
                AsPath(vec![
                    PathElem::Asn(1),
                    PathElem::Asn(100),
                    PathElem::Set(vec![11, 12].into()),
                ]),
                &[],
            ),
            announce_with(
                5,
                2,
                "172.20.0.0/16",
                AsPath(vec![
                    PathElem::Asn(2),
                    PathElem::Asn(100),
                    PathElem::Set(vec![11, 12].into()),
                ]),
                &[],
            ),
            // Still seen at 50; an unrelated event after the hold time resolves both.
            announce(50, 3, "172.18.0.0/16", &[3, 66, 100, 9]),
            announce(151, 1, "172.16.0.0/12", &[1, 7, 100, 8]),
        ],
    );
    assert_eq!(
        neighbors(&got),
        vec![
            (Fired, 66, NeighborSide::Upstream, 4),
            (Fired, 9, NeighborSide::Downstream, 4),
            (Resolved, 9, NeighborSide::Downstream, 151),
            (Resolved, 66, NeighborSide::Upstream, 151),
        ]
    );
    let a = &got[0].1;
    assert_eq!(a.prefix.to_string(), "172.18.0.0/16");
    assert_eq!(a.detail.monitored_asn, Some(100));
    assert!(a.summary().contains("new upstream AS66"), "{}", a.summary());
    assert_eq!(a.sample.len(), 2);
    assert_eq!(a.key().asn, 66);
    assert_ne!(got[0].1.id, got[1].1.id);
}

#[test]
fn new_neighbor_learns_when_no_list_is_given() {
    let mut e = engine(&format!(
        "{ASN}    unexpected_prefix: false\n    learning_window_seconds: 10\n    min_vantage_points: 1\n    neighbor_hold_seconds: 100\n"
    ));
    let got = run(
        &mut e,
        &[
            // Learned within the window.
            announce(1, 1, "172.16.0.0/12", &[1, 7, 100]),
            announce(11, 1, "172.17.0.0/16", &[1, 8, 100]),
            // After it: alerts once, then is known.
            announce(12, 1, "172.18.0.0/16", &[1, 66, 100]),
            announce(13, 2, "172.18.0.0/16", &[2, 66, 100]),
            announce(14, 1, "172.18.0.0/16", &[1, 7, 100]),
            announce(200, 1, "172.18.0.0/16", &[1, 66, 100]),
        ],
    );
    assert_eq!(
        neighbors(&got),
        vec![
            (Fired, 66, NeighborSide::Upstream, 12),
            (Resolved, 66, NeighborSide::Upstream, 200),
        ]
    );
}

#[test]
fn a_table_dump_teaches_neighbours_and_raises_nothing_until_it_ends() {
    let mut e = engine(&format!("{ASN}    min_vantage_points: 1\n"));
    e.begin_rib();
    e.process(&announce(1, 1, "172.16.0.0/12", &[1, 7, 100]));
    e.process(&announce(1, 2, "192.168.0.0/16", &[2, 7, 100]));
    assert!(take(&mut e).is_empty());
    e.finish_rib(Timestamp::from_parts(2, 0));
    let got = take(&mut e);
    assert_eq!(
        brief(&got),
        vec![
            (
                Fired,
                Rule::UnexpectedPrefix,
                "172.16.0.0/12".into(),
                100,
                2
            ),
            (
                Fired,
                Rule::UnexpectedPrefix,
                "192.168.0.0/16".into(),
                100,
                2
            ),
        ]
    );
    let got = run(&mut e, &[announce(3, 1, "172.16.0.0/12", &[1, 7, 100])]);
    assert!(neighbors(&got).is_empty());
}

#[test]
fn monitoring_no_asn_costs_nothing_and_changes_nothing() {
    let mut plain = Engine::new(&Config::parse(ONE, Path::new("t.yml")).unwrap().prefixes);
    let mut full = engine(ONE);
    let events = [
        announce(1, 1, "10.0.0.0/16", &[1, 666]),
        announce(2, 1, "192.168.0.0/16", &[1, 100]),
    ];
    assert_eq!(
        brief(&run(&mut plain, &events)),
        brief(&run(&mut full, &events))
    );
}

#[test]
fn hostile_paths_do_not_panic_in_any_detector() {
    let mut e = engine(&format!(
        "{ONE}    paths:\n      - match: '^(1 )+'\n        max_length: 3\nasns:\n  - asn: 100\n    min_vantage_points: 1\n"
    ));
    e.set_rpki(
        rpki(
            &[("10.0.0.0/8", 32, 100)],
            &[(100, &[1]), (1, &[0])],
            AspaProcedure::Downstream,
        ),
        Timestamp(0),
    );
    // Ten thousand hops, the monitored ASN in the middle, a loop, and sets of every size.
    let mut long: Vec<PathElem> = (0..10_000u32)
        .map(|i| PathElem::Asn(i % 5000 + 1))
        .collect();
    long.insert(5000, PathElem::Asn(100));
    long.insert(7000, PathElem::Set(Vec::new().into()));
    long.push(PathElem::Set((0..1000).collect::<Vec<u32>>().into()));
    let mut no_loop: Vec<PathElem> = (1..=10_000u32).map(PathElem::Asn).collect();
    no_loop.push(PathElem::Asn(100));
    for (i, path) in [
        long,
        no_loop,
        vec![PathElem::Set(Vec::new().into())],
        vec![],
    ]
    .into_iter()
    .enumerate()
    {
        for prefix in ["10.0.0.0/16", "10.1.0.0/16", "0.0.0.0/0", "::/0"] {
            e.process(&announce_with(
                i as i64,
                1,
                prefix,
                AsPath(path.clone()),
                &[],
            ));
            e.process(&withdraw(i as i64, 1, prefix));
        }
    }
    let _ = take(&mut e);
}
