//! Route-state memory: fills an engine watching P prefixes with one route per prefix from each
//! of V vantage points and reports the process's RSS.
//!
//! `cargo run --release --example route_memory -- P V [--distinct | --unique | --rib [FILE]
//! [--all-peers]] [--rounds N]`
//!
//! `--rounds N` then replaces every route N times, each round with attributes no earlier
//! round had, and reports the RSS and the interning tables after each round (they must not
//! grow: what routes no longer hold is freed).
//!
//! Where the route attributes come from:
//! - by default, a pool of 50 k real announcements (`../shared/data/mrt/rrc00-updates…`), the
//!   same `Arc` handed out again and again, as when one UPDATE carries many prefixes;
//! - `--distinct`: the same pool, every route with its own copy (equal attributes arriving in
//!   different UPDATEs, which is what feeds hand over);
//! - `--unique`: the pool with a next hop of its own for every route: no two routes have equal
//!   attributes, nothing can be shared (the worst case);
//! - `--rib [FILE]`: real path diversity from a table dump (default
//!   `../shared/data/mrt/ris-bview.20020722.2337.gz`). The P watched prefixes are real prefixes
//!   spread evenly over the dump, among those that every full-table peer routes; VP `i` takes
//!   the routes of full-table peer `i mod R` with its own ASN as first hop and its own address
//!   as next hop, so no two VPs share a path, and each VP has the diversity one real peer has
//!   over those prefixes. Each watched prefix allows every origin the dump shows for it, so the
//!   routes raise no alert. With `--all-peers`, VP `i` takes instead the route of the `i mod K`th
//!   of the K peers (full-table or not) that route the prefix: the diversity between real
//!   peers' paths, not only within one peer's.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bgpsentry::config::Config;
use bgpsentry::engine::Engine;
use bgpsentry::event::{
    AsPath, Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent, Timestamp,
    VantagePoint,
};
use bgpsentry::feeds::mrt::MrtReader;
use ipnet::{IpNet, Ipv4Net};

const OWN: u32 = 64500;
const USAGE: &str =
    "usage: route_memory P V [--distinct | --unique | --rib [FILE] [--all-peers]] [--rounds N]";

fn rss_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Where every route's attributes come from.
enum Source {
    /// A pool of real announcements; `copy`: each route gets its own copy, `unique`: and a
    /// next hop of its own.
    Pool {
        pool: Vec<Arc<RouteAttrs>>,
        copy: bool,
        unique: bool,
    },
    /// Per watched prefix, per full-table peer: the dump's attributes.
    Rib { routes: Vec<Vec<Arc<RouteAttrs>>> },
}

/// A copy of `a` sharing no allocation with it, as a feed hands over equal attributes that
/// arrive in different UPDATEs.
fn deep_copy(a: &RouteAttrs) -> RouteAttrs {
    RouteAttrs {
        path: AsPath::new(&a.path.to_vec()),
        communities: a.communities.to_vec().into(),
        next_hop: a.next_hop,
    }
}

/// 50 k real announcements with the origin rewritten to [`OWN`].
fn pool() -> Vec<Arc<RouteAttrs>> {
    let file = data("../shared/data/mrt/rrc00-updates.20190101.0000.gz");
    let mut reader = MrtReader::open(&file, "mrt", None).expect("MRT file");
    let mut pool = Vec::new();
    let mut evs = Vec::new();
    while pool.len() < 50_000 && reader.next_record(&mut evs).is_some() {
        for ev in evs.drain(..) {
            if let FeedEvent::Route(RouteEvent {
                change: RouteChange::Announce(a),
                ..
            }) = ev
                && !a.path.is_empty()
            {
                let mut path = a.path.to_vec();
                if let Some(last) = path.last_mut() {
                    *last = PathElem::Asn(OWN);
                }
                pool.push(Arc::new(RouteAttrs {
                    path: AsPath::new(&path),
                    ..(*a).clone()
                }));
            }
        }
    }
    pool
}

