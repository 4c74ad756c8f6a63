//! Pure parser of the bgproutes.io live stream: one text frame in, one [`BgpLiveMsg`] (or a
//! server error) out, then route events. No I/O here, so it can be fuzzed on its own.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{self, ListError, Scalar, StrList};

use crate::event::{
    AsPath, Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp,
    VantagePoint,
};

/// Most prefixes one message may carry (announced and withdrawn together). An extended BGP
/// UPDATE (RFC 8654, 64 KiB) holds at most about 32,000 prefixes; a message listing more is
/// hostile and dropped whole, counted as `too_many_prefixes`.
pub const MAX_PREFIXES_PER_MESSAGE: usize = 32_768;

/// Most ASNs an AS path may hold (sequence members and AS_SET members together). Real paths,
/// prepending included, stay far below; a longer one is dropped with its message, counted as
/// `path_too_long`, so a hostile path cannot make every event carry megabytes.
pub const MAX_AS_PATH_LEN: usize = 2_048;

/// Refuses a message that lists more than [`MAX_PREFIXES_PER_MESSAGE`] prefixes.
pub fn check_prefix_count(n: usize) -> Result<(), Invalid> {
    if n > MAX_PREFIXES_PER_MESSAGE {
        return Err(Invalid::new(
            "too_many_prefixes",
            format!("message lists {n} prefixes; the limit is {MAX_PREFIXES_PER_MESSAGE}"),
        ));
    }
    Ok(())
}

/// Refuses an AS path of more than [`MAX_AS_PATH_LEN`] ASNs.
pub fn check_path_len(n: usize) -> Result<(), Invalid> {
    if n > MAX_AS_PATH_LEN {
        return Err(Invalid::new(
            "path_too_long",
            format!("AS path of {n} or more ASNs; the limit is {MAX_AS_PATH_LEN}"),
        ));
    }
    Ok(())
}

/// Why a frame or part of it could not be used; `reason` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Short, stable reason (`not_json`, `schema`, `invalid_prefix`, `invalid_asn`, …).
    pub reason: &'static str,
    /// What exactly was wrong, for the debug log.
    pub detail: String,
}

impl Invalid {
    /// A problem with a reason and a detail.
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Invalid {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// Announcement (`U`) or withdrawal (`W`), as the reference client names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MsgType {
    /// The prefixes are announced with the message's attributes.
    #[serde(rename = "U")]
    Announce,
    /// The prefixes are withdrawn.
    #[serde(rename = "W")]
    Withdraw,
}

impl MsgType {
    /// `U` or `W`.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Announce => "U",
            MsgType::Withdraw => "W",
        }
    }
}

/// One BGP message of a live stream, in the shape of the reference client's message.
///
/// `Display` prints the reference client's pipe format
/// `TIMESTAMP|MSG_TYPE|VP_ASN|VP_IP|PREFIXES|ASPATH|COMMUNITIES|ORIGIN|NEXTHOP`; a BMP message
/// adds `|EXPORTER_ASN|EXPORTER_IP`. Absent values print as `None`, absent AS path and
/// communities as empty, and the timestamp as seconds with the microseconds as a fraction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpLiveMsg {
    /// Announcement or withdrawal.
    #[serde(rename = "type")]
    pub msg_type: MsgType,
    /// UNIX seconds, if the server sent them.
    pub sec: Option<i64>,
    /// Microseconds past `sec`, if the server sent them.
    pub usec: Option<i64>,
    /// ASN of the vantage point (for BMP: the peer behind the exporter).
    pub vp_asn: u32,
    /// Address of the vantage point, as sent.
    pub vp_ip: String,
    /// For BMP: the exporter (the router streaming BMP) as (ASN, address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exporter: Option<(u32, String)>,
    /// Announced or withdrawn prefixes, as sent.
    pub prefixes: Vec<String>,
    /// AS path, space-separated, as sent (empty if absent).
    pub aspath: String,
    /// Communities, as sent (empty if absent).
    pub communities: String,
    /// BGP ORIGIN attribute.
    pub origin: Option<String>,
    /// Next hop.
    pub nexthop: Option<String>,
}

