//! The bgproutes.io REST API: its vantage points, their RIBs filtered to the watched prefixes
//! and their more-specifics, and the updates of a gap.
//!
//! Every answer is `{"seconds", "bytes", "info", "data"}`; the API key goes in `x-api-key`.
//! A BGP vantage point is (ASN, address) as in the stream's `vp`; a BMP one adds its exporter
//! (`bmp_info.parent_asn`, `parent_ip`), as the stream's `vp` of a `bmp_update`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::fetch::{Failed, Failure};
use crate::event::{
    AsPath, Community, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use crate::feeds::admit::{MAX_VANTAGE_POINTS, check_time};
use crate::feeds::bgproutes::parser::{parse_as_path, parse_communities};
use crate::feeds::error::{Invalid, InvalidReason};

/// The public REST API.
pub const DEFAULT_URL: &str = "https://api.bgproutes.io";

/// More VP ids than this go in a POST body, as the reference client does.
pub const MAX_IDS_IN_QUERY: usize = 100;

/// A time as the API takes it.
pub fn api_date(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `prefix_filter` asking for each prefix and its more-specifics.
pub fn prefix_filter(prefixes: &[IpNet]) -> String {
    prefixes
        .iter()
        .map(|p| format!("<<:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Value>,
}

fn data(body: &[u8], what: &str) -> Result<Value, Failed> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| {
        Failed::new(
            Failure::Malformed,
            format!("the bgproutes.io {what} answer is not the expected JSON: {e}"),
        )
    })?;
    match env.data {
        Some(d @ Value::Object(_)) => Ok(d),
        _ => Err(Failed::new(
            Failure::Malformed,
            format!("the bgproutes.io {what} answer has no `data` object"),
        )),
    }
}

/// The vantage points of the API, by kind and id.
#[derive(Debug, Default, Clone)]
pub struct Vps {
    /// BGP vantage points by id.
    pub bgp: HashMap<String, Arc<VantagePoint>>,
    /// BMP vantage points by id.
    pub bmp: HashMap<String, Arc<VantagePoint>>,
}

impl Vps {
    /// How many.
    pub fn len(&self) -> usize {
        self.bgp.len() + self.bmp.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids, sorted, for the `vp_bgp_ids` and `vp_bmp_ids` parameters.
    pub fn ids(&self) -> (Vec<String>, Vec<String>) {
        let mut bgp: Vec<String> = self.bgp.keys().cloned().collect();
        let mut bmp: Vec<String> = self.bmp.keys().cloned().collect();
        bgp.sort();
        bmp.sort();
        (bgp, bmp)
    }

    fn get(&self, bmp: bool, id: &str) -> Option<&Arc<VantagePoint>> {
        if bmp {
            self.bmp.get(id)
        } else {
            self.bgp.get(id)
        }
    }
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
        _ => None,
    }
}

fn asn_of(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|a| u32::try_from(a).ok()),
        Value::String(s) => crate::feeds::fields::parse_asn(s).ok(),
        _ => None,
    }
}

fn ip_of(v: Option<&Value>) -> Option<IpAddr> {
    v?.as_str()?.trim().parse().ok()
}

