use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::engine::Engine;
use crate::event::{AsPath, FeedEvent, RouteAttrs, RouteChange, RouteEvent, VantagePoint};

/// A store at `path` holding the hijack scenario, committed; the engine goes on from there.
fn store_with_hijack(path: &std::path::Path) -> (Vec<crate::config::WatchedPrefix>, Engine, Store) {
    let (prefixes, mut e, transitions) = engine_with_hijack();
    let mut s = Store::open(path).unwrap();
    s.commit(&Commit {
        transitions,
        changes: e.take_changes(),
    })
    .unwrap();
    (prefixes, e, s)
}

fn engine_with_hijack() -> (
    Vec<crate::config::WatchedPrefix>,
    Engine,
    Vec<AlertTransition>,
) {
    let cfg = Config::parse(
        "prefixes:\n  - prefix: 10.0.0.0/16\n    origins: [100]\n    visibility_min_vantage_points: 2\n  - prefix: 10.9.0.0/16\n    learning_window_seconds: 0\n    min_vantage_points: 1\n",
        Path::new("t.yml"),
    )
    .unwrap();
    let mut e = Engine::new(&cfg.prefixes);
    let mut transitions = Vec::new();
    // 10.9.0.0/16 learns AS42 in a window of one instant, closed by the next event.
    for (t, vp, prefix, path) in [
        (1, 1u8, "10.0.0.0/16", vec![1, 200, 100]),
        (2, 2, "10.0.0.0/16", vec![2, 666]),
        (2, 3, "10.9.0.0/16", vec![3, 42]),
        (3, 3, "10.0.0.0/16", vec![3, 666]),
    ] {
        e.process(&FeedEvent::Route(RouteEvent {
            timestamp: Timestamp::from_parts(t, 0),
            vp: Arc::new(VantagePoint {
                feed: "f".into(),
                collector: "c".into(),
                peer_asn: 64500 + vp as u32,
                peer_ip: [192, 0, 2, vp].into(),
                exporter: None,
            }),
            prefix: prefix.parse().unwrap(),
            change: RouteChange::Announce(Arc::new(RouteAttrs {
                path: AsPath::from_asns(path),
                communities: vec![crate::event::Community::Large(1, 2, 3)].into(),
                next_hop: Some([192, 0, 2, 1].into()),
            })),
        }));
        transitions.extend(e.drain_transitions());
    }
    // Alerts are judged once an instant is over: settle the last one.
    e.settle();
    transitions.extend(e.drain_transitions());
    (cfg.prefixes, e, transitions)
}

#[test]
fn a_commit_survives_reopening_and_restores_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (prefixes, mut e, transitions) = engine_with_hijack();
    assert!(transitions.iter().any(|t| t.event == TransitionKind::Fired));
    {
        let mut s = Store::open(&path).unwrap();
        s.commit(&Commit {
            transitions: transitions.clone(),
            changes: e.take_changes(),
        })
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let loaded = s.load(100).unwrap();
    assert_eq!(loaded.state.vps.len(), 3);
    assert_eq!(loaded.state.routes.len(), 2);
    assert_eq!(loaded.state.firing.len(), 1);
    assert_eq!(loaded.state.taken_at, Timestamp::from_parts(3, 0));
    assert_eq!(
        loaded
            .state
            .baselines
            .iter()
            .find(|b| b.prefix.to_string() == "10.9.0.0/16")
            .map(|b| b.origins.clone()),
        Some(vec![42])
    );
    assert!(loaded.saved_at.is_some());
    let expected = e.export_state();
    assert_eq!(loaded.state.routes, expected.routes);
    assert_eq!(loaded.state.vps, expected.vps);
    assert_eq!(loaded.state.firing, expected.firing);
    // The VP count over time is kept with the alert (it fired when the second VP showed it).
    let counts: Vec<u32> = loaded.state.firing[0]
        .vp_history
        .iter()
        .map(|p| p.vantage_points)
        .collect();
    assert_eq!(counts, [2]);
    let mut r = Engine::restore(&prefixes, loaded.state);
    assert_eq!(r.drain_transitions().count(), 0);
    assert_eq!(r.route_count(), 4);

    // Pending alert events for the notifier, then marked as handed over.
    let mut s = s;
    let pending = s.pending_events().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].transition.event, TransitionKind::Fired);
    s.mark_notified(pending[0].seq).unwrap();
    assert!(s.pending_events().unwrap().is_empty());
}

