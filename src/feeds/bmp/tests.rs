//! The session against recorded router streams and hand-built messages.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::frame::split;
use super::session::{Outcome, Session};
use crate::config::BmpRib;
use crate::event::{FeedEvent, PathElem, RouteChange, Timestamp};

/// gobgpd 3.10 with `route-monitoring-policy = "all"`, one eBGP peer (127.0.0.2, AS65002)
/// announcing three routes, withdrawing one, then going down.
const GOBGP: &[u8] = include_bytes!("../../../tests/fixtures/bmp/gobgpd-all-ribs.bmp");

const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn replay(session: &mut Session, data: &[u8]) -> Vec<Outcome> {
    split(data, 1 << 20)
        .map(|m| session.handle(m.expect("the fixture frames"), Timestamp::now()))
        .collect()
}

fn routes(events: &[FeedEvent], rib: &str) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Route(r) if &*r.vp.collector == rib => Some((
                r.prefix.to_string(),
                match &r.change {
                    RouteChange::Announce(a) => Some(a.path.to_string()),
                    RouteChange::Withdraw => None,
                },
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_gobgpd_stream_becomes_route_events_per_rib() {
    let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
    let outcomes = replay(&mut s, GOBGP);
    assert!(outcomes.iter().all(|o| o.invalid.is_none()), "{outcomes:?}");
    assert_eq!(s.name.as_deref(), Some("GoBGP"));
    assert_eq!(s.description.as_deref(), Some("3.10.0"));
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.kind).collect();
    assert_eq!(kinds[..2], ["initiation", "peer_up"]);
    assert_eq!(kinds.last(), Some(&"peer_down"));
    let events: Vec<FeedEvent> = outcomes.into_iter().flat_map(|o| o.events).collect();
    let post = routes(&events, "adj_rib_in_post");
    let path = Some("65002 3333 4200000001".to_string());
    assert!(
        post.contains(&("192.0.2.0/24".into(), path.clone())),
        "{post:?}"
    );
    assert!(post.contains(&("2001:db8:100::/48".into(), Some("65002 64500".into()))));
    assert!(post.contains(&("198.51.100.0/24".into(), None)), "{post:?}");
    // Pre-policy and Loc-RIB are their own vantage points.
    assert!(routes(&events, "adj_rib_in_pre").contains(&("192.0.2.0/24".into(), path.clone())));
    assert!(routes(&events, "loc_rib").contains(&("192.0.2.0/24".into(), path)));
    // The 4-byte origin, the communities and the exporter come through.
    let announce = events
        .iter()
        .find_map(|e| match e {
            FeedEvent::Route(r) if r.prefix.to_string() == "192.0.2.0/24" => match &r.change {
                RouteChange::Announce(a) => Some((r.vp.clone(), a.clone())),
                RouteChange::Withdraw => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(announce.1.path.last(), Some(&PathElem::Asn(4_200_000_001)));
    assert_eq!(announce.1.communities[0].to_string(), "65002:1");
    assert_eq!(announce.0.exporter, Some((65001, ROUTER)));
    assert_eq!(announce.0.peer_asn, 65002);
    // The Peer Down removes every vantage point of the peer, and nothing else.
    let downs: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::PeerDown { vp, .. } => Some(vp.collector.to_string()),
            _ => None,
        })
        .collect();
    assert!(downs.contains(&"adj_rib_in_pre".to_string()), "{downs:?}");
    assert!(downs.contains(&"adj_rib_in_post".to_string()), "{downs:?}");
    assert!(!downs.contains(&"loc_rib".to_string()), "{downs:?}");
}

#[test]
fn only_the_chosen_ribs_reach_the_detectors() {
    let mut s = Session::new("bmp".into(), ROUTER, vec![BmpRib::AdjRibInPost], None);
    let events: Vec<FeedEvent> = replay(&mut s, GOBGP)
        .into_iter()
        .flat_map(|o| o.events)
        .collect();
    assert!(!events.is_empty());
    for e in &events {
        let vp = match e {
            FeedEvent::Route(r) => &r.vp,
            FeedEvent::PeerDown { vp, .. } => vp,
            FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => {
                panic!("a BMP session loads and hands over no state: {e:?}")
            }
        };
        assert_eq!(&*vp.collector, "adj_rib_in_post", "{e:?}");
    }
}

/// Everything up to (not including) the Peer Down: the router "restarts" there.
fn before_peer_down() -> &'static [u8] {
    let mut end = 0;
    for m in split(GOBGP, 1 << 20) {
        let m = m.unwrap();
        if m[5] == 2 {
            break;
        }
        end += m.len();
    }
    &GOBGP[..end]
}

#[test]
fn a_router_that_does_not_come_back_loses_its_routes_at_the_end_of_the_hold() {
    let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
    replay(&mut s, before_peer_down());
    let held = s.into_held();
    assert_eq!(held.vantage_points(), 3);
    let events = held.expire(Timestamp::now());
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, FeedEvent::PeerDown { .. }))
    );
}

