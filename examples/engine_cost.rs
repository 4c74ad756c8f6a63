//! The engine's cost per route event, in a form that instruction counters can measure: the
//! `engine_route_event` workload of `cargo bench` (real paths from
//! `../shared/data/mrt/rrc00-updates…` with the origin rewritten to the watched one, spread
//! over P watched prefixes and V vantage points, one in eight a withdrawal) run once to warm
//! the state, then once more in [`measured`].
//!
//! `cargo run --release --example engine_cost -- P V [EVENTS]`
//!
//! On a shared, noisy machine count instructions instead of timing:
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*'
//! target/release/examples/engine_cost 1000 1000` (instructions / EVENTS = per event).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::RouteEvent;
use ipnet::{IpNet, Ipv4Net};

#[path = "support/engine_workload.rs"]
mod engine_workload;
use engine_workload::{OWN_ASN, events};

const USAGE: &str = "usage: engine_cost P V [EVENTS]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p: u32 = args.first().and_then(|a| a.parse().ok()).expect(USAGE);
    let v: u32 = args.get(1).and_then(|a| a.parse().ok()).expect(USAGE);
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let prefixes: Vec<IpNet> = (0..p)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).expect("/24")))
        .collect();
    let mut yaml = String::from("prefixes:\n");
    for x in &prefixes {
        yaml.push_str(&format!(
            "  - prefix: {x}\n    origins: [{OWN_ASN}]\n    upstreams: []\n"
        ));
    }
    let cfg = Config::parse(&yaml, Path::new("cost.yml")).expect("config");
    let evs = events(&prefixes, v as usize, n);
    let mut engine = Engine::from_config(&cfg);
    for ev in &evs {
        engine.process_route(ev);
    }
    engine.drain_transitions();
    let t = Instant::now();
    let changed = measured(&mut engine, &evs);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "prefixes={p} vps={v} events={n} changed={changed} ns_per_event={:.0} routes={}",
        secs * 1e9 / n as f64,
        engine.route_count()
    );
}

/// Every event once more, on the warm state.
#[inline(never)]
fn measured(engine: &mut Engine, evs: &[RouteEvent]) -> usize {
    let mut changed = 0;
    for ev in evs {
        if engine.process_route(ev) {
            changed += 1;
            engine.drain_transitions();
        }
    }
    changed
}
