//! Pure parser of RIPE RIS Live frames: text in, [`RisFrame`] out, with route events for
//! `ris_message` UPDATEs and peer-down events for `STATE` changes. No I/O here.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::admit::check_name;
use super::bgproutes_parse::{
    BgpLiveMsg, Invalid, MsgType, check_path_len, check_prefix_count, parse_prefix,
};
use super::json::{self, ListError, Scalar, StrList};
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
    Parser::new(feed.clone()).parse(text)
}

/// A RIS Live parser for one feed that remembers the vantage points it has seen, so that the
/// frames of a peer share one [`VantagePoint`] instead of allocating one each.
#[derive(Debug)]
pub struct Parser {
    feed: Arc<str>,
    vps: HashMap<(IpAddr, u32), Vec<Arc<VantagePoint>>>,
    /// Vantage points in `vps`, over all peers (one peer may be seen by several collectors).
    cached: usize,
}

/// Vantage points remembered by a [`Parser`] before it starts over (a hostile stream of made-up
/// peers or collectors cannot grow it without bound; RIS has about two thousand).
const VP_CACHE_LIMIT: usize = 65_536;

/// Collectors remembered per peer (RIS has about 25; a peer is rarely on more than a few).
const COLLECTORS_PER_PEER: usize = 64;

impl Parser {
    /// A parser for events of `feed`.
    pub fn new(feed: Arc<str>) -> Self {
        Parser {
            feed,
            vps: HashMap::new(),
            cached: 0,
        }
    }

    /// Parses one text frame.
    pub fn parse(&mut self, text: &str) -> Result<Parsed, Invalid> {
        let env: Envelope = serde_json::from_str(text).map_err(|e| frame_error(&e, text))?;
        let ty = match env.ty {
            Some(Scalar::Str(s)) => s,
            _ => return Err(Invalid::new("schema", "frame has no string `type`")),
        };
        let frame = match &*ty {
            "ris_message" => {
                let data = match (env.msg, env.data) {
                    (Some(msg), _) => msg.0,
                    (None, Some(raw)) => {
                        serde_json::from_str::<MaybeMsg>(raw.get())
                            .map_err(|e| data_error(&e))?
                            .0
                    }
                    (None, None) => None,
                };
                let Some(d) = data else {
                    return Err(Invalid::new(
                        "schema",
                        "`ris_message` data is not an object",
                    ));
                };
                return self.message(d);
            }
            "ris_subscribe_ok" => RisFrame::SubscribeOk,
            "pong" => RisFrame::Pong,
            "ris_error" => {
                let raw = env.data.map(|d| d.get()).unwrap_or("null");
                let msg = serde_json::from_str::<ErrorData>(raw)
                    .ok()
                    .and_then(|e| e.0)
                    .unwrap_or_else(|| raw.to_string());
                RisFrame::Error(msg)
            }
            other => RisFrame::Other(other.to_string()),
        };
        Ok(Parsed {
            frame,
            invalid: Vec::new(),
        })
    }

    fn vantage_point(
        &mut self,
        peer_ip: IpAddr,
        peer_asn: u32,
        collector: &str,
    ) -> Arc<VantagePoint> {
        if self.cached >= VP_CACHE_LIMIT {
            self.vps.clear();
            self.cached = 0;
        }
        let known = self.vps.entry((peer_ip, peer_asn)).or_default();
        if let Some(vp) = known.iter().find(|v| &*v.collector == collector) {
            return vp.clone();
        }
        if known.len() >= COLLECTORS_PER_PEER {
            // Made-up collector names: the list is searched per frame, so it stays short.
            self.cached -= known.len();
            known.clear();
        }
        let vp = Arc::new(VantagePoint {
            feed: self.feed.clone(),
            collector: collector.into(),
            peer_asn,
            peer_ip,
            exporter: None,
        });
        known.push(vp.clone());
        self.cached += 1;
        vp
    }