#[test]
fn a_router_back_within_the_hold_keeps_what_it_sends_again_and_loses_the_rest() {
    let mut s = Session::new("bmp".into(), ROUTER, vec![BmpRib::AdjRibInPost], None);
    // Up to the three announcements in each RIB, before any withdrawal.
    let messages: Vec<&[u8]> = split(GOBGP, 1 << 20).map(|m| m.unwrap()).collect();
    let first: Vec<FeedEvent> = messages[..11]
        .iter()
        .flat_map(|m| s.handle(m, Timestamp::now()).events)
        .collect();
    let post = routes(&first, "adj_rib_in_post");
    assert!(post.contains(&("192.0.2.0/24".into(), Some("65002 3333 4200000001".into()))));
    let held = s.into_held();
    // The router comes back and sends its initiation, the peer up and one route again only.
    let mut again = Session::new("bmp".into(), ROUTER, vec![BmpRib::AdjRibInPost], Some(held));
    // initiation, peer up, then the post-policy announcement of 192.0.2.0/24
    let mut resent = Vec::new();
    for m in [messages[0], messages[1], messages[3]] {
        resent.extend(again.handle(m, Timestamp::now()).events);
    }
    assert_eq!(routes(&resent, "adj_rib_in_post").len(), 1, "{resent:?}");
    let swept = again.hold_expired(Timestamp::now());
    let gone = routes(&swept, "adj_rib_in_post");
    // 198.51.100.0/24 and 2001:db8:100::/48 were not sent again: withdrawn; 192.0.2.0/24
    // was: kept.
    assert_eq!(
        gone,
        vec![
            ("198.51.100.0/24".to_string(), None),
            ("2001:db8:100::/48".to_string(), None)
        ],
        "{swept:?}"
    );
    assert!(again.hold_expired(Timestamp::now()).is_empty());
}

#[test]
fn every_cut_of_the_stream_is_handled_without_panic() {
    // Each message cut short, and each message with a byte flipped: counted, never a panic.
    for m in split(GOBGP, 1 << 20).map(|m| m.unwrap()) {
        for cut in [7, 20, 48, m.len() / 2, m.len() - 1] {
            if cut >= m.len() || cut < 6 {
                continue;
            }
            let mut short = m[..cut].to_vec();
            short[1..5].copy_from_slice(&(cut as u32).to_be_bytes());
            let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
            let o = s.handle(&short, Timestamp::now());
            // A cut UPDATE never yields more than the whole one did.
            if o.kind == "route_monitoring" {
                let mut whole = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
                let all = whole.handle(m, Timestamp::now()).events.len();
                assert!(o.events.len() <= all, "{o:?}");
            }
        }
        for i in 6..m.len() {
            let mut flipped = m.to_vec();
            flipped[i] ^= 0xFF;
            let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
            let _ = s.handle(&flipped, Timestamp::now());
        }
    }
}

/// A BMP message of `kind` with a per-peer header for IPv4 peer 192.0.2.9 (AS64509).
fn bmp(kind: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![3, 0, 0, 0, 0, kind];
    m.extend_from_slice(&[0, flags]);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&[0; 12]);
    m.extend_from_slice(&[192, 0, 2, 9]);
    m.extend_from_slice(&64509u32.to_be_bytes());
    m.extend_from_slice(&[192, 0, 2, 9]);
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(body);
    let len = m.len() as u32;
    m[1..5].copy_from_slice(&len.to_be_bytes());
    m
}

