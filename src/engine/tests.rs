//! The prefix detectors end to end: thresholds, learning, visibility, nesting, hold-downs and
//! alert ids, on hand-built events.

use std::collections::HashSet;

use super::test_support::{
    announce, announce_path, engine_with_hold_downs, engine_without_hold_downs as engine, fired,
    resolved, run, vp, withdraw,
};
use super::*;
use crate::alerts::{AlertTransition, TransitionKind};
use crate::event::{AsPath, PathElem};

use TransitionKind::{Fired, Resolved};

pub(super) const EXACT: &str = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: [200]\n    visibility_min_vantage_points: 0\n";

#[test]
fn hijack_fires_at_the_threshold_and_resolves_when_no_vp_shows_it() {
    let mut e = engine(EXACT);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(2, 2, "10.0.0.0/16", &[2, 666]),
            announce(3, 3, "10.0.0.0/16", &[3, 666]),
            announce(4, 4, "10.0.0.0/16", &[4, 666]),
            // Implicit withdrawal: VP 2 now has the right route again.
            announce(5, 2, "10.0.0.0/16", &[2, 200, 100]),
            // Below the threshold but not zero: still firing.
            withdraw(6, 3, "10.0.0.0/16"),
            withdraw(7, 4, "10.0.0.0/16"),
        ],
    );
    assert_eq!(
        got,
        vec![
            fired(Rule::OriginHijack, "10.0.0.0/16", 666, 3),
            resolved(Rule::OriginHijack, "10.0.0.0/16", 666, 7),
        ]
    );
}

#[test]
fn one_vp_is_not_enough_by_default() {
    let mut e = engine(EXACT);
    let got = run(&mut e, &[announce(1, 1, "10.0.0.0/16", &[1, 666])]);
    assert!(got.is_empty());
    let mut e = engine(
        "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    min_vantage_points: 1\n",
    );
    let got = run(&mut e, &[announce(1, 1, "10.0.0.0/16", &[1, 666])]);
    assert_eq!(got.len(), 1);
}

#[test]
fn alert_carries_the_incident() {
    let mut e = engine(EXACT);
    run(
        &mut e,
        &[
            announce(10, 1, "10.0.0.0/16", &[1, 9, 666, 666]),
            announce(12, 2, "10.0.0.0/16", &[2, 666]),
        ],
    );
    let _ = e.drain_transitions();
    e.process(&announce(13, 3, "10.0.0.0/16", &[3, 666]));
    e.settle();
    let t: Vec<_> = e.drain_transitions().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].event, TransitionKind::Updated);
    let a = &t[0].alert;
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.expected_origins, vec![100]);
    assert_eq!(a.vantage_points, 3);
    assert_eq!(a.first_seen, Timestamp::from_parts(10, 0));
    assert_eq!(a.fired_at, Timestamp::from_parts(12, 0));
    assert_eq!(a.last_seen, Timestamp::from_parts(13, 0));
    assert_eq!(a.sample.len(), 3);
    assert_eq!(a.sample[0].as_path, "1 9 666 666");
    // The key's first incident.
    assert_eq!(a.id, Alert::make_id(&a.key(), a.first_seen, a.fired_at, 0));
}

#[test]
fn as_set_origin_is_a_hijack_only_for_members_not_allowed() {
    let mut e = engine(EXACT);
    let set = |members: &[u32]| {
        AsPath::from(vec![
            PathElem::Asn(1),
            PathElem::Asn(200),
            PathElem::Set(members.into()),
        ])
    };
    let got = run(
        &mut e,
        &[
            announce_path(1, 1, "10.0.0.0/16", set(&[100])),
            announce_path(1, 2, "10.0.0.0/16", set(&[100])),
            announce_path(2, 3, "10.0.0.0/16", set(&[100, 777])),
            announce_path(2, 4, "10.0.0.0/16", set(&[100, 777])),
        ],
    );
    assert_eq!(got, vec![fired(Rule::OriginHijack, "10.0.0.0/16", 777, 2)]);
}

