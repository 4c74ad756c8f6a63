//! RIPEstat `bgp-state`: the routes every RIS peer has to the watched prefixes (and their
//! more-specifics) now, asked for in batches of prefixes.
//!
//! `GET {base}/data/bgp-state/data.json?resource=P1,P2,...` answers
//! `{"data": {"bgp_state": [{"target_prefix", "path", "community", "source_id"}], "query_time"}}`.
//! `source_id` names the RIS collector and peer (`00-192.0.2.1`); with the first ASN of the
//! path (the peer's own) it is the same vantage point as RIS Live's `host` + `peer`.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

use super::fetch::{Failed, Failure};
use crate::event::{
    AsPath, Community, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use crate::feeds::admit::{MAX_VANTAGE_POINTS, check_time};
use crate::feeds::error::{Invalid, InvalidReason, MAX_AS_PATH_LEN};

/// The public RIPEstat.
pub const DEFAULT_URL: &str = "https://stat.ripe.net";

/// The request URLs for `prefixes`, `batch` prefixes per request.
pub fn urls(base: &str, prefixes: &[IpNet], batch: usize) -> Vec<String> {
    prefixes
        .chunks(batch.max(1))
        .map(|chunk| {
            let list: Vec<String> = chunk.iter().map(|p| p.to_string()).collect();
            format!(
                "{}/data/bgp-state/data.json?resource={}&sourceapp=bgpsentry",
                base.trim_end_matches('/'),
                list.join(",")
            )
        })
        .collect()
}

#[derive(Deserialize)]
struct Answer {
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    bgp_state: Option<Vec<Entry>>,
    query_time: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Entry {
    target_prefix: Option<serde_json::Value>,
    path: Option<Vec<serde_json::Value>>,
    community: Option<Vec<serde_json::Value>>,
    source_id: Option<serde_json::Value>,
}

/// What one answer held.
#[derive(Debug, Default)]
pub struct State {
    /// When the state was current (`query_time`), if the answer said.
    pub time: Option<Timestamp>,
    /// One announcement per (vantage point, prefix), at `time` (or `now`).
    pub routes: Vec<RouteEvent>,
    /// Entries that could not be used, with why.
    pub invalid: Vec<Invalid>,
}

/// Reads a time as RIPEstat writes it (`2016-08-11T16:00:00`, with or without a zone), or
/// UNIX seconds.
pub fn parse_time(v: &serde_json::Value) -> Option<Timestamp> {
    match v {
        serde_json::Value::Number(n) => n.as_f64().map(Timestamp::from_secs_f64),
        serde_json::Value::String(s) => Timestamp::parse(s).or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| Timestamp(t.and_utc().timestamp_micros()))
        }),
        _ => None,
    }
}

/// Reads `source_id`: `CC-ADDRESS` (collector number, peer address), tolerating `rrcCC` and an
/// ASN between them. Returns (collector, address, ASN if given).
pub fn parse_source_id(s: &str) -> Option<(String, IpAddr, Option<u32>)> {
    let parts: Vec<&str> = s.trim().split('-').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let ip: IpAddr = parts.last()?.parse().ok()?;
    let first = parts[0].trim();
    let digits = first.strip_prefix("rrc").unwrap_or(first);
    if digits.is_empty() || digits.len() > 3 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let collector = format!("rrc{digits:0>2}");
    let asn = if parts.len() == 3 {
        Some(parts[1].trim().parse::<u32>().ok()?)
    } else {
        None
    };
    Some((collector, ip, asn))
}

fn asn_of(v: &serde_json::Value) -> Option<u32> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|a| u32::try_from(a).ok()),
        serde_json::Value::String(s) => crate::feeds::fields::parse_asn(s).ok(),
        _ => None,
    }
}

/// A path as a list of ASNs, an AS_SET as a nested list.
fn parse_path(items: &[serde_json::Value]) -> Result<AsPath, Invalid> {
    let bad = |what: String| Invalid::new(InvalidReason::InvalidAsn, what);
    if items.len() > MAX_AS_PATH_LEN {
        return Err(Invalid::new(
            InvalidReason::PathTooLong,
            format!("path of {} ASNs", items.len()),
        ));
    }
    let mut elems = Vec::with_capacity(items.len());
    for it in items {
        match it {
            serde_json::Value::Array(set) => {
                if set.is_empty() || set.len() > MAX_AS_PATH_LEN {
                    return Err(bad(format!("AS_SET of {} members", set.len())));
                }
                let members = set
                    .iter()
                    .map(|m| asn_of(m).ok_or_else(|| bad(format!("AS_SET member {m}"))))
                    .collect::<Result<Vec<u32>, Invalid>>()?;
                elems.push(PathElem::Set(members.into()));
            }
            other => elems.push(PathElem::Asn(
                asn_of(other).ok_or_else(|| bad(format!("path element {other}")))?,
            )),
        }
    }
    Ok(AsPath::from(elems))
}

