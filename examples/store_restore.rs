//! Store restore time: fills an engine watching P prefixes with one route per prefix from each
//! of V vantage points, commits its state to a fresh store, then times `Store::load` and
//! `Engine::restore` and the save of what the restore changed (what `bgpsentry run` does at
//! start-up).
//!
//! `cargo run --release --example store_restore -- [P] [V]` (default 10000 × 500)

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{
    AsPath, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use bgpsentry::store::{Commit, Store};
use ipnet::{IpNet, Ipv4Net};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let p = args.first().copied().unwrap_or(10_000);
    let v = args.get(1).copied().unwrap_or(500) as u32;
    const OWN: u32 = 64500;
    let prefixes: Vec<IpNet> = (0..p as u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0100_0000 + (i << 8)), 24).expect("/24")))
        .collect();
    let mut yaml = String::from("prefixes:\n");
    for x in &prefixes {
        yaml.push_str(&format!(
            "  - prefix: {x}\n    origins: [{OWN}]\n    upstreams: []\n"
        ));
    }
    let cfg = Config::parse(&yaml, Path::new("restore.yml")).expect("config");
    // One attribute set per VP (a VP's routes to one origin share its path), as after a RIB.
    let vps: Vec<(Arc<VantagePoint>, Arc<RouteAttrs>)> = (0..v)
        .map(|i| {
            let vp = Arc::new(VantagePoint {
                feed: "restore".into(),
                collector: "rrc00".into(),
                peer_asn: 65_000 + i,
                peer_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                exporter: None,
            });
            let attrs = Arc::new(RouteAttrs {
                path: AsPath::from(vec![
                    PathElem::Asn(65_000 + i),
                    PathElem::Asn(3356),
                    PathElem::Asn(OWN),
                ]),
                communities: Vec::new().into(),
                next_hop: None,
            });
            (vp, attrs)
        })
        .collect();
    let mut engine = Engine::from_config(&cfg);
    for (pi, prefix) in prefixes.iter().enumerate() {
        for (vp, attrs) in &vps {
            engine.process_route(&RouteEvent {
                timestamp: Timestamp::from_parts(1_700_000_000 + pi as i64, 0),
                vp: vp.clone(),
                prefix: *prefix,
                change: RouteChange::Announce(attrs.clone()),
            });
        }
        engine.drain_transitions();
    }
    let routes = engine.route_count();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("restore.db");
    let mut store = Store::open(&path).expect("store");
    let t = Instant::now();
    store
        .commit(&Commit {
            transitions: Vec::new(),
            changes: engine.take_changes(),
        })
        .expect("commit");
    let commit_s = t.elapsed().as_secs_f64();
    drop(engine);
    drop(store);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let t = Instant::now();
    let mut store = Store::open(&path).expect("store");
    let loaded = store.load(1000).expect("load");
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut engine = Engine::restore(&cfg.prefixes, loaded.state);
    let restore_s = t.elapsed().as_secs_f64();
    assert_eq!(engine.route_count(), routes, "every route restored");
    // What `bgpsentry run` saves next, before it is ready: what the restore changed.
    let t = Instant::now();
    let meta = engine.meta_changed();
    store
        .save_restored(&[], engine.take_changes(), meta)
        .expect("save");
    let save_s = t.elapsed().as_secs_f64();
    println!(
        "prefixes={p} vps={v} routes={routes} db_mb={:.1} commit_s={commit_s:.2} load_s={load_s:.2} \
         restore_s={restore_s:.2} save_s={save_s:.2} total_restart_s={:.2}",
        size as f64 / 1e6,
        load_s + restore_s + save_s
    );
}
