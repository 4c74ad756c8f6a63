//! Tests of the RIS Live parser: real frames, hostile and malformed ones.

use super::*;
use crate::feeds::ris_live::stream::to_live_msgs;

fn feed() -> Arc<str> {
    "ris_live".into()
}

fn events(text: &str) -> (String, Vec<FeedEvent>, Vec<Invalid>) {
    let p = parse(text, &feed()).unwrap();
    match p.frame {
        RisFrame::Message { kind, events } => (kind, events, p.invalid),
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn control_frames() {
    let f = |t| parse(t, &feed()).unwrap().frame;
    assert_eq!(
        f(r#"{"type":"ris_subscribe_ok","data":{}}"#),
        RisFrame::SubscribeOk
    );
    assert_eq!(f(r#"{"type":"pong","data":null}"#), RisFrame::Pong);
    assert_eq!(
        f(r#"{"type":"ris_error","data":{"message":"bad filter"}}"#),
        RisFrame::Error("bad filter".into())
    );
    assert_eq!(
        f(r#"{"type":"ris_rrc_list","data":["rrc00"]}"#),
        RisFrame::Other("ris_rrc_list".into())
    );
}

#[test]
fn as_set_and_numeric_peer_asn() {
    let (kind, ev, inv) = events(
        r#"{"type":"ris_message","data":{"timestamp":1.5,"peer":"192.0.2.1","peer_asn":64500,"host":"rrc00.ripe.net","type":"UPDATE","path":[64500,1,[64496,64497]],"community":[[1,2],[1,2,3],[70000,1]],"announcements":[{"next_hop":"192.0.2.1","prefixes":["10.0.0.0/8","bad"]}]}}"#,
    );
    assert_eq!(kind, "update");
    assert_eq!(ev.len(), 1);
    let FeedEvent::Route(r) = &ev[0] else {
        panic!()
    };
    assert_eq!(&*r.vp.collector, "rrc00");
    assert_eq!(r.vp.peer_asn, 64500);
    let RouteChange::Announce(a) = &r.change else {
        panic!()
    };
    assert_eq!(a.path.origins(), &[64496, 64497]);
    assert_eq!(a.communities.len(), 2);
    let reasons: Vec<_> = inv.iter().map(|i| i.reason).collect();
    assert_eq!(reasons, ["invalid_community", "invalid_prefix"]);
}

#[test]
fn key_order_escapes_and_repeated_keys() {
    let update = r#"{"timestamp":1,"peer":"192.0.2.1","peer_asn":"64500","host":"rrc00.ripe.net","type":"UPDATE","path":[1,2],"announcements":[{"next_hop":"192.0.2.1","prefixes":["10.\u0030.0.0/8"]}]}"#;
    // `data` before `type`, as a JSON encoder that sorts keys writes it.
    let sorted = format!(r#"{{"data":{update},"type":"ris_message"}}"#);
    let natural = format!(r#"{{"type":"ris_message","data":{update}}}"#);
    let (_, a, _) = events(&sorted);
    let (_, b, _) = events(&natural);
    assert_eq!(a, b);
    let FeedEvent::Route(r) = &a[0] else { panic!() };
    assert_eq!(r.prefix.to_string(), "10.0.0.0/8");
    // A repeated key counts once, the last one (as a JSON object would keep it).
    let twice = natural.replace(r#""path":[1,2]"#, r#""path":[9],"path":[1,2]"#);
    assert_eq!(events(&twice).1, b);
}

#[test]
fn a_parser_shares_one_vantage_point_per_peer() {
    let mut p = Parser::new(feed());
    let frame = |peer: &str, host: &str| {
        format!(
            r#"{{"type":"ris_message","data":{{"timestamp":1,"peer":"{peer}","peer_asn":"1","host":"{host}","type":"UPDATE","withdrawals":["10.0.0.0/8"]}}}}"#
        )
    };
    let vp = |p: &mut Parser, text: &str| match p.parse(text).unwrap().frame {
        RisFrame::Message { events, .. } => match &events[0] {
            FeedEvent::Route(r) => r.vp.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let a = vp(&mut p, &frame("192.0.2.1", "rrc00.ripe.net"));
    let b = vp(&mut p, &frame("192.0.2.1", "rrc00.ripe.net"));
    let c = vp(&mut p, &frame("192.0.2.1", "rrc01.ripe.net"));
    assert!(Arc::ptr_eq(&a, &b));
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(&*c.collector, "rrc01");
}

#[test]
fn huge_hosts_are_refused_and_one_peers_collectors_cannot_grow_the_cache() {
    let mut p = Parser::new(feed());
    let frame = |host: &str| {
        format!(
            r#"{{"type":"ris_message","data":{{"timestamp":1,"peer":"192.0.2.1","peer_asn":"1","host":"{host}","type":"UPDATE","withdrawals":["10.0.0.0/8"]}}}}"#
        )
    };
    let bad = p.parse(&frame(&"h".repeat(300))).unwrap_err();
    assert_eq!(bad.reason, "oversized_field");
    // One peer, ever new collector names: its list starts over at its limit.
    for i in 0..10 * COLLECTORS_PER_PEER + 3 {
        p.parse(&frame(&format!("rrc{i}"))).unwrap();
    }
    let held: Vec<usize> = p.vps.values().map(Vec::len).collect();
    assert_eq!(held, [3]);
    assert_eq!(p.cached, 3);
}

#[test]
fn peer_down_is_a_peer_down_event() {
    let (kind, ev, _) = events(
        r#"{"type":"ris_message","data":{"timestamp":2,"peer":"192.0.2.1","peer_asn":"64500","host":"rrc13.ripe.net","type":"STATE","state":"down"}}"#,
    );
    assert_eq!(kind, "state");
    assert!(matches!(ev[0], FeedEvent::PeerDown { .. }));
}

#[test]
fn hostile_and_malformed_input() {
    for (text, reason) in [
        ("", "not_json"),
        (
            "{\"type\":\"ris_message\",\"data\":{\"timestamp\":1",
            "not_json",
        ),
        ("\u{0}\u{1}binary", "not_json"),
        ("[]", "schema"),
        (r#"{"data":{}}"#, "schema"),
        (r#"{"type":5}"#, "schema"),
        (r#"{"type":"ris_message","data":[]}"#, "schema"),
        (
            r#"{"type":"ris_message","data":{"peer":"1.1.1.1","peer_asn":"1","type":"UPDATE"}}"#,
            "schema",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":-1,"peer":"1.1.1.1","peer_asn":"1","type":"UPDATE"}}"#,
            "schema",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"x","peer_asn":"1","type":"UPDATE"}}"#,
            "invalid_address",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"AS-x","type":"UPDATE"}}"#,
            "invalid_asn",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":4294967296,"type":"UPDATE"}}"#,
            "invalid_asn",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"1"}}"#,
            "schema",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"1","type":"UPDATE","path":[1,-5],"announcements":[{"next_hop":"1.1.1.1","prefixes":["1.0.0.0/8"]}]}}"#,
            "invalid_asn",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"1","type":"UPDATE","path":[1,[]],"announcements":[{"next_hop":"1.1.1.1","prefixes":["1.0.0.0/8"]}]}}"#,
            "schema",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"1","type":"UPDATE","announcements":{}}}"#,
            "schema",
        ),
        (
            r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"1","type":"UPDATE","withdrawals":[1]}}"#,
            "schema",
        ),
    ] {
        let e = parse(text, &feed()).expect_err(text);
        assert_eq!(e.reason, reason, "{text}: {e}");
    }
    let deep = format!("{{\"type\":\"ris_message\",\"data\":{}", "[".repeat(50_000));
    assert_eq!(parse(&deep, &feed()).unwrap_err().reason, "not_json");
}

/// Every truncation and many byte flips of real frames: parsing never panics, and what
/// does not parse is reported with a reason.
#[test]
fn truncated_and_mutated_real_frames_never_panic() {
    let text = include_str!("../../../../tests/fixtures/ris-live-frames.jsonl");
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for line in text.lines() {
        for cut in 0..line.len() {
            if line.is_char_boundary(cut) {
                let r = parse(&line[..cut], &feed());
                assert!(r.is_err() || cut == line.len(), "truncated at {cut} parsed");
            }
        }
        for _ in 0..300 {
            let mut bytes = line.as_bytes().to_vec();
            for _ in 0..3 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = (next() % 256) as u8;
            }
            if let Ok(t) = std::str::from_utf8(&bytes)
                && let Err(e) = parse(t, &feed())
            {
                assert!(!e.detail.is_empty(), "{e}");
            }
        }
    }
}

#[test]
fn update_renders_as_live_messages() {
    let (_, ev, _) = events(
        r#"{"type":"ris_message","data":{"timestamp":1789019601.670,"peer":"2001:db8::1","peer_asn":"64500","host":"rrc01.ripe.net","type":"UPDATE","path":[64500,64501],"community":[[64500,1]],"announcements":[{"next_hop":"2001:db8::1,fe80::1","prefixes":["2001:db8:1::/48","2001:db8:2::/48"]}],"withdrawals":["2001:db8:3:0:0:0:0:0/48"]}}"#,
    );
    let lines: Vec<String> = to_live_msgs(&ev).iter().map(|m| m.to_string()).collect();
    assert_eq!(
        lines,
        [
            "1789019601.67|U|64500|2001:db8::1|2001:db8:1::/48,2001:db8:2::/48|64500 64501|64500:1|None|2001:db8::1",
            "1789019601.67|W|64500|2001:db8::1|2001:db8:3::/48|||None|None",
        ]
    );
}
