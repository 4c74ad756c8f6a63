//! Micro-benchmarks of the hot paths: parsing one message of each feed, the engine's cost per
//! route event (10 / 1 k / 100 k watched prefixes × 10 / 1 k vantage points), the cost of an
//! event that grows a learned baseline (1 to 100 k watched prefixes) and alert-book lookups. Events are real: prefixes and AS paths from `../shared/data/mrt/`, rewritten onto
//! the watched prefixes.
//!
//! `cargo bench --bench hotpaths`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bgpsentry::alerts::{AlertBook, AlertFilter};
use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{
    AsPath, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use bgpsentry::feeds::bgproutes::parser as bgproutes_parse;
use bgpsentry::feeds::mrt::MrtReader;
use bgpsentry::feeds::ris_live::parser as ris_live_parse;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const MRT_FILE: &str = "../shared/data/mrt/rrc00-updates.20190101.0000.gz";

#[path = "../examples/support/engine_workload.rs"]
mod engine_workload;
use engine_workload::{OWN_ASN, events};

/// `n` watched /24s (1.0.0.0/24, 1.0.1.0/24, …) as a config.
fn watch_config(n: usize) -> Config {
    let mut yaml = String::from("prefixes:\n");
    for p in watched(n) {
        // Upstreams are not checked: the bench measures steady routing, not an alert storm
        // (real paths rewritten onto one origin would all show "new" upstreams). One VP is
        // enough for an alert, so the alert book bench has one alert per hijacked prefix.
        yaml.push_str(&format!(
            "  - prefix: {p}\n    origins: [{OWN_ASN}]\n    upstreams: []\n    min_vantage_points: 1\n"
        ));
    }
    Config::parse(&yaml, Path::new("bench.yml")).expect("bench config")
}

fn watched(n: usize) -> Vec<IpNet> {
    (0..n as u32)
        .map(|i| {
            let base = u32::from(Ipv4Addr::new(1, 0, 0, 0)) + (i << 8);
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base), 24).expect("/24"))
        })
        .collect()
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.throughput(Throughput::Elements(1));

    let frames = std::fs::read_to_string(data("tests/fixtures/ris-live-frames.jsonl"))
        .expect("RIS Live frames");
    let update = frames
        .lines()
        .find(|l| l.contains("\"UPDATE\"") && l.contains("announcements"))
        .expect("an UPDATE frame");
    let feed: Arc<str> = "ris_live".into();
    g.bench_function("ris_live_update", |b| {
        b.iter(|| ris_live_parse::parse(black_box(update), &feed))
    });
    // As the feed parses: one parser per connection, which knows the peers already seen.
    let mut parser = ris_live_parse::Parser::new(feed.clone());
    g.bench_function("ris_live_update_feed", |b| {
        b.iter(|| parser.parse(black_box(update)))
    });

    let record = r#"{"record_type":"update","vp":"3333_193.0.0.56","sec":1700000000,"Usec":123456,"prefixes":"192.0.2.0/24","as-path":"3333 1299 64500","communities":"1299:30000 3333:100","nexthop":"193.0.0.56","origin":"IGP"}"#;
    let collector: Arc<str> = "".into();
    let bgp_feed: Arc<str> = "bgproutes".into();
    g.bench_function("bgproutes_record", |b| {
        b.iter(|| match bgproutes_parse::parse_frame(black_box(record)) {
            Ok(bgproutes_parse::Frame::Message(m)) => m.to_events(&bgp_feed, &collector).0.len(),
            _ => 0,
        })
    });

    // One MRT record at a time, from the real file, looping over its first records.
    let path = data(MRT_FILE);
    let mut reader = MrtReader::open(&path, "mrt", None).expect("MRT file");
    let mut out = Vec::new();
    g.bench_function("mrt_record", |b| {
        b.iter(|| {
            out.clear();
            if reader.next_record(&mut out).is_none() {
                reader = MrtReader::open(&path, "mrt", None).expect("MRT file");
            }
            out.len()
        })
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_route_event");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.throughput(Throughput::Elements(1));
    for &n in &[10usize, 1_000, 100_000] {
        let cfg = watch_config(n);
        let prefixes = watched(n);
        for &vps in &[10usize, 1_000] {
            let evs = events(&prefixes, vps, 200_000);
            let mut engine = Engine::from_config(&cfg);
            // Warm up the state: every event once, so the bench measures steady state.
            for ev in &evs {
                engine.process_route(ev);
            }
            engine.drain_transitions();
            let mut i = 0;
            g.bench_with_input(
                BenchmarkId::new(format!("prefixes_{n}"), format!("vps_{vps}")),
                &(),
                |b, _| {
                    b.iter(|| {
                        let changed = engine.process_route(&evs[i]);
                        i = (i + 1) % evs.len();
                        if changed {
                            engine.drain_transitions();
                        }
                        changed
                    })
                },
            );
        }
    }
    g.finish();
}

/// `n` watched /24s that check their origin (AS [`OWN_ASN`]) and learn their upstreams over a
/// window that stays open, each with one hijacker's route: n conditions in the engine.
fn learning_engine(n: usize) -> (Engine, Vec<IpNet>) {
    let prefixes = watched(n);
    let mut yaml = String::from("prefixes:\n");
    for p in &prefixes {
        yaml.push_str(&format!(
            "  - prefix: {p}\n    origins: [{OWN_ASN}]\n    learning_window_seconds: 31536000\n"
        ));
    }
    let cfg = Config::parse(&yaml, Path::new("bench.yml")).expect("bench config");
    let mut engine = Engine::from_config(&cfg);
    let hijacker = bench_vp(64_999);
    for (i, p) in prefixes.iter().enumerate() {
        for (vp, path) in [
            (bench_vp(0), vec![65_000, 3356, OWN_ASN]),
            (hijacker.clone(), vec![64_999, 666]),
        ] {
            engine.process_route(&RouteEvent {
                timestamp: Timestamp::from_parts(1_700_000_000 + i as i64 / 1000, 0),
                vp,
                prefix: *p,
                change: RouteChange::Announce(Arc::new(RouteAttrs {
                    path: AsPath::from_asns(path),
                    communities: Vec::new().into(),
                    next_hop: None,
                })),
            });
        }
    }
    engine.settle();
    engine.drain_transitions();
    (engine, prefixes)
}

fn bench_vp(asn: u32) -> Arc<VantagePoint> {
    Arc::new(VantagePoint {
        feed: "bench".into(),
        collector: "rrc00".into(),
        peer_asn: asn,
        peer_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + asn)),
        exporter: None,
    })
}

