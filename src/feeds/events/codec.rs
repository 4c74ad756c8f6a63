//! The record encoding of normalised route events on the internal topic that `relay` writes and
//! `run` instances read (`format: events`).
//!
//! A record value is one version byte ([`WIRE_VERSION`]) followed by one [`Wire`] event in
//! [postcard](https://docs.rs/postcard) (serde's compact binary format: varints, no field names).
//! A reader refuses any other version byte, so a change of the layout below is a new version
//! and the relays are upgraded after the instances. The layout, version 1:
//!
//! ```text
//! 0x01 | variant (varint: 0 announce, 1 withdraw, 2 peer down)
//!      | time (zigzag varint, µs since the epoch) | feed (str) | collector (str)
//!      | peer ASN (varint) | peer IP | exporter (option: ASN, IP)
//!      | announce and withdraw: prefix (IP, length)
//!      | announce only: AS path (seq of elements: ASN or AS_SET), communities, next hop (option)
//! ```
//!
//! An announcement of a BMP feed with a five-element path and two communities takes 106 bytes,
//! 22 of them the feed's and the collector's names (see the `events_codec` example for real data).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::event::{
    AsPath, Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp,
    VantagePoint,
};
use crate::feeds::error::{Invalid, InvalidReason, MAX_AS_PATH_LEN};

/// The layout version this build writes and reads.
pub const WIRE_VERSION: u8 = 1;

/// Largest record value read. An UPDATE's attributes fit in 64 KiB on the wire (extended
/// messages included), and one event carries one prefix of them.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Most communities one event carries (a 64 KiB UPDATE holds at most ~16 k standard ones).
pub const MAX_COMMUNITIES: usize = 16_384;

/// Longest feed or collector name read.
pub const MAX_NAME_BYTES: usize = 255;

/// Who saw the event, on the wire.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct WireVp<'a> {
    feed: &'a str,
    collector: &'a str,
    peer_asn: u32,
    peer_ip: IpAddr,
    exporter: Option<(u32, IpAddr)>,
}

/// An AS path element, on the wire.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum WirePathElem {
    Asn(u32),
    Set(Vec<u32>),
}

/// A community, on the wire.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum WireCommunity {
    Standard(u16, u16),
    Large(u32, u32, u32),
}

/// One event, on the wire. The variant order is part of the layout: append, never reorder.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Wire<'a> {
    Announce {
        time_us: i64,
        #[serde(borrow)]
        vp: WireVp<'a>,
        prefix: IpNet,
        path: Vec<WirePathElem>,
        communities: Vec<WireCommunity>,
        next_hop: Option<IpAddr>,
    },
    Withdraw {
        time_us: i64,
        #[serde(borrow)]
        vp: WireVp<'a>,
        prefix: IpNet,
    },
    PeerDown {
        time_us: i64,
        #[serde(borrow)]
        vp: WireVp<'a>,
    },
}

fn wire_vp(vp: &VantagePoint) -> WireVp<'_> {
    WireVp {
        feed: &vp.feed,
        collector: &vp.collector,
        peer_asn: vp.peer_asn,
        peer_ip: vp.peer_ip,
        exporter: vp.exporter,
    }
}

/// Encodes a route event or a peer down into `out` (cleared first). Returns false, writing
/// nothing, for a loaded state: that is not an event of the stream.
pub fn encode(event: &FeedEvent, out: &mut Vec<u8>) -> bool {
    out.clear();
    let wire = match event {
        FeedEvent::Route(r) => match &r.change {
            RouteChange::Announce(a) => Wire::Announce {
                time_us: r.timestamp.0,
                vp: wire_vp(&r.vp),
                prefix: r.prefix,
                path: a
                    .path
                    .iter()
                    .map(|e| match e {
                        PathElem::Asn(a) => WirePathElem::Asn(*a),
                        PathElem::Set(s) => WirePathElem::Set(s.to_vec()),
                    })
                    .collect(),
                communities: a
                    .communities
                    .iter()
                    .map(|c| match *c {
                        Community::Standard(a, b) => WireCommunity::Standard(a, b),
                        Community::Large(a, b, c) => WireCommunity::Large(a, b, c),
                    })
                    .collect(),
                next_hop: a.next_hop,
            },
            RouteChange::Withdraw => Wire::Withdraw {
                time_us: r.timestamp.0,
                vp: wire_vp(&r.vp),
                prefix: r.prefix,
            },
        },
        FeedEvent::PeerDown { timestamp, vp, .. } => Wire::PeerDown {
            time_us: timestamp.0,
            vp: wire_vp(vp),
        },
        _ => return false,
    };
    out.push(WIRE_VERSION);
    // Into memory: postcard fails only on types it cannot represent, and these are plain data.
    match postcard::to_io(&wire, &mut *out) {
        Ok(_) => true,
        Err(_) => {
            out.clear();
            false
        }
    }
}

