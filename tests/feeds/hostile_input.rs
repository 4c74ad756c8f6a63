//! Property tests for hostile input: arbitrary bytes and mangled frames never panic a parser or
//! the config loader, well-formed updates come out normalised with their paths intact, and the
//! per-message limits hold.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bgpsentry::event::{AsPath, FeedEvent, PathElem, RouteChange};
use bgpsentry::feeds::bgproutes::parser::{self as bgproutes_parse, Frame, parse_frame};
use bgpsentry::feeds::error::{MAX_AS_PATH_LEN, MAX_PREFIXES_PER_MESSAGE};
use bgpsentry::feeds::ris_live::parser::{
    self as ris_live_parse, METRIC_KINDS, RisFrame, metric_kind,
};
use bgpsentry::fuzzing;
use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// An address and a prefix length valid for it; host bits are usually set.
fn prefix() -> impl Strategy<Value = (IpAddr, u8)> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| (IpAddr::V4(Ipv4Addr::from(a)), l)),
        (any::<u128>(), 0u8..=128).prop_map(|(a, l)| (IpAddr::V6(Ipv6Addr::from(a)), l)),
    ]
}

/// The prefix as a feed may write it: IPv6 compressed or in full, as RIS sometimes sends.
fn spell((addr, len): (IpAddr, u8), full: bool) -> String {
    match addr {
        IpAddr::V6(a) if full => {
            let groups: Vec<String> = a.segments().iter().map(|g| format!("{g:04x}")).collect();
            format!("{}/{len}", groups.join(":"))
        }
        _ => format!("{addr}/{len}"),
    }
}

fn normalised((addr, len): (IpAddr, u8)) -> IpNet {
    IpNet::new(addr, len).unwrap().trunc()
}

/// An AS path: a sequence, sometimes ending in an AS_SET.
fn as_path() -> impl Strategy<Value = Vec<PathElem>> {
    (
        prop::collection::vec(any::<u32>(), 0..30),
        prop::option::of(prop::collection::vec(any::<u32>(), 1..5)),
    )
        .prop_map(|(seq, set)| {
            let mut p: Vec<PathElem> = seq.into_iter().map(PathElem::Asn).collect();
            if let Some(s) = set {
                p.push(PathElem::Set(s.into()));
            }
            p
        })
}

fn ris_path_json(path: &[PathElem]) -> Value {
    Value::Array(
        path.iter()
            .map(|e| match e {
                PathElem::Asn(a) => json!(a),
                PathElem::Set(s) => json!(s.to_vec()),
            })
            .collect(),
    )
}

