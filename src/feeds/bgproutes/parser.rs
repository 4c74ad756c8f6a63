//! Pure parser of the bgproutes.io live stream, without I/O so it can be fuzzed on its own.
//!
//! One text frame in, one [`BgpLiveMsg`] (or a server error) out, then route events.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::stream::{BgpLiveMsg, MsgType};
use crate::event::{
    AsPath, Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, VantagePoint,
};
use crate::feeds::error::{Invalid, InvalidReason, check_path_len, check_prefix_count};
use crate::feeds::fields::{parse_asn, parse_prefix};
use crate::feeds::json::{self, ListError, Scalar, StrList};

impl BgpLiveMsg {
    /// Builds one route event per prefix. Prefixes, ASNs, communities and addresses that do not
    /// parse are reported in the second list; the rest of the message is still used.
    pub fn to_events(
        &self,
        feed: &Arc<str>,
        collector: &Arc<str>,
    ) -> (Vec<FeedEvent>, Vec<Invalid>) {
        let mut invalid = Vec::new();
        let peer_ip = match self.vp_ip.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                invalid.push(Invalid::new(
                    InvalidReason::InvalidAddress,
                    format!("vantage point address `{}`", self.vp_ip),
                ));
                return (Vec::new(), invalid);
            }
        };
        let exporter = match &self.exporter {
            Some((asn, ip)) => match ip.parse::<IpAddr>() {
                Ok(ip) => Some((*asn, ip)),
                Err(_) => {
                    invalid.push(Invalid::new(
                        InvalidReason::InvalidAddress,
                        format!("BMP exporter address `{ip}`"),
                    ));
                    return (Vec::new(), invalid);
                }
            },
            None => None,
        };
        let vp = Arc::new(VantagePoint {
            feed: feed.clone(),
            collector: collector.clone(),
            peer_asn: self.vp_asn,
            peer_ip,
            exporter,
        });
        let change = match self.msg_type {
            MsgType::Withdraw => RouteChange::Withdraw,
            MsgType::Announce => {
                let path = match parse_as_path(&self.aspath) {
                    Ok(p) => p,
                    Err(e) => {
                        invalid.push(e);
                        return (Vec::new(), invalid);
                    }
                };
                let communities = parse_communities(&self.communities, &mut invalid);
                let next_hop = self.nexthop.as_deref().and_then(|n| {
                    let first = n.split(',').next().unwrap_or("").trim();
                    match first.parse::<IpAddr>() {
                        Ok(ip) => Some(ip),
                        Err(_) => {
                            invalid.push(Invalid::new(
                                InvalidReason::InvalidAddress,
                                format!("next hop `{n}`"),
                            ));
                            None
                        }
                    }
                });
                RouteChange::Announce(Arc::new(RouteAttrs {
                    path,
                    communities: communities.into(),
                    next_hop,
                }))
            }
        };
        let timestamp = self.timestamp();
        let mut events = Vec::with_capacity(self.prefixes.len());
        for p in &self.prefixes {
            match parse_prefix(p) {
                Ok(prefix) => events.push(FeedEvent::Route(RouteEvent {
                    timestamp,
                    vp: vp.clone(),
                    prefix,
                    change: change.clone(),
                })),
                Err(e) => invalid.push(e),
            }
        }
        (events, invalid)
    }
}

/// What one frame of the stream is.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A route message.
    Message(BgpLiveMsg),
    /// `{"error": ...}`: the server rejected the session (bad key, second session, …).
    Error(String),
    /// A record that is not a route message (its `record_type`), skipped.
    Skipped(String),
}

