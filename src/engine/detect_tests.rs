//! Hand-built events for the detectors that the real data in the test set does not show (or
//! not in every variant): RPKI states, ASPA leaks, path rules, monitored ASNs, squatting,
//! community labels.

use std::path::Path;

use super::test_support::{
    announce, announce_with, brief, engine_from_config as engine, fired, resolved, rpki,
    run_alerts as run, take, withdraw,
};
use super::*;
use crate::config::Config;
use crate::event::{AsPath, Community, PathElem};
use crate::rpki::{AspaProcedure, AspaState, RovState};

pub(super) const ONE: &str = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\n";

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
            fired(Rule::RpkiInvalid, "10.0.0.0/16", 666, 2),
            fired(Rule::OriginHijack, "10.0.0.0/16", 666, 2),
            resolved(Rule::RpkiInvalid, "10.0.0.0/16", 666, 3),
            resolved(Rule::OriginHijack, "10.0.0.0/16", 666, 3),
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
            fired(Rule::RpkiInvalid, "10.0.1.0/24", 100, 4),
            fired(Rule::MoreSpecific, "10.0.1.0/24", 100, 4)
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
        vec![fired(Rule::RpkiInvalid, "10.0.0.0/16", 100, 5)]
    );
    // Fixed: valid again.
    e.set_rpki(
        rpki(&[("10.0.0.0/16", 16, 100)], &[], AspaProcedure::Downstream),
        Timestamp::from_parts(9, 0),
    );
    assert_eq!(
        brief(&take(&mut e)),
        vec![resolved(Rule::RpkiInvalid, "10.0.0.0/16", 100, 9)]
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
        vec![fired(Rule::OriginHijack, "10.0.0.0/16", 300, 1)]
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
            fired(Rule::RpkiInvalid, "10.0.0.0/16", 666, 2),
            fired(Rule::OriginHijack, "10.0.0.0/16", 666, 2),
            fired(Rule::MoreSpecific, "10.0.5.0/24", 100, 3),
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
            fired(Rule::RouteLeak, "10.0.0.0/16", 30, 2),
            resolved(Rule::RouteLeak, "10.0.0.0/16", 30, 4),
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
    let set = AsPath::from(vec![
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
        vec![fired(Rule::RouteLeak, "10.0.0.0/16", 20, 2)]
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
            fired(Rule::PathMatch, "10.0.0.0/16", 100, 2),
            resolved(Rule::PathMatch, "10.0.0.0/16", 100, 5),
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
        vec![fired(Rule::PathMatch, "10.0.0.0/16", 100, 2)]
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
        vec![fired(Rule::PathMatch, "10.0.0.0/16", 100, 3)]
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
            fired(Rule::Squatting, "192.0.2.0/24", 666, 1),
            fired(Rule::Squatting, "192.0.2.128/25", 777, 2),
            resolved(Rule::Squatting, "192.0.2.0/24", 666, 3),
            resolved(Rule::Squatting, "192.0.2.128/25", 777, 4),
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
