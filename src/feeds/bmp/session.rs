//! One router's BMP session: its peers, the routes each vantage point holds, and what every
//! message changes, as route events. No I/O: the listener feeds it messages and hands its
//! events to the engine; tests feed it recorded streams.
//!
//! Routes are kept per vantage point (only for the RIB kinds that feed the detectors) for two
//! things the engine cannot do alone: with Add-Path a peer sends several paths for a prefix,
//! and the prefix is gone only when its last path is; and when a router reconnects within the
//! hold time, the routes it does not send again (by its End-of-RIB or by the end of the hold)
//! are withdrawn instead of lingering. That costs about 330 bytes per route with its attributes
//! (examples/bmp_session.rs).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use bgpkit_parser::models::capabilities::AddPathSendReceive;
use bgpkit_parser::models::{Afi, BgpMessage, CapabilityValue, ParamValue};
use bgpkit_parser::parser::bmp::messages::{
    BmpMessageBody, BmpPeerType, BmpPerPeerHeader, StatsData,
};
use bytes::Bytes;
use ipnet::IpNet;

use super::convert::{Router, parse_route_monitoring, rib_of, vantage_point};
use crate::config::BmpRib;
use crate::event::{FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint};
use crate::feeds::error::{Invalid, InvalidReason};

/// A peer of the router, as BMP names it: Loc-RIB or not, route distinguisher, address.
pub type PeerKey = (bool, u64, IpAddr);

/// The paths a vantage point holds, by prefix and Add-Path id.
type Paths = BTreeMap<(IpNet, u32), Arc<RouteAttrs>>;

/// One vantage point's routes.
#[derive(Debug)]
struct Tracked {
    vp: Arc<VantagePoint>,
    paths: Paths,
    /// Paths from before a reconnection not yet sent again.
    stale: Paths,
}

/// One peer of the router.
#[derive(Debug, Default)]
struct Peer {
    /// A Peer Up was seen (a Route Monitoring without one still creates the peer).
    up: bool,
    /// Add-Path was negotiated for the routes the peer sends (Adj-RIB-In) and for those the
    /// router sends it (Adj-RIB-Out).
    add_path_in: bool,
    add_path_out: bool,
    ribs: HashMap<BmpRib, Tracked>,
}

/// What a router leaves behind when its connection ends, kept for the hold time.
#[derive(Debug, Default)]
pub struct Held {
    /// The router's name and ASN, so its vantage points keep their identity.
    pub name: Option<String>,
    asn: u32,
    peers: HashMap<PeerKey, Peer>,
}

impl Held {
    /// Every route of the router is gone: one peer-down per vantage point.
    pub fn expire(self, now: Timestamp) -> Vec<FeedEvent> {
        self.peers
            .into_values()
            .flat_map(|p| p.ribs.into_values())
            .map(|t| FeedEvent::PeerDown {
                timestamp: now,
                vp: t.vp,
                within: None,
            })
            .collect()
    }

    /// Vantage points held.
    pub fn vantage_points(&self) -> usize {
        self.peers.values().map(|p| p.ribs.len()).sum()
    }
}

/// A Statistics Report counter of one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// The peer, as `address` or `address@distinguisher` (`loc_rib` for the router's own).
    pub peer: String,
    /// The IANA statistics type, with AFI and SAFI for the per-family ones (`9/1/1`).
    pub stat: String,
    /// Its value.
    pub value: f64,
}

/// What one message did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The message type, as the `type` label of the message counter.
    pub kind: &'static str,
    /// Route events for the engine.
    pub events: Vec<FeedEvent>,
    /// Statistics reported.
    pub stats: Vec<Stat>,
    /// What could not be used (the session goes on).
    pub invalid: Option<Invalid>,
    /// The router ended the session with a Termination message (its reason).
    pub terminated: Option<String>,
}

/// One router's session.
#[derive(Debug)]
pub struct Session {
    router: Router,
    detect: Vec<BmpRib>,
    /// The router's sysName from its Initiation.
    pub name: Option<String>,
    /// The router's sysDescr from its Initiation.
    pub description: Option<String>,
    peers: HashMap<PeerKey, Peer>,
    /// Peers of the previous connection not seen again yet.
    held: HashMap<PeerKey, Peer>,
}

/// Longest router name or description kept (from the wire).
const MAX_TEXT: usize = 256;

fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].trim_matches(char::from(0)).to_string()
}

/// The label of a message type.
pub fn kind_label(t: u8) -> &'static str {
    match t {
        0 => "route_monitoring",
        1 => "statistics_report",
        2 => "peer_down",
        3 => "peer_up",
        4 => "initiation",
        5 => "termination",
        6 => "route_mirroring",
        _ => "unknown",
    }
}