fn parse_community(v: &serde_json::Value) -> Option<Community> {
    match v {
        serde_json::Value::String(s) => {
            let mut bad = Vec::new();
            crate::feeds::bgproutes::parser::parse_communities(s, &mut bad)
                .first()
                .copied()
                .filter(|_| bad.is_empty())
        }
        serde_json::Value::Array(a) => {
            let n: Vec<u64> = a.iter().filter_map(|x| x.as_u64()).collect();
            match n.as_slice() {
                [x, y] if a.len() == 2 => Some(Community::Standard(
                    u16::try_from(*x).ok()?,
                    u16::try_from(*y).ok()?,
                )),
                [x, y, z] if a.len() == 3 => Some(Community::Large(
                    u32::try_from(*x).ok()?,
                    u32::try_from(*y).ok()?,
                    u32::try_from(*z).ok()?,
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads one answer. `now` is the request time: the state's time when the answer does not say,
/// and the clock event times are checked against. A whole answer that is not the expected JSON
/// fails as malformed; single entries that cannot be used are listed in `invalid`.
pub fn parse(body: &[u8], feed: &Arc<str>, now: Timestamp) -> Result<State, Failed> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        Failed::new(
            Failure::Malformed,
            format!("RIPEstat bgp-state answer is not the expected JSON: {e}"),
        )
    })?;
    let data = answer.data.ok_or_else(|| {
        Failed::new(
            Failure::Malformed,
            "RIPEstat bgp-state answer has no `data`",
        )
    })?;
    let entries = data.bgp_state.ok_or_else(|| {
        Failed::new(
            Failure::Malformed,
            "RIPEstat bgp-state answer has no `data.bgp_state` list",
        )
    })?;
    let time = data.query_time.as_ref().and_then(parse_time);
    let at = time.unwrap_or(now);
    check_time(at, now).map_err(|e| {
        Failed::new(
            Failure::Malformed,
            format!("RIPEstat bgp-state query_time: {}", e.detail),
        )
    })?;
    let mut state = State {
        time,
        ..State::default()
    };
    let mut vps: HashSet<Arc<VantagePoint>> = HashSet::new();
    for e in entries {
        match entry(e, feed, at, &mut vps) {
            Ok(r) => state.routes.push(r),
            Err(bad) => state.invalid.push(bad),
        }
    }
    Ok(state)
}

fn entry(
    e: Entry,
    feed: &Arc<str>,
    at: Timestamp,
    vps: &mut HashSet<Arc<VantagePoint>>,
) -> Result<RouteEvent, Invalid> {
    let schema =
        |what: &str| Invalid::new(InvalidReason::Schema, format!("bgp_state entry: {what}"));
    let prefix = match &e.target_prefix {
        Some(serde_json::Value::String(s)) => crate::feeds::fields::parse_prefix(s)?,
        _ => return Err(schema("no `target_prefix`")),
    };
    let source = match &e.source_id {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => return Err(schema("no `source_id`")),
    };
    let (collector, peer_ip, asn) = parse_source_id(&source).ok_or_else(|| {
        Invalid::new(
            InvalidReason::InvalidAddress,
            format!(
                "source_id `{}` is not COLLECTOR-ADDRESS",
                source.chars().take(80).collect::<String>()
            ),
        )
    })?;
    let path = parse_path(e.path.as_deref().ok_or_else(|| schema("no `path`"))?)?;
    let peer_asn = match (asn, path.first()) {
        (Some(a), _) => a,
        (None, Some(PathElem::Asn(a))) => *a,
        _ => return Err(schema("no peer ASN (empty path)")),
    };
    let communities = e
        .community
        .unwrap_or_default()
        .iter()
        .filter_map(parse_community)
        .collect();
    let vp = Arc::new(VantagePoint {
        feed: feed.clone(),
        collector: collector.into(),
        peer_asn,
        peer_ip,
        exporter: None,
    });
    let vp = match vps.get(&vp) {
        Some(known) => known.clone(),
        None => {
            if vps.len() >= MAX_VANTAGE_POINTS {
                return Err(Invalid::new(
                    InvalidReason::TooManyVantagePoints,
                    format!("more than {MAX_VANTAGE_POINTS} vantage points in one answer"),
                ));
            }
            vps.insert(vp.clone());
            vp
        }
    };
    Ok(RouteEvent {
        timestamp: at,
        vp,
        prefix,
        change: RouteChange::Announce(Arc::new(RouteAttrs {
            path,
            communities,
            next_hop: None,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> Arc<str> {
        "ris_live".into()
    }

    #[test]
    fn requests_are_batched() {
        let p: Vec<IpNet> = (0..5)
            .map(|i| format!("10.{i}.0.0/16").parse().unwrap())
            .collect();
        let u = urls("http://127.0.0.1:1/", &p, 2);
        assert_eq!(u.len(), 3);
        assert_eq!(
            u[0],
            "http://127.0.0.1:1/data/bgp-state/data.json?resource=10.0.0.0/16,10.1.0.0/16&sourceapp=bgpsentry"
        );
    }

    #[test]
    fn source_ids_are_read_tolerantly() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            parse_source_id("00-192.0.2.1"),
            Some(("rrc00".into(), ip, None))
        );
        assert_eq!(
            parse_source_id("rrc21-192.0.2.1"),
            Some(("rrc21".into(), ip, None))
        );
        assert_eq!(
            parse_source_id("3-64500-192.0.2.1"),
            Some(("rrc03".into(), ip, Some(64500)))
        );
        assert_eq!(
            parse_source_id("01-2001:db8::1").map(|s| s.1),
            Some("2001:db8::1".parse().unwrap())
        );
        for bad in [
            "",
            "192.0.2.1",
            "xx-192.0.2.1",
            "00-nope",
            "1-2-3-4",
            "0000-192.0.2.1",
        ] {
            assert_eq!(parse_source_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_answer_becomes_announcements_at_its_query_time() {
        let body = br#"{"data":{"query_time":"2016-08-11T16:00:00","bgp_state":[
            {"target_prefix":"84.205.64.0/24","path":[3333,1103,12654],"community":["3333:100",[1,2]],"source_id":"00-193.0.0.56"},
            {"target_prefix":"84.205.64.0/24","path":[64500,[1,2]],"community":[],"source_id":"21-64500-2001:db8::1"},
            {"target_prefix":"nope","path":[1],"source_id":"00-193.0.0.56"},
            {"target_prefix":"84.205.65.0/24","path":[],"source_id":"00-193.0.0.56"},
            {"target_prefix":"84.205.65.0/24","path":["x"],"source_id":"00-193.0.0.56"}
        ]}}"#;
        let now = Timestamp::from_parts(1_800_000_000, 0);
        let s = parse(body, &feed(), now).unwrap();
        assert_eq!(s.time, Some(Timestamp::from_parts(1_470_931_200, 0)));
        assert_eq!(s.routes.len(), 2);
        assert_eq!(s.invalid.len(), 3);
        let r = &s.routes[0];
        assert_eq!(r.timestamp, Timestamp::from_parts(1_470_931_200, 0));
        assert_eq!(&*r.vp.collector, "rrc00");
        assert_eq!(r.vp.peer_asn, 3333);
        let RouteChange::Announce(a) = &r.change else {
            panic!()
        };
        assert_eq!(a.path.origins(), &[12654]);
        assert_eq!(a.communities.len(), 2);
        assert_eq!(s.routes[1].vp.peer_asn, 64500);
        assert_eq!(&*s.routes[1].vp.collector, "rrc21");
    }

    #[test]
    fn malformed_truncated_and_hostile_answers_fail_or_are_counted() {
        let now = Timestamp::from_parts(1_800_000_000, 0);
        for body in [
            &b"not json"[..],
            b"{\"data\":{\"bgp_state\":[{\"target_prefix\":\"1.0.0.0/8\"",
            b"{}",
            b"{\"data\":{}}",
            b"{\"data\":{\"bgp_state\":{}}}",
            b"[]",
            b"{\"data\":{\"bgp_state\":[],\"query_time\":\"9999-01-01T00:00:00\"}}",
        ] {
            let e = parse(body, &feed(), now).unwrap_err();
            assert_eq!(
                e.failure,
                Failure::Malformed,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // A path over the limit and a huge source id are counted, not kept.
        let long: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
        let body = format!(
            r#"{{"data":{{"bgp_state":[{{"target_prefix":"1.0.0.0/8","path":[{}],"source_id":"00-192.0.2.1"}},
            {{"target_prefix":"1.0.0.0/8","path":[1],"source_id":"{}"}}]}}}}"#,
            long.join(","),
            "9".repeat(100_000)
        );
        let s = parse(body.as_bytes(), &feed(), now).unwrap();
        assert!(s.routes.is_empty());
        assert_eq!(s.invalid.len(), 2);
        assert_eq!(s.invalid[0].reason, InvalidReason::PathTooLong);
    }
}