/// `p` prefixes of a table dump routed by every full-table peer (evenly spread over the dump),
/// with those peers' attributes, and the origins each prefix shows.
fn rib(file: &Path, p: usize, all: bool) -> (Vec<Vec<Arc<RouteAttrs>>>, Vec<Vec<u32>>) {
    let mut reader = MrtReader::open(file, "mrt", None).expect("table dump");
    let mut peers: HashMap<Arc<VantagePoint>, usize> = HashMap::new();
    // prefix -> (peer index -> attributes), in prefix order.
    let mut table: BTreeMap<IpNet, Vec<(usize, Arc<RouteAttrs>)>> = BTreeMap::new();
    let mut evs = Vec::new();
    while reader.next_record(&mut evs).is_some() {
        for ev in evs.drain(..) {
            if let FeedEvent::Route(RouteEvent {
                vp,
                prefix,
                change: RouteChange::Announce(a),
                ..
            }) = ev
                && !a.path.is_empty()
            {
                let n = peers.len();
                let peer = *peers.entry(vp).or_insert(n);
                table.entry(prefix).or_default().push((peer, a));
            }
        }
    }
    let mut per_peer = vec![0usize; peers.len()];
    for routes in table.values() {
        for (peer, _) in routes {
            per_peer[*peer] += 1;
        }
    }
    let most = per_peer.iter().copied().max().unwrap_or(0);
    let full: Vec<usize> = (0..peers.len())
        .filter(|&i| per_peer[i] * 10 >= most * 9)
        .collect();
    let candidates: Vec<&Vec<(usize, Arc<RouteAttrs>)>> = table
        .values()
        .filter(|routes| full.iter().all(|f| routes.iter().any(|(i, _)| i == f)))
        .collect();
    assert!(
        candidates.len() >= p,
        "the dump has {} prefixes routed by all {} full-table peers; ask for at most that many",
        candidates.len(),
        full.len()
    );
    eprintln!(
        "rib: {} peers, {} full-table, {} prefixes routed by all of them; taking {p}",
        peers.len(),
        full.len(),
        candidates.len()
    );
    let mut out = Vec::with_capacity(p);
    let mut origins = Vec::with_capacity(p);
    for i in 0..p {
        let routes = candidates[i * candidates.len() / p];
        let by_full: Vec<Arc<RouteAttrs>> = if all {
            let mut by_peer = routes.clone();
            by_peer.sort_by_key(|(peer, _)| *peer);
            by_peer.into_iter().map(|(_, a)| a).collect()
        } else {
            full.iter()
                .filter_map(|f| routes.iter().find(|(i, _)| i == f).map(|(_, a)| a.clone()))
                .collect()
        };
        let mut o: Vec<u32> = by_full
            .iter()
            .flat_map(|a| a.path.origins().to_vec())
            .collect();
        o.sort_unstable();
        o.dedup();
        out.push(by_full);
        origins.push(o);
    }
    (out, origins)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p: usize = args.first().and_then(|a| a.parse().ok()).expect(USAGE);
    let v: u32 = args.get(1).and_then(|a| a.parse().ok()).expect(USAGE);
    let flag = |f: &str| args.iter().position(|a| a == f);
    let rounds: u32 = flag("--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0);
    let (source, origins, mode) = if let Some(i) = flag("--rib") {
        let file = args
            .get(i + 1)
            .filter(|a| !a.starts_with("--"))
            .map(PathBuf::from)
            .unwrap_or_else(|| data("../shared/data/mrt/ris-bview.20020722.2337.gz"));
        let all = flag("--all-peers").is_some();
        let (routes, origins) = rib(&file, p, all);
        (
            Source::Rib { routes },
            Some(origins),
            if all { "rib-all-peers" } else { "rib" },
        )
    } else {
        let unique = flag("--unique").is_some();
        let copy = unique || flag("--distinct").is_some();
        let mode = if unique {
            "unique"
        } else if copy {
            "distinct"
        } else {
            "shared"
        };
        let pool = pool();
        (Source::Pool { pool, copy, unique }, None, mode)
    };

    let prefixes: Vec<IpNet> = (0..p as u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0100_0000 + (i << 8)), 24).expect("/24")))
        .collect();
    let mut yaml = String::from("prefixes:\n");
    for (i, x) in prefixes.iter().enumerate() {
        let allowed = match &origins {
            Some(o) => o[i]
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            None => OWN.to_string(),
        };
        yaml.push_str(&format!(
            "  - prefix: {x}\n    origins: [{allowed}]\n    upstreams: []\n"
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
    let attrs_of = |pi: usize, vi: usize, k: usize| -> Arc<RouteAttrs> {
        let vp = &vps[vi];
        match &source {
            Source::Pool { pool, copy, unique } => {
                let attrs = &pool[k % pool.len()];
                if *unique {
                    let mut a = deep_copy(attrs);
                    a.next_hop = Some(IpAddr::V6((k as u128).into()));
                    Arc::new(a)
                } else if *copy {
                    Arc::new(deep_copy(attrs))
                } else {
                    attrs.clone()
                }
            }
            Source::Rib { routes } => {
                let real = &routes[pi][vi % routes[pi].len()];
                let mut path = real.path.to_vec();
                path[0] = PathElem::Asn(vp.peer_asn);
                Arc::new(RouteAttrs {
                    path: AsPath::new(&path),
                    communities: real.communities.to_vec().into(),
                    next_hop: Some(vp.peer_ip),
                })
            }
        }
    };
    for (pi, prefix) in prefixes.iter().enumerate() {
        for (vi, vp) in vps.iter().enumerate() {
            let attrs = attrs_of(pi, vi, k);
            k += 1;
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
    let (sets, paths, lists) = engine.interned_counts();
    println!(
        "prefixes={p} vps={v} routes={} attrs={mode} attribute_sets={sets} paths={paths} \
         community_lists={lists} fill_s={secs:.2} events_per_s={:.0} rss_before_mb={:.0} \
         rss_mb={:.0} peak_fill_mb={:.0} peak_rss_mb={:.0}",
        engine.route_count(),
        k as f64 / secs,
        before as f64 / 1024.0,
        rss_kb("VmRSS:") as f64 / 1024.0,
        peak_fill as f64 / 1024.0,
        rss_kb("VmHWM:") as f64 / 1024.0
    );
    // Churn: every route replaced, each round by attributes no earlier round had (the origin
    // prepended once more, one more community), the changes taken after every prefix as the
    // service takes them after every batch. What the rounds leave behind shows in the tables.
    for round in 1..=rounds {
        let t = Instant::now();
        let mut k = 0usize;
        for (pi, prefix) in prefixes.iter().enumerate() {
            for (vi, vp) in vps.iter().enumerate() {
                let attrs = churned(&attrs_of(pi, vi, k), round);
                k += 1;
                let ev = RouteEvent {
                    timestamp: Timestamp::from_parts(1_800_000_000 + pi as i64, 0),
                    vp: vp.clone(),
                    prefix: *prefix,
                    change: RouteChange::Announce(attrs),
                };
                engine.process_route(&ev);
            }
            engine.drain_transitions();
            let _ = engine.take_changes();
        }
        let _ = engine.take_touched();
        let (sets, paths, lists) = engine.interned_counts();
        println!(
            "round={round} routes={} attribute_sets={sets} paths={paths} community_lists={lists} \
             events_per_s={:.0} rss_mb={:.0} peak_rss_mb={:.0}",
            engine.route_count(),
            k as f64 / t.elapsed().as_secs_f64(),
            rss_kb("VmRSS:") as f64 / 1024.0,
            rss_kb("VmHWM:") as f64 / 1024.0
        );
    }
}

/// `a` with its origin prepended `round` more times and one more community: attributes that
/// no other round has.
fn churned(a: &RouteAttrs, round: u32) -> Arc<RouteAttrs> {
    let mut path = a.path.to_vec();
    if let Some(origin) = path.last().cloned() {
        path.extend(std::iter::repeat_n(origin, round as usize));
    }
    let mut communities = a.communities.to_vec();
    communities.push(Community::Standard(65_000, round as u16));
    Arc::new(RouteAttrs {
        path: AsPath::new(&path),
        communities: communities.into(),
        next_hop: a.next_hop,
    })
}