/// Decodes record values into events, sharing one vantage point value between the events of
/// the same VP (the engine and the alerts hold many references to it).
#[derive(Debug, Default)]
pub struct Decoder {
    vps: std::collections::HashMap<VantagePoint, Arc<VantagePoint>>,
}

/// VPs remembered by a [`Decoder`] before it starts afresh (a full table of RouteViews has a
/// few thousand; a hostile topic must not grow it without bound).
const MAX_REMEMBERED_VPS: usize = 100_000;

fn schema(detail: impl Into<String>) -> Invalid {
    Invalid::new(InvalidReason::Schema, detail)
}

impl Decoder {
    /// Reads one record value.
    pub fn decode(&mut self, value: &[u8]) -> Result<FeedEvent, Invalid> {
        if value.len() > MAX_RECORD_BYTES {
            return Err(Invalid::new(
                InvalidReason::Oversized,
                format!(
                    "event record of {} bytes; the limit is {MAX_RECORD_BYTES}",
                    value.len()
                ),
            ));
        }
        let Some((&version, body)) = value.split_first() else {
            return Err(schema("empty event record"));
        };
        if version != WIRE_VERSION {
            return Err(schema(format!(
                "event record of layout version {version}; this build reads version \
                 {WIRE_VERSION} (upgrade the run instances before the relays)"
            )));
        }
        let (wire, rest): (Wire<'_>, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| schema(format!("event record: {e}")))?;
        if !rest.is_empty() {
            return Err(schema(format!(
                "{} bytes after the event in its record",
                rest.len()
            )));
        }
        match wire {
            Wire::Announce {
                time_us,
                vp,
                prefix,
                path,
                communities,
                next_hop,
            } => {
                let members: usize = path
                    .iter()
                    .map(|e| match e {
                        WirePathElem::Asn(_) => 1,
                        WirePathElem::Set(s) => s.len(),
                    })
                    .sum();
                if members > MAX_AS_PATH_LEN {
                    return Err(Invalid::new(
                        InvalidReason::PathTooLong,
                        format!("AS path of {members} ASNs; the limit is {MAX_AS_PATH_LEN}"),
                    ));
                }
                if communities.len() > MAX_COMMUNITIES {
                    return Err(Invalid::new(
                        InvalidReason::OversizedField,
                        format!(
                            "{} communities; the limit is {MAX_COMMUNITIES}",
                            communities.len()
                        ),
                    ));
                }
                let attrs = RouteAttrs {
                    path: AsPath::from(
                        path.into_iter()
                            .map(|e| match e {
                                WirePathElem::Asn(a) => PathElem::Asn(a),
                                WirePathElem::Set(s) => PathElem::Set(s.into()),
                            })
                            .collect::<Vec<_>>(),
                    ),
                    communities: communities
                        .into_iter()
                        .map(|c| match c {
                            WireCommunity::Standard(a, b) => Community::Standard(a, b),
                            WireCommunity::Large(a, b, c) => Community::Large(a, b, c),
                        })
                        .collect(),
                    next_hop,
                };
                Ok(FeedEvent::Route(RouteEvent {
                    timestamp: Timestamp(time_us),
                    vp: self.vp(vp)?,
                    prefix: normalised(prefix)?,
                    change: RouteChange::Announce(Arc::new(attrs)),
                }))
            }
            Wire::Withdraw {
                time_us,
                vp,
                prefix,
            } => Ok(FeedEvent::Route(RouteEvent {
                timestamp: Timestamp(time_us),
                vp: self.vp(vp)?,
                prefix: normalised(prefix)?,
                change: RouteChange::Withdraw,
            })),
            Wire::PeerDown { time_us, vp } => Ok(FeedEvent::PeerDown {
                timestamp: Timestamp(time_us),
                vp: self.vp(vp)?,
                within: None,
            }),
        }
    }

    fn vp(&mut self, w: WireVp<'_>) -> Result<Arc<VantagePoint>, Invalid> {
        for name in [w.feed, w.collector] {
            if name.len() > MAX_NAME_BYTES {
                return Err(Invalid::new(
                    InvalidReason::OversizedField,
                    format!(
                        "feed or collector name of {} bytes; the limit is {MAX_NAME_BYTES}",
                        name.len()
                    ),
                ));
            }
        }
        let vp = VantagePoint {
            feed: w.feed.into(),
            collector: w.collector.into(),
            peer_asn: w.peer_asn,
            peer_ip: w.peer_ip,
            exporter: w.exporter,
        };
        if let Some(known) = self.vps.get(&vp) {
            return Ok(known.clone());
        }
        if self.vps.len() >= MAX_REMEMBERED_VPS {
            self.vps.clear();
        }
        let shared = Arc::new(vp.clone());
        self.vps.insert(vp, shared.clone());
        Ok(shared)
    }
}

/// The relay writes prefixes with their host bits clear; anything else was not written by it.
fn normalised(prefix: IpNet) -> Result<IpNet, Invalid> {
    if prefix.trunc() != prefix {
        return Err(Invalid::new(
            InvalidReason::InvalidPrefix,
            format!("{prefix} has host bits set"),
        ));
    }
    Ok(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(feed: &str) -> Arc<VantagePoint> {
        Arc::new(VantagePoint {
            feed: feed.into(),
            collector: "route-views2".into(),
            peer_asn: 3333,
            peer_ip: "193.0.0.56".parse().unwrap(),
            exporter: Some((6447, "2001:db8::1".parse().unwrap())),
        })
    }

    fn announce() -> FeedEvent {
        FeedEvent::Route(RouteEvent {
            timestamp: Timestamp::from_parts(1_470_931_200, 123_456),
            vp: vp("routeviews"),
            prefix: "202.134.148.0/24".parse().unwrap(),
            change: RouteChange::Announce(Arc::new(RouteAttrs {
                path: AsPath::from(vec![
                    PathElem::Asn(3333),
                    PathElem::Asn(1299),
                    PathElem::Asn(4755),
                    PathElem::Asn(18196),
                    PathElem::Set(vec![64496, 64497].into()),
                ]),
                communities: vec![
                    Community::Standard(3333, 1000),
                    Community::Large(1299, 1, 2),
                ]
                .into(),
                next_hop: Some("193.0.0.56".parse().unwrap()),
            })),
        })
    }

    fn encoded(ev: &FeedEvent) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode(ev, &mut out));
        out
    }