/// Every message type label, for counters that exist from the start.
pub const KINDS: [&str; 8] = [
    "route_monitoring",
    "statistics_report",
    "peer_down",
    "peer_up",
    "initiation",
    "termination",
    "route_mirroring",
    "unknown",
];

fn peer_key(h: &BmpPerPeerHeader) -> PeerKey {
    (
        h.peer_type == BmpPeerType::LocalRib,
        h.peer_distinguisher,
        h.peer_ip,
    )
}

fn peer_label(key: &PeerKey) -> String {
    match key {
        (true, 0, _) => "loc_rib".to_string(),
        (true, d, _) => format!("loc_rib@{d}"),
        (false, 0, ip) => ip.to_string(),
        (false, d, ip) => format!("{ip}@{d}"),
    }
}

/// The ASN and Add-Path capabilities of an OPEN: (asn, sends paths, receives paths).
fn open_facts(m: &BgpMessage) -> (u32, bool, bool) {
    let BgpMessage::Open(open) = m else {
        return (0, false, false);
    };
    let mut asn = open.asn.to_u32();
    let (mut send, mut receive) = (false, false);
    for p in &open.opt_params {
        let ParamValue::Capacities(caps) = &p.param_value else {
            continue;
        };
        for c in caps {
            match &c.value {
                CapabilityValue::FourOctetAs(f) => asn = f.asn,
                CapabilityValue::AddPath(a) => {
                    for f in &a.address_families {
                        match f.send_receive {
                            AddPathSendReceive::Send => send = true,
                            AddPathSendReceive::Receive => receive = true,
                            AddPathSendReceive::SendReceive => {
                                send = true;
                                receive = true;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    (asn, send, receive)
}

fn afi_of(prefix: &IpNet) -> Afi {
    match prefix {
        IpNet::V4(_) => Afi::Ipv4,
        IpNet::V6(_) => Afi::Ipv6,
    }
}

impl Session {
    /// A session of the router at `address`; `detect` are the RIB kinds whose routes become
    /// events; `held` is what the router's previous connection left within the hold time.
    pub fn new(feed: Arc<str>, address: IpAddr, detect: Vec<BmpRib>, held: Option<Held>) -> Self {
        let held = held.unwrap_or_default();
        Session {
            router: Router {
                feed,
                address,
                asn: held.asn,
            },
            detect,
            name: held.name,
            description: None,
            peers: HashMap::new(),
            held: held.peers,
        }
    }

    /// Peers up now.
    pub fn peers_up(&self) -> usize {
        self.peers.values().filter(|p| p.up).count()
    }

    /// Handles one framed message (common header included); `now` is the time of receipt.
    pub fn handle(&mut self, message: &[u8], now: Timestamp) -> Outcome {
        let kind = kind_label(message.get(5).copied().unwrap_or(255));
        let mut out = Outcome {
            kind,
            ..Outcome::default()
        };
        let result = match kind {
            "route_monitoring" => self.route_monitoring(message, now, &mut out),
            // RFC 7854: unknown types are ignored; mirrored PDUs are not routes.
            "unknown" | "route_mirroring" => Ok(()),
            _ => self.other(message, now, &mut out),
        };
        if let Err(bad) = result {
            out.invalid = Some(bad);
        }
        out
    }

    fn route_monitoring(
        &mut self,
        message: &[u8],
        now: Timestamp,
        out: &mut Outcome,
    ) -> Result<(), Invalid> {
        // The header alone first: the Add-Path flag depends on the peer.
        let header_only = parse_route_monitoring_peer(message)?;
        let key = peer_key(&header_only);
        let rib = rib_of(&header_only);
        let peer = self.peers.entry(key).or_default();
        let add_path = match rib {
            BmpRib::AdjRibOutPre | BmpRib::AdjRibOutPost => peer.add_path_out,
            _ => peer.add_path_in,
        };
        let m = parse_route_monitoring(message, add_path, now)?;
        if !self.detect.contains(&m.rib) {
            return Ok(());
        }
        let router = &self.router;
        let tracked = peer.ribs.entry(m.rib).or_insert_with(|| Tracked {
            vp: Arc::new(vantage_point(router, &m.header)),
            paths: Paths::new(),
            stale: Paths::new(),
        });
        if let Some(afi) = m.end_of_rib {
            sweep(tracked, Some(afi), m.timestamp, &mut out.events);
            return Ok(());
        }
        for c in m.changes {
            let key = (c.prefix, c.path_id);
            tracked.stale.remove(&key);
            let change = match c.change {
                RouteChange::Announce(attrs) => {
                    tracked.paths.insert(key, attrs.clone());
                    RouteChange::Announce(attrs)
                }
                RouteChange::Withdraw => {
                    tracked.paths.remove(&key);
                    match any_path(&tracked.paths, c.prefix) {
                        // Another path of the prefix remains: that is the route now.
                        Some(other) => RouteChange::Announce(other),
                        None => RouteChange::Withdraw,
                    }
                }
            };
            out.events.push(FeedEvent::Route(RouteEvent {
                timestamp: m.timestamp,
                vp: tracked.vp.clone(),
                prefix: c.prefix,
                change,
            }));
        }
        Ok(())
    }

    fn other(&mut self, message: &[u8], now: Timestamp, out: &mut Outcome) -> Result<(), Invalid> {
        let mut data = Bytes::copy_from_slice(message);
        let parsed = bgpkit_parser::parser::bmp::parse_bmp_msg(&mut data)
            .map_err(|e| Invalid::new(InvalidReason::BmpMessage, format!("{}: {e}", out.kind)))?;
        match parsed.message_body {
            BmpMessageBody::InitiationMessage(init) => {
                use bgpkit_parser::parser::bmp::messages::InitiationTlvType;
                for tlv in init.tlvs {
                    match tlv.info_type {
                        InitiationTlvType::SysName => self.name = Some(clip(&tlv.info)),
                        InitiationTlvType::SysDescr => self.description = Some(clip(&tlv.info)),
                        _ => {}
                    }
                }
            }
            BmpMessageBody::TerminationMessage(t) => {
                let reasons: Vec<String> = t
                    .tlvs
                    .iter()
                    .map(|tlv| clip(&format!("{:?}", tlv.info_value)))
                    .collect();
                out.terminated = Some(reasons.join("; "));
            }
            BmpMessageBody::PeerUpNotification(up) => {
                let Some(h) = parsed.per_peer_header else {
                    return Ok(());
                };
                let (local_asn, local_send, local_receive) = open_facts(&up.sent_open);
                let (_, remote_send, remote_receive) = open_facts(&up.received_open);
                if self.router.asn == 0 && local_asn != 0 {
                    self.router.asn = local_asn;
                }
                let key = peer_key(&h);
                let peer = self.peers.entry(key).or_default();
                peer.up = true;
                peer.add_path_in = remote_send && local_receive;
                peer.add_path_out = local_send && remote_receive;
                // Back within the hold time: its old routes wait to be sent again.
                if let Some(old) = self.held.remove(&key) {
                    for (rib, t) in old.ribs {
                        let tracked = peer.ribs.entry(rib).or_insert(Tracked {
                            vp: t.vp.clone(),
                            paths: Paths::new(),
                            stale: Paths::new(),
                        });
                        tracked.stale.extend(t.paths);
                        tracked.stale.extend(t.stale);
                    }
                }
            }
            BmpMessageBody::PeerDownNotification(_) => {
                let Some(h) = parsed.per_peer_header else {
                    return Ok(());
                };
                let key = peer_key(&h);
                let timestamp = if h.timestamp > 0.0 && h.timestamp.is_finite() {
                    Timestamp::from_secs_f64(h.timestamp)
                } else {
                    now
                };
                let mut vps: Vec<Arc<VantagePoint>> = Vec::new();
                for gone in [self.peers.remove(&key), self.held.remove(&key)]
                    .into_iter()
                    .flatten()
                {
                    vps.extend(gone.ribs.into_values().map(|t| t.vp));
                }
                // Routes of a peer this session never saw (the service restarted) may still be
                // in the engine: every RIB kind of the peer that feeds the detectors goes down.
                let kinds: &[BmpRib] = if key.0 {
                    &[BmpRib::LocRib]
                } else {
                    &[
                        BmpRib::AdjRibInPre,
                        BmpRib::AdjRibInPost,
                        BmpRib::AdjRibOutPre,
                        BmpRib::AdjRibOutPost,
                    ]
                };
                for rib in kinds.iter().filter(|r| self.detect.contains(r)) {
                    let mut header = h;
                    header.peer_flags = flags_for(*rib, &h);
                    let vp = vantage_point(&self.router, &header);
                    if !vps.iter().any(|v| **v == vp) {
                        vps.push(Arc::new(vp));
                    }
                }
                out.events
                    .extend(vps.into_iter().map(|vp| FeedEvent::PeerDown {
                        timestamp,
                        vp,
                        within: None,
                    }));
            }
            BmpMessageBody::StatsReport(report) => {
                let peer = parsed
                    .per_peer_header
                    .map(|h| peer_label(&peer_key(&h)))
                    .unwrap_or_default();
                for c in report.counters {
                    let code = u16::from(c.stat_type);
                    let (stat, value) = match c.stat_data {
                        StatsData::Counter(v) => (code.to_string(), f64::from(v)),
                        StatsData::Gauge(v) => (code.to_string(), v as f64),
                        StatsData::AfiSafiGauge(afi, safi, v) => {
                            (format!("{code}/{afi}/{safi}"), v as f64)
                        }
                        StatsData::Unknown(_) => continue,
                    };
                    out.stats.push(Stat {
                        peer: peer.clone(),
                        stat,
                        value,
                    });
                }
            }
            BmpMessageBody::RouteMonitoring(_) | BmpMessageBody::RouteMirroring(_) => {}
        }
        Ok(())
    }

    /// The hold time of the previous connection is over: peers that did not come back go
    /// down, and routes not sent again are withdrawn.
    pub fn hold_expired(&mut self, now: Timestamp) -> Vec<FeedEvent> {
        let mut out = Held {
            name: None,
            asn: 0,
            peers: std::mem::take(&mut self.held),
        }
        .expire(now);
        for peer in self.peers.values_mut() {
            for t in peer.ribs.values_mut() {
                sweep(t, None, now, &mut out);
            }
        }
        out
    }

    /// The connection ended: what must be kept for the hold time.
    pub fn into_held(self) -> Held {
        let mut peers = self.held;
        for (key, mut peer) in self.peers {
            // Stale paths not sent again are still routes the engine holds.
            for t in peer.ribs.values_mut() {
                let stale = std::mem::take(&mut t.stale);
                for (k, v) in stale {
                    t.paths.entry(k).or_insert(v);
                }
            }
            peers.insert(key, peer);
        }
        Held {
            name: self.name,
            asn: self.router.asn,
            peers,
        }
    }
}

/// Per-peer flags that make `rib_of` give `rib` (to name a peer's vantage points from a
/// Peer Down, whose flags say nothing of the RIB).
/// The per-peer flags of `h` as they would be for routes of `rib` (to name the vantage
/// points of a peer that went down, whatever RIB kinds it had).
pub fn flags_for(
    rib: BmpRib,
    h: &BmpPerPeerHeader,
) -> bgpkit_parser::parser::bmp::messages::PerPeerFlags {
    use bgpkit_parser::parser::bmp::messages::{PeerFlags, PerPeerFlags};
    let base = match h.peer_flags {
        PerPeerFlags::PeerFlags(f) => f & PeerFlags::ADDRESS_FAMILY_IPV6,
        PerPeerFlags::LocalRibPeerFlags(_) => return h.peer_flags,
    };
    PerPeerFlags::PeerFlags(match rib {
        BmpRib::AdjRibInPre | BmpRib::LocRib => base,
        BmpRib::AdjRibInPost => base | PeerFlags::IS_POST_POLICY,
        BmpRib::AdjRibOutPre => base | PeerFlags::IS_ADJ_RIB_OUT,
        BmpRib::AdjRibOutPost => base | PeerFlags::IS_ADJ_RIB_OUT | PeerFlags::IS_POST_POLICY,
    })
}

/// Some remaining path of `prefix`.
fn any_path(paths: &Paths, prefix: IpNet) -> Option<Arc<RouteAttrs>> {
    paths
        .range((prefix, 0)..=(prefix, u32::MAX))
        .next()
        .map(|(_, a)| a.clone())
}

/// Withdraws the stale paths (of one address family, or all) that were not sent again.
fn sweep(t: &mut Tracked, afi: Option<Afi>, now: Timestamp, out: &mut Vec<FeedEvent>) {
    let gone: Vec<(IpNet, u32)> = t
        .stale
        .keys()
        .filter(|(p, _)| afi.is_none_or(|a| afi_of(p) == a))
        .copied()
        .collect();
    let mut last = None;
    for key in gone {
        t.stale.remove(&key);
        if last == Some(key.0) || t.paths.contains_key(&key) {
            continue;
        }
        last = Some(key.0);
        if any_path(&t.paths, key.0).is_none() {
            out.push(FeedEvent::Route(RouteEvent {
                timestamp: now,
                vp: t.vp.clone(),
                prefix: key.0,
                change: RouteChange::Withdraw,
            }));
        }
    }
}

/// The per-peer header of a Route Monitoring message.
fn parse_route_monitoring_peer(message: &[u8]) -> Result<BmpPerPeerHeader, Invalid> {
    let mut body = Bytes::copy_from_slice(message.get(super::frame::HEADER_LEN..).unwrap_or(&[]));
    bgpkit_parser::parser::bmp::messages::parse_per_peer_header(&mut body).map_err(|e| {
        Invalid::new(
            InvalidReason::BmpMessage,
            format!("route_monitoring: per-peer header: {e}"),
        )
    })
}