#[test]
fn prepends_are_collapsed_when_finding_the_upstream() {
    let mut e = engine(EXACT);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100, 100, 100]),
            announce(1, 2, "10.0.0.0/16", &[2, 200, 200, 100, 100]),
            announce(2, 3, "10.0.0.0/16", &[3, 300, 100, 100]),
            announce(3, 4, "10.0.0.0/16", &[4, 300, 300, 100]),
            withdraw(4, 3, "10.0.0.0/16"),
            announce(5, 4, "10.0.0.0/16", &[4, 200, 100]),
        ],
    );
    assert_eq!(
        got,
        vec![
            fired(Rule::NewUpstream, "10.0.0.0/16", 300, 3),
            resolved(Rule::NewUpstream, "10.0.0.0/16", 300, 5),
        ]
    );
}

#[test]
fn more_specifics_hijacked_or_announced_by_the_owner() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    visibility_min_vantage_points: 0\n";
    let mut e = engine(yaml);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.1.0/24", &[1, 666]),
            announce(1, 2, "10.0.1.0/24", &[2, 666]),
            announce(2, 1, "10.0.2.0/24", &[1, 100]),
            announce(2, 2, "10.0.2.0/24", &[2, 100]),
            announce(3, 3, "10.1.0.0/24", &[3, 666]),
            announce(3, 4, "10.1.0.0/24", &[4, 666]),
        ],
    );
    assert_eq!(
        got,
        vec![
            fired(Rule::SubprefixHijack, "10.0.1.0/24", 666, 1),
            fired(Rule::MoreSpecific, "10.0.2.0/24", 100, 2),
        ]
    );
    assert_eq!(e.stats().matched, 4);

    let ignore = yaml.replace("upstreams: []", "upstreams: []\n    more_specifics: ignore");
    let mut e = engine(&ignore);
    let got = run(
        &mut e,
        &[
            announce(2, 1, "10.0.2.0/24", &[1, 100]),
            announce(2, 2, "10.0.2.0/24", &[2, 100]),
            announce(3, 1, "10.0.1.0/24", &[1, 666]),
            announce(3, 2, "10.0.1.0/24", &[2, 666]),
        ],
    );
    assert_eq!(
        got,
        vec![fired(Rule::SubprefixHijack, "10.0.1.0/24", 666, 3)]
    );
}

#[test]
fn learning_mode_learns_what_most_vps_showed_over_the_window() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    visibility_min_vantage_points: 0\n    learning_window_seconds: 10\n";
    let mut e = engine(yaml);
    let got = run(
        &mut e,
        &[
            // A more-specific first: it neither opens the window nor teaches an origin.
            announce(0, 1, "10.0.1.0/24", &[1, 17, 666]),
            announce(0, 2, "10.0.1.0/24", &[2, 17, 666]),
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(1, 2, "10.0.0.0/16", &[2, 200, 100]),
            announce(2, 3, "10.0.0.0/16", &[3, 300, 100]),
            // A minority origin inside the window raises nothing yet.
            announce(3, 4, "10.0.0.0/16", &[4, 17, 666]),
            announce(3, 5, "10.0.0.0/16", &[5, 17, 666]),
            announce(5, 6, "10.0.0.0/16", &[6, 200, 100]),
            announce(9, 7, "10.0.0.0/16", &[7, 200, 100]),
            // Past the window: AS666 (2 of 7 VPs) was not learned and raises now; AS300
            // (1 VP) was not learned either, and raises once a second VP shows it. AS17, in
            // front of the hijacker only, was not learned as an upstream.
            announce(12, 8, "10.0.0.0/16", &[8, 200, 100]),
            announce(13, 8, "10.0.0.0/16", &[8, 300, 100]),
        ],
    );
    assert_eq!(
        got,
        vec![
            fired(Rule::SubprefixHijack, "10.0.1.0/24", 666, 0),
            fired(Rule::OriginChange, "10.0.0.0/16", 666, 12),
            fired(Rule::NewUpstream, "10.0.0.0/16", 300, 13),
        ]
    );
    assert_eq!(
        e.baseline_origins(&"10.0.0.0/16".parse().unwrap()),
        Some(vec![100])
    );
    let state = e.prefix_state(&"10.0.0.0/16".parse().unwrap()).unwrap();
    assert_eq!(state.expected_upstreams, Some(vec![200]));
    assert_eq!(state.learning_window_ends, None);
}

