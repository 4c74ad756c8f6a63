//! Compact binary records for route state (postcard), so a snapshot of millions of routes
//! stays small and loads fast.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::{AsPath, Community, PathElem, RouteAttrs, Timestamp, VantagePoint};

#[derive(Serialize, Deserialize)]
struct VpRecord {
    feed: String,
    collector: String,
    peer_asn: u32,
    peer_ip: IpAddr,
    exporter: Option<(u32, IpAddr)>,
}

#[derive(Serialize, Deserialize)]
enum Elem {
    A(u32),
    S(Vec<u32>),
}

#[derive(Serialize, Deserialize)]
enum Comm {
    S(u16, u16),
    L(u32, u32, u32),
}

#[derive(Serialize, Deserialize)]
struct RouteRecord {
    vp: u32,
    since: i64,
    path: Vec<Elem>,
    communities: Vec<Comm>,
    next_hop: Option<IpAddr>,
}

/// Encodes a VP.
pub fn encode_vp(vp: &VantagePoint) -> Vec<u8> {
    postcard::to_stdvec(&VpRecord {
        feed: vp.feed.to_string(),
        collector: vp.collector.to_string(),
        peer_asn: vp.peer_asn,
        peer_ip: vp.peer_ip,
        exporter: vp.exporter,
    })
    .unwrap_or_default()
}

/// Decodes a VP.
pub fn decode_vp(bytes: &[u8]) -> Result<VantagePoint, postcard::Error> {
    let r: VpRecord = postcard::from_bytes(bytes)?;
    Ok(VantagePoint {
        feed: r.feed.into(),
        collector: r.collector.into(),
        peer_asn: r.peer_asn,
        peer_ip: r.peer_ip,
        exporter: r.exporter,
    })
}

/// Encodes the routes of one prefix.
pub fn encode_routes(routes: &[(u32, Arc<RouteAttrs>, Timestamp)]) -> Vec<u8> {
    let records: Vec<RouteRecord> = routes
        .iter()
        .map(|(vp, attrs, since)| RouteRecord {
            vp: *vp,
            since: since.0,
            path: attrs
                .path
                .0
                .iter()
                .map(|e| match e {
                    PathElem::Asn(a) => Elem::A(*a),
                    PathElem::Set(s) => Elem::S(s.to_vec()),
                })
                .collect(),
            communities: attrs
                .communities
                .iter()
                .map(|c| match *c {
                    Community::Standard(a, b) => Comm::S(a, b),
                    Community::Large(a, b, c) => Comm::L(a, b, c),
                })
                .collect(),
            next_hop: attrs.next_hop,
        })
        .collect();
    postcard::to_stdvec(&records).unwrap_or_default()
}

/// Decodes the routes of one prefix. Identical attributes share one allocation.
pub fn decode_routes(
    bytes: &[u8],
) -> Result<Vec<(u32, Arc<RouteAttrs>, Timestamp)>, postcard::Error> {
    let records: Vec<RouteRecord> = postcard::from_bytes(bytes)?;
    let mut out: Vec<(u32, Arc<RouteAttrs>, Timestamp)> = Vec::with_capacity(records.len());
    let mut seen: Vec<Arc<RouteAttrs>> = Vec::new();
    for r in records {
        let attrs = RouteAttrs {
            path: AsPath(
                r.path
                    .into_iter()
                    .map(|e| match e {
                        Elem::A(a) => PathElem::Asn(a),
                        Elem::S(s) => PathElem::Set(s.into()),
                    })
                    .collect(),
            ),
            communities: r
                .communities
                .into_iter()
                .map(|c| match c {
                    Comm::S(a, b) => Community::Standard(a, b),
                    Comm::L(a, b, c) => Community::Large(a, b, c),
                })
                .collect(),
            next_hop: r.next_hop,
        };
        // Few distinct routes per prefix: a short linear search beats hashing here.
        let shared = match seen.iter().find(|s| ***s == attrs) {
            Some(s) => s.clone(),
            None => {
                let a = Arc::new(attrs);
                if seen.len() < 16 {
                    seen.push(a.clone());
                }
                a
            }
        };
        out.push((r.vp, shared, Timestamp(r.since)));
    }
    Ok(out)
}
