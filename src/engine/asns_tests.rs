//! The monitored-ASN detectors (`unexpected_prefix`, `rpki_invalid` outside the watch list,
//! `new_neighbor`) on hand-built events.

use std::path::Path;

use super::detect_tests::ONE;
use super::test_support::{
    announce, announce_with, brief, engine_from_config as engine, fired, resolved, rpki,
    run_alerts as run, take, vp, withdraw,
};
use super::*;
use crate::alerts::{NeighborSide, TransitionKind};
use crate::config::Config;
use crate::event::{AsPath, PathElem};
use crate::rpki::{AspaProcedure, RovState};

use TransitionKind::{Fired, Resolved};

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
            fired(Rule::UnexpectedPrefix, "192.168.0.0/16", 100, 4),
            resolved(Rule::UnexpectedPrefix, "192.168.0.0/16", 100, 6),
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
                within: None,
            },
            FeedEvent::PeerDown {
                timestamp: Timestamp::from_parts(10, 0),
                vp: vp(2),
                within: None,
            },
        ],
    );
    assert_eq!(
        brief(&got),
        vec![
            fired(Rule::UnexpectedPrefix, "192.168.0.0/16", 100, 8),
            resolved(Rule::UnexpectedPrefix, "192.168.0.0/16", 100, 10),
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
        vec![fired(Rule::RpkiInvalid, "192.168.0.0/16", 100, 2)]
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
        vec![resolved(Rule::RpkiInvalid, "192.168.0.0/16", 100, 3)]
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
                AsPath::from(vec![
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
                AsPath::from(vec![
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
            fired(Rule::UnexpectedPrefix, "172.16.0.0/12", 100, 2),
            fired(Rule::UnexpectedPrefix, "192.168.0.0/16", 100, 2),
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
                AsPath::from(path.clone()),
                &[],
            ));
            e.process(&withdraw(i as i64, 1, prefix));
        }
    }
    let _ = take(&mut e);
}