#[test]
fn withdrawn_prefixes_are_deleted_and_resolved_alerts_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut e, mut s) = store_with_hijack(&dir.path().join("s.db"));
    let mut ts = Vec::new();
    for vp in 1..=3u8 {
        e.process(&FeedEvent::PeerDown {
            timestamp: Timestamp::from_parts(9, 0),
            vp: Arc::new(VantagePoint {
                feed: "f".into(),
                collector: "c".into(),
                peer_asn: 64500 + vp as u32,
                peer_ip: [192, 0, 2, vp].into(),
                exporter: None,
            }),
            within: None,
        });
        ts.extend(e.drain_transitions());
    }
    e.settle();
    ts.extend(e.drain_transitions());
    s.commit(&Commit {
        transitions: ts,
        changes: e.take_changes(),
    })
    .unwrap();
    let loaded = s.load(100).unwrap();
    assert!(loaded.state.routes.is_empty());
    // Every VP gone: the hijack is over. Only one VP ever had the owner's route, under the
    // visibility threshold of 2, so there was no visibility to lose (hijacked routes are not
    // visibility).
    assert!(loaded.state.firing.is_empty(), "{:?}", loaded.state.firing);
    let rules: Vec<&str> = loaded.resolved.iter().map(|a| a.rule.as_str()).collect();
    assert!(rules.contains(&"origin_hijack"), "{rules:?}");
}

#[test]
fn a_newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("schema version 99") && err.contains("newer"),
        "{err}"
    );
}

#[test]
fn unreadable_rows_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = store_with_hijack(&dir.path().join("s.db"));
    s.conn
        .execute(
            "UPDATE routes SET data = x'ffffffff' WHERE prefix = '10.9.0.0/16'",
            [],
        )
        .unwrap();
    s.conn
        .execute(
            "INSERT INTO alerts (id, state, rule, watched_prefix, prefix, fired_at, resolved_at, json)
             VALUES ('x', 'firing', 'r', 'p', 'p', 0, NULL, '{')",
            [],
        )
        .unwrap();
    let loaded = s.load(10).unwrap();
    assert_eq!(loaded.state.routes.len(), 1);
    assert_eq!(loaded.state.firing.len(), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::write(
        &path,
        b"this is not sqlite, just some bytes that are long enough",
    )
    .unwrap();
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.contains("s.db"), "{err}");
}

fn sample_routes() -> Vec<(u32, Arc<RouteAttrs>, Timestamp)> {
    use crate::event::{Community, PathElem};
    let shared = Arc::new(RouteAttrs {
        path: AsPath::from(vec![
            PathElem::Asn(3356),
            PathElem::Asn(u32::MAX),
            PathElem::Set(vec![64500, 4_200_000_000].into()),
        ]),
        communities: vec![
            Community::Standard(65535, 0),
            Community::Large(u32::MAX, 0, 7),
        ]
        .into(),
        next_hop: Some("2001:db8::1".parse().unwrap()),
    });
    let other = Arc::new(RouteAttrs {
        path: AsPath::default(),
        communities: Vec::new().into(),
        next_hop: Some([192, 0, 2, 1].into()),
    });
    let bare = Arc::new(RouteAttrs::default());
    vec![
        (0, shared.clone(), Timestamp(1_700_000_000_000_000)),
        (3, other, Timestamp(-5)),
        (2, shared, Timestamp(i64::MAX)),
        (u32::MAX, bare, Timestamp(i64::MIN)),
    ]
}

#[test]
fn route_blobs_round_trip_and_share_attributes() {
    let routes = sample_routes();
    let mut enc = codec::RoutesEncoder::default();
    let mut dec = codec::RoutesDecoder::default();
    let bytes = enc.encode(&routes).to_vec();
    let back = dec.decode(&bytes).unwrap();
    assert_eq!(back, routes);
    assert!(Arc::ptr_eq(&back[0].1, &back[2].1));
    // Another prefix with the same attributes gets the same allocation.
    let again = dec.decode(enc.encode(&routes[..1])).unwrap();
    assert!(Arc::ptr_eq(&again[0].1, &back[0].1));
    assert_eq!(dec.decode(enc.encode(&[])).unwrap(), Vec::new());
}