impl BgpLiveMsg {
    /// The event time (zero when the server sent none).
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_parts(self.sec.unwrap_or(0), self.usec.unwrap_or(0))
    }

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
                    "invalid_address",
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
                        "invalid_address",
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
                            invalid
                                .push(Invalid::new("invalid_address", format!("next hop `{n}`")));
                            None
                        }
                    }
                });
                RouteChange::Announce(Arc::new(RouteAttrs {
                    path,
                    communities,
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

/// Python's `str()` of a float: the shortest round-trip digits, with `.0` on whole numbers.
fn python_float(v: f64) -> String {
    let s = format!("{v}");
    if v.is_finite() && !s.contains('.') && !s.contains('e') {
        format!("{s}.0")
    } else {
        s
    }
}

impl fmt::Display for BgpLiveMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reference client adds `Usec / 1e6` to the integer seconds, so the time is an
        // integer without `Usec` and a float with it; both spellings are kept.
        let ts = match (self.sec, self.usec) {
            (None, _) => "None".to_string(),
            (Some(s), None) => s.to_string(),
            (Some(s), Some(u)) => python_float(s as f64 + u as f64 / 1_000_000.0),
        };
        write!(
            f,
            "{ts}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.msg_type.as_str(),
            self.vp_asn,
            self.vp_ip,
            self.prefixes.join(","),
            self.aspath,
            self.communities,
            self.origin.as_deref().unwrap_or("None"),
            self.nexthop.as_deref().unwrap_or("None"),
        )?;
        if let Some((asn, ip)) = &self.exporter {
            write!(f, "|{asn}|{ip}")?;
        }
        Ok(())
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
            Invalid::new("not_json", format!("frame is not JSON: {e}"))
        } else {
            Invalid::new("schema", "frame is not a JSON object")
        }
    })?;
    if let Some(err) = rec.error {
        let raw = err.get();
        let reason = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string());
        return Ok(Frame::Error(reason));
    }
    let record_type = match &rec.record_type {
        Some(Scalar::Str(s)) => &**s,
        Some(_) => return Err(Invalid::new("schema", "`record_type` is not a string")),
        None => return Err(Invalid::new("schema", "no `record_type`")),
    };
    let bmp = match record_type {
        "update" => false,
        "bmp_update" => true,
        other => return Ok(Frame::Skipped(other.to_string())),
    };
    let vp = get_str(&rec.vp, "vp")?.ok_or_else(|| Invalid::new("schema", "no `vp`"))?;
    let (vp_asn, vp_ip) = split_vp(vp)?;
    let (vp_asn, vp_ip, exporter) = if bmp {
        let peer = get_str(&rec.bmp_peer, "bmp_peer")?
            .ok_or_else(|| Invalid::new("schema", "`bmp_update` without `bmp_peer`"))?;
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
        "unknown_withdrawal",
        format!(
            "withdrawal record (no `prefixes`) without any of {}",
            WITHDRAWAL_KEYS.join(", ")
        ),
    ))
}

/// A comma-separated string or a list of strings.
fn prefix_list(v: &RawValue, key: &str) -> Result<Vec<String>, Invalid> {
    let neither = || Invalid::new("schema", format!("`{key}` is neither a string nor a list"));
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
            "schema",
            format!("`{key}` holds a non-string element"),
        )),
    }
}

fn get_str<'s>(v: &'s Option<Scalar>, key: &str) -> Result<Option<&'s str>, Invalid> {
    match v {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new("schema", format!("`{key}` is not a string"))),
    }
}

fn get_int(v: &Option<Scalar>, key: &str) -> Result<Option<i64>, Invalid> {
    let not_int = || Invalid::new("schema", format!("`{key}` is not an integer"));
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
            "schema",
            format!("vantage point `{vp}` is not ASN_IP"),
        ));
    };
    let asn = parse_asn(asn)?;
    Ok((asn, ip.to_string()))
}

/// An ASN in decimal (an optional `AS` prefix is accepted).
pub fn parse_asn(s: &str) -> Result<u32, Invalid> {
    let t = s.trim();
    let t = t
        .strip_prefix("AS")
        .or_else(|| t.strip_prefix("as"))
        .unwrap_or(t);
    t.parse::<u32>()
        .map_err(|_| Invalid::new("invalid_asn", format!("`{s}` is not an ASN")))
}

/// A prefix, normalised (host bits cleared, IPv6 compressed by the type itself).
pub fn parse_prefix(s: &str) -> Result<IpNet, Invalid> {
    s.trim()
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| Invalid::new("invalid_prefix", format!("`{s}` is not a prefix")))
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
                    "schema",
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
                    "schema",
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
    Ok(AsPath(elems))
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
                "invalid_community",
                format!("`{tok}` is not a community"),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let m =
            msg(r#"{"record_type":"update","vp":"1_10.0.0.1","sec":5,"prefixes":"10.1.0.0/16"}"#);
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
        let reasons: Vec<&str> = invalid.iter().map(|i| i.reason).collect();
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
}
