//! Pure parser of RIPE RIS Live frames: text in, [`RisFrame`] out, with route events for
//! `ris_message` UPDATEs and peer-down events for `STATE` changes. No I/O here.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::bgproutes_parse::{
    BgpLiveMsg, Invalid, MsgType, check_path_len, check_prefix_count, parse_prefix,
};
use crate::event::{
    AsPath, Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp,
    VantagePoint,
};

/// What one frame of RIS Live is.
#[derive(Debug, Clone, PartialEq)]
pub enum RisFrame {
    /// A `ris_message`; `kind` is its lower-case BGP type (`update`, `keepalive`, `open`,
    /// `notification`, `state`, …) and `events` what it means for routes.
    Message {
        /// Lower-case message type, for the per-type metric.
        kind: String,
        /// Route and peer-down events.
        events: Vec<FeedEvent>,
    },
    /// `ris_subscribe_ok`: a subscription was acknowledged.
    SubscribeOk,
    /// `pong`: the answer to a `ping`.
    Pong,
    /// `ris_error`: the server's message.
    Error(String),
    /// Any other type (e.g. `ris_rrc_list`), named.
    Other(String),
}

/// Message types counted under their own name in the per-type metric. The type comes from the
/// server, so any other is counted as `other`: a hostile server cannot grow the metric without
/// bound by inventing types.
pub const METRIC_KINDS: [&str; 10] = [
    "update",
    "keepalive",
    "open",
    "notification",
    "state",
    "ris_peer_state",
    "ris_rrc_list",
    "ris_subscribe_ok",
    "pong",
    "ris_error",
];

/// The per-type metric label of a message or frame type: itself if it is one of
/// [`METRIC_KINDS`], else `other`.
pub fn metric_kind(kind: &str) -> &'static str {
    METRIC_KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("other")
}

/// A parsed frame and the parts of it that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The frame.
    pub frame: RisFrame,
    /// Invalid prefixes, ASNs, addresses inside an otherwise good frame.
    pub invalid: Vec<Invalid>,
}

/// Parses one RIS Live text frame into events of `feed`.
pub fn parse(text: &str, feed: &Arc<str>) -> Result<Parsed, Invalid> {
    let (ty, data) = envelope(text)?;
    let frame = match ty.as_str() {
        "ris_message" => return parse_message(data, feed),
        "ris_subscribe_ok" => RisFrame::SubscribeOk,
        "pong" => RisFrame::Pong,
        "ris_error" => {
            let msg = data
                .as_object()
                .and_then(|d| d.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| data.to_string());
            RisFrame::Error(msg)
        }
        other => RisFrame::Other(other.to_string()),
    };
    Ok(Parsed {
        frame,
        invalid: Vec::new(),
    })
}

fn envelope(text: &str) -> Result<(String, Value), Invalid> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Invalid::new("not_json", format!("frame is not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(Invalid::new("schema", "frame is not a JSON object"));
    };
    let ty = match obj.remove("type") {
        Some(Value::String(s)) => s,
        _ => return Err(Invalid::new("schema", "frame has no string `type`")),
    };
    Ok((ty, obj.remove("data").unwrap_or(Value::Null)))
}

/// The fields every `ris_message` carries.
struct Header {
    timestamp: Timestamp,
    vp: Arc<VantagePoint>,
    kind: String,
}

fn header(d: &Map<String, Value>, feed: &Arc<str>) -> Result<Header, Invalid> {
    let timestamp = match d.get("timestamp") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(Timestamp::from_secs_f64)
            .ok_or_else(|| Invalid::new("schema", "`timestamp` out of range"))?,
        _ => return Err(Invalid::new("schema", "no numeric `timestamp`")),
    };
    let peer = d
        .get("peer")
        .and_then(Value::as_str)
        .ok_or_else(|| Invalid::new("schema", "no string `peer`"))?;
    let peer_ip: IpAddr = peer
        .parse()
        .map_err(|_| Invalid::new("invalid_address", format!("peer `{peer}`")))?;
    // Real frames carry `peer_asn` as a string; a number is accepted too.
    let peer_asn = match d.get("peer_asn") {
        Some(Value::String(s)) => super::bgproutes_parse::parse_asn(s)?,
        Some(v @ Value::Number(_)) => asn_value(v)?,
        _ => return Err(Invalid::new("schema", "no `peer_asn`")),
    };
    let host = d.get("host").and_then(Value::as_str).unwrap_or("");
    let collector = host.strip_suffix(".ripe.net").unwrap_or(host);
    let kind = d
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Invalid::new("schema", "`ris_message` without a string `type`"))?
        .to_ascii_lowercase();
    Ok(Header {
        timestamp,
        vp: Arc::new(VantagePoint {
            feed: feed.clone(),
            collector: collector.into(),
            peer_asn,
            peer_ip,
            exporter: None,
        }),
        kind,
    })
}