#[test]
fn damaged_route_blobs_are_errors_not_panics() {
    let mut enc = codec::RoutesEncoder::default();
    let bytes = enc.encode(&sample_routes()).to_vec();
    for cut in 0..bytes.len() {
        let mut dec = codec::RoutesDecoder::default();
        assert!(dec.decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(codec::RoutesDecoder::default().decode(&longer).is_err());
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let _ = codec::RoutesDecoder::default().decode(&b);
        }
    }
    let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(codec::RoutesDecoder::default().decode(&huge).is_err());
}

#[test]
fn a_store_of_the_first_schema_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (prefixes, e, _) = engine_with_hijack();
    let state = e.export_state();
    {
        // As written before route blobs had a format: schema 1, postcard records.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        for (i, vp) in state.vps.iter().enumerate() {
            c.execute(
                "INSERT INTO vps (id, data) VALUES (?1, ?2)",
                params![i as i64, codec::encode_vp(vp)],
            )
            .unwrap();
        }
        for pr in &state.routes {
            c.execute(
                "INSERT INTO routes (prefix, data) VALUES (?1, ?2)",
                params![pr.prefix.to_string(), codec::encode_routes_v1(&pr.routes)],
            )
            .unwrap();
        }
    }
    let mut s = Store::open(&path).unwrap();
    let loaded = s.load(10).unwrap();
    assert!(loaded.rewrite, "old rows are rewritten at start");
    assert_eq!(loaded.state.routes, state.routes);
    assert_eq!(loaded.state.vps, state.vps);
    // Rewritten in the current format, it reads back the same.
    s.replace_state(&[], &state).unwrap();
    let formats: Vec<i64> = s
        .conn
        .prepare("SELECT DISTINCT format FROM routes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(formats, vec![ROUTES_FORMAT]);
    let reloaded = s.load(10).unwrap();
    assert_eq!(reloaded.state.routes, state.routes);
    assert_eq!(Engine::restore(&prefixes, reloaded.state).route_count(), 4);
}

#[test]
fn an_unknown_route_format_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = store_with_hijack(&dir.path().join("s.db"));
    s.conn
        .execute(
            "UPDATE routes SET format = 9 WHERE prefix = '10.9.0.0/16'",
            [],
        )
        .unwrap();
    let loaded = s.load(10).unwrap();
    assert_eq!(loaded.state.routes.len(), 1);
    assert!(loaded.rewrite);
}

#[test]
fn after_a_restore_only_what_changed_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (prefixes, _, mut s) = store_with_hijack(&path);
    let loaded = s.load(10).unwrap();
    assert!(!loaded.rewrite);
    let mut same = Engine::restore(&prefixes, loaded.state);
    assert!(!same.meta_changed());
    let changes = same.take_changes();
    assert!(changes.routes.is_empty() && changes.vps.is_empty());

    // 10.9.0.0/16 is no longer watched: its routes go, and so does its learned baseline.
    let fewer = &prefixes[..1];
    let mut r = Engine::restore(fewer, s.load(10).unwrap().state);
    assert!(r.meta_changed());
    let transitions: Vec<_> = r.drain_transitions().collect();
    let meta = r.meta_changed();
    s.save_restored(&transitions, r.take_changes(), meta)
        .unwrap();
    let again = s.load(10).unwrap();
    let kept: Vec<String> = again
        .state
        .routes
        .iter()
        .map(|p| p.prefix.to_string())
        .collect();
    assert_eq!(kept, vec!["10.0.0.0/16"]);
    assert!(
        again
            .state
            .baselines
            .iter()
            .all(|b| b.prefix.to_string() != "10.9.0.0/16")
    );
    assert_eq!(
        again.state.routes,
        r.export_state().routes,
        "the store holds what the engine holds"
    );
}

