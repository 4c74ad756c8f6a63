//! Route-state memory: fills an engine watching P prefixes with one route per prefix from each
//! of V vantage points and reports the process's RSS.
//!
//! `cargo run --release --example route_memory -- P V [--distinct]`
//!
//! Route attributes come from a pool of real announcements (`../shared/data/mrt/`), shared as
//! they are when one UPDATE carries several prefixes; `--distinct` gives every route its own copy
//! (the worst case).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{FeedEvent, PathElem, RouteChange, RouteEvent, Timestamp, VantagePoint};
use bgpsentry::feeds::mrt::MrtReader;
use ipnet::{IpNet, Ipv4Net};

fn rss_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: route_memory P V");
    let v: u32 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: route_memory P V");
    let distinct = args.iter().any(|a| a == "--distinct");
    const OWN: u32 = 64500;

    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/mrt/rrc00-updates.20190101.0000.gz");
    let mut reader = MrtReader::open(&file, "mrt", None).expect("MRT file");
    let mut pool = Vec::new();
    let mut evs = Vec::new();
    while pool.len() < 50_000 && reader.next_record(&mut evs).is_some() {
        for ev in evs.drain(..) {
            if let FeedEvent::Route(RouteEvent {
                change: RouteChange::Announce(a),
                ..
            }) = ev
                && !a.path.0.is_empty()
            {
                let mut a = (*a).clone();
                if let Some(last) = a.path.0.last_mut() {
                    *last = PathElem::Asn(OWN);
                }
                pool.push(Arc::new(a));
            }
        }
    }
    drop(reader);

    let prefixes: Vec<IpNet> = (0..p as u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0100_0000 + (i << 8)), 24).expect("/24")))
        .collect();
    let mut yaml = String::from("prefixes:\n");
    for x in &prefixes {
        yaml.push_str(&format!(
            "  - prefix: {x}\n    origins: [{OWN}]\n    upstreams: []\n"
        ));
    }
    let cfg = Config::parse(&yaml, Path::new("mem.yml")).expect("config");
    drop(yaml);
    let vps: Vec<Arc<VantagePoint>> = (0..v)
        .map(|i| {
            Arc::new(VantagePoint {
                feed: "mem".into(),
                collector: "rrc00".into(),
                peer_asn: 65_000 + i,
                peer_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                exporter: None,
            })
        })
        .collect();
    let mut engine = Engine::from_config(&cfg);
    let before = rss_kb("VmRSS:");
    let t = Instant::now();
    let mut k = 0usize;
    for (pi, prefix) in prefixes.iter().enumerate() {
        for vp in &vps {
            let attrs = &pool[k % pool.len()];
            k += 1;
            let attrs = if distinct {
                Arc::new((**attrs).clone())
            } else {
                attrs.clone()
            };
            let ev = RouteEvent {
                timestamp: Timestamp::from_parts(1_700_000_000 + pi as i64, 0),
                vp: vp.clone(),
                prefix: *prefix,
                change: RouteChange::Announce(attrs),
            };
            engine.process_route(&ev);
        }
        engine.drain_transitions();
    }
    let secs = t.elapsed().as_secs_f64();
    // Peak of the route state alone, before the export below copies every route once.
    let peak_fill = rss_kb("VmHWM:");
    // The service takes the changes after every batch; do it once here so the dirty set is freed.
    let _ = engine.take_changes();
    let _ = engine.take_touched();
    println!(
        "prefixes={p} vps={v} routes={} distinct_attrs={distinct} fill_s={secs:.2} events_per_s={:.0} \
         rss_before_mb={:.0} rss_mb={:.0} peak_fill_mb={:.0} peak_rss_mb={:.0}",
        engine.route_count(),
        k as f64 / secs,
        before as f64 / 1024.0,
        rss_kb("VmRSS:") as f64 / 1024.0,
        peak_fill as f64 / 1024.0,
        rss_kb("VmHWM:") as f64 / 1024.0
    );
}