fn parse_message(data: Value, feed: &Arc<str>) -> Result<Parsed, Invalid> {
    let Value::Object(d) = data else {
        return Err(Invalid::new(
            "schema",
            "`ris_message` data is not an object",
        ));
    };
    let h = header(&d, feed)?;
    let mut invalid = Vec::new();
    let events = match h.kind.as_str() {
        "update" => update_events(&d, &h, &mut invalid)?,
        "state" | "ris_peer_state" => match d.get("state").and_then(Value::as_str) {
            Some("down") => vec![FeedEvent::PeerDown {
                timestamp: h.timestamp,
                vp: h.vp.clone(),
            }],
            _ => Vec::new(),
        },
        // KEEPALIVE, OPEN, NOTIFICATION and anything else carry no routes.
        _ => Vec::new(),
    };
    Ok(Parsed {
        frame: RisFrame::Message {
            kind: h.kind,
            events,
        },
        invalid,
    })
}

fn asn_value(v: &Value) -> Result<u32, Invalid> {
    v.as_u64()
        .and_then(|a| u32::try_from(a).ok())
        .ok_or_else(|| Invalid::new("invalid_asn", format!("`{v}` is not an ASN")))
}

/// A RIS path: integers, with an AS_SET as a nested list.
fn path(v: Option<&Value>) -> Result<AsPath, Invalid> {
    let items = match v {
        None | Some(Value::Null) => return Ok(AsPath::default()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Invalid::new("schema", "`path` is not a list")),
    };
    let mut elems = Vec::with_capacity(items.len().min(super::bgproutes_parse::MAX_AS_PATH_LEN));
    let mut asns = 0usize;
    for item in items {
        check_path_len(asns)?;
        match item {
            Value::Array(set) => {
                asns += set.len();
                check_path_len(asns)?;
                let members = set.iter().map(asn_value).collect::<Result<Vec<_>, _>>()?;
                if members.is_empty() {
                    return Err(Invalid::new("schema", "empty AS_SET in `path`"));
                }
                elems.push(PathElem::Set(members.into()));
            }
            other => {
                elems.push(PathElem::Asn(asn_value(other)?));
                asns += 1;
            }
        }
    }
    check_path_len(asns)?;
    Ok(AsPath(elems))
}

fn communities(v: Option<&Value>, invalid: &mut Vec<Invalid>) -> Vec<Community> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let nums: Option<Vec<u64>> = item
            .as_array()
            .map(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .unwrap_or(None);
        let c = match nums.as_deref() {
            Some([a, b]) => match (u16::try_from(*a), u16::try_from(*b)) {
                (Ok(a), Ok(b)) => Some(Community::Standard(a, b)),
                _ => None,
            },
            Some([a, b, c]) => match (u32::try_from(*a), u32::try_from(*b), u32::try_from(*c)) {
                (Ok(a), Ok(b), Ok(c)) => Some(Community::Large(a, b, c)),
                _ => None,
            },
            _ => None,
        };
        match c {
            Some(c) => out.push(c),
            None => invalid.push(Invalid::new(
                "invalid_community",
                format!("`{item}` is not a community"),
            )),
        }
    }
    out
}

/// The first address of a next hop that may be a comma-joined global,link-local pair.
fn next_hop(v: Option<&Value>, invalid: &mut Vec<Invalid>) -> Option<IpAddr> {
    let s = v?.as_str()?;
    let first = s.split(',').next().unwrap_or("").trim();
    match first.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            invalid.push(Invalid::new("invalid_address", format!("next hop `{s}`")));
            None
        }
    }
}

fn string_list<'a>(v: &'a Value, what: &str) -> Result<Vec<&'a str>, Invalid> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| Invalid::new("schema", format!("`{what}` holds a non-string")))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(Invalid::new("schema", format!("`{what}` is not a list"))),
    }
}

