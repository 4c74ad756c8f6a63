//! An OpenBMP record (`bmp_raw` topics, as RouteViews and OpenBMP collectors publish): the
//! OpenBMP binary header, read by bgpkit-parser, then one raw BMP message, made into route
//! events by the stateless BMP converter. No state is kept between records, so a consumer can
//! start anywhere in a topic: a route's vantage point comes from the record alone.
//!
//! A vantage point is named like the `bmp` feed's (router + peer + RIB kind), with the
//! OpenBMP collector in front of the RIB kind: `collector/adj_rib_in_pre`. The router's ASN is
//! not in the record (it is in the router's Peer Up, which a consumer may never see), so the
//! exporter's ASN is 0.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bgpkit_parser::parser::bmp::error::ParserBmpError;
use bgpkit_parser::parser::bmp::messages::{BmpPeerType, BmpPerPeerHeader, parse_per_peer_header};
use bgpkit_parser::parser::bmp::openbmp::parse_openbmp_header;
use bytes::Bytes;

use crate::config::BmpRib;
use crate::event::{FeedEvent, Timestamp, VantagePoint};
use crate::feeds::bmp::convert::{Router, parse_route_monitoring, route_events, vantage_point};
use crate::feeds::bmp::frame::{HEADER_LEN, check_header};
use crate::feeds::bmp::session::flags_for;
use crate::feeds::error::{Invalid, InvalidReason};

/// Longest collector name kept from a record (longer ones are cut).
const MAX_COLLECTOR: usize = 64;

/// The part of a record the converter needs.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenBmpRecord<'a> {
    /// The collector's name (OpenBMP's admin id), cut to a printable, bounded name.
    pub collector: String,
    /// The router the BMP message comes from.
    pub router: IpAddr,
    /// When the collector received the message.
    pub collected: Timestamp,
    /// The BMP message, common header included.
    pub message: &'a [u8],
}

/// Why a record gives no events.
#[derive(Debug, Clone, PartialEq)]
pub enum NotUsed {
    /// Well formed, but not BMP from a router (a collector heartbeat, a parsed-message
    /// topic) or not a message that changes routes (Peer Up, Statistics, Initiation, ...).
    Skipped(&'static str),
    /// Not a valid OpenBMP record or BMP message.
    Malformed(Invalid),
}

fn malformed(what: impl Into<String>) -> NotUsed {
    NotUsed::Malformed(Invalid::new(InvalidReason::BmpMessage, what))
}

/// A printable, bounded collector name from the wire.
fn clean_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_COLLECTOR)
        .collect();
    out = out.trim().to_string();
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// Reads the OpenBMP header of `record` and finds the BMP message after it; the message's own
/// common header is checked against the record (version 3, a length that fits).
pub fn read_record(record: &[u8]) -> Result<OpenBmpRecord<'_>, NotUsed> {
    let mut data = Bytes::copy_from_slice(record);
    let header = parse_openbmp_header(&mut data).map_err(|e| match e {
        ParserBmpError::UnsupportedOpenBmpMessage => {
            NotUsed::Skipped("not a raw BMP message from a router")
        }
        e => malformed(format!("OpenBMP header: {e}")),
    })?;
    // The header says how long it is; a later minor version may add fields after those read.
    let read = record.len() - data.len();
    let start = usize::from(header.header_len);
    if start < read || start > record.len() {
        return Err(malformed(format!(
            "OpenBMP header length {start} does not fit the header read ({read} bytes) and the record ({} bytes)",
            record.len()
        )));
    }
    let length = header.msg_len as usize;
    let Some(message) = record.get(start..).and_then(|m| m.get(..length)) else {
        return Err(malformed(format!(
            "OpenBMP message length {length} runs past the record ({} bytes after the header)",
            record.len() - start
        )));
    };
    let Some(common) = message.first_chunk::<HEADER_LEN>() else {
        return Err(malformed(format!(
            "a BMP message of {length} bytes is shorter than its common header"
        )));
    };
    let declared = check_header(common, length).map_err(|e| malformed(e.to_string()))?;
    if declared != length {
        return Err(malformed(format!(
            "the BMP message says it has {declared} bytes, the OpenBMP header {length}"
        )));
    }
    let collected = if header.timestamp.is_finite() && header.timestamp > 0.0 {
        Timestamp::from_secs_f64(header.timestamp)
    } else {
        Timestamp(0)
    };
    Ok(OpenBmpRecord {
        collector: clean_name(&header.admin_id),
        router: header.router_ip.to_canonical(),
        collected,
        message,
    })
}