/// Reads `/v1/vantage_points`. Entries that cannot be used are listed in the second value.
pub fn parse_vantage_points(body: &[u8], feed: &Arc<str>) -> Result<(Vps, Vec<Invalid>), Failed> {
    let data = data(body, "vantage_points")?;
    let mut vps = Vps::default();
    let mut invalid = Vec::new();
    for (kind, bmp) in [("bgp", false), ("bmp", true)] {
        let Some(list) = data.get(kind) else { continue };
        let Some(list) = list.as_array() else {
            return Err(Failed::new(
                Failure::Malformed,
                format!("the bgproutes.io vantage_points answer: `data.{kind}` is not a list"),
            ));
        };
        for e in list {
            if vps.len() >= MAX_VANTAGE_POINTS {
                invalid.push(Invalid::new(
                    InvalidReason::TooManyVantagePoints,
                    format!("more than {MAX_VANTAGE_POINTS} vantage points"),
                ));
                break;
            }
            let id = e.get("id").and_then(id_of);
            let ip = ip_of(e.get("ip"));
            let asn = asn_of(e.get("asn"));
            let exporter = if bmp {
                let info = e.get("bmp_info");
                match (
                    asn_of(info.and_then(|i| i.get("parent_asn"))),
                    ip_of(info.and_then(|i| i.get("parent_ip"))),
                ) {
                    (Some(a), Some(i)) => Some(Some((a, i))),
                    _ => None,
                }
            } else {
                Some(None)
            };
            match (id, ip, asn, exporter) {
                (Some(id), Some(ip), Some(asn), Some(exporter)) => {
                    let vp = Arc::new(VantagePoint {
                        feed: feed.clone(),
                        collector: "".into(),
                        peer_asn: asn,
                        peer_ip: ip,
                        exporter,
                    });
                    if bmp {
                        vps.bmp.insert(id, vp);
                    } else {
                        vps.bgp.insert(id, vp);
                    }
                }
                _ => invalid.push(Invalid::new(
                    InvalidReason::Schema,
                    format!(
                        "{kind} vantage point without a usable id, ip, asn{}",
                        if bmp { " or bmp_info" } else { "" }
                    ),
                )),
            }
        }
    }
    Ok((vps, invalid))
}

/// An AS path as a space-separated string or a list of ASNs.
fn path_of(v: Option<&Value>) -> Result<AsPath, Invalid> {
    match v {
        Some(Value::String(s)) => parse_as_path(s),
        Some(Value::Array(items)) => {
            let text: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            parse_as_path(&text.join(" "))
        }
        _ => Err(Invalid::new(
            InvalidReason::Schema,
            "route without an AS path",
        )),
    }
}

fn communities_of(v: Option<&Value>, invalid: &mut Vec<Invalid>) -> Vec<Community> {
    match v {
        Some(Value::String(s)) => parse_communities(s, invalid),
        Some(Value::Array(items)) => {
            let text: Vec<String> = items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            parse_communities(&text.join(" "), invalid)
        }
        _ => Vec::new(),
    }
}

fn announce(path: AsPath, communities: Vec<Community>) -> RouteChange {
    RouteChange::Announce(Arc::new(RouteAttrs {
        path,
        communities: communities.into(),
        next_hop: None,
    }))
}

/// The per-VP maps of a `/v1/rib` or `/v1/updates` answer: (is BMP, VP id, value).
fn per_vp<'a>(data: &'a Value, what: &str) -> Result<Vec<(bool, &'a String, &'a Value)>, Failed> {
    let mut out = Vec::new();
    for (kind, bmp) in [("bgp", false), ("bmp", true)] {
        match data.get(kind) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => out.extend(m.iter().map(|(id, v)| (bmp, id, v))),
            Some(_) => {
                return Err(Failed::new(
                    Failure::Malformed,
                    format!("the bgproutes.io {what} answer: `data.{kind}` is not an object"),
                ));
            }
        }
    }
    Ok(out)
}

fn unknown_vp(id: &str) -> Invalid {
    Invalid::new(
        InvalidReason::Schema,
        format!(
            "routes of vantage point id `{}` that was not listed",
            id.chars().take(64).collect::<String>()
        ),
    )
}