    fn header(&mut self, d: &MsgData) -> Result<Header, Invalid> {
        let timestamp = match &d.timestamp {
            Some(n) if n.is_number() => n
                .as_f64()
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(Timestamp::from_secs_f64)
                .ok_or_else(|| Invalid::new("schema", "`timestamp` out of range"))?,
            _ => return Err(Invalid::new("schema", "no numeric `timestamp`")),
        };
        let peer = d
            .peer
            .as_ref()
            .and_then(Scalar::as_str)
            .ok_or_else(|| Invalid::new("schema", "no string `peer`"))?;
        let peer_ip: IpAddr = peer
            .parse()
            .map_err(|_| Invalid::new("invalid_address", format!("peer `{peer}`")))?;
        // Real frames carry `peer_asn` as a string; a number is accepted too.
        let peer_asn = match &d.peer_asn {
            Some(Scalar::Str(s)) => super::bgproutes_parse::parse_asn(s)?,
            Some(v) if v.is_number() => asn_scalar(v)?,
            _ => return Err(Invalid::new("schema", "no `peer_asn`")),
        };
        let host = d.host.as_ref().and_then(Scalar::as_str).unwrap_or("");
        // The collector name is kept with every vantage point: a huge one would be kept too.
        check_name("host", host)?;
        let collector = host.strip_suffix(".ripe.net").unwrap_or(host);
        let kind = d
            .kind
            .as_ref()
            .and_then(Scalar::as_str)
            .ok_or_else(|| Invalid::new("schema", "`ris_message` without a string `type`"))?
            .to_ascii_lowercase();
        Ok(Header {
            timestamp,
            vp: self.vantage_point(peer_ip, peer_asn, collector),
            kind,
        })
    }

    fn message(&mut self, d: MsgData) -> Result<Parsed, Invalid> {
        let h = self.header(&d)?;
        let mut invalid = Vec::new();
        let events = match h.kind.as_str() {
            "update" => update_events(d, &h, &mut invalid)?,
            "state" | "ris_peer_state" => match d.state.as_ref().and_then(Scalar::as_str) {
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
}

/// Text that is not JSON is `not_json`; JSON of the wrong shape is `schema`.
fn frame_error(e: &serde_json::Error, text: &str) -> Invalid {
    if json::is_syntax(e, text) {
        Invalid::new("not_json", format!("frame is not JSON: {e}"))
    } else {
        Invalid::new("schema", format!("frame is not a RIS Live message: {e}"))
    }
}

fn data_error(e: &serde_json::Error) -> Invalid {
    Invalid::new("schema", format!("`ris_message` data: {e}"))
}

/// The outer object: `{"type": …, "data": …}`. RIS Live sends `type` first, so the data of a
/// `ris_message` is usually read as such in the same pass; otherwise it is kept raw and read
/// once the type is known.
struct Envelope<'a> {
    ty: Option<Scalar<'a>>,
    data: Option<&'a RawValue>,
    msg: Option<MaybeMsg<'a>>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut env = Envelope {
                    ty: None,
                    data: None,
                    msg: None,
                };
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "type" => env.ty = Some(map.next_value()?),
                        "data" if matches!(&env.ty, Some(Scalar::Str(t)) if t == "ris_message") => {
                            env.msg = Some(map.next_value()?);
                            env.data = None;
                        }
                        "data" => {
                            env.data = Some(map.next_value()?);
                            env.msg = None;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

/// `ris_error` data: its `message`, if it has a string one.
struct ErrorData(Option<String>);

impl<'de> Deserialize<'de> for ErrorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorData;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut msg = None;
                while let Some(k) = json::key(&mut map)? {
                    if k == "message" {
                        msg = map.next_value::<Scalar>()?.as_str().map(str::to_string);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ErrorData(msg))
            }
        }
        d.deserialize_map(V)
    }
}

/// The fields of a `ris_message` that matter, read in one pass (a repeated key: the last one).
#[derive(Default)]
struct MsgData<'a> {
    timestamp: Option<Scalar<'a>>,
    peer: Option<Scalar<'a>>,
    peer_asn: Option<Scalar<'a>>,
    host: Option<Scalar<'a>>,
    kind: Option<Scalar<'a>>,
    state: Option<Scalar<'a>>,
    path: Option<RisPath>,
    community: Option<RisCommunities>,
    announcements: Option<Announcements<'a>>,
    withdrawals: Option<StrList<'a>>,
}

/// `ris_message` data: `None` when it is not an object.
struct MaybeMsg<'a>(Option<MsgData<'a>>);

impl<'de> Deserialize<'de> for MaybeMsg<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeMsg<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut m = MsgData::default();
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "timestamp" => m.timestamp = Some(map.next_value()?),
                        "peer" => m.peer = Some(map.next_value()?),
                        "peer_asn" => m.peer_asn = Some(map.next_value()?),
                        "host" => m.host = Some(map.next_value()?),
                        "type" => m.kind = Some(map.next_value()?),
                        "state" => m.state = Some(map.next_value()?),
                        "path" => m.path = Some(map.next_value()?),
                        "community" => m.community = Some(map.next_value()?),
                        "announcements" => m.announcements = Some(map.next_value()?),
                        "withdrawals" => m.withdrawals = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(MaybeMsg(Some(m)))
            }
            json::other_json_is!(MaybeMsg(None); scalars, null, array);
        }
        d.deserialize_any(V)
    }
}