/// An OpenBMP v1.7 record of `message` (a whole BMP message), as a collector writes it: for
/// tests, benchmarks and tools that publish BMP to a topic. Hashes are left zero.
pub fn write_record(
    collector: &str,
    router: IpAddr,
    collected: Timestamp,
    message: &[u8],
) -> Vec<u8> {
    let collector = collector.as_bytes();
    let collector = &collector[..collector.len().min(usize::from(u16::MAX))];
    // Magic to router group, and the row count.
    let header_len = 4 + 2 + 2 + 4 + 1 + 1 + 4 + 4 + 16 + 2 + collector.len() + 16 + 16 + 2 + 4;
    let mut out = Vec::with_capacity(header_len + message.len());
    out.extend_from_slice(b"OBMP");
    out.extend_from_slice(&[1, 7]);
    out.extend_from_slice(&(header_len as u16).to_be_bytes());
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    let v6 = router.is_ipv6();
    out.push(0x80 | if v6 { 0x40 } else { 0 });
    // Object type 12: a raw BMP message.
    out.push(12);
    let secs = collected.secs().clamp(0, i64::from(u32::MAX)) as u32;
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&(collected.subsec_micros() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&(collector.len() as u16).to_be_bytes());
    out.extend_from_slice(collector);
    out.extend_from_slice(&[0; 16]);
    match router {
        IpAddr::V4(a) => {
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&[0; 12]);
        }
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
    // No router group; one row.
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Vantage points remembered before the cache starts over (a hostile stream of made-up
/// collectors and peers cannot grow it without bound).
const VP_CACHE_LIMIT: usize = 65_536;

/// Turns OpenBMP records into events of one feed; it remembers only the vantage points it has
/// named, so that the events of a peer share one.
#[derive(Debug)]
pub struct OpenBmpDecoder {
    feed: Arc<str>,
    ribs: Vec<BmpRib>,
    vps: HashMap<VantagePoint, Arc<VantagePoint>>,
}

impl OpenBmpDecoder {
    /// A decoder whose events belong to `feed`; only routes of `ribs` become events.
    pub fn new(feed: Arc<str>, ribs: Vec<BmpRib>) -> Self {
        OpenBmpDecoder {
            feed,
            ribs,
            vps: HashMap::new(),
        }
    }

    fn vantage_point(
        &mut self,
        collector: &str,
        router: IpAddr,
        header: &BmpPerPeerHeader,
    ) -> Arc<VantagePoint> {
        let r = Router {
            feed: self.feed.clone(),
            address: router,
            asn: 0,
        };
        let mut vp = vantage_point(&r, header);
        vp.collector = format!("{collector}/{}", vp.collector).into();
        if self.vps.len() >= VP_CACHE_LIMIT {
            self.vps.clear();
        }
        self.vps
            .entry(vp.clone())
            .or_insert_with(|| Arc::new(vp))
            .clone()
    }

    /// The events of one record; `received` stands in for missing times.
    pub fn decode(
        &mut self,
        record: &[u8],
        received: Timestamp,
    ) -> Result<Vec<FeedEvent>, NotUsed> {
        let r = read_record(record)?;
        let fallback = if r.collected.0 > 0 {
            r.collected
        } else {
            received
        };
        match r.message[5] {
            0 => {
                let m = parse_route_monitoring(r.message, false, fallback)
                    .map_err(NotUsed::Malformed)?;
                if !self.ribs.contains(&m.rib) {
                    return Err(NotUsed::Skipped("a RIB kind not in `ribs`"));
                }
                if m.end_of_rib.is_some() {
                    return Err(NotUsed::Skipped("End-of-RIB"));
                }
                let vp = self.vantage_point(&r.collector, r.router, &m.header);
                Ok(route_events(&m, &vp))
            }
            2 => {
                let mut body = Bytes::copy_from_slice(&r.message[HEADER_LEN..]);
                let h = parse_per_peer_header(&mut body)
                    .map_err(|e| malformed(format!("peer_down: per-peer header: {e}")))?;
                let timestamp = if h.timestamp > 0.0 && h.timestamp.is_finite() {
                    Timestamp::from_secs_f64(h.timestamp)
                } else {
                    fallback
                };
                // Every RIB kind of the peer that feeds the detectors loses its routes.
                let kinds: &[BmpRib] = if h.peer_type == BmpPeerType::LocalRib {
                    &[BmpRib::LocRib]
                } else {
                    &[
                        BmpRib::AdjRibInPre,
                        BmpRib::AdjRibInPost,
                        BmpRib::AdjRibOutPre,
                        BmpRib::AdjRibOutPost,
                    ]
                };
                let mut out = Vec::new();
                let wanted: Vec<BmpRib> = kinds
                    .iter()
                    .copied()
                    .filter(|k| self.ribs.contains(k))
                    .collect();
                for rib in wanted {
                    let mut header = h;
                    header.peer_flags = flags_for(rib, &h);
                    let vp = self.vantage_point(&r.collector, r.router, &header);
                    out.push(FeedEvent::PeerDown {
                        timestamp,
                        vp,
                        within: None,
                    });
                }
                Ok(out)
            }
            t => Err(NotUsed::Skipped(crate::feeds::bmp::session::kind_label(t))),
        }
    }
}

#[cfg(test)]
mod tests;