/// A route event that grows the learned baseline of one watched prefix (a new upstream while
/// its learning window is open), which judges that prefix's routes again: the cost must not
/// depend on how many other prefixes are watched.
fn baseline_growth(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_baseline_growth");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g.throughput(Throughput::Elements(1));
    let vps: Vec<Arc<VantagePoint>> = (0..8).map(|i| bench_vp(65_000 + i)).collect();
    for &n in &[1usize, 100, 1_000, 10_000, 100_000] {
        let (mut engine, prefixes) = learning_engine(n);
        let ts = Timestamp::from_parts(1_700_001_000, 0);
        let mut i = 0u32;
        g.bench_with_input(BenchmarkId::new("watched_prefixes", n), &(), |b, _| {
            b.iter(|| {
                i += 1;
                // A new upstream each time: always news to the baseline.
                let ev = RouteEvent {
                    timestamp: ts,
                    vp: vps[i as usize % vps.len()].clone(),
                    prefix: prefixes[i as usize % prefixes.len()],
                    change: RouteChange::Announce(Arc::new(RouteAttrs {
                        path: AsPath::from_asns([65_000, 100_000 + i, OWN_ASN]),
                        communities: Vec::new().into(),
                        next_hop: None,
                    })),
                };
                engine.process_route(black_box(&ev))
            })
        });
    }
    g.finish();
}

fn alert_book(c: &mut Criterion) {
    // 1 k watched prefixes, each hijacked once: 1 k firing alerts.
    let n = 1_000;
    let cfg = watch_config(n);
    let prefixes = watched(n);
    let mut engine = Engine::from_config(&cfg);
    let vp = Arc::new(VantagePoint {
        feed: "bench".into(),
        collector: "rrc00".into(),
        peer_asn: 3333,
        peer_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        exporter: None,
    });
    let mut book = AlertBook::new(10_000);
    for (i, p) in prefixes.iter().enumerate() {
        let ev = RouteEvent {
            timestamp: Timestamp::from_parts(1_700_000_000 + i as i64, 0),
            vp: vp.clone(),
            prefix: *p,
            change: RouteChange::Announce(Arc::new(RouteAttrs {
                path: AsPath::from(vec![PathElem::Asn(3333), PathElem::Asn(666)]),
                communities: Vec::new().into(),
                next_hop: None,
            })),
        };
        engine.process_route(&ev);
        for t in engine.drain_transitions() {
            book.apply(&t);
        }
    }
    let all = book.list(&AlertFilter::default());
    assert!(!all.is_empty(), "hijacks raised alerts");
    let ids: Vec<String> = all.iter().map(|a| a.id.clone()).collect();
    let one_prefix = AlertFilter {
        prefix: Some(prefixes[n / 2]),
        ..AlertFilter::default()
    };

    let mut g = c.benchmark_group("alert_book");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    let mut i = 0;
    g.bench_function("get_by_id_1k_firing", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            book.get(black_box(&ids[i])).is_some()
        })
    });
    g.bench_function("list_all_1k_firing", |b| {
        b.iter(|| book.list(black_box(&AlertFilter::default())).len())
    });
    g.bench_function("list_one_prefix_1k_firing", |b| {
        b.iter(|| book.list(black_box(&one_prefix)).len())
    });
    g.finish();
}

criterion_group!(benches, parsing, engine, baseline_growth, alert_book);
criterion_main!(benches);
