//! Pure parser of RIPE RIS Live frames, without I/O so it can be fuzzed on its own.
//!
//! Text in, [`RisFrame`] out, with route events for `ris_message` UPDATEs and peer-down events
//! for `STATE` changes.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use super::frame::{Announcements, Envelope, ErrorData, MaybeMsg, MsgData, RisPath, asn_scalar};
use crate::event::{
    AsPath, Community, FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use crate::feeds::admit::check_name;
use crate::feeds::error::{Invalid, InvalidReason, check_prefix_count};
use crate::feeds::fields::{parse_asn, parse_prefix};
use crate::feeds::json::{self, ListError, Scalar, StrList};
use foldhash::HashMap;

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
    /// foldhash (seeded per process): looked up once per frame.
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
            vps: HashMap::default(),
            cached: 0,
        }
    }

    /// Parses one text frame.
    pub fn parse(&mut self, text: &str) -> Result<Parsed, Invalid> {
        let env: Envelope = serde_json::from_str(text).map_err(|e| frame_error(&e, text))?;
        let ty = match env.ty {
            Some(Scalar::Str(s)) => s,
            _ => {
                return Err(Invalid::new(
                    InvalidReason::Schema,
                    "frame has no string `type`",
                ));
            }
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
                        InvalidReason::Schema,
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
                .ok_or_else(|| Invalid::new(InvalidReason::Schema, "`timestamp` out of range"))?,
            _ => {
                return Err(Invalid::new(
                    InvalidReason::Schema,
                    "no numeric `timestamp`",
                ));
            }
        };
        let peer = d
            .peer
            .as_ref()
            .and_then(Scalar::as_str)
            .ok_or_else(|| Invalid::new(InvalidReason::Schema, "no string `peer`"))?;
        let peer_ip: IpAddr = peer
            .parse()
            .map_err(|_| Invalid::new(InvalidReason::InvalidAddress, format!("peer `{peer}`")))?;
        // Real frames carry `peer_asn` as a string; a number is accepted too.
        let peer_asn = match &d.peer_asn {
            Some(Scalar::Str(s)) => parse_asn(s)?,
            Some(v) if v.is_number() => asn_scalar(v)?,
            _ => return Err(Invalid::new(InvalidReason::Schema, "no `peer_asn`")),
        };
        let host = d.host.as_ref().and_then(Scalar::as_str).unwrap_or("");
        // The collector name is kept with every vantage point: a huge one would be kept too.
        check_name("host", host)?;
        let collector = host.strip_suffix(".ripe.net").unwrap_or(host);
        let kind = d
            .kind
            .as_ref()
            .and_then(Scalar::as_str)
            .ok_or_else(|| {
                Invalid::new(
                    InvalidReason::Schema,
                    "`ris_message` without a string `type`",
                )
            })?
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
                    within: None,
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
        Invalid::new(InvalidReason::NotJson, format!("frame is not JSON: {e}"))
    } else {
        Invalid::new(
            InvalidReason::Schema,
            format!("frame is not a RIS Live message: {e}"),
        )
    }
}

fn data_error(e: &serde_json::Error) -> Invalid {
    Invalid::new(InvalidReason::Schema, format!("`ris_message` data: {e}"))
}

/// The fields every `ris_message` carries.
struct Header {
    timestamp: Timestamp,
    vp: Arc<VantagePoint>,
    kind: String,
}

/// The first address of a next hop that may be a comma-joined global,link-local pair.
fn next_hop(v: Option<&Scalar>, invalid: &mut Vec<Invalid>) -> Option<IpAddr> {
    let s = v?.as_str()?;
    let first = s.split(',').next().unwrap_or("").trim();
    match first.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            invalid.push(Invalid::new(
                InvalidReason::InvalidAddress,
                format!("next hop `{s}`"),
            ));
            None
        }
    }
}

/// The strings of a list, or the `schema` error of the field `what`.
fn strings<'a, 'l>(list: &'l StrList<'a>, what: &str) -> Result<&'l [Cow<'a, str>], Invalid> {
    match list.error {
        None => Ok(&list.items),
        Some(ListError::NotList) => Err(Invalid::new(
            InvalidReason::Schema,
            format!("`{what}` is not a list"),
        )),
        Some(ListError::NonString) => Err(Invalid::new(
            InvalidReason::Schema,
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
            return Err(Invalid::new(
                InvalidReason::Schema,
                "`announcements` is not a list",
            ));
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
        let comms: Arc<[Community]> = match d.community {
            Some(c) => {
                for text in c.invalid {
                    invalid.push(Invalid::new(
                        InvalidReason::InvalidCommunity,
                        format!("`{text}` is not a community"),
                    ));
                }
                c.list.into()
            }
            None => Arc::default(),
        };
        let single = announcements.len() == 1;
        let mut path = Some(path);
        for ann in announcements {
            let Some((hop, prefixes)) = &ann.0 else {
                return Err(Invalid::new(
                    InvalidReason::Schema,
                    "an announcement is not an object",
                ));
            };
            let attrs = Arc::new(RouteAttrs {
                // The usual single announcement takes the path and communities as they are.
                path: if single {
                    path.take().unwrap_or_default()
                } else {
                    path.clone().unwrap_or_default()
                },
                communities: comms.clone(),
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

#[cfg(test)]
mod tests;