/// The fields every `ris_message` carries.
struct Header {
    timestamp: Timestamp,
    vp: Arc<VantagePoint>,
    kind: String,
}

fn asn_scalar(v: &Scalar) -> Result<u32, Invalid> {
    match *v {
        Scalar::U64(a) => u32::try_from(a).ok(),
        _ => None,
    }
    .ok_or_else(|| Invalid::new("invalid_asn", format!("`{v}` is not an ASN")))
}

/// A RIS path (integers, with an AS_SET as a nested list), checked as it is read; what is
/// wrong with it matters only if the message announces something.
struct RisPath(Result<AsPath, Invalid>);

/// One element of a RIS path.
enum PathItem {
    Asn(Result<u32, Invalid>),
    /// An AS_SET: its members (at most one over the path limit are kept) and how many it had.
    Set(Vec<Result<u32, Invalid>>, usize),
}

impl<'de> Deserialize<'de> for PathItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PathItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ASN or a list of ASNs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                let mut count = 0usize;
                while let Some(m) = seq.next_element::<Scalar>()? {
                    count += 1;
                    if members.len() <= super::bgproutes_parse::MAX_AS_PATH_LEN {
                        members.push(asn_scalar(&m));
                    }
                }
                Ok(PathItem::Set(members, count))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::U64(v))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::I64(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::F64(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::Str(v.into()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::Bool(v))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(PathItem::Asn(asn_scalar(&Scalar::Null)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(PathItem::Asn(asn_scalar(&Scalar::Object)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RisPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RisPath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS path")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RisPath(Ok(AsPath::default())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut elems = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(64));
                let mut asns = 0usize;
                let mut failed: Option<Invalid> = None;
                // The rest of a bad path is still read (the frame must stay parsable), not kept.
                while let Some(item) = seq.next_element::<PathItem>()? {
                    if failed.is_some() {
                        continue;
                    }
                    if let Err(e) = check_path_len(asns) {
                        failed = Some(e);
                        continue;
                    }
                    match item {
                        PathItem::Asn(Ok(a)) => {
                            elems.push(PathElem::Asn(a));
                            asns += 1;
                        }
                        PathItem::Asn(Err(e)) => failed = Some(e),
                        PathItem::Set(members, count) => {
                            asns += count;
                            let set = check_path_len(asns).and_then(|()| {
                                members.into_iter().collect::<Result<Vec<u32>, _>>()
                            });
                            match set {
                                Ok(m) if m.is_empty() => {
                                    failed = Some(Invalid::new("schema", "empty AS_SET in `path`"))
                                }
                                Ok(m) => elems.push(PathElem::Set(m.into())),
                                Err(e) => failed = Some(e),
                            }
                        }
                    }
                }
                Ok(RisPath(match failed {
                    Some(e) => Err(e),
                    None => check_path_len(asns).map(|()| AsPath(elems)),
                }))
            }
            json::other_json_is!(not_a_list(); scalars, object);
        }
        fn not_a_list() -> RisPath {
            RisPath(Err(Invalid::new("schema", "`path` is not a list")))
        }
        d.deserialize_any(V)
    }
}

/// Communities as `[a, b]` (standard) or `[a, b, c]` (large) lists; the ones that are neither
/// are kept as text for the report.
#[derive(Default)]
struct RisCommunities {
    list: Vec<Community>,
    invalid: Vec<String>,
}

impl<'de> Deserialize<'de> for RisCommunities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Item(Result<Community, String>);
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a community")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut nums: Vec<Scalar> = Vec::with_capacity(3);
                        let mut count = 0usize;
                        while let Some(n) = seq.next_element::<Scalar>()? {
                            count += 1;
                            if nums.len() < 4 {
                                nums.push(n);
                            }
                        }
                        let u = |s: &Scalar| match *s {
                            Scalar::U64(n) => Some(n),
                            _ => None,
                        };
                        let c = match (count, nums.as_slice()) {
                            (2, [a, b]) => u(a)
                                .zip(u(b))
                                .and_then(|(a, b)| {
                                    Some((u16::try_from(a).ok()?, u16::try_from(b).ok()?))
                                })
                                .map(|(a, b)| Community::Standard(a, b)),
                            (3, [a, b, c]) => (|| {
                                Some(Community::Large(
                                    u32::try_from(u(a)?).ok()?,
                                    u32::try_from(u(b)?).ok()?,
                                    u32::try_from(u(c)?).ok()?,
                                ))
                            })(),
                            _ => None,
                        };
                        Ok(Item(c.ok_or_else(|| {
                            let shown: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
                            let more = if count > nums.len() { ",…" } else { "" };
                            format!("[{}{more}]", shown.join(","))
                        })))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(Item(Err(Scalar::Str(v.into()).to_string())))
                    }
                    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                        Ok(Item(Err(v.to_string())))
                    }
                    fn visit_unit<E>(self) -> Result<Self::Value, E> {
                        Ok(Item(Err("null".into())))
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        Ok(Item(Err("{…}".into())))
                    }
                }
                d.deserialize_any(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RisCommunities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of communities")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = RisCommunities::default();
                while let Some(Item(c)) = seq.next_element()? {
                    match c {
                        Ok(c) => out.list.push(c),
                        Err(text) => out.invalid.push(text),
                    }
                }
                Ok(out)
            }
            // Anything but a list means no communities.
            json::other_json_is!(RisCommunities::default(); scalars, null, object);
        }
        d.deserialize_any(V)
    }
}