    #[test]
    fn every_kind_of_event_reads_back_as_written() {
        let events = [
            announce(),
            FeedEvent::Route(RouteEvent {
                timestamp: Timestamp(-5),
                vp: vp("ris"),
                prefix: "2001:db8:100::/40".parse().unwrap(),
                change: RouteChange::Withdraw,
            }),
            FeedEvent::PeerDown {
                timestamp: Timestamp(i64::MAX),
                vp: vp("ris"),
                within: None,
            },
        ];
        let mut d = Decoder::default();
        for ev in &events {
            let bytes = encoded(ev);
            assert_eq!(bytes[0], WIRE_VERSION);
            assert_eq!(&d.decode(&bytes).unwrap(), ev);
        }
        // Compact: no field names, varints. Of its 106 bytes, 22 are the feed's and the
        // collector's names and 17 the exporter's IPv6 address.
        assert_eq!(encoded(&announce()).len(), 106);
    }

    #[test]
    fn the_fuzz_seeds_say_what_their_names_say() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/events_record");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let mut d = Decoder::default();
        for good in [
            "seed-announce",
            "seed-announce-v6-exporter",
            "seed-withdraw",
            "seed-peer-down",
        ] {
            let ev = d
                .decode(&read(good))
                .unwrap_or_else(|e| panic!("{good}: {e}"));
            let mut again = Vec::new();
            assert!(encode(&ev, &mut again));
            assert_eq!(again, read(good), "{good} is what the encoder writes");
        }
        let FeedEvent::Route(r) = d.decode(&read("seed-announce")).unwrap() else {
            panic!("not a route")
        };
        assert_eq!(r.prefix.to_string(), "202.134.148.0/24");
        assert_eq!(r.vp.peer_asn, 3333);
        for (bad, reason) in [
            ("seed-wrong-version", InvalidReason::Schema),
            ("seed-host-bits", InvalidReason::InvalidPrefix),
            ("seed-truncated", InvalidReason::Schema),
            ("seed-huge-length", InvalidReason::Schema),
        ] {
            assert_eq!(d.decode(&read(bad)).unwrap_err().reason, reason, "{bad}");
        }
    }

    #[test]
    fn events_of_one_vp_share_its_value() {
        let mut d = Decoder::default();
        let bytes = encoded(&announce());
        let (FeedEvent::Route(a), FeedEvent::Route(b)) =
            (d.decode(&bytes).unwrap(), d.decode(&bytes).unwrap())
        else {
            panic!("not routes")
        };
        assert!(Arc::ptr_eq(&a.vp, &b.vp));
    }

    #[test]
    fn a_loaded_state_is_not_written() {
        let mut out = vec![1, 2, 3];
        assert!(!encode(
            &FeedEvent::Loaded(Arc::new(crate::event::LoadedState {
                feed: "x".into(),
                timestamp: Timestamp(0),
                scope: vec![],
                routes: vec![],
                applied: Default::default(),
            })),
            &mut out
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn every_truncation_of_a_record_is_refused() {
        let bytes = encoded(&announce());
        let mut d = Decoder::default();
        for len in 0..bytes.len() {
            let err = d.decode(&bytes[..len]).unwrap_err();
            assert_eq!(err.reason, InvalidReason::Schema, "{len}: {err}");
        }
    }

    #[test]
    fn another_version_trailing_bytes_and_garbage_are_refused() {
        let mut d = Decoder::default();
        let mut bytes = encoded(&announce());
        bytes[0] = 2;
        let err = d.decode(&bytes).unwrap_err();
        assert!(err.detail.contains("version 2"), "{err}");
        bytes[0] = WIRE_VERSION;
        bytes.push(0);
        let err = d.decode(&bytes).unwrap_err();
        assert!(err.detail.contains("1 bytes after"), "{err}");
        // An unknown variant, and varints that never end.
        assert!(d.decode(&[WIRE_VERSION, 9, 0, 0]).is_err());
        assert!(
            d.decode(&[WIRE_VERSION, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .is_err()
        );
        // Every single-byte change of a valid record either decodes or is refused: no panic.
        let good = encoded(&announce());
        for i in 0..good.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = d.decode(&bad);
            }
        }
    }

    #[test]
    fn oversized_records_long_paths_and_names_are_refused() {
        let mut d = Decoder::default();
        let err = d
            .decode(&vec![WIRE_VERSION; MAX_RECORD_BYTES + 1])
            .unwrap_err();
        assert_eq!(err.reason, InvalidReason::Oversized);

        let long_path = |n: usize| {
            let FeedEvent::Route(mut r) = announce() else {
                unreachable!()
            };
            r.change = RouteChange::Announce(Arc::new(RouteAttrs {
                path: AsPath::from_asns((0..n as u32).map(|i| 64496 + i)),
                ..Default::default()
            }));
            encoded(&FeedEvent::Route(r))
        };
        assert!(d.decode(&long_path(MAX_AS_PATH_LEN)).is_ok());
        let err = d.decode(&long_path(MAX_AS_PATH_LEN + 1)).unwrap_err();
        assert_eq!(err.reason, InvalidReason::PathTooLong);

        let FeedEvent::Route(mut r) = announce() else {
            unreachable!()
        };
        r.vp = Arc::new(VantagePoint {
            collector: "c".repeat(MAX_NAME_BYTES + 1).into(),
            ..(*r.vp).clone()
        });
        let err = d.decode(&encoded(&FeedEvent::Route(r))).unwrap_err();
        assert_eq!(err.reason, InvalidReason::OversizedField);
    }

    #[test]
    fn prefixes_with_host_bits_or_bad_lengths_are_refused() {
        let mut d = Decoder::default();
        let FeedEvent::Route(mut r) = announce() else {
            unreachable!()
        };
        r.prefix = "202.134.148.7/24".parse().unwrap();
        let err = d.decode(&encoded(&FeedEvent::Route(r))).unwrap_err();
        assert_eq!(err.reason, InvalidReason::InvalidPrefix);
        // A prefix length of 33 for IPv4: find the length byte of a /24 and raise it.
        let mut bytes = encoded(&announce());
        let at = bytes
            .windows(5)
            .position(|w| w == [202, 134, 148, 0, 24])
            .expect("the prefix is written as its bytes and length")
            + 4;
        bytes[at] = 33;
        assert!(d.decode(&bytes).is_err());
    }
}