/// A BGP message of `kind`.
fn bgp(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xFF; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An OPEN of `asn` with the 4-octet AS and IPv4 unicast Add-Path (send and receive).
fn open(asn: u32) -> Vec<u8> {
    let mut caps = vec![65, 4];
    caps.extend_from_slice(&asn.to_be_bytes());
    caps.extend_from_slice(&[69, 4, 0, 1, 1, 3]);
    let mut body = vec![4];
    body.extend_from_slice(&23456u16.to_be_bytes());
    body.extend_from_slice(&90u16.to_be_bytes());
    body.extend_from_slice(&[10, 0, 0, 1]);
    body.push((caps.len() + 2) as u8);
    body.push(2);
    body.push(caps.len() as u8);
    body.extend_from_slice(&caps);
    bgp(1, &body)
}

fn peer_up() -> Vec<u8> {
    let mut body = vec![0; 12];
    body.extend_from_slice(&[192, 0, 2, 1]);
    body.extend_from_slice(&179u16.to_be_bytes());
    body.extend_from_slice(&40000u16.to_be_bytes());
    body.extend_from_slice(&open(4_200_000_100));
    body.extend_from_slice(&open(64509));
    bmp(3, 0, &body)
}

/// A post-policy UPDATE of 203.0.113.0/24 with Add-Path id `id`, origin `origin`, or its
/// withdrawal.
fn add_path_update(id: u32, origin: Option<u32>) -> Vec<u8> {
    let mut nlri = id.to_be_bytes().to_vec();
    nlri.extend_from_slice(&[24, 203, 0, 113]);
    let mut body = Vec::new();
    match origin {
        None => {
            body.extend_from_slice(&(nlri.len() as u16).to_be_bytes());
            body.extend_from_slice(&nlri);
            body.extend_from_slice(&0u16.to_be_bytes());
        }
        Some(o) => {
            let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
            attrs.extend_from_slice(&[0x40, 2, 10, 2, 2]);
            attrs.extend_from_slice(&64509u32.to_be_bytes());
            attrs.extend_from_slice(&o.to_be_bytes());
            attrs.extend_from_slice(&[0x40, 3, 4, 192, 0, 2, 9]); // NEXT_HOP
            body.extend_from_slice(&0u16.to_be_bytes());
            body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            body.extend_from_slice(&attrs);
            body.extend_from_slice(&nlri);
        }
    }
    bmp(0, 0x40, &bgp(2, &body))
}

#[test]
fn add_path_keeps_a_prefix_until_its_last_path_goes() {
    let mut s = Session::new("bmp".into(), ROUTER, vec![BmpRib::AdjRibInPost], None);
    let now = Timestamp::now();
    assert!(s.handle(&peer_up(), now).invalid.is_none());
    let mut events = Vec::new();
    for m in [
        add_path_update(1, Some(64500)),
        add_path_update(2, Some(64666)),
        add_path_update(2, None),
        add_path_update(1, None),
    ] {
        let o = s.handle(&m, now);
        assert!(o.invalid.is_none(), "{o:?}");
        events.extend(o.events);
    }
    let seen = routes(&events, "adj_rib_in_post");
    assert_eq!(
        seen,
        vec![
            (
                "203.0.113.0/24".to_string(),
                Some("64509 64500".to_string())
            ),
            (
                "203.0.113.0/24".to_string(),
                Some("64509 64666".to_string())
            ),
            // Path 2 withdrawn: path 1 is the route again.
            (
                "203.0.113.0/24".to_string(),
                Some("64509 64500".to_string())
            ),
            ("203.0.113.0/24".to_string(), None),
        ]
    );
    // The router's ASN comes from the 4-octet AS capability of its OPEN.
    let FeedEvent::Route(r) = &events[0] else {
        panic!()
    };
    assert_eq!(r.vp.exporter, Some((4_200_000_100, ROUTER)));
    assert_eq!(r.timestamp, Timestamp::from_parts(1_700_000_000, 0));
}

#[test]
fn unknown_types_are_ignored_and_garbage_is_counted() {
    let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
    let now = Timestamp::now();
    let unknown = [3, 0, 0, 0, 8, 9, 1, 2];
    let o = s.handle(&unknown, now);
    assert_eq!(o.kind, "unknown");
    assert!(o.invalid.is_none() && o.events.is_empty());
    let mut garbage = bmp(0, 0x40, &[0xFF; 30]);
    garbage.truncate(60);
    let len = garbage.len() as u32;
    garbage[1..5].copy_from_slice(&len.to_be_bytes());
    let o = s.handle(&garbage, now);
    assert_eq!(o.invalid.map(|b| b.reason.as_str()), Some("bmp_message"));
    // A peer type bgpkit does not know.
    let mut odd = peer_up();
    odd[6] = 77;
    assert!(s.handle(&odd, now).invalid.is_some());
    let _ = Arc::new(());
}

/// FRR bgpd 8.4 with `bmp monitor ... pre-policy` and `post-policy` for IPv4 and IPv6, the
/// same peer and routes as the gobgpd stream.
const FRR: &[u8] = include_bytes!("../../../tests/fixtures/bmp/frr-bgpd-pre-post.bmp");

#[test]
fn an_frr_stream_becomes_the_same_routes() {
    let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
    let outcomes = replay(&mut s, FRR);
    assert!(outcomes.iter().all(|o| o.invalid.is_none()), "{outcomes:?}");
    assert_eq!(s.name.as_deref(), Some("r1"));
    let events: Vec<FeedEvent> = outcomes.into_iter().flat_map(|o| o.events).collect();
    // FRR 8.4 writes its own ASN (65001) in front of the paths it monitors, pre- and
    // post-policy alike, as it would send them on; the origin and its neighbour are the
    // peer's.
    for rib in ["adj_rib_in_pre", "adj_rib_in_post"] {
        let seen = routes(&events, rib);
        let path = Some("65001 65002 3333 4200000001".to_string());
        assert!(
            seen.contains(&("192.0.2.0/24".into(), path)),
            "{rib}: {seen:?}"
        );
        let path = Some("65001 65002 64500".to_string());
        assert!(
            seen.contains(&("2001:db8:100::/48".into(), path)),
            "{rib}: {seen:?}"
        );
        assert!(
            seen.contains(&("198.51.100.0/24".into(), None)),
            "{rib}: {seen:?}"
        );
    }
    assert!(matches!(events.last(), Some(FeedEvent::PeerDown { .. })));
}

#[test]
fn statistics_reports_become_per_peer_values() {
    let mut body = 3u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 5]); // type 0: 5 prefixes rejected
    body.extend_from_slice(&[0, 7, 0, 8]); // type 7: 42 routes in Adj-RIB-In
    body.extend_from_slice(&42u64.to_be_bytes());
    body.extend_from_slice(&[0, 9, 0, 11, 0, 2, 1]); // type 9 for IPv6 unicast: 7 routes
    body.extend_from_slice(&7u64.to_be_bytes());
    let mut s = Session::new("bmp".into(), ROUTER, BmpRib::ALL.to_vec(), None);
    let o = s.handle(&bmp(1, 0, &body), Timestamp::now());
    assert_eq!(o.kind, "statistics_report");
    assert!(o.invalid.is_none() && o.events.is_empty(), "{o:?}");
    let got: Vec<(String, String, f64)> = o
        .stats
        .into_iter()
        .map(|s| (s.peer, s.stat, s.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("192.0.2.9".to_string(), "0".to_string(), 5.0),
            ("192.0.2.9".to_string(), "7".to_string(), 42.0),
            ("192.0.2.9".to_string(), "9/2/1".to_string(), 7.0),
        ]
    );
    // A count that lies about how many follow is refused, not trusted.
    let mut lying = u32::MAX.to_be_bytes().to_vec();
    lying.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 5]);
    let o = s.handle(&bmp(1, 0, &lying), Timestamp::now());
    assert!(o.invalid.is_some(), "{o:?}");
}