/// Reads `/v1/rib`: one announcement per (VP, prefix) at `at`.
pub fn parse_rib(
    body: &[u8],
    vps: &Vps,
    at: Timestamp,
) -> Result<(Vec<RouteEvent>, Vec<Invalid>), Failed> {
    let data = data(body, "rib")?;
    let mut routes = Vec::new();
    let mut invalid = Vec::new();
    for (bmp, id, table) in per_vp(&data, "rib")? {
        let Some(vp) = vps.get(bmp, id) else {
            invalid.push(unknown_vp(id));
            continue;
        };
        let Some(table) = table.as_object() else {
            invalid.push(Invalid::new(
                InvalidReason::Schema,
                "a RIB that is not an object",
            ));
            continue;
        };
        for (prefix, route) in table {
            let prefix = match crate::feeds::fields::parse_prefix(prefix) {
                Ok(p) => p,
                Err(e) => {
                    invalid.push(e);
                    continue;
                }
            };
            let fields = route.as_array();
            let path = match path_of(fields.and_then(|f| f.first())) {
                Ok(p) => p,
                Err(e) => {
                    invalid.push(e);
                    continue;
                }
            };
            let communities = communities_of(fields.and_then(|f| f.get(1)), &mut invalid);
            routes.push(RouteEvent {
                timestamp: at,
                vp: vp.clone(),
                prefix,
                change: announce(path, communities),
            });
        }
    }
    Ok((routes, invalid))
}

fn time_of(v: Option<&Value>) -> Option<Timestamp> {
    match v? {
        Value::Number(n) => n.as_f64().map(Timestamp::from_secs_f64),
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .map(Timestamp::from_secs_f64)
            .or_else(|| super::ripestat::parse_time(&Value::String(s.clone()))),
        _ => None,
    }
}

