//! Warm-start cost: reads a RIPEstat `bgp-state` answer of the size a real watch list brings
//! (every RIS peer with a route to every watched prefix) and applies it to the engine, and
//! prints the answer's size and the time of each step.
//!
//! ```sh
//! cargo run --release --example warm_start_load -- 100 1500
//! ```
//!
//! Arguments: watched prefixes (default 100) and vantage points (default 1500, about what RIS
//! has). Paths are five ASNs with two communities, like RIS routes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{FeedEvent, LoadedState, Timestamp};
use bgpsentry::feeds::warm_start::ripestat;
use serde_json::json;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let prefixes = args.first().copied().unwrap_or(100);
    let vps = args.get(1).copied().unwrap_or(1500);
    let nets: Vec<String> = (0..prefixes)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let mut entries = Vec::with_capacity(prefixes * vps);
    for p in &nets {
        for v in 0..vps {
            let peer_asn = 64512 + v as u32;
            entries.push(json!({
                "target_prefix": p,
                "path": [peer_asn, 3356, 1299, 2914, 64496],
                "community": [format!("{}:100", v % 65536), "3356:2"],
                "source_id": format!("{:02}-10.255.{}.{}", v % 27, v / 256, v % 256),
            }));
        }
    }
    let body =
        json!({"data": {"bgp_state": entries, "query_time": "2026-12-01T12:00:00"}}).to_string();
    let feed: Arc<str> = "ris_live".into();
    let t = Instant::now();
    let state = ripestat::parse(body.as_bytes(), &feed, Timestamp::now()).expect("parses");
    let parse = t.elapsed();
    let routes = state.routes.len();
    let yaml: String = std::iter::once("prefixes:\n".to_string())
        .chain(
            nets.iter()
                .map(|p| format!("  - prefix: {p}\n    origins: [64496]\n")),
        )
        .collect();
    let cfg = Config::parse(&yaml, Path::new("bench.yml")).expect("config");
    let mut engine = Engine::from_config(&cfg);
    let loaded = FeedEvent::Loaded(Arc::new(LoadedState {
        feed,
        timestamp: state.time.unwrap_or(Timestamp::now()),
        scope: nets.iter().map(|p| p.parse().unwrap()).collect(),
        routes: state.routes,
        applied: Default::default(),
    }));
    let t = Instant::now();
    engine.process(&loaded);
    let apply = t.elapsed();
    println!(
        "{prefixes} prefixes x {vps} VPs: answer {:.1} MB, {routes} routes; parse {parse:.2?} \
         ({:.0} routes/s), engine load {apply:.2?} ({:.0} routes/s); engine holds {} routes",
        body.len() as f64 / 1e6,
        routes as f64 / parse.as_secs_f64(),
        routes as f64 / apply.as_secs_f64(),
        engine.route_count()
    );
}