#[test]
fn a_table_dump_is_the_learned_baseline() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    upstreams: []\n    visibility_min_vantage_points: 0\n";
    let mut e = engine(yaml);
    e.begin_rib();
    // Dump entries carry the times they were learned, in no order.
    for ev in [
        announce(50, 1, "10.0.0.0/16", &[1, 200, 100]),
        announce(1, 2, "10.0.0.0/16", &[2, 200, 100]),
        announce(900, 3, "10.0.0.0/16", &[3, 17, 666]),
        announce(7, 4, "10.0.0.0/16", &[4, 200, 100]),
    ] {
        e.process(&ev);
    }
    e.finish_rib(Timestamp::from_parts(1000, 0));
    assert_eq!(
        e.baseline_origins(&"10.0.0.0/16".parse().unwrap()),
        Some(vec![100])
    );
    let state = e.prefix_state(&"10.0.0.0/16".parse().unwrap()).unwrap();
    assert_eq!(
        state.learning_window_ends, None,
        "the dump closed the window"
    );
    // The minority origin of the dump is judged at once: a second VP makes it fire.
    let got = run(&mut e, &[announce(1001, 5, "10.0.0.0/16", &[5, 17, 666])]);
    assert_eq!(
        got,
        vec![fired(Rule::OriginChange, "10.0.0.0/16", 666, 1001)]
    );
}

#[test]
fn a_learning_window_that_learned_no_origin_opens_again() {
    // Two VPs needed: a window in which one VP routed the prefix learns nothing, and the next
    // route to it opens a new window instead of judging against an empty baseline.
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    upstreams: []\n    visibility_min_vantage_points: 0\n    learning_window_seconds: 10\n";
    let mut e = engine(yaml);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(20, 2, "10.0.0.0/16", &[2, 200, 100]),
            announce(21, 3, "10.0.0.0/16", &[3, 200, 100]),
            announce(40, 4, "192.0.2.0/24", &[4, 1]),
        ],
    );
    assert_eq!(got, vec![]);
    assert_eq!(
        e.baseline_origins(&"10.0.0.0/16".parse().unwrap()),
        Some(vec![100])
    );
}

#[test]
fn visibility_loss_fires_after_the_threshold_was_reached_and_resolves_when_back() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: 3\n";
    let mut e = engine(yaml);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 100]),
            announce(1, 2, "10.0.0.0/16", &[2, 100]),
            withdraw(2, 2, "10.0.0.0/16"), // never reached 3: nothing
            announce(3, 2, "10.0.0.0/16", &[2, 100]),
            announce(3, 3, "10.0.0.0/16", &[3, 100]),
            withdraw(4, 1, "10.0.0.0/16"),
            withdraw(5, 2, "10.0.0.0/16"),
            announce(6, 1, "10.0.0.0/16", &[1, 100]),
            announce(7, 2, "10.0.0.0/16", &[2, 100]),
            // A more-specific counts for its own prefix.
            announce(8, 1, "10.0.5.0/24", &[1, 100]),
            announce(8, 2, "10.0.5.0/24", &[2, 100]),
            announce(8, 3, "10.0.5.0/24", &[3, 100]),
            withdraw(9, 3, "10.0.5.0/24"),
        ],
    );
    assert_eq!(
        got,
        vec![
            fired(Rule::VisibilityLoss, "10.0.0.0/16", 0, 4),
            resolved(Rule::VisibilityLoss, "10.0.0.0/16", 0, 7),
            fired(Rule::VisibilityLoss, "10.0.5.0/24", 0, 9),
        ]
    );
}

