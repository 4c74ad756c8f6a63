//! Saving and restoring the engine's state, and reconfiguring it, on hand-built events.

use std::path::Path;

use super::test_support::{announce, engine_without_hold_downs as engine, run, withdraw};
use super::tests::EXACT;
use super::*;
use crate::alerts::TransitionKind;

#[test]
fn restored_engine_continues_the_same_alerts_silently() {
    let mut e = engine(EXACT);
    run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 666]),
            announce(2, 2, "10.0.0.0/16", &[2, 666]),
            announce(3, 3, "10.0.0.0/16", &[3, 200, 100]),
        ],
    );
    let state = e.export_state();
    assert_eq!(state.firing.len(), 1);
    assert_eq!(state.routes.len(), 1);
    assert_eq!(state.routes[0].routes.len(), 3);
    let id = state.firing[0].id.clone();
    let mut r = Engine::restore(&e.watched_prefixes().cloned().collect::<Vec<_>>(), state);
    assert_eq!(
        r.drain_transitions().count(),
        0,
        "a restore raises nothing new"
    );
    assert_eq!(r.route_count(), 3);
    let mut resolved = Vec::new();
    for ev in [withdraw(4, 1, "10.0.0.0/16"), withdraw(5, 2, "10.0.0.0/16")] {
        r.process(&ev);
        r.settle();
        resolved.extend(
            r.drain_transitions()
                .filter(|t| t.event == TransitionKind::Resolved),
        );
    }
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].alert.id, id);
    assert_eq!(resolved[0].alert.first_seen, Timestamp::from_parts(1, 0));
}

#[test]
fn changes_are_exported_once() {
    let mut e = engine(EXACT);
    run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 200, 100]),
            announce(1, 2, "10.0.1.0/24", &[2, 200, 100]),
            announce(1, 2, "192.0.2.0/24", &[2, 200, 100]),
        ],
    );
    let first = e.take_changes();
    assert_eq!(first.vps.len(), 2);
    assert_eq!(first.first_vp, 0);
    assert_eq!(first.routes.len(), 2);
    assert!(e.take_changes().routes.is_empty());
    e.process(&withdraw(2, 2, "10.0.1.0/24"));
    e.process(&announce(2, 3, "10.0.0.0/16", &[3, 200, 100]));
    let second = e.take_changes();
    assert_eq!(second.first_vp, 2);
    assert_eq!(second.vps.len(), 1);
    let prefixes: Vec<(String, usize)> = second
        .routes
        .iter()
        .map(|r| (r.prefix.to_string(), r.routes.len()))
        .collect();
    assert_eq!(
        prefixes,
        vec![("10.0.0.0/16".into(), 2), ("10.0.1.0/24".into(), 0)]
    );
}

#[test]
fn reconfigure_keeps_state_of_prefixes_that_stay() {
    let yaml = "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    upstreams: []\n    visibility_min_vantage_points: 0\n  - prefix: 10.1.0.0/16\n    upstreams: []\n    visibility_min_vantage_points: 0\n    learning_window_seconds: 0\n    min_vantage_points: 1\n";
    let mut e = engine(yaml);
    run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 666]),
            announce(1, 2, "10.0.0.0/16", &[2, 666]),
            announce(1, 1, "10.1.0.0/16", &[1, 500]),
            // Closes the learning window of 10.1.0.0/16.
            announce(2, 1, "192.0.2.0/24", &[1, 7]),
        ],
    );
    // AS666 becomes allowed for 10.0.0.0/16; 10.1.0.0/16 stays; 10.2.0.0/16 is new.
    let new = yaml.replace("origins: [100]", "origins: [100, 666]")
        + "  - prefix: 10.2.0.0/16\n    origins: [7]\n";
    let cfg = Config::parse(&new, Path::new("t.yml")).unwrap();
    e.reconfigure(&cfg);
    let t: Vec<_> = e.drain_transitions().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].event, TransitionKind::Resolved);
    assert_eq!(t[0].alert.origin, Some(666));
    assert_eq!(e.route_count(), 3);
    assert_eq!(
        e.baseline_origins(&"10.1.0.0/16".parse().unwrap()),
        Some(vec![500]),
        "the learned origin survives"
    );
    // A prefix removed from the watch list ends its alerts.
    let mut e = engine(yaml);
    run(
        &mut e,
        &[
            announce(1, 1, "10.0.0.0/16", &[1, 666]),
            announce(1, 2, "10.0.0.0/16", &[2, 666]),
        ],
    );
    let only_second = "prefixes:\n  - prefix: 10.1.0.0/16\n";
    let cfg = Config::parse(only_second, Path::new("t.yml")).unwrap();
    e.reconfigure(&cfg);
    let t: Vec<_> = e.drain_transitions().collect();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].event, TransitionKind::Resolved);
    assert_eq!(e.route_count(), 0);
}