/// `announcements`: `Err` when it is neither a list nor `null`.
struct Announcements<'a>(Result<Vec<Announcement<'a>>, ()>);

/// One announcement: `None` when it is not an object.
struct Announcement<'a>(Option<(Option<Scalar<'a>>, StrList<'a>)>);

impl<'de> Deserialize<'de> for Announcement<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Announcement<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an announcement")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut next_hop = None;
                let mut prefixes = StrList::default();
                while let Some(k) = json::key(&mut map)? {
                    match &*k {
                        "next_hop" => next_hop = Some(map.next_value()?),
                        "prefixes" => prefixes = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Announcement(Some((next_hop, prefixes))))
            }
            json::other_json_is!(Announcement(None); scalars, null, array);
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Announcements<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Announcements<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of announcements")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Announcements(Ok(Vec::new())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(a) = seq.next_element()? {
                    out.push(a);
                }
                Ok(Announcements(Ok(out)))
            }
            json::other_json_is!(Announcements(Err(())); scalars, object);
        }
        d.deserialize_any(V)
    }
}

/// The first address of a next hop that may be a comma-joined global,link-local pair.
fn next_hop(v: Option<&Scalar>, invalid: &mut Vec<Invalid>) -> Option<IpAddr> {
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

/// The strings of a list, or the `schema` error of the field `what`.
fn strings<'a, 'l>(list: &'l StrList<'a>, what: &str) -> Result<&'l [Cow<'a, str>], Invalid> {
    match list.error {
        None => Ok(&list.items),
        Some(ListError::NotList) => Err(Invalid::new("schema", format!("`{what}` is not a list"))),
        Some(ListError::NonString) => Err(Invalid::new(
            "schema",
            format!("`{what}` holds a non-string"),
        )),
    }
}

fn update_events(
    d: MsgData,
    h: &Header,
    invalid: &mut Vec<Invalid>,
) -> Result<Vec<FeedEvent>, Invalid> {
    let announcements = match &d.announcements {
        None => &[][..],
        Some(Announcements(Ok(a))) => a.as_slice(),
        Some(Announcements(Err(()))) => {
            return Err(Invalid::new("schema", "`announcements` is not a list"));
        }
    };
    let no_withdrawals = StrList::default();
    let withdrawals = strings(
        d.withdrawals.as_ref().unwrap_or(&no_withdrawals),
        "withdrawals",
    )?;
    let mut listed = withdrawals.len();
    for ann in announcements {
        if let Some((_, p)) = &ann.0 {
            listed = listed.saturating_add(p.len);
        }
    }
    check_prefix_count(listed)?;
    let mut events = Vec::with_capacity(listed);
    if !announcements.is_empty() {
        let path = match d.path {
            None => AsPath::default(),
            Some(RisPath(p)) => p?,
        };
        let comms = match d.community {
            Some(c) => {
                for text in c.invalid {
                    invalid.push(Invalid::new(
                        "invalid_community",
                        format!("`{text}` is not a community"),
                    ));
                }
                c.list
            }
            None => Vec::new(),
        };
        let single = announcements.len() == 1;
        let mut path = Some(path);
        let mut comms = Some(comms);
        for ann in announcements {
            let Some((hop, prefixes)) = &ann.0 else {
                return Err(Invalid::new("schema", "an announcement is not an object"));
            };
            let attrs = Arc::new(RouteAttrs {
                // The usual single announcement takes the path and communities as they are.
                path: if single {
                    path.take().unwrap_or_default()
                } else {
                    path.clone().unwrap_or_default()
                },
                communities: if single {
                    comms.take().unwrap_or_default()
                } else {
                    comms.clone().unwrap_or_default()
                },
                next_hop: next_hop(hop.as_ref(), invalid),
            });
            for p in strings(prefixes, "prefixes")? {
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