#[test]
fn peer_down_drops_the_vps_routes() {
    let mut e = engine(EXACT);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 666]),
            announce(1, 2, "10.0.0.0/16", &[2, 666]),
            FeedEvent::PeerDown {
                timestamp: Timestamp::from_parts(2, 0),
                vp: vp(1),
                within: None,
            },
            FeedEvent::PeerDown {
                timestamp: Timestamp::from_parts(3, 0),
                vp: vp(2),
                within: None,
            },
        ],
    );
    assert_eq!(
        got,
        vec![
            fired(Rule::OriginHijack, "10.0.0.0/16", 666, 1),
            resolved(Rule::OriginHijack, "10.0.0.0/16", 666, 3),
        ]
    );
    assert_eq!(e.route_count(), 0);
}

/// A scale-out partition's copy of a peer down withdraws the VP's routes under that
/// partition's roots only: another partition's routes of the same VP stay.
#[test]
fn a_scoped_peer_down_drops_only_the_routes_under_its_roots() {
    let mut e = engine(
        "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n  - prefix: 10.0.1.0/24\n    origins: [100]\n  - prefix: 192.0.2.0/24\n    origins: [100]\n",
    );
    let down = |t: i64, roots: &[&str]| FeedEvent::PeerDown {
        timestamp: Timestamp::from_parts(t, 0),
        vp: vp(1),
        within: Some(roots.iter().map(|r| r.parse().unwrap()).collect()),
    };
    run(
        &mut e,
        &[
            announce(1, 1, "10.0.1.0/24", &[1, 100]),
            announce(1, 1, "10.0.2.0/24", &[1, 100]),
            announce(1, 1, "192.0.2.0/24", &[1, 100]),
        ],
    );
    assert_eq!(e.route_count(), 3);
    // 10.0.1.0/24 is watched itself, but its root is 10.0.0.0/16.
    run(&mut e, &[down(2, &["192.0.2.0/24"])]);
    assert_eq!(e.route_count(), 2);
    run(&mut e, &[down(3, &["10.0.1.0/24"])]);
    assert_eq!(
        e.route_count(),
        2,
        "not a root: nothing under it is dropped"
    );
    run(&mut e, &[down(4, &["10.0.0.0/16"])]);
    assert_eq!(e.route_count(), 0);
}

/// A more-specific that is itself watched is judged by its own entry alone (the longest
/// match): its own origin is no hijack of the covering entry, another origin is an origin
/// hijack of its own entry, and a route under it is judged by it too.
#[test]
fn nested_watched_prefixes_judge_by_the_longest_match() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    visibility_min_vantage_points: 0\n  - prefix: 10.0.1.0/24\n    origins: [101]\n    upstreams: []\n    visibility_min_vantage_points: 0\n";
    let mut e = engine(yaml);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.1.0/24", &[1, 101]),
            announce(1, 2, "10.0.1.0/24", &[2, 101]),
        ],
    );
    assert_eq!(got, vec![]);
    let mut e = engine(yaml);
    let t: Vec<AlertTransition> = [
        announce(1, 1, "10.0.1.0/24", &[1, 100]),
        announce(1, 2, "10.0.1.0/24", &[2, 100]),
        announce(1, 1, "10.0.1.128/25", &[1, 101]),
        announce(1, 2, "10.0.1.128/25", &[2, 101]),
    ]
    .iter()
    .flat_map(|ev| {
        e.process(ev);
        e.settle();
        e.drain_transitions().collect::<Vec<_>>()
    })
    .collect();
    let got: Vec<(Rule, String, String, Option<u32>)> = t
        .iter()
        .map(|t| {
            let a = &t.alert;
            (
                a.rule,
                a.prefix.to_string(),
                a.watched_prefix.to_string(),
                a.origin,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Rule::OriginHijack,
                "10.0.1.0/24".into(),
                "10.0.1.0/24".into(),
                Some(100)
            ),
            (
                Rule::MoreSpecific,
                "10.0.1.128/25".into(),
                "10.0.1.0/24".into(),
                Some(101)
            ),
        ]
    );
}