/// The hijack scenario's store with every VP gone: the origin hijack is resolved, at event
/// times of 1970.
fn store_with_resolved_hijack(path: &Path) -> Store {
    let (_, mut e, mut s) = store_with_hijack(path);
    let mut ts = Vec::new();
    for vp in 1..=3u8 {
        e.process(&FeedEvent::PeerDown {
            timestamp: Timestamp::from_parts(9, 0),
            vp: Arc::new(VantagePoint {
                feed: "f".into(),
                collector: "c".into(),
                peer_asn: 64500 + vp as u32,
                peer_ip: [192, 0, 2, vp].into(),
                exporter: None,
            }),
            within: None,
        });
        ts.extend(e.drain_transitions());
    }
    // The resolution is judged once the instant of the peer-downs is over.
    e.settle();
    ts.extend(e.drain_transitions());
    s.commit(&Commit {
        transitions: ts,
        changes: e.take_changes(),
    })
    .unwrap();
    s
}

fn resolved_rules(s: &Store) -> Vec<String> {
    let loaded = s.load(100).unwrap();
    loaded
        .resolved
        .iter()
        .map(|a| a.rule.as_str().to_string())
        .collect()
}

#[test]
fn retention_counts_from_when_an_alert_was_stored_not_from_its_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store_with_resolved_hijack(&dir.path().join("s.db"));
    assert!(resolved_rules(&s).contains(&"origin_hijack".to_string()));
    // Resolved at an event time of 1970, stored just now: 90 days of retention keep it.
    assert_eq!(s.prune(90).unwrap(), 0);
    assert!(resolved_rules(&s).contains(&"origin_hijack".to_string()));
    // Stored 91 days ago by the wall clock: gone.
    let long_ago = Timestamp::now().0 - 91 * 86_400 * 1_000_000;
    s.conn
        .execute("UPDATE alerts SET stored_at = ?1", [long_ago])
        .unwrap();
    assert!(s.prune(90).unwrap() >= 1);
    assert!(resolved_rules(&s).is_empty());
}

#[test]
fn alerts_stored_before_the_stored_at_column_count_as_stored_at_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(store_with_resolved_hijack(&path));
    {
        // Back to schema 2: no stored_at column (and none of the later tables).
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP INDEX alerts_stored; ALTER TABLE alerts DROP COLUMN stored_at; ALTER TABLE baselines DROP COLUMN accepted_origins; ALTER TABLE baselines DROP COLUMN accepted_upstreams; DROP TABLE acks; DROP TABLE silences; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let before = Timestamp::now().secs();
    let mut s = Store::open(&path).unwrap();
    let stored: Vec<i64> = s
        .conn
        .prepare("SELECT stored_at FROM alerts")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(|t| t / 1_000_000 >= before - 1),
        "{stored:?} vs {before}"
    );
    assert_eq!(s.prune(90).unwrap(), 0);
    assert!(resolved_rules(&s).contains(&"origin_hijack".to_string()));
}

#[test]
fn an_alert_of_year_11476_is_stored_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut transitions) = engine_with_hijack();
    let far = Timestamp::from_secs_f64(3e11);
    for t in &mut transitions {
        t.alert.first_seen = far;
        t.alert.fired_at = far;
        t.alert.last_seen = far;
    }
    let mut s = Store::open(&dir.path().join("s.db")).unwrap();
    s.commit(&Commit {
        transitions: transitions.clone(),
        changes: Default::default(),
    })
    .unwrap();
    let firing = s.load(10).unwrap().state.firing;
    assert!(!firing.is_empty());
    assert!(firing.iter().all(|a| a.fired_at == far), "{firing:?}");
    let pending = s.pending_events().unwrap();
    assert_eq!(pending.len(), transitions.len());
    assert!(pending.iter().all(|p| p.transition.alert.fired_at == far));
}

#[test]
fn an_empty_store_file_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::write(&path, b"").unwrap();
    let err = Store::open(&path).err().unwrap().to_string();
    for part in [
        "s.db",
        "empty (0 bytes)",
        "backup",
        ".damaged",
        "loses the alert history",
    ] {
        assert!(err.contains(part), "{part} not in: {err}");
    }
    // Left as it was, for whoever looks at it.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}
