//! Compact binary records for route state, so a snapshot of millions of routes stays small and
//! loads fast.
//!
//! Route blobs come in two formats, told apart by the `format` column of the `routes` table:
//! 1, postcard records with each route's attributes in full (written before schema 2), and 2,
//! each distinct attribute set of the prefix once followed by compact per-route entries. Both
//! are read; only 2 is written.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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

/// Encodes the routes of one prefix in the first format (postcard records, attributes
/// repeated per route); only tests write it now, to check that old stores still load.
#[cfg(test)]
pub fn encode_routes_v1(routes: &[(u32, Arc<RouteAttrs>, Timestamp)]) -> Vec<u8> {
    let records: Vec<RouteRecord> = routes
        .iter()
        .map(|(vp, attrs, since)| RouteRecord {
            vp: *vp,
            since: since.0,
            path: attrs
                .path
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

/// Decodes the routes of one prefix in the first format. Identical attributes share one
/// allocation.
pub fn decode_routes_v1(
    bytes: &[u8],
) -> Result<Vec<(u32, Arc<RouteAttrs>, Timestamp)>, postcard::Error> {
    let records: Vec<RouteRecord> = postcard::from_bytes(bytes)?;
    let mut out: Vec<(u32, Arc<RouteAttrs>, Timestamp)> = Vec::with_capacity(records.len());
    let mut seen: Vec<Arc<RouteAttrs>> = Vec::new();
    for r in records {
        let attrs = RouteAttrs {
            path: AsPath::from(
                r.path
                    .into_iter()
                    .map(|e| match e {
                        Elem::A(a) => PathElem::Asn(a),
                        Elem::S(s) => PathElem::Set(s.into()),
                    })
                    .collect::<Vec<_>>(),
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

/// Why a stored record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed route record: {0}")]
pub struct DecodeError(&'static str);

/// Hasher for keys that come from this program (attribute encodings, pointers): nothing to
/// defend against, and SipHash would cost more than the decoding it saves.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0 ^ u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves its best bits at the top; the table indexes by the low ones.
        self.0.rotate_left(26)
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Writes route blobs in the second format: the distinct attributes of the prefix once, then
/// per route its VP, attribute index and time as deltas. Keeps its scratch space between
/// prefixes.
#[derive(Default)]
pub struct RoutesEncoder {
    index: FastMap<usize, u32>,
    attrs: Vec<u8>,
    attr: Vec<u8>,
    routes: Vec<u8>,
    out: Vec<u8>,
}

impl RoutesEncoder {
    /// Encodes the routes of one prefix; the bytes are valid until the next call.
    pub fn encode(&mut self, routes: &[(u32, Arc<RouteAttrs>, Timestamp)]) -> &[u8] {
        self.index.clear();
        self.attrs.clear();
        self.routes.clear();
        let (mut prev_vp, mut prev_since) = (0i64, 0i64);
        for (vp, attrs, since) in routes {
            // Attributes are shared by pointer in the engine; equal values under different
            // pointers only cost a repeated dictionary entry.
            let next = self.index.len() as u32;
            let i = *self
                .index
                .entry(Arc::as_ptr(attrs) as usize)
                .or_insert_with(|| {
                    self.attr.clear();
                    encode_attrs(&mut self.attr, attrs);
                    put_varint(&mut self.attrs, self.attr.len() as u64);
                    self.attrs.extend_from_slice(&self.attr);
                    next
                });
            put_varint(&mut self.routes, zigzag(*vp as i64 - prev_vp));
            put_varint(&mut self.routes, i as u64);
            put_varint(&mut self.routes, zigzag(since.0.wrapping_sub(prev_since)));
            prev_vp = *vp as i64;
            prev_since = since.0;
        }
        self.out.clear();
        put_varint(&mut self.out, self.index.len() as u64);
        self.out.extend_from_slice(&self.attrs);
        put_varint(&mut self.out, routes.len() as u64);
        self.out.extend_from_slice(&self.routes);
        &self.out
    }
}

fn encode_attrs(out: &mut Vec<u8>, a: &RouteAttrs) {
    put_varint(out, a.path.len() as u64);
    for e in a.path.iter() {
        match e {
            PathElem::Asn(x) => put_varint(out, (*x as u64) << 1),
            PathElem::Set(s) => {
                put_varint(out, ((s.len() as u64) << 1) | 1);
                for x in s.iter() {
                    put_varint(out, *x as u64);
                }
            }
        }
    }
    put_varint(out, a.communities.len() as u64);
    for c in a.communities.iter() {
        match *c {
            Community::Standard(x, y) => put_varint(out, (((x as u64) << 16) | y as u64) << 1),
            Community::Large(x, y, z) => {
                put_varint(out, ((x as u64) << 1) | 1);
                put_varint(out, y as u64);
                put_varint(out, z as u64);
            }
        }
    }
    match a.next_hop {
        None => out.push(0),
        Some(IpAddr::V4(ip)) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
}

/// A bounds-checked cursor over a stored blob.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError("integer too long"))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError("number out of range"))
    }

    /// A count of items of at least one byte each: never more than the bytes left, so a
    /// corrupt count cannot make us reserve much.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > self.buf.len() as u64 {
            return Err(DecodeError("count larger than the record"));
        }
        Ok(n as usize)
    }
}

fn decode_attrs(bytes: &[u8]) -> Result<RouteAttrs, DecodeError> {
    let mut r = Reader { buf: bytes };
    let n = r.count()?;
    let mut path = Vec::with_capacity(n);
    for _ in 0..n {
        let x = r.varint()?;
        if x & 1 == 0 {
            path.push(PathElem::Asn(
                u32::try_from(x >> 1).map_err(|_| DecodeError("ASN out of range"))?,
            ));
        } else {
            let len = usize::try_from(x >> 1).map_err(|_| DecodeError("set too large"))?;
            if len > r.buf.len() {
                return Err(DecodeError("set larger than the record"));
            }
            let set = (0..len).map(|_| r.u32()).collect::<Result<Vec<u32>, _>>()?;
            path.push(PathElem::Set(set.into()));
        }
    }
    let n = r.count()?;
    let mut communities = Vec::with_capacity(n);
    for _ in 0..n {
        let x = r.varint()?;
        let c = if x & 1 == 0 {
            let v = u32::try_from(x >> 1).map_err(|_| DecodeError("community out of range"))?;
            Community::Standard((v >> 16) as u16, v as u16)
        } else {
            let a = u32::try_from(x >> 1).map_err(|_| DecodeError("community out of range"))?;
            Community::Large(a, r.u32()?, r.u32()?)
        };
        communities.push(c);
    }
    let next_hop = match r.byte()? {
        0 => None,
        4 => {
            let b: [u8; 4] = r.take(4)?.try_into().map_err(|_| DecodeError("next hop"))?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = r
                .take(16)?
                .try_into()
                .map_err(|_| DecodeError("next hop"))?;
            Some(IpAddr::from(b))
        }
        _ => return Err(DecodeError("bad next hop")),
    };
    if !r.buf.is_empty() {
        return Err(DecodeError("trailing bytes in attributes"));
    }
    Ok(RouteAttrs {
        path: AsPath::from(path),
        communities: communities.into(),
        next_hop,
    })
}

/// The routes of one prefix: (VP index, attributes, since when).
pub type Routes = Vec<(u32, Arc<RouteAttrs>, Timestamp)>;

/// Reads route blobs of the second format. Identical attributes share one allocation across
/// every blob it decodes, as they did in the engine that wrote them.
#[derive(Default)]
pub struct RoutesDecoder {
    attrs: FastMap<Box<[u8]>, Arc<RouteAttrs>>,
    dict: Vec<Arc<RouteAttrs>>,
}

impl RoutesDecoder {
    /// Decodes the routes of one prefix.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Routes, DecodeError> {
        let mut r = Reader { buf: bytes };
        let n = r.count()?;
        self.dict.clear();
        self.dict.reserve(n);
        for _ in 0..n {
            let len = r.count()?;
            let enc = r.take(len)?;
            let attrs = match self.attrs.get(enc) {
                Some(a) => a.clone(),
                None => {
                    let a = Arc::new(decode_attrs(enc)?);
                    self.attrs.insert(enc.into(), a.clone());
                    a
                }
            };
            self.dict.push(attrs);
        }
        let n = r.count()?;
        let mut out = Vec::with_capacity(n);
        let (mut vp, mut since) = (0i64, 0i64);
        for _ in 0..n {
            vp = vp
                .checked_add(unzigzag(r.varint()?))
                .ok_or(DecodeError("VP index out of range"))?;
            let id = u32::try_from(vp).map_err(|_| DecodeError("VP index out of range"))?;
            let i = r.varint()?;
            let attrs = usize::try_from(i)
                .ok()
                .and_then(|i| self.dict.get(i))
                .ok_or(DecodeError("attribute index out of range"))?;
            since = since.wrapping_add(unzigzag(r.varint()?));
            out.push((id, attrs.clone(), Timestamp(since)));
        }
        if !r.buf.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(out)
    }
}