/// Nesting is unbounded: a route under ten nested watched prefixes is judged by the tenth.
#[test]
fn deeply_nested_watched_prefixes_judge_by_the_longest_match() {
    let mut yaml = String::from("prefixes:\n");
    for len in 14..=23 {
        yaml.push_str(&format!(
            "  - prefix: 10.0.0.0/{len}\n    origins: [{len}]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: 0\n"
        ));
    }
    let mut e = engine(&yaml);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/24", &[1, 23]),
            announce(1, 2, "10.0.0.0/24", &[2, 23]),
            announce(2, 1, "10.0.0.0/24", &[1, 22]),
            announce(2, 2, "10.0.0.0/24", &[2, 22]),
        ],
    );
    assert_eq!(
        got,
        vec![fired(Rule::SubprefixHijack, "10.0.0.0/24", 22, 2)]
    );
    let state = e.export_state();
    assert_eq!(state.firing[0].watched_prefix.to_string(), "10.0.0.0/23");
    // Every one of the ten covering entries, not only the first eight, lists the route.
    for len in 14..=23 {
        let s = e
            .prefix_state(&format!("10.0.0.0/{len}").parse().unwrap())
            .unwrap();
        let more: Vec<String> = s
            .more_specifics
            .iter()
            .map(|m| m.prefix.to_string())
            .collect();
        assert_eq!(more, ["10.0.0.0/24"], "/{len}");
        assert_eq!(s.last_change, Some(Timestamp::from_parts(2, 0)), "/{len}");
    }
}

#[test]
fn withdrawal_of_an_unknown_route_and_unrelated_prefixes_change_nothing() {
    let mut e = engine(EXACT);
    assert!(!e.process(&announce(1, 1, "192.0.2.0/24", &[1, 666])));
    assert!(e.process(&withdraw(1, 1, "10.0.0.0/16")));
    assert_eq!(e.route_count(), 0);
    assert_eq!(e.drain_transitions().count(), 0);
}

#[test]
fn a_table_dump_sets_the_baseline_and_then_conditions_are_judged() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    visibility_min_vantage_points: 2\n";
    let mut e = engine(yaml);
    e.begin_rib();
    run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(1, 2, "10.0.0.0/16", &[2, 300, 101]),
        ],
    );
    e.finish_rib(Timestamp::from_parts(1, 0));
    assert_eq!(e.drain_transitions().count(), 0);
    let got = run(
        &mut e,
        &[
            announce(5, 3, "10.0.0.0/16", &[3, 300, 100]),
            withdraw(6, 1, "10.0.0.0/16"),
            withdraw(6, 2, "10.0.0.0/16"),
            withdraw(7, 3, "10.0.0.0/16"),
        ],
    );
    assert_eq!(got, vec![fired(Rule::VisibilityLoss, "10.0.0.0/16", 0, 6)]);
}

#[test]
fn same_input_same_alert_ids() {
    let events = [
        announce(1, 1, "10.0.0.0/16", &[1, 666]),
        announce(1, 2, "10.0.0.0/16", &[2, 666]),
        withdraw(2, 1, "10.0.0.0/16"),
        withdraw(2, 2, "10.0.0.0/16"),
        announce(3, 1, "10.0.0.0/16", &[1, 666]),
        announce(3, 2, "10.0.0.0/16", &[2, 666]),
    ];
    let ids = |e: &mut Engine| {
        let mut ids = Vec::new();
        for ev in &events {
            e.process(ev);
            ids.extend(
                e.drain_transitions()
                    .filter(|t| t.event != TransitionKind::Updated)
                    .map(|t| t.alert.id),
            );
        }
        e.settle();
        ids.extend(
            e.drain_transitions()
                .filter(|t| t.event != TransitionKind::Updated)
                .map(|t| t.alert.id),
        );
        ids
    };
    let a = ids(&mut engine(EXACT));
    let b = ids(&mut engine(EXACT));
    assert_eq!(a, b);
    // A new incident after resolution is a new alert.
    assert_eq!(a[0], a[1]);
    assert_ne!(a[0], a[2]);
}

