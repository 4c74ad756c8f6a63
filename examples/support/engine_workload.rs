//! The engine workload of `cargo bench` (`engine_route_event`) and `engine_cost`: real AS paths
//! from `../shared/data/mrt/rrc00-updates.20190101.0000.gz` with the origin rewritten to the
//! watched one, spread over the watched prefixes and vantage points, one in eight a withdrawal.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use bgpsentry::event::{
    AsPath, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use bgpsentry::feeds::mrt::MrtReader;
use ipnet::IpNet;

/// The origin every watched prefix allows (paths are rewritten to end in it).
pub const OWN_ASN: u32 = 64500;

/// Real announcements from the MRT file (up to `max`).
pub fn real_announcements(max: usize) -> Vec<Arc<RouteAttrs>> {
    let mut reader = MrtReader::open(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/mrt/rrc00-updates.20190101.0000.gz"),
        "mrt",
        None,
    )
    .expect("MRT file");
    let mut out = Vec::new();
    let mut events = Vec::new();
    while out.len() < max && reader.next_record(&mut events).is_some() {
        for ev in events.drain(..) {
            if let FeedEvent::Route(RouteEvent {
                change: RouteChange::Announce(a),
                ..
            }) = ev
                && !a.path.is_empty()
            {
                out.push(a);
            }
        }
    }
    out
}

/// Route events: real paths (origin rewritten to [`OWN_ASN`]), spread over the watched
/// prefixes and `vps` vantage points; every 8th is a withdrawal.
pub fn events(prefixes: &[IpNet], vps: usize, count: usize) -> Vec<RouteEvent> {
    let attrs = real_announcements(count.min(50_000));
    let vps: Vec<Arc<VantagePoint>> = (0..vps as u32)
        .map(|i| {
            Arc::new(VantagePoint {
                feed: "bench".into(),
                collector: "rrc00".into(),
                peer_asn: 65_000 + i,
                peer_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                exporter: None,
            })
        })
        .collect();
    (0..count)
        .map(|i| {
            let a = &attrs[i % attrs.len()];
            let mut path = a.path.to_vec();
            if let Some(last) = path.last_mut() {
                *last = PathElem::Asn(OWN_ASN);
            }
            let change = if i % 8 == 7 {
                RouteChange::Withdraw
            } else {
                RouteChange::Announce(Arc::new(RouteAttrs {
                    path: AsPath::from(path),
                    communities: a.communities.clone(),
                    next_hop: a.next_hop,
                }))
            };
            RouteEvent {
                timestamp: Timestamp::from_parts(1_546_300_800 + (i / 1000) as i64, 0),
                vp: vps[(i * 7919) % vps.len()].clone(),
                prefix: prefixes[(i * 104_729) % prefixes.len()],
                change,
            }
        })
        .collect()
}