/// Parses one text frame.
pub fn parse_frame(text: &str) -> Result<Frame, Invalid> {
    let rec: Record = serde_json::from_str(text).map_err(|e| {
        if json::is_syntax(&e, text) {
            Invalid::new(InvalidReason::NotJson, format!("frame is not JSON: {e}"))
        } else {
            Invalid::new(InvalidReason::Schema, "frame is not a JSON object")
        }
    })?;
    if let Some(err) = rec.error {
        let raw = err.get();
        let reason = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string());
        return Ok(Frame::Error(reason));
    }
    let record_type = match &rec.record_type {
        Some(Scalar::Str(s)) => &**s,
        Some(_) => {
            return Err(Invalid::new(
                InvalidReason::Schema,
                "`record_type` is not a string",
            ));
        }
        None => return Err(Invalid::new(InvalidReason::Schema, "no `record_type`")),
    };
    let bmp = match record_type {
        "update" => false,
        "bmp_update" => true,
        other => return Ok(Frame::Skipped(other.to_string())),
    };
    let vp =
        get_str(&rec.vp, "vp")?.ok_or_else(|| Invalid::new(InvalidReason::Schema, "no `vp`"))?;
    let (vp_asn, vp_ip) = split_vp(vp)?;
    let (vp_asn, vp_ip, exporter) = if bmp {
        let peer = get_str(&rec.bmp_peer, "bmp_peer")?.ok_or_else(|| {
            Invalid::new(InvalidReason::Schema, "`bmp_update` without `bmp_peer`")
        })?;
        let (peer_asn, peer_ip) = split_vp(peer)?;
        (peer_asn, peer_ip, Some((vp_asn, vp_ip)))
    } else {
        (vp_asn, vp_ip, None)
    };
    let sec = get_int(&rec.sec, "sec")?;
    let usec = get_int(&rec.usec, "Usec")?;
    let (msg_type, prefixes) = match rec.prefixes {
        // Its presence makes the record an announcement.
        Some(v) => (MsgType::Announce, prefix_list(v, "prefixes")?),
        None => (MsgType::Withdraw, withdrawn_prefixes(&rec.withdrawn)?),
    };
    check_prefix_count(prefixes.len())?;
    Ok(Frame::Message(BgpLiveMsg {
        msg_type,
        sec,
        usec,
        vp_asn,
        vp_ip,
        exporter,
        prefixes,
        aspath: get_str(&rec.aspath, "as-path")?.unwrap_or("").to_string(),
        communities: get_str(&rec.communities, "communities")?
            .unwrap_or("")
            .to_string(),
        origin: get_str(&rec.origin, "origin")?.map(str::to_string),
        nexthop: get_str(&rec.nexthop, "nexthop")?.map(str::to_string),
    }))
}

/// The fields of a record that matter, read in one pass with strings borrowed from the frame
/// (a repeated key: the last one).
#[derive(Default)]
struct Record<'a> {
    error: Option<&'a RawValue>,
    record_type: Option<Scalar<'a>>,
    vp: Option<Scalar<'a>>,
    bmp_peer: Option<Scalar<'a>>,
    sec: Option<Scalar<'a>>,
    usec: Option<Scalar<'a>>,
    prefixes: Option<&'a RawValue>,
    /// The values of [`WITHDRAWAL_KEYS`], in that order.
    withdrawn: [Option<&'a RawValue>; WITHDRAWAL_KEYS.len()],
    aspath: Option<Scalar<'a>>,
    communities: Option<Scalar<'a>>,
    origin: Option<Scalar<'a>>,
    nexthop: Option<Scalar<'a>>,
}

impl<'de> Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut r = Record::default();
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "error" => r.error = Some(map.next_value()?),
                        "record_type" => r.record_type = Some(map.next_value()?),
                        "vp" => r.vp = Some(map.next_value()?),
                        "bmp_peer" => r.bmp_peer = Some(map.next_value()?),
                        "sec" => r.sec = Some(map.next_value()?),
                        "Usec" => r.usec = Some(map.next_value()?),
                        "prefixes" => r.prefixes = Some(map.next_value()?),
                        "as-path" => r.aspath = Some(map.next_value()?),
                        "communities" => r.communities = Some(map.next_value()?),
                        "origin" => r.origin = Some(map.next_value()?),
                        "nexthop" => r.nexthop = Some(map.next_value()?),
                        other => match WITHDRAWAL_KEYS.iter().position(|w| *w == other) {
                            Some(i) => r.withdrawn[i] = Some(map.next_value()?),
                            None => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------------------------
// WITHDRAWALS: where a withdrawal record carries its prefixes is not documented. The reference
// client only knows that a record without `prefixes` is a withdrawal. This is the one place that
// decides: `withdrawals` first (string or list), then other plausible spellings. A withdrawal
// whose prefixes cannot be found is reported as unparsable, never guessed.
// ---------------------------------------------------------------------------------------------

/// Keys tried, in order, for the prefixes of a withdrawal record.
pub const WITHDRAWAL_KEYS: [&str; 5] = [
    "withdrawals",
    "withdrawn",
    "withdrawn_prefixes",
    "withdrawn-prefixes",
    "prefix",
];

fn withdrawn_prefixes(
    values: &[Option<&RawValue>; WITHDRAWAL_KEYS.len()],
) -> Result<Vec<String>, Invalid> {
    for (key, v) in WITHDRAWAL_KEYS.iter().zip(values) {
        if let Some(v) = v {
            let list = prefix_list(v, key)?;
            if !list.is_empty() {
                return Ok(list);
            }
        }
    }
    Err(Invalid::new(
        InvalidReason::UnknownWithdrawal,
        format!(
            "withdrawal record (no `prefixes`) without any of {}",
            WITHDRAWAL_KEYS.join(", ")
        ),
    ))
}

/// A comma-separated string or a list of strings.
fn prefix_list(v: &RawValue, key: &str) -> Result<Vec<String>, Invalid> {
    let neither = || {
        Invalid::new(
            InvalidReason::Schema,
            format!("`{key}` is neither a string nor a list"),
        )
    };
    if v.get() == "null" {
        return Err(neither());
    }
    let list: StrList = serde_json::from_str(v.get()).map_err(|_| neither())?;
    match (list.error, list.single) {
        (None, _) => Ok(list.items.iter().map(|s| s.trim().to_string()).collect()),
        (Some(ListError::NotList), Some(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()),
        (Some(ListError::NotList), None) => Err(neither()),
        (Some(ListError::NonString), _) => Err(Invalid::new(
            InvalidReason::Schema,
            format!("`{key}` holds a non-string element"),
        )),
    }
}

fn get_str<'s>(v: &'s Option<Scalar>, key: &str) -> Result<Option<&'s str>, Invalid> {
    match v {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new(
            InvalidReason::Schema,
            format!("`{key}` is not a string"),
        )),
    }
}

