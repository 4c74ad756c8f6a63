//! A BMP Route Monitoring message made into the project's route events, with no state: the
//! listener's sessions use it, and so can any other source of BMP messages (an OpenBMP or
//! Kafka input) that hands over whole messages.
//!
//! The per-peer header and the BGP UPDATE inside are parsed by bgpkit-parser; its own
//! `parse_bmp_msg` reads UPDATEs without Add-Path, so the message is taken apart here with its
//! header and message parsers and the Add-Path flag the caller learnt from the Peer Up.

use std::net::IpAddr;
use std::sync::Arc;

use bgpkit_parser::Elementor;
use bgpkit_parser::models::{Afi, BgpMessage, BgpUpdateMessage, ElemType};
use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
use bgpkit_parser::parser::bmp::messages::{
    BmpPeerType, BmpPerPeerHeader, PeerFlags, PerPeerFlags, parse_per_peer_header,
};
use bytes::Bytes;
use ipnet::IpNet;

use super::frame::HEADER_LEN;
use crate::config::BmpRib;
use crate::event::{FeedEvent, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint};
use crate::feeds::error::{Invalid, InvalidReason, check_path_len, check_prefix_count};
use crate::feeds::mrt::reader::shared_attrs;

/// The RIB a per-peer header says its routes come from.
pub fn rib_of(header: &BmpPerPeerHeader) -> BmpRib {
    match (header.peer_type, header.peer_flags) {
        (BmpPeerType::LocalRib, _) | (_, PerPeerFlags::LocalRibPeerFlags(_)) => BmpRib::LocRib,
        (_, PerPeerFlags::PeerFlags(f)) => {
            match (
                f.contains(PeerFlags::IS_ADJ_RIB_OUT),
                f.contains(PeerFlags::IS_POST_POLICY),
            ) {
                (false, false) => BmpRib::AdjRibInPre,
                (false, true) => BmpRib::AdjRibInPost,
                (true, false) => BmpRib::AdjRibOutPre,
                (true, true) => BmpRib::AdjRibOutPost,
            }
        }
    }
}

/// The router a BMP session comes from, as vantage points name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Router {
    /// The feed's name.
    pub feed: Arc<str>,
    /// The address the router connects from.
    pub address: IpAddr,
    /// The router's own ASN (from its OPEN in the Peer Up; 0 until known).
    pub asn: u32,
}

/// The vantage point of a peer's routes in one RIB: router + peer + RIB kind (and the peer's
/// route distinguisher when it sits in a VRF), so the same peer pre- and post-policy are two
/// vantage points. The Loc-RIB's peer is the router itself.
pub fn vantage_point(router: &Router, header: &BmpPerPeerHeader) -> VantagePoint {
    let rib = rib_of(header);
    let collector = if header.peer_distinguisher == 0 {
        rib.as_str().to_string()
    } else {
        format!("{}@{}", rib.as_str(), header.peer_distinguisher)
    };
    let (peer_asn, peer_ip) = if rib == BmpRib::LocRib {
        let asn = match header.peer_asn.to_u32() {
            0 => router.asn,
            a => a,
        };
        (asn, router.address)
    } else {
        (header.peer_asn.to_u32(), header.peer_ip)
    };
    VantagePoint {
        feed: router.feed.clone(),
        collector: collector.into(),
        peer_asn,
        peer_ip,
        exporter: Some((router.asn, router.address)),
    }
}

/// One path of a prefix announced or withdrawn (the path id is 0 without Add-Path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathChange {
    /// The prefix, normalised.
    pub prefix: IpNet,
    /// The Add-Path path identifier (RFC 7911), 0 without Add-Path.
    pub path_id: u32,
    /// Announcement with its attributes, or withdrawal.
    pub change: RouteChange,
}

/// What one Route Monitoring message says.
#[derive(Debug, Clone)]
pub struct Monitored {
    /// Its per-peer header.
    pub header: BmpPerPeerHeader,
    /// The RIB its routes belong to.
    pub rib: BmpRib,
    /// The event time: the header's, or the time of receipt when the router sent none.
    pub timestamp: Timestamp,
    /// The paths announced and withdrawn, in message order.
    pub changes: Vec<PathChange>,
    /// An End-of-RIB marker (RFC 4724), with its address family.
    pub end_of_rib: Option<Afi>,
}