fn bgproutes_path_text(path: &[PathElem]) -> String {
    path.iter()
        .map(|e| match e {
            PathElem::Asn(a) => a.to_string(),
            PathElem::Set(s) => {
                let m: Vec<String> = s.iter().map(u32::to_string).collect();
                format!("{{{}}}", m.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[0-9a-f:./,{} \\[\\]_-]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_-]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn ris_update(path: &[PathElem], announced: &[String], withdrawn: &[String]) -> Value {
    json!({"type": "ris_message", "data": {
        "timestamp": 1700000000.25, "peer": "192.0.2.1", "peer_asn": "64500",
        "host": "rrc00.ripe.net", "type": "UPDATE", "path": ris_path_json(path),
        "community": [[64500, 1]], "origin": "IGP",
        "announcements": [{"next_hop": "192.0.2.1", "prefixes": announced}],
        "withdrawals": withdrawn,
    }})
}

fn bgproutes_update(path: &str, prefixes: &str) -> Value {
    json!({"record_type": "update", "vp": "3333_193.0.0.56", "sec": 1700000000, "Usec": 5,
           "prefixes": prefixes, "as-path": path, "communities": "3333:1", "nexthop": "193.0.0.56"})
}

/// Replaces the value at one place of `v` (chosen by `pick`) with `new`.
fn mangle(v: &mut Value, pick: usize, new: Value) {
    fn places(v: &Value, out: &mut Vec<Vec<String>>, at: Vec<String>) {
        if let Value::Object(m) = v {
            for (k, x) in m {
                let mut p = at.clone();
                p.push(k.clone());
                out.push(p.clone());
                places(x, out, p);
            }
        }
    }
    let mut all = Vec::new();
    places(v, &mut all, Vec::new());
    let path = &all[pick % all.len()];
    let mut cur = v;
    for k in path {
        cur = cur.get_mut(k.as_str()).unwrap();
    }
    *cur = new;
}

fn events_of(text: &str) -> Vec<FeedEvent> {
    match ris_live_parse::parse(text, &Arc::from("ris")) {
        Ok(p) => match p.frame {
            RisFrame::Message { events, .. } => events,
            other => panic!("not a message: {other:?}"),
        },
        Err(e) => panic!("rejected: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_any_parser(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzzing::bgproutes(&data);
        fuzzing::ris_live(&data);
        fuzzing::config(&data);
        fuzzing::mrt(&data);
    }

    #[test]
    fn arbitrary_text_never_panics_the_text_parsers(text in ".{0,600}") {
        fuzzing::bgproutes(text.as_bytes());
        fuzzing::ris_live(text.as_bytes());
        fuzzing::config(text.as_bytes());
    }

    #[test]
    fn arbitrary_json_never_panics_the_feed_parsers(v in json_value()) {
        let text = v.to_string();
        fuzzing::bgproutes(text.as_bytes());
        fuzzing::ris_live(text.as_bytes());
    }

    #[test]
    fn a_mangled_ris_update_never_panics(pick in any::<usize>(), new in json_value()) {
        let mut v = ris_update(&[PathElem::Asn(64500)], &["192.0.2.0/24".into()], &["198.51.100.0/24".into()]);
        mangle(&mut v, pick, new);
        fuzzing::ris_live(v.to_string().as_bytes());
    }

    #[test]
    fn a_mangled_bgproutes_record_never_panics(pick in any::<usize>(), new in json_value(), bmp in any::<bool>()) {
        let mut v = bgproutes_update("3333 64500", "192.0.2.0/24");
        if bmp {
            v["record_type"] = json!("bmp_update");
            v["bmp_peer"] = json!("64500_2001:db8::1");
        }
        mangle(&mut v, pick, new);
        fuzzing::bgproutes(v.to_string().as_bytes());
    }

    #[test]
    fn a_config_with_a_mangled_line_never_panics(line in any::<usize>(), new in ".{0,80}") {
        let example = include_str!("../../deploy/bgpsentry.example.yml");
        let mut lines: Vec<&str> = example.lines().collect();
        let at = line % lines.len();
        lines[at] = &new;
        fuzzing::config(lines.join("\n").as_bytes());
    }

    #[test]
    fn mrt_records_with_random_bodies_never_panic(
        records in prop::collection::vec(
            (prop_oneof![Just(12u16), Just(13), Just(16), Just(17), any::<u16>()],
             0u16..12, prop::collection::vec(any::<u8>(), 0..300)),
            1..6),
        cut in any::<usize>(),
    ) {
        let mut data = Vec::new();
        for (ty, sub, body) in records {
            data.extend_from_slice(&1_700_000_000u32.to_be_bytes());
            data.extend_from_slice(&ty.to_be_bytes());
            data.extend_from_slice(&sub.to_be_bytes());
            data.extend_from_slice(&(body.len() as u32).to_be_bytes());
            data.extend_from_slice(&body);
        }
        // Truncated somewhere, as a file cut off mid-record is.
        let cut = cut % (data.len() + 1);
        fuzzing::mrt(&data);
        fuzzing::mrt(&data[..cut]);
    }

    #[test]
    fn metric_kinds_stay_a_fixed_set(kind in ".{0,30}") {
        let label = metric_kind(&kind);
        prop_assert!(label == "other" || METRIC_KINDS.contains(&label));
    }
}

// ---------------------------------------------------------------------------------------------
// Well-formed updates: prefixes normalised, paths preserved
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn ris_updates_come_out_normalised_with_their_paths(
        path in as_path(),
        announced in prop::collection::vec((prefix(), any::<bool>()), 1..8),
        withdrawn in prop::collection::vec((prefix(), any::<bool>()), 0..8),
    ) {
        let a: Vec<String> = announced.iter().map(|(p, full)| spell(*p, *full)).collect();
        let w: Vec<String> = withdrawn.iter().map(|(p, full)| spell(*p, *full)).collect();
        let events = events_of(&ris_update(&path, &a, &w).to_string());
        prop_assert_eq!(events.len(), a.len() + w.len());
        let expected: Vec<IpNet> = announced.iter().chain(&withdrawn).map(|(p, _)| normalised(*p)).collect();
        for (i, (ev, want)) in events.iter().zip(&expected).enumerate() {
            let FeedEvent::Route(r) = ev else { panic!("not a route event") };
            prop_assert_eq!(r.prefix, *want);
            match &r.change {
                RouteChange::Announce(attrs) => {
                    prop_assert!(i < a.len());
                    prop_assert_eq!(&attrs.path, &AsPath::from(path.clone()));
                }
                RouteChange::Withdraw => prop_assert!(i >= a.len()),
            }
        }
    }

    #[test]
    fn bgproutes_updates_come_out_normalised_with_their_paths(
        path in as_path(),
        announced in prop::collection::vec((prefix(), any::<bool>()), 1..8),
    ) {
        let a: Vec<String> = announced.iter().map(|(p, full)| spell(*p, *full)).collect();
        let text = bgproutes_update(&bgproutes_path_text(&path), &a.join(",")).to_string();
        let Ok(Frame::Message(m)) = parse_frame(&text) else { panic!("rejected: {text}") };
        let (events, invalid) = m.to_events(&Arc::from("bgproutes"), &Arc::from(""));
        prop_assert!(invalid.is_empty(), "{:?}", invalid);
        prop_assert_eq!(events.len(), a.len());
        for (ev, (p, _)) in events.iter().zip(&announced) {
            let FeedEvent::Route(r) = ev else { panic!("not a route event") };
            prop_assert_eq!(r.prefix, normalised(*p));
            let RouteChange::Announce(attrs) = &r.change else { panic!("not an announcement") };
            prop_assert_eq!(&attrs.path, &AsPath::from(path.clone()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

fn asns(n: usize) -> Vec<PathElem> {
    (0..n)
        .map(|i| PathElem::Asn(64500 + (i % 10) as u32))
        .collect()
}

fn many_prefixes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255))
        .collect()
}

#[test]
fn ris_path_at_the_limit_is_used_and_one_more_asn_drops_the_message() {
    let p = ["192.0.2.0/24".to_string()];
    let events = events_of(&ris_update(&asns(MAX_AS_PATH_LEN), &p, &[]).to_string());
    assert_eq!(events.len(), 1);
    let over = ris_update(&asns(MAX_AS_PATH_LEN + 1), &p, &[]).to_string();
    let err = ris_live_parse::parse(&over, &Arc::from("ris")).unwrap_err();
    assert_eq!(err.reason, "path_too_long");
    // AS_SET members count too.
    let mut path = asns(MAX_AS_PATH_LEN - 2);
    path.push(PathElem::Set(vec![1, 2, 3].into()));
    let err = ris_live_parse::parse(&ris_update(&path, &p, &[]).to_string(), &Arc::from("ris"))
        .unwrap_err();
    assert_eq!(err.reason, "path_too_long");
}

#[test]
fn ris_prefixes_at_the_limit_are_used_and_one_more_drops_the_message() {
    let all = many_prefixes(MAX_PREFIXES_PER_MESSAGE + 1);
    let (a, w) = all.split_at(MAX_PREFIXES_PER_MESSAGE / 2);
    // Announced and withdrawn prefixes count together.
    let at = ris_update(&asns(2), a, &w[..w.len() - 1]).to_string();
    assert_eq!(events_of(&at).len(), MAX_PREFIXES_PER_MESSAGE);
    let over = ris_update(&asns(2), a, w).to_string();
    let err = ris_live_parse::parse(&over, &Arc::from("ris")).unwrap_err();
    assert_eq!(err.reason, "too_many_prefixes");
}

#[test]
fn bgproutes_limits_hold_for_prefixes_and_paths() {
    let all = many_prefixes(MAX_PREFIXES_PER_MESSAGE + 1);
    let at = bgproutes_update("3333", &all[..MAX_PREFIXES_PER_MESSAGE].join(",")).to_string();
    let Ok(Frame::Message(m)) = parse_frame(&at) else {
        panic!("rejected at the limit")
    };
    assert_eq!(m.prefixes.len(), MAX_PREFIXES_PER_MESSAGE);
    let over = bgproutes_update("3333", &all.join(",")).to_string();
    assert_eq!(parse_frame(&over).unwrap_err().reason, "too_many_prefixes");
    // A withdrawal list is held to the same limit.
    let w = json!({"record_type": "update", "vp": "3333_193.0.0.56", "withdrawals": all});
    assert_eq!(
        parse_frame(&w.to_string()).unwrap_err().reason,
        "too_many_prefixes"
    );

    let path = |n: usize| bgproutes_path_text(&asns(n));
    assert!(bgproutes_parse::parse_as_path(&path(MAX_AS_PATH_LEN)).is_ok());
    let over = bgproutes_update(&path(MAX_AS_PATH_LEN + 1), "192.0.2.0/24").to_string();
    let Ok(Frame::Message(m)) = parse_frame(&over) else {
        panic!("rejected before the path was read")
    };
    let (events, invalid) = m.to_events(&Arc::from("bgproutes"), &Arc::from(""));
    assert!(events.is_empty());
    assert_eq!(invalid[0].reason, "path_too_long");
    let set = format!(
        "{} {{1,2,3}}",
        bgproutes_path_text(&asns(MAX_AS_PATH_LEN - 2))
    );
    assert_eq!(
        bgproutes_parse::parse_as_path(&set).unwrap_err().reason,
        "path_too_long"
    );
}

#[test]
fn invented_ris_message_types_share_one_metric_label() {
    for kind in ["update", "keepalive", "state", "ris_rrc_list"] {
        assert_eq!(metric_kind(kind), kind);
    }
    for kind in ["x1", "UPDATE2", "", "a\"b"] {
        assert_eq!(metric_kind(kind), "other");
    }
    let frame = json!({"type": "ris_message", "data": {"timestamp": 1, "peer": "192.0.2.1",
        "peer_asn": "1", "type": "MADE_UP_42"}});
    let Ok(p) = ris_live_parse::parse(&frame.to_string(), &Arc::from("ris")) else {
        panic!("rejected")
    };
    let RisFrame::Message { kind, .. } = p.frame else {
        panic!("not a message")
    };
    assert_eq!(metric_kind(&kind), "other");
}
