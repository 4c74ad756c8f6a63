use super::*;
use crate::notify::sample_alert;

fn alert() -> Alert {
    let cfg = crate::config::Config::parse(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64500]\n",
        std::path::Path::new("t.yml"),
    )
    .expect("an empty config parses");
    let mut a = sample_alert(&cfg);
    a.groups = vec!["noc".into()];
    a
}

fn matchers(json: serde_json::Value) -> Result<Matchers, InputError> {
    serde_json::from_value::<input::MatcherInput>(json)
        .expect("the shape parses")
        .validate()
}

#[test]
fn matchers_match_every_given_field() {
    let a = alert();
    let m = matchers(serde_json::json!({ "rule": a.rule.as_str() })).unwrap();
    assert!(m.matches(&a));
    let m = matchers(serde_json::json!({
        "rule": a.rule.as_str(),
        "origin": format!("AS{}", a.origin.unwrap()),
        "watched_prefix": a.watched_prefix.to_string(),
    }))
    .unwrap();
    assert!(m.matches(&a));
    // A covering prefix matches the affected prefix; a more-specific of it does not.
    let covering = IpNet::new(a.prefix.addr(), 8).unwrap().trunc();
    let m = matchers(serde_json::json!({ "prefix": covering.to_string() })).unwrap();
    assert!(m.matches(&a));
    let m = matchers(serde_json::json!({ "rule": a.rule.as_str(), "origin": 1 })).unwrap();
    assert!(!m.matches(&a));
    let m = matchers(serde_json::json!({ "group": "nobody-has-this-group" })).unwrap();
    assert!(!m.matches(&a));
}

#[test]
fn bad_matchers_are_refused_with_the_reason() {
    for (json, says) in [
        (serde_json::json!({}), "at least one matcher"),
        (serde_json::json!({ "rule": "hijack" }), "is not one of"),
        (
            serde_json::json!({ "prefix": "10.0.0.0/33" }),
            "is not a prefix",
        ),
        (serde_json::json!({ "origin": "AS0" }), "is not an ASN"),
        (
            serde_json::json!({ "origin": 4294967296u64 }),
            "is not an ASN",
        ),
        (serde_json::json!({ "group": "a\nb" }), "control characters"),
    ] {
        let e = matchers(json.clone()).expect_err("refused").to_string();
        assert!(e.contains(says), "{json}: {e}");
    }
    assert!(
        serde_json::from_value::<input::MatcherInput>(serde_json::json!({ "asn": 1 })).is_err()
    );
}