/// Parses a whole Route Monitoring message (common header included). `add_path` says whether
/// the router's session with this peer negotiated Add-Path; when the UPDATE does not parse
/// that way it is tried the other way, since routers differ in what they set for the Loc-RIB
/// and Adj-RIB-Out. `received` stands in for a missing header time.
pub fn parse_route_monitoring(
    message: &[u8],
    add_path: bool,
    received: Timestamp,
) -> Result<Monitored, Invalid> {
    let bad = |what: String| Invalid::new(InvalidReason::BmpMessage, what);
    if message.len() < HEADER_LEN || message[5] != 0 {
        return Err(bad("not a Route Monitoring message".into()));
    }
    let mut body = Bytes::copy_from_slice(&message[HEADER_LEN..]);
    let header =
        parse_per_peer_header(&mut body).map_err(|e| bad(format!("per-peer header: {e}")))?;
    let asn_len = header.asn_length();
    let parse = |add_path: bool| parse_bgp_message(&mut body.clone(), add_path, &asn_len);
    let bgp = match parse(add_path) {
        Ok(m) => m,
        Err(first) => parse(!add_path).map_err(|_| bad(format!("BGP message: {first}")))?,
    };
    let BgpMessage::Update(update) = bgp else {
        return Err(bad(
            "a Route Monitoring message carries a BGP message other than UPDATE".into(),
        ));
    };
    let timestamp = if header.timestamp > 0.0 && header.timestamp.is_finite() {
        Timestamp::from_secs_f64(header.timestamp)
    } else {
        received
    };
    let end_of_rib = end_of_rib(&update);
    let changes = if end_of_rib.is_some() {
        Vec::new()
    } else {
        update_changes(update, &header, timestamp)?
    };
    Ok(Monitored {
        rib: rib_of(&header),
        header,
        timestamp,
        changes,
        end_of_rib,
    })
}

/// The address family an End-of-RIB marker closes, if the UPDATE is one.
fn end_of_rib(update: &BgpUpdateMessage) -> Option<Afi> {
    if !update.is_end_of_rib() {
        return None;
    }
    Some(
        update
            .attributes
            .get_unreachable_nlri()
            .map_or(Afi::Ipv4, |n| n.afi),
    )
}

/// The paths of one UPDATE, through bgpkit-parser's elementor (which reads the MP_REACH and
/// MP_UNREACH attributes too); refused whole when over the per-message limits.
fn update_changes(
    update: BgpUpdateMessage,
    header: &BmpPerPeerHeader,
    timestamp: Timestamp,
) -> Result<Vec<PathChange>, Invalid> {
    let reach = update
        .attributes
        .get_reachable_nlri()
        .map_or(0, |n| n.prefixes.len());
    let unreach = update
        .attributes
        .get_unreachable_nlri()
        .map_or(0, |n| n.prefixes.len());
    check_prefix_count(
        update.announced_prefixes.len() + update.withdrawn_prefixes.len() + reach + unreach,
    )?;
    if let Some(path) = update.attributes.as_path() {
        check_path_len(path.iter_segments().map(|s| s.len()).sum())?;
    }
    let elems = Elementor::bgp_update_to_elems(
        update,
        timestamp.as_secs_f64(),
        &header.peer_ip,
        &header.peer_asn,
    );
    let mut shared: Option<Arc<RouteAttrs>> = None;
    let mut out = Vec::with_capacity(elems.len());
    for elem in elems {
        let change = match elem.elem_type {
            ElemType::ANNOUNCE => {
                // The prefixes of one UPDATE share their attributes.
                RouteChange::Announce(shared_attrs(&elem, &mut shared))
            }
            ElemType::WITHDRAW => RouteChange::Withdraw,
        };
        out.push(PathChange {
            prefix: elem.prefix.prefix.trunc(),
            path_id: elem.prefix.path_id.unwrap_or(0),
            change,
        });
    }
    Ok(out)
}

/// The route events of a parsed message for a consumer that keeps no per-path state (every
/// path change becomes an event of `vp`; with Add-Path, the withdrawal of one path reads as
/// the withdrawal of the prefix). The listener's sessions keep the paths and do better.
pub fn route_events(monitored: &Monitored, vp: &Arc<VantagePoint>) -> Vec<FeedEvent> {
    monitored
        .changes
        .iter()
        .map(|c| {
            FeedEvent::Route(RouteEvent {
                timestamp: monitored.timestamp,
                vp: vp.clone(),
                prefix: c.prefix,
                change: c.change.clone(),
            })
        })
        .collect()
}