/// Thresholds are judged on the state after every event of one instant: a VP whose route is
/// replaced within the same second never counts.
#[test]
fn a_condition_that_ends_within_its_instant_raises_nothing() {
    let mut e = engine(EXACT);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 666]),
            announce(2, 2, "10.0.0.0/16", &[2, 666]),
            announce(2, 2, "10.0.0.0/16", &[2, 200, 100]),
            announce(3, 3, "10.0.0.0/16", &[3, 666]),
        ],
    );
    assert_eq!(got, vec![fired(Rule::OriginHijack, "10.0.0.0/16", 666, 3)]);
}

/// Hold-downs run on event time: a loss shorter than `for` raises nothing; a longer one fires
/// when `for` runs out (moving time on is enough, no further event is needed); a return shorter
/// than `keep_firing_for` keeps the same alert; a longer one resolves it when it runs out.
#[test]
fn hold_downs_run_on_event_time() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    visibility_min_vantage_points: 2\n    hold_downs:\n      visibility_loss: {for_seconds: 10, keep_firing_for_seconds: 5}\n";
    let p = "10.0.0.0/16";
    let mut e = engine_with_hold_downs(yaml);
    let mut got = run(
        &mut e,
        &[
            announce(0, 1, p, &[1, 100]),
            announce(0, 2, p, &[2, 100]),
            withdraw(1, 1, p),
            announce(9, 1, p, &[1, 100]),
            withdraw(20, 1, p),
            // A hijacker's route is no visibility for the owner.
            announce(25, 3, p, &[3, 666]),
        ],
    );
    let step = |e: &mut Engine, got: &mut Vec<_>, ev: Option<FeedEvent>, to: i64| {
        if let Some(ev) = ev {
            e.process(&ev);
        }
        e.advance_to(Timestamp::from_parts(to, 0));
        got.extend(
            e.drain_transitions()
                .filter(|t| t.event != TransitionKind::Updated)
                .map(|t| {
                    (
                        t.event,
                        t.alert.resolved_at.unwrap_or(t.alert.fired_at).secs(),
                        t.alert.id,
                    )
                }),
        );
    };
    let mut seen = Vec::new();
    step(&mut e, &mut seen, None, 31);
    step(&mut e, &mut seen, Some(announce(40, 1, p, &[1, 100])), 41);
    step(&mut e, &mut seen, Some(withdraw(43, 1, p)), 44);
    step(&mut e, &mut seen, Some(announce(50, 1, p, &[1, 100])), 56);
    got.extend(
        seen.iter()
            .map(|(k, t, _)| (*k, Rule::VisibilityLoss, p.to_string(), 0, *t)),
    );
    assert_eq!(
        got,
        vec![
            (Fired, Rule::VisibilityLoss, p.into(), 0, 30),
            (Resolved, Rule::VisibilityLoss, p.into(), 0, 55),
        ]
    );
    assert_eq!(seen[0].2, seen[1].2, "one incident, one id");
}

/// Each incident of a key gets its own id, even when several share the same times.
#[test]
fn every_incident_of_a_key_has_its_own_id() {
    let k = AlertKey {
        rule: Rule::OriginHijack,
        watched_prefix: "10.0.0.0/16".parse().unwrap(),
        prefix: "10.0.0.0/16".parse().unwrap(),
        asn: 666,
    };
    let t = Timestamp::from_parts(1, 0);
    let ids: HashSet<String> = (0..3).map(|n| Alert::make_id(&k, t, t, n)).collect();
    assert_eq!(ids.len(), 3);
}

/// A route that teaches a baseline counts once towards visibility (it is counted when the
/// baseline's routes are counted afresh, not again on its own).
#[test]
fn the_route_that_teaches_a_baseline_counts_once_for_visibility() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    visibility_min_vantage_points: 2\n";
    let mut e = engine(yaml);
    let got = run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            withdraw(2, 1, "10.0.0.0/16"),
        ],
    );
    assert_eq!(got, vec![]);
}