#[test]
fn silences_need_a_future_end_within_a_year() {
    let now = Timestamp::now();
    let req = |expires_at: Option<&str>, duration: Option<&str>| SilenceRequest {
        matchers: serde_json::from_value(serde_json::json!({ "rule": "origin_hijack" })).unwrap(),
        comment: "maintenance".into(),
        created_by: "ops".into(),
        expires_at: expires_at.map(str::to_string),
        duration: duration.map(str::to_string),
    };
    let s = req(None, Some("1h30m")).validate(now).unwrap();
    assert_eq!(s.expires_at, now.plus_secs(5400));
    assert_eq!(s.id.len(), 16);
    for (r, says) in [
        (req(Some("2001-01-01T00:00:00Z"), None), "in the past"),
        (req(Some("tomorrow"), None), "not an RFC 3339 time"),
        (req(None, None), "needs an end"),
        (req(Some("2999-01-01T00:00:00Z"), Some("1h")), "not both"),
        (req(None, Some("400d")), "at most 366 days"),
        (req(None, Some("1x")), "not a duration"),
        (req(None, Some("0m")), "not a duration"),
    ] {
        let e = r.validate(now).expect_err("refused").to_string();
        assert!(e.contains(says), "{e}");
    }
    let mut long = req(None, Some("1h"));
    long.comment = "x".repeat(input::MAX_COMMENT + 1);
    let e = long.validate(now).expect_err("too long").to_string();
    assert!(e.contains("longer than 1000 characters"), "{e}");
    let two_lines = AckRequest {
        by: "alice\nbob".into(),
        comment: String::new(),
    };
    assert!(two_lines.validate(now).is_err());
    let mut nobody = req(None, Some("1h"));
    nobody.created_by = " ".into();
    assert!(nobody.validate(now).is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90s"), Ok(90));
    assert_eq!(parse_duration("2h"), Ok(7200));
    assert_eq!(parse_duration("1d12h"), Ok(129_600));
    for bad in ["", "h", "12", "-1h", "99999999999999999999h", "1 h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn acks_and_silences_survive_a_reopen_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = crate::store::Store::open(&path).unwrap();
    let a = alert();
    store
        .commit(&crate::store::Commit {
            transitions: vec![crate::alerts::AlertTransition {
                event: crate::alerts::TransitionKind::Fired,
                alert: a.clone(),
            }],
            ..Default::default()
        })
        .unwrap();
    let now = Timestamp::now();
    let registry = prometheus::Registry::new();
    let t = Triage::open(&path, &registry).unwrap();
    let ack = AckRequest {
        by: "alice".into(),
        comment: "on it".into(),
    }
    .validate(now)
    .unwrap();
    t.acknowledge(&a.id, ack.clone()).unwrap();
    // An acknowledgement of an alert the store does not hold goes at the next open.
    t.acknowledge("0000000000000000", ack.clone()).unwrap();
    let s = SilenceRequest {
        matchers: serde_json::from_value(serde_json::json!({ "rule": a.rule.as_str() })).unwrap(),
        comment: "planned".into(),
        created_by: "bob".into(),
        expires_at: None,
        duration: Some("1h".into()),
    }
    .validate(now)
    .unwrap();
    t.add_silence(s.clone()).unwrap();
    assert_eq!(t.silenced_by(&a, now), vec![s.id.clone()]);
    assert!(!t.is_silenced(&a, s.expires_at));
    drop(t);

    let t = Triage::open(&path, &prometheus::Registry::new()).unwrap();
    assert_eq!(t.ack_of(&a.id), Some(ack));
    assert_eq!(t.ack_of("0000000000000000"), None);
    assert_eq!(t.silence(&s.id), Some(s.clone()));
    t.observe([&a], now);
    assert!(t.unacknowledge(&a.id).unwrap());
    assert!(!t.unacknowledge(&a.id).unwrap());
    assert!(t.remove_silence(&s.id).unwrap());
    assert!(!t.remove_silence(&s.id).unwrap());
    drop(t);
    let t = Triage::open(&path, &prometheus::Registry::new()).unwrap();
    assert_eq!(t.ack_of(&a.id), None);
    assert!(t.silences(now).is_empty());
}

#[test]
fn the_metrics_count_firing_alerts_by_triage_state() {
    let registry = prometheus::Registry::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(crate::store::Store::open(&path).unwrap());
    let t = Triage::open(&path, &registry).unwrap();
    let text = || {
        let mut buf = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut buf,
        )
        .unwrap();
        String::from_utf8(buf).unwrap()
    };
    let first = text();
    assert!(
        first.contains("bgpsentry_alerts_firing_triage{acknowledged=\"true\",silenced=\"true\"} 0"),
        "{first}"
    );
    assert!(first.contains("bgpsentry_silences_active 0"), "{first}");
    let a = alert();
    let mut b = alert();
    b.id = "b".into();
    let now = Timestamp::now();
    t.acknowledge(
        &a.id,
        Ack {
            by: "x".into(),
            comment: String::new(),
            at: now,
        },
    )
    .unwrap();
    t.observe([&a, &b], now);
    let after = text();
    assert!(
        after
            .contains("bgpsentry_alerts_firing_triage{acknowledged=\"true\",silenced=\"false\"} 1"),
        "{after}"
    );
    assert!(
        after.contains(
            "bgpsentry_alerts_firing_triage{acknowledged=\"false\",silenced=\"false\"} 1"
        ),
        "{after}"
    );
}
