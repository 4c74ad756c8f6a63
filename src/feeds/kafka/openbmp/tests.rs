use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::event::RouteChange;
use crate::feeds::bmp::frame::split;

/// The gobgpd stream of the BMP fixtures: real router bytes, every message type.
const GOBGP: &[u8] = include_bytes!("../../../../tests/fixtures/bmp/gobgpd-all-ribs.bmp");

const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));

fn messages() -> Vec<&'static [u8]> {
    split(GOBGP, 1 << 20).map(|m| m.unwrap()).collect()
}

fn record(message: &[u8]) -> Vec<u8> {
    write_record(
        "route-views.test",
        ROUTER,
        Timestamp::from_parts(1_470_931_200, 5),
        message,
    )
}

fn decoder() -> OpenBmpDecoder {
    OpenBmpDecoder::new("kafka".into(), BmpRib::ALL.to_vec())
}

fn reason(r: Result<Vec<FeedEvent>, NotUsed>) -> String {
    match r {
        Err(NotUsed::Malformed(bad)) => bad.detail,
        other => panic!("not malformed: {other:?}"),
    }
}

#[test]
fn a_written_record_reads_back() {
    let m = messages()[2];
    let r = record(m);
    let read = read_record(&r).unwrap();
    assert_eq!(read.collector, "route-views.test");
    assert_eq!(read.router, ROUTER);
    assert_eq!(read.collected, Timestamp::from_parts(1_470_931_200, 5));
    assert_eq!(read.message, m);
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let r = write_record("c", v6, Timestamp(0), m);
    assert_eq!(read_record(&r).unwrap().router, v6);
}

#[test]
fn route_monitoring_and_peer_down_become_events_of_collector_router_and_peer() {
    let mut d = decoder();
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for m in messages() {
        match d.decode(&record(m), Timestamp::now()) {
            Ok(e) => events.extend(e),
            Err(NotUsed::Skipped(what)) => skipped.push(what),
            Err(NotUsed::Malformed(bad)) => panic!("{bad}"),
        }
    }
    assert!(
        skipped.contains(&"initiation") && skipped.contains(&"peer_up"),
        "{skipped:?}"
    );
    let announce = events
        .iter()
        .find_map(|e| match e {
            FeedEvent::Route(r) if r.prefix.to_string() == "192.0.2.0/24" => Some(r),
            _ => None,
        })
        .unwrap();
    assert!(matches!(announce.change, RouteChange::Announce(_)));
    let vp = &announce.vp;
    assert!(vp.collector.starts_with("route-views.test/"), "{vp}");
    assert_eq!(vp.peer_asn, 65002);
    assert_eq!(vp.exporter, Some((0, ROUTER)));
    // The same peer and RIB kind in two records is one shared vantage point.
    let same: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Route(r) if *r.vp == **vp => Some(r.vp.clone()),
            _ => None,
        })
        .collect();
    assert!(same.len() >= 2 && same.iter().all(|v| Arc::ptr_eq(v, &same[0])));
    // The Peer Down takes every Adj-RIB kind of the peer down, named like its routes.
    let downs: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::PeerDown { vp, .. } => Some(vp.collector.to_string()),
            _ => None,
        })
        .collect();
    assert!(downs.contains(&vp.collector.to_string()), "{downs:?}");
    assert!(downs.contains(&"route-views.test/adj_rib_in_pre".to_string()));
}

#[test]
fn routes_of_other_rib_kinds_are_skipped() {
    let mut d = OpenBmpDecoder::new("kafka".into(), vec![BmpRib::LocRib]);
    let mut kinds = std::collections::HashSet::new();
    for m in messages() {
        if let Ok(events) = d.decode(&record(m), Timestamp::now()) {
            for e in events {
                if let FeedEvent::Route(r) = e {
                    kinds.insert(r.vp.collector.to_string());
                }
            }
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["route-views.test/loc_rib"]
    );
}

#[test]
fn malformed_truncated_and_hostile_records_are_refused_with_their_reason() {
    let m = messages()[2];
    let good = record(m);
    let mut d = decoder();
    // Not OpenBMP at all, and the wrong magic.
    assert!(
        reason(d.decode(b"garbage that is not a record", Timestamp::now()))
            .contains("OpenBMP header")
    );
    let mut wrong = good.clone();
    wrong[..4].copy_from_slice(b"OBMQ");
    assert!(reason(d.decode(&wrong, Timestamp::now())).contains("OpenBMP header"));
    // Another version.
    let mut v = good.clone();
    v[5] = 8;
    assert!(reason(d.decode(&v, Timestamp::now())).contains("OpenBMP header"));
    // Cut anywhere: inside the header, or inside the message.
    for cut in [0, 3, 10, 40, 80, good.len() - m.len(), good.len() - 1] {
        assert!(
            matches!(
                d.decode(&good[..cut], Timestamp::now()),
                Err(NotUsed::Malformed(_))
            ),
            "cut at {cut}"
        );
    }
    // A huge declared message length.
    let mut huge = good.clone();
    huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(reason(d.decode(&huge, Timestamp::now())).contains("runs past the record"));
    // A header length that points before the fields read, or past the record.
    for len in [10u16, u16::MAX] {
        let mut h = good.clone();
        h[6..8].copy_from_slice(&len.to_be_bytes());
        assert!(reason(d.decode(&h, Timestamp::now())).contains("header length"));
    }
    // A huge collector name length.
    let mut name = good.clone();
    name[38..40].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        d.decode(&name, Timestamp::now()),
        Err(NotUsed::Malformed(_))
    ));
    // The BMP message inside is not BMP, or disagrees with the OpenBMP length.
    let mut bad_version = m.to_vec();
    bad_version[0] = 1;
    assert!(reason(d.decode(&record(&bad_version), Timestamp::now())).contains("version 1"));
    let mut longer = m.to_vec();
    longer.extend_from_slice(&[0; 10]);
    assert!(reason(d.decode(&record(&longer), Timestamp::now())).contains("says it has"));
    assert!(
        reason(d.decode(&record(&m[..3]), Timestamp::now()))
            .contains("shorter than its common header")
    );
    // A Route Monitoring whose BGP message is cut short (its BMP length says so, the BGP
    // message's own length does not).
    let mut rm = messages().into_iter().find(|m| m[5] == 0).unwrap().to_vec();
    rm.truncate(rm.len() - 20);
    let n = rm.len() as u32;
    rm[1..5].copy_from_slice(&n.to_be_bytes());
    assert!(matches!(
        d.decode(&record(&rm), Timestamp::now()),
        Err(NotUsed::Malformed(_))
    ));
    // The good record still decodes after all of it.
    assert!(d.decode(&good, Timestamp::now()).is_ok());
}

#[test]
fn records_that_are_not_raw_bmp_from_a_router_are_skipped() {
    let mut r = record(messages()[2]);
    // A collector message (no router flag), and another object type.
    r[12] = 0;
    assert!(matches!(read_record(&r), Err(NotUsed::Skipped(_))));
    let mut r = record(messages()[2]);
    r[13] = 1;
    assert!(matches!(read_record(&r), Err(NotUsed::Skipped(_))));
}

#[test]
fn a_collector_name_from_the_wire_is_bounded_and_printable() {
    let long = format!("a\u{7}b{}", "x".repeat(500));
    let r = write_record(&long, ROUTER, Timestamp(0), messages()[2]);
    let read = read_record(&r).unwrap();
    assert!(read.collector.starts_with("abxx"));
    assert_eq!(read.collector.chars().count(), MAX_COLLECTOR);
}