fn get_int(v: &Option<Scalar>, key: &str) -> Result<Option<i64>, Invalid> {
    let not_int = || Invalid::new(InvalidReason::Schema, format!("`{key}` is not an integer"));
    match v {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => s.trim().parse().map(Some).map_err(|_| not_int()),
        Some(n) => n.as_i64().map(Some).ok_or_else(not_int),
    }
}

/// `"ASN_IP"` into its parts; the address is checked when events are built.
fn split_vp(vp: &str) -> Result<(u32, String), Invalid> {
    let Some((asn, ip)) = vp.split_once('_') else {
        return Err(Invalid::new(
            InvalidReason::Schema,
            format!("vantage point `{vp}` is not ASN_IP"),
        ));
    };
    let asn = parse_asn(asn)?;
    Ok((asn, ip.to_string()))
}

/// A space-separated AS path; an AS_SET may be written `{a,b}` or `[a,b]`.
pub fn parse_as_path(s: &str) -> Result<AsPath, Invalid> {
    let mut elems = Vec::new();
    let mut asns = 0usize;
    let mut rest = s.trim();
    while !rest.is_empty() {
        check_path_len(asns)?;
        let first = rest.as_bytes()[0];
        if first == b'{' || first == b'[' {
            let close = if first == b'{' { '}' } else { ']' };
            let Some(end) = rest.find(close) else {
                return Err(Invalid::new(
                    InvalidReason::Schema,
                    format!("unterminated AS_SET in path `{s}`"),
                ));
            };
            let members = rest[1..end]
                .split([',', ' '])
                .filter(|m| !m.is_empty())
                .map(parse_asn)
                .collect::<Result<Vec<u32>, Invalid>>()?;
            if members.is_empty() {
                return Err(Invalid::new(
                    InvalidReason::Schema,
                    format!("empty AS_SET in path `{s}`"),
                ));
            }
            asns += members.len();
            elems.push(PathElem::Set(members.into()));
            rest = rest[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            elems.push(PathElem::Asn(parse_asn(&rest[..end])?));
            asns += 1;
            rest = rest[end..].trim_start();
        }
    }
    check_path_len(asns)?;
    Ok(AsPath::from(elems))
}

/// Communities separated by spaces or commas: `ASN:VALUE` or large `A:B:C`. Ones that do not
/// parse are reported and left out.
pub fn parse_communities(s: &str, invalid: &mut Vec<Invalid>) -> Vec<Community> {
    let mut out = Vec::new();
    for tok in s.split([' ', ',']).filter(|t| !t.is_empty()) {
        let parts: Vec<&str> = tok.split(':').collect();
        let parsed = match parts.as_slice() {
            [a, b] => match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) => Some(Community::Standard(a, b)),
                _ => None,
            },
            [a, b, c] => match (a.parse::<u32>(), b.parse::<u32>(), c.parse::<u32>()) {
                (Ok(a), Ok(b), Ok(c)) => Some(Community::Large(a, b, c)),
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some(c) => out.push(c),
            None => invalid.push(Invalid::new(
                InvalidReason::InvalidCommunity,
                format!("`{tok}` is not a community"),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests;