/// Reads `/v1/updates`: route events in event-time order. `now` is this host's clock.
pub fn parse_updates(
    body: &[u8],
    vps: &Vps,
    now: Timestamp,
) -> Result<(Vec<RouteEvent>, Vec<Invalid>), Failed> {
    let data = data(body, "updates")?;
    let mut events = Vec::new();
    let mut invalid = Vec::new();
    for (bmp, id, list) in per_vp(&data, "updates")? {
        let Some(vp) = vps.get(bmp, id) else {
            invalid.push(unknown_vp(id));
            continue;
        };
        let Some(list) = list.as_array() else {
            invalid.push(Invalid::new(
                InvalidReason::Schema,
                "updates that are not a list",
            ));
            continue;
        };
        for u in list {
            let Some(f) = u.as_array() else {
                invalid.push(Invalid::new(
                    InvalidReason::Schema,
                    "an update that is not a list",
                ));
                continue;
            };
            let Some(ts) = time_of(f.first()) else {
                invalid.push(Invalid::new(
                    InvalidReason::Schema,
                    "an update without a time",
                ));
                continue;
            };
            if let Err(e) = check_time(ts, now) {
                invalid.push(e);
                continue;
            }
            let prefix = match f
                .get(2)
                .and_then(Value::as_str)
                .map(crate::feeds::fields::parse_prefix)
            {
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    invalid.push(e);
                    continue;
                }
                None => {
                    invalid.push(Invalid::new(
                        InvalidReason::Schema,
                        "an update without a prefix",
                    ));
                    continue;
                }
            };
            let change = match f.get(1).and_then(Value::as_str) {
                Some("W") => RouteChange::Withdraw,
                Some("A") => match path_of(f.get(3)) {
                    Ok(p) => {
                        let c = communities_of(f.get(4), &mut invalid);
                        announce(p, c)
                    }
                    Err(e) => {
                        invalid.push(e);
                        continue;
                    }
                },
                _ => {
                    invalid.push(Invalid::new(
                        InvalidReason::Schema,
                        "an update neither A nor W",
                    ));
                    continue;
                }
            };
            events.push(RouteEvent {
                timestamp: ts,
                vp: vp.clone(),
                prefix,
                change,
            });
        }
    }
    // Per-VP lists come in map order; the engine wants event time (stable: a VP's own order
    // is kept for equal times).
    events.sort_by_key(|e| e.timestamp);
    Ok((events, invalid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> Arc<str> {
        "bgproutes".into()
    }

    const VPS: &[u8] = br#"{"seconds":0.1,"bytes":10,"data":{
        "bgp":[{"id":1,"ip":"193.0.0.56","asn":3333,"is_active":true,"source":"ris"},
               {"id":"2","ip":"2001:db8::2","asn":"AS64500"},
               {"id":3,"ip":"nope","asn":1}],
        "bmp":[{"id":16,"ip":"192.0.2.9","asn":64501,"peer_id":1,"bmp_info":{"parent_asn":64502,"parent_ip":"192.0.2.1","feed_types":["adj-rib-in"]}},
               {"id":17,"ip":"192.0.2.10","asn":64501}]}}"#;

    #[test]
    fn vantage_points_are_read_with_their_exporters() {
        let (vps, invalid) = parse_vantage_points(VPS, &feed()).unwrap();
        assert_eq!(vps.bgp.len(), 2);
        assert_eq!(vps.bmp.len(), 1);
        assert_eq!(invalid.len(), 2);
        assert_eq!(vps.bgp["2"].peer_asn, 64500);
        assert_eq!(
            vps.bmp["16"].exporter,
            Some((64502, "192.0.2.1".parse().unwrap()))
        );
        assert_eq!(vps.ids().0, vec!["1".to_string(), "2".to_string()]);
    }

    #[test]
    fn a_rib_becomes_announcements_and_updates_come_in_time_order() {
        let (vps, _) = parse_vantage_points(VPS, &feed()).unwrap();
        let at = Timestamp::from_parts(1_470_931_200, 0);
        let rib = br#"{"data":{"bgp":{"1":{"202.134.148.0/24":["3333 4755 18196","3333:1 3333:2",null,null,-1],
            "202.134.149.0/24":[[3333,58678],[],null,null,-1], "bad":["1"]},
            "99":{"10.0.0.0/8":["1"]}},
            "bmp":{"16":{"2001:db8::/32":["64501 64496","",null,null,3]}}}}"#;
        let (routes, invalid) = parse_rib(rib, &vps, at).unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(invalid.len(), 2);
        assert!(routes.iter().all(|r| r.timestamp == at));
        let origins: Vec<u32> = routes
            .iter()
            .filter_map(|r| match &r.change {
                RouteChange::Announce(a) => a.path.origins().first().copied(),
                RouteChange::Withdraw => None,
            })
            .collect();
        assert!(origins.contains(&18196) && origins.contains(&58678) && origins.contains(&64496));

        let now = Timestamp::from_parts(1_800_000_000, 0);
        let upd = br#"{"data":{"bgp":{"1":[[1470931300,"W","202.134.148.0/24"],[1470931200.5,"A","202.134.148.0/24","3333 58678","",null,null,-1]],
            "2":[[1470931250,"A","10.0.0.0/8","64500 1"],[1,"A","10.0.0.0/8","1"],["x","A","10.0.0.0/8","1"],[1470931250,"Z","10.0.0.0/8"]]}}}"#;
        let (events, invalid) = parse_updates(upd, &vps, now).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(invalid.len(), 3);
        assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert_eq!(events[2].change, RouteChange::Withdraw);
    }

    #[test]
    fn envelopes_without_data_or_of_the_wrong_shape_are_malformed() {
        let vps = Vps::default();
        let at = Timestamp::from_parts(1_470_931_200, 0);
        for body in [
            &b"<html>"[..],
            b"{\"seconds\":1}",
            b"{\"data\":[]}",
            b"{\"data\":{\"bgp\":[1]}}",
            b"{\"data\":{\"bgp\":{\"1\":{\"1.0.0.0/8\":",
        ] {
            assert_eq!(
                parse_rib(body, &vps, at).unwrap_err().failure,
                Failure::Malformed
            );
        }
        assert_eq!(
            parse_vantage_points(b"{\"data\":{\"bgp\":{}}}", &feed())
                .unwrap_err()
                .failure,
            Failure::Malformed
        );
    }

    #[test]
    fn filters_and_dates_are_spelled_as_the_api_takes_them() {
        let p: Vec<IpNet> = vec![
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        assert_eq!(prefix_filter(&p), "<<:203.0.113.0/24,<<:2001:db8::/32");
        assert_eq!(
            api_date(Timestamp::from_parts(1_470_931_200, 7)),
            "2016-08-11T16:00:00"
        );
    }
}