fn update_events(
    d: &Map<String, Value>,
    h: &Header,
    invalid: &mut Vec<Invalid>,
) -> Result<Vec<FeedEvent>, Invalid> {
    let mut events = Vec::new();
    let announcements = match d.get("announcements") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(Invalid::new("schema", "`announcements` is not a list")),
    };
    let withdrawals = string_list(d.get("withdrawals").unwrap_or(&Value::Null), "withdrawals")?;
    let mut listed = withdrawals.len();
    for ann in announcements {
        if let Some(Value::Array(p)) = ann.get("prefixes") {
            listed = listed.saturating_add(p.len());
        }
    }
    check_prefix_count(listed)?;
    if !announcements.is_empty() {
        let path = path(d.get("path"))?;
        let comms = communities(d.get("community"), invalid);
        for ann in announcements {
            let Value::Object(ann) = ann else {
                return Err(Invalid::new("schema", "an announcement is not an object"));
            };
            let attrs = Arc::new(RouteAttrs {
                path: path.clone(),
                communities: comms.clone(),
                next_hop: next_hop(ann.get("next_hop"), invalid),
            });
            let prefixes = string_list(ann.get("prefixes").unwrap_or(&Value::Null), "prefixes")?;
            for p in prefixes {
                match parse_prefix(p) {
                    Ok(prefix) => events.push(FeedEvent::Route(RouteEvent {
                        timestamp: h.timestamp,
                        vp: h.vp.clone(),
                        prefix,
                        change: RouteChange::Announce(attrs.clone()),
                    })),
                    Err(e) => invalid.push(e),
                }
            }
        }
    }
    for p in withdrawals {
        match parse_prefix(p) {
            Ok(prefix) => events.push(FeedEvent::Route(RouteEvent {
                timestamp: h.timestamp,
                vp: h.vp.clone(),
                prefix,
                change: RouteChange::Withdraw,
            })),
            Err(e) => invalid.push(e),
        }
    }
    Ok(events)
}

/// The BGP ORIGIN attribute of a `ris_message` frame (`IGP`, `EGP`, `INCOMPLETE`), if any.
/// Route events do not carry it; `bgpsentry stream` prints it.
pub fn origin_of(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("data")?.get("origin")?.as_str().map(str::to_string)
}

/// Renders the route events of one RIS UPDATE as reference-client messages (one per next hop
/// group and one for the withdrawals), for `bgpsentry stream`.
pub fn to_live_msgs(events: &[FeedEvent]) -> Vec<BgpLiveMsg> {
    let mut out: Vec<(Option<Arc<RouteAttrs>>, BgpLiveMsg)> = Vec::new();
    for ev in events {
        let FeedEvent::Route(r) = ev else { continue };
        let attrs = match &r.change {
            RouteChange::Announce(a) => Some(a.clone()),
            RouteChange::Withdraw => None,
        };
        let same = |(a, m): &&mut (Option<Arc<RouteAttrs>>, BgpLiveMsg)| {
            m.vp_ip == r.vp.peer_ip.to_string()
                && match (a, &attrs) {
                    (Some(x), Some(y)) => Arc::ptr_eq(x, y),
                    (None, None) => true,
                    _ => false,
                }
        };
        if let Some((_, m)) = out.iter_mut().find(|e| same(e)) {
            m.prefixes.push(r.prefix.to_string());
            continue;
        }
        let msg = BgpLiveMsg {
            msg_type: if attrs.is_some() {
                MsgType::Announce
            } else {
                MsgType::Withdraw
            },
            sec: Some(r.timestamp.secs()),
            usec: Some(r.timestamp.subsec_micros()),
            vp_asn: r.vp.peer_asn,
            vp_ip: r.vp.peer_ip.to_string(),
            exporter: None,
            prefixes: vec![r.prefix.to_string()],
            aspath: attrs
                .as_ref()
                .map(|a| a.path.to_string())
                .unwrap_or_default(),
            communities: attrs
                .as_ref()
                .map(|a| {
                    a.communities
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            origin: None,
            nexthop: attrs
                .as_ref()
                .and_then(|a| a.next_hop.map(|n| n.to_string())),
        };
        out.push((attrs, msg));
    }
    out.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = include_str!("../../tests/fixtures/ris-live-frames.jsonl");
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
                    assert!(!e.reason.is_empty());
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
}
