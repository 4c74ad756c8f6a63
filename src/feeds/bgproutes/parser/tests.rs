//! Tests of the bgproutes.io parser: the reference format, hostile and malformed frames.

use super::*;
use crate::event::Timestamp;

fn msg(text: &str) -> BgpLiveMsg {
    match parse_frame(text) {
        Ok(Frame::Message(m)) => m,
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn announcement_prints_in_the_reference_format() {
    let m = msg(
        r#"{"record_type":"update","vp":"3333_193.0.0.56","sec":1700000000,"Usec":250000,"prefixes":"192.0.2.0/24,198.51.100.0/24","as-path":"3333 1299 64500","communities":"1299:30000 64500:1","nexthop":"193.0.0.56","origin":"IGP"}"#,
    );
    assert_eq!(
        m.to_string(),
        "1700000000.25|U|3333|193.0.0.56|192.0.2.0/24,198.51.100.0/24|3333 1299 64500|1299:30000 64500:1|IGP|193.0.0.56"
    );
    let (events, invalid) = m.to_events(&"bgproutes".into(), &"".into());
    assert!(invalid.is_empty());
    assert_eq!(events.len(), 2);
    let FeedEvent::Route(ev) = &events[0] else {
        panic!()
    };
    assert_eq!(ev.timestamp, Timestamp::from_parts(1700000000, 250000));
    let RouteChange::Announce(attrs) = &ev.change else {
        panic!()
    };
    assert_eq!(attrs.path.origins(), &[64500]);
    assert_eq!(attrs.communities.len(), 2);
}

#[test]
fn absent_fields_print_as_the_reference_client_does() {
    let m = msg(
        r#"{"record_type":"update","vp":"1_10.0.0.1","sec":5,"Usec":0,"prefixes":"10.1.0.0/16"}"#,
    );
    assert_eq!(m.to_string(), "5.0|U|1|10.0.0.1|10.1.0.0/16|||None|None");
    let m = msg(r#"{"record_type":"update","vp":"1_10.0.0.1","sec":5,"prefixes":"10.1.0.0/16"}"#);
    assert_eq!(m.to_string(), "5|U|1|10.0.0.1|10.1.0.0/16|||None|None");
    let m = msg(r#"{"record_type":"update","vp":"1_10.0.0.1","prefixes":"10.1.0.0/16"}"#);
    assert!(m.to_string().starts_with("None|U|"));
}

#[test]
fn bmp_update_keeps_the_exporter() {
    let m = msg(
        r#"{"record_type":"bmp_update","vp":"65000_10.0.0.1","bmp_peer":"64501_2001:db8::1","sec":1,"Usec":500000,"prefixes":"2001:db8:1::/48","as-path":"64501 {64510,64511}","nexthop":"2001:db8::1","origin":"IGP"}"#,
    );
    assert_eq!(m.vp_asn, 64501);
    assert_eq!(m.exporter, Some((65000, "10.0.0.1".to_string())));
    assert_eq!(
        m.to_string(),
        "1.5|U|64501|2001:db8::1|2001:db8:1::/48|64501 {64510,64511}||IGP|2001:db8::1|65000|10.0.0.1"
    );
    let (events, _) = m.to_events(&"b".into(), &"".into());
    let FeedEvent::Route(ev) = &events[0] else {
        panic!()
    };
    assert_eq!(ev.vp.exporter, Some((65000, "10.0.0.1".parse().unwrap())));
    let RouteChange::Announce(a) = &ev.change else {
        panic!()
    };
    assert_eq!(a.path.origins(), &[64510, 64511]);
}

#[test]
fn withdrawal_reads_its_prefixes_from_the_documented_places() {
    let m = msg(
        r#"{"record_type":"update","vp":"1_10.0.0.1","sec":5,"withdrawals":"10.1.0.0/16,10.2.0.0/16"}"#,
    );
    assert_eq!(m.msg_type, MsgType::Withdraw);
    assert_eq!(m.prefixes, ["10.1.0.0/16", "10.2.0.0/16"]);
    let m = msg(r#"{"record_type":"update","vp":"1_10.0.0.1","withdrawn":["10.1.0.0/16"]}"#);
    assert_eq!(m.prefixes, ["10.1.0.0/16"]);
    let e = parse_frame(r#"{"record_type":"update","vp":"1_10.0.0.1","sec":5}"#).unwrap_err();
    assert_eq!(e.reason, "unknown_withdrawal");
}

#[test]
fn server_error_and_other_records() {
    assert_eq!(
        parse_frame(r#"{"error":"Invalid API key"}"#).unwrap(),
        Frame::Error("Invalid API key".into())
    );
    assert_eq!(
        parse_frame(r#"{"record_type":"stats"}"#).unwrap(),
        Frame::Skipped("stats".into())
    );
}

#[test]
fn hostile_and_malformed_input() {
    for (text, reason) in [
        ("", "not_json"),
        ("{", "not_json"),
        (r#"{"record_type":"update","vp":"1_10.0"#, "not_json"),
        ("[1,2]", "schema"),
        ("\"x\"", "schema"),
        (r#"{"record_type":1}"#, "schema"),
        (r#"{"vp":"1_1.1.1.1"}"#, "schema"),
        (
            r#"{"record_type":"update","vp":"nounderscore","prefixes":""}"#,
            "schema",
        ),
        (
            r#"{"record_type":"update","vp":"99999999999_1.1.1.1","prefixes":""}"#,
            "invalid_asn",
        ),
        (
            r#"{"record_type":"update","vp":"-1_1.1.1.1","prefixes":""}"#,
            "invalid_asn",
        ),
        (
            r#"{"record_type":"update","vp":"1_1.1.1.1","prefixes":7}"#,
            "schema",
        ),
        (
            r#"{"record_type":"update","vp":"1_1.1.1.1","prefixes":"","sec":"x"}"#,
            "schema",
        ),
        (
            r#"{"record_type":"update","vp":"1_1.1.1.1","prefixes":"","sec":1.5}"#,
            "schema",
        ),
        (
            r#"{"record_type":"bmp_update","vp":"1_1.1.1.1","prefixes":""}"#,
            "schema",
        ),
        (
            r#"{"record_type":"update","vp":"1_1.1.1.1","prefixes":"","as-path":5}"#,
            "schema",
        ),
    ] {
        let e = parse_frame(text).expect_err(text);
        assert_eq!(e.reason, reason, "{text}: {e}");
    }
    // Deep nesting is refused by the JSON parser's recursion limit, not by a stack overflow.
    let deep = "[".repeat(100_000);
    assert_eq!(parse_frame(&deep).unwrap_err().reason, "not_json");
}

#[test]
fn invalid_parts_are_reported_and_the_rest_is_kept() {
    let m = msg(
        r#"{"record_type":"update","vp":"1_10.0.0.1","sec":5,"prefixes":"10.1.0.0/16,not-a-prefix,10.2.0.0/33","as-path":"1 2","communities":"1:2 99999:1 1:2:3","nexthop":"bogus"}"#,
    );
    let (events, invalid) = m.to_events(&"b".into(), &"".into());
    assert_eq!(events.len(), 1);
    let reasons: Vec<&str> = invalid.iter().map(|i| i.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "invalid_community",
            "invalid_address",
            "invalid_prefix",
            "invalid_prefix"
        ]
    );
    let m = msg(r#"{"record_type":"update","vp":"1_10.0.0.x","prefixes":"10.1.0.0/16"}"#);
    let (events, invalid) = m.to_events(&"b".into(), &"".into());
    assert!(events.is_empty());
    assert_eq!(invalid[0].reason, "invalid_address");
    let m = msg(
        r#"{"record_type":"update","vp":"1_10.0.0.1","prefixes":"10.1.0.0/16","as-path":"1 {2,"}"#,
    );
    let (events, invalid) = m.to_events(&"b".into(), &"".into());
    assert!(events.is_empty());
    assert_eq!(invalid[0].reason, "schema");
    let m = msg(
        r#"{"record_type":"update","vp":"1_10.0.0.1","prefixes":"10.1.0.0/16","as-path":"1 4294967296"}"#,
    );
    assert_eq!(
        m.to_events(&"b".into(), &"".into()).1[0].reason,
        "invalid_asn"
    );
}

/// Every truncation and many byte flips of good frames: never a panic; whatever parses
/// still converts to events without one.
#[test]
fn truncated_and_mutated_frames_never_panic() {
    let frames = [
        r#"{"record_type":"update","vp":"3333_193.0.0.56","sec":1700000000,"Usec":250000,"prefixes":"192.0.2.0/24,2001:db8::/32","as-path":"3333 {1,2} [3 4] 64500","communities":"1299:30000 1:2:3","nexthop":"193.0.0.56","origin":"IGP"}"#,
        r#"{"record_type":"bmp_update","vp":"65000_10.0.0.1","bmp_peer":"64501_2001:db8::1","sec":1,"withdrawals":["2001:db8:1::/48"]}"#,
    ];
    let mut seed: u64 = 0x2545f4914f6cdd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let feed: Arc<str> = "b".into();
    let collector: Arc<str> = "".into();
    for f in frames {
        for cut in 0..f.len() {
            assert!(parse_frame(&f[..cut]).is_err());
        }
        for _ in 0..500 {
            let mut bytes = f.as_bytes().to_vec();
            for _ in 0..3 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = b" {}[]_:,/0123456789\"\\x"[(next() % 20) as usize];
            }
            if let Ok(t) = std::str::from_utf8(&bytes)
                && let Ok(Frame::Message(m)) = parse_frame(t)
            {
                let _ = m.to_events(&feed, &collector);
                let _ = m.to_string();
            }
        }
    }
}

#[test]
fn as_path_spellings() {
    assert_eq!(parse_as_path("").unwrap(), AsPath::default());
    assert_eq!(
        parse_as_path("  1   2 ").unwrap(),
        AsPath::from_asns([1, 2])
    );
    let p = parse_as_path("1 [3, 4]").unwrap();
    assert_eq!(p.origins(), &[3, 4]);
    let p = parse_as_path("1 {3,4} 5").unwrap();
    assert_eq!(p.len(), 3);
    assert!(parse_as_path("1 {}").is_err());
    assert!(parse_as_path("1 x").is_err());
}

#[test]
fn prefixes_are_normalised() {
    assert_eq!(
        parse_prefix("2a12:ca42:0:0:0:0:0:0/32")
            .unwrap()
            .to_string(),
        "2a12:ca42::/32"
    );
    assert_eq!(
        parse_prefix("10.1.2.3/16").unwrap().to_string(),
        "10.1.0.0/16"
    );
    assert!(parse_prefix("10.0.0.0").is_err());
}
