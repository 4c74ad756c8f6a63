//! Real-traffic load tool: replays a whole MRT update file as RIS Live frames over a loopback
//! WebSocket against the real `bgpsentry run` (real watch list, default rules, store on disk),
//! and measures CPU per message, messages/s, peak RSS and alert latency *during* the burst.
//!
//! ```sh
//! cargo build --release --bin bgpsentry --examples
//! target/release/examples/loadreal            # rrc00-updates.20190101.0000.gz, 1,000 prefixes
//! ```
//!
//! Each MRT record becomes one RIS Live frame (one per attribute set when a record carries
//! several), with its peer, path, communities, announcements and withdrawals; the watch list is
//! the first `--prefixes` prefixes the file announces, each with its first origin (so nested
//! prefixes and prefixes with several origins are in it, and the real stream raises real alerts).
//! Defaults apply otherwise: upstreams are learned, two VPs fire an alert, visibility is checked.
//!
//! Four runs (`--runs`), each against a fresh service and store:
//! 1. `max`: every frame as fast as the service reads it. Reports messages/s and CPU per message
//!    until every event is processed (and split by the service's threads: `tokio-rt-worker` is
//!    the feed, HTTP and the notifier, `engine` and `store` are theirs), and the latency of one
//!    hijack sent right after the last frame (it is visible only once everything before it is
//!    stored).
//! 2. to 4. the same frames paced at 50 %, 80 % and 100 % of the rate measured in run 1 (or of
//!    `--capacity`), with a hijack of a watched prefix (a new origin, from two VPs) injected
//!    every `--hijack-every-ms`; each is timed from its frames being written to the socket until
//!    `/alerts?prefix=` shows it. Reports p50/p99/max of those latencies, how long the service
//!    took after the last frame to process what was still queued (`drain_after_burst_s`: 0 when
//!    it kept up), and each hijack's latency split into stages: the service logs the instants of
//!    each fired alert (`RUST_LOG=bgpsentry::latency=debug`, see `src/service/latency.rs`), the
//!    rest is the wire and the feed before it and the polling after it. At 100 % of capacity the
//!    service is busy all the time, so any slower moment leaves a queue that it never catches
//!    up on: that run measures the bounded queue (`drain_after_burst_s`, and the `trend` of the
//!    latency from the first to the last third of the run), not the pipeline; the figures that
//!    describe the pipeline during a burst are those below capacity.

#[path = "support/proc_stats.rs"]
mod proc_stats;
use proc_stats::{cpu_seconds, cpu_seconds_by_thread, metric, pct, run_ns, status_kb};

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgpsentry::event::{Community, FeedEvent, PathElem, RouteAttrs, RouteChange, VantagePoint};
use bgpsentry::feeds::mrt::MrtReader;
use futures_util::{SinkExt, StreamExt};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

struct Args {
    bin: PathBuf,
    file: PathBuf,
    prefixes: usize,
    hijack_every_ms: u64,
    runs: Vec<String>,
    /// Frames/s taken as 100 % when no `max` run comes first.
    capacity: Option<f64>,
}

fn args() -> Args {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        bin: root.join("target/release/bgpsentry"),
        file: root.join("../shared/data/mrt/rrc00-updates.20190101.0000.gz"),
        prefixes: 1000,
        hijack_every_ms: 10,
        runs: vec!["max".into(), "50".into(), "80".into(), "100".into()],
        capacity: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage(&k));
        match k.as_str() {
            "--bin" => a.bin = v.into(),
            "--file" => a.file = v.into(),
            "--prefixes" => a.prefixes = v.parse().unwrap_or_else(|_| usage(&k)),
            "--hijack-every-ms" => a.hijack_every_ms = v.parse().unwrap_or_else(|_| usage(&k)),
            "--runs" => a.runs = v.split(',').map(str::to_string).collect(),
            "--capacity" => a.capacity = Some(v.parse().unwrap_or_else(|_| usage(&k))),
            _ => usage(&k),
        }
    }
    a
}

fn usage(k: &str) -> ! {
    eprintln!(
        "bad argument {k}\nusage: loadreal [--bin PATH] [--file MRT] [--prefixes N] \
         [--hijack-every-ms MS] [--runs max,50,80,100] [--capacity FRAMES_PER_S]"
    );
    std::process::exit(2)
}

/// The replay: frames in file order, with their event counts and times.
struct Replay {
    frames: Vec<Utf8Bytes>,
    events: u64,
    /// Event time of each frame (seconds).
    times: Vec<f64>,
    /// Two real peers (address, ASN), for the injected hijacks.
    peers: [(IpAddr, u32); 2],
    /// A real path to put the hijacker at the end of.
    path: Vec<u32>,
    watch_yaml: String,
    watched: Vec<IpNet>,
}

fn path_json(path: &[PathElem]) -> String {
    let mut s = String::from("[");
    for (i, e) in path.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match e {
            PathElem::Asn(a) => write!(s, "{a}").unwrap(),
            PathElem::Set(set) => {
                s.push('[');
                for (j, a) in set.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    write!(s, "{a}").unwrap();
                }
                s.push(']');
            }
        }
    }
    s.push(']');
    s
}

fn community_json(comms: &[Community]) -> String {
    let items: Vec<String> = comms
        .iter()
        .map(|c| match c {
            Community::Standard(a, b) => format!("[{a},{b}]"),
            Community::Large(a, b, c) => format!("[{a},{b},{c}]"),
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// One RIS Live UPDATE frame. Keys in the order RIS Live sends them (`type` before `data`).
fn ris_frame(
    vp: &VantagePoint,
    ts: f64,
    attrs: Option<&RouteAttrs>,
    announced: &[IpNet],
    withdrawn: &[IpNet],
) -> String {
    let list = |ps: &[IpNet]| {
        let v: Vec<String> = ps.iter().map(|p| format!("\"{p}\"")).collect();
        format!("[{}]", v.join(","))
    };
    let mut f = format!(
        r#"{{"type":"ris_message","data":{{"timestamp":{ts:.6},"peer":"{}","peer_asn":"{}","id":"x","host":"{}.ripe.net","type":"UPDATE""#,
        vp.peer_ip, vp.peer_asn, vp.collector
    );
    if let Some(a) = attrs {
        let nh = a
            .next_hop
            .map(|n| n.to_string())
            .unwrap_or_else(|| vp.peer_ip.to_string());
        write!(
            f,
            r#","path":{},"community":{},"origin":"IGP","announcements":[{{"next_hop":"{nh}","prefixes":{}}}]"#,
            path_json(&a.path.to_vec()),
            community_json(&a.communities),
            list(announced)
        )
        .unwrap();
    }
    write!(f, r#","withdrawals":{}}}}}"#, list(withdrawn)).unwrap();
    f
}

/// One record's events of one peer: (peer, time, announced prefixes by attribute set,
/// withdrawn prefixes).
type PeerFrames = (
    Arc<VantagePoint>,
    f64,
    Vec<(Option<Arc<RouteAttrs>>, Vec<IpNet>)>,
    Vec<IpNet>,
);

fn load(file: &Path, n_watch: usize) -> Replay {
    let mut reader = MrtReader::open(file, "mrt", Some("rrc00"))
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", file.display()));
    let mut frames = Vec::new();
    let mut times = Vec::new();
    let mut events = 0u64;
    let mut evs = Vec::new();
    let mut first_origin: HashMap<IpNet, u32> = HashMap::new();
    let mut order: Vec<IpNet> = Vec::new();
    let mut origins: HashMap<IpNet, HashSet<u32>> = HashMap::new();
    let mut peers: Vec<(IpAddr, u32)> = Vec::new();
    let mut path = Vec::new();
    while reader.next_record(&mut evs).is_some() {
        // Group the record's events by VP and attribute set: one frame each.
        let mut groups: Vec<PeerFrames> = Vec::new();
        for ev in evs.drain(..) {
            let FeedEvent::Route(ev) = ev else { continue };
            events += 1;
            let g = match groups.iter_mut().position(|g| g.0 == ev.vp) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push((ev.vp.clone(), ev.timestamp.as_secs_f64(), vec![], vec![]));
                    groups.last_mut().unwrap()
                }
            };
            match ev.change {
                RouteChange::Announce(a) => {
                    if let Some(&o) = a.path.origins().first() {
                        first_origin.entry(ev.prefix).or_insert_with(|| {
                            order.push(ev.prefix);
                            o
                        });
                        origins.entry(ev.prefix).or_default().insert(o);
                    }
                    if path.is_empty() && a.path.len() >= 3 {
                        path = a
                            .path
                            .iter()
                            .filter_map(|e| match e {
                                PathElem::Asn(x) => Some(*x),
                                PathElem::Set(_) => None,
                            })
                            .collect();
                    }
                    match g.2.iter_mut().find(|(at, _)| {
                        at.as_ref()
                            .is_some_and(|at| Arc::ptr_eq(at, &a) || **at == *a)
                    }) {
                        Some(x) => x.1.push(ev.prefix),
                        None => g.2.push((Some(a), vec![ev.prefix])),
                    }
                }
                RouteChange::Withdraw => g.3.push(ev.prefix),
            }
        }
        for (vp, ts, announced, withdrawn) in groups {
            if !peers.contains(&(vp.peer_ip, vp.peer_asn)) {
                peers.push((vp.peer_ip, vp.peer_asn));
            }
            if announced.is_empty() {
                frames.push(ris_frame(&vp, ts, None, &[], &withdrawn).into());
                times.push(ts);
            }
            for (i, (attrs, ps)) in announced.iter().enumerate() {
                // Withdrawals go with the first frame of the record.
                let w: &[IpNet] = if i == 0 { &withdrawn } else { &[] };
                frames.push(ris_frame(&vp, ts, attrs.as_deref(), ps, w).into());
                times.push(ts);
            }
        }
    }
    // As `gen_watchlist` writes it: the first prefixes announced, each with its first origin.
    let mut watch_yaml = String::from("prefixes:\n");
    let watched: Vec<IpNet> = order.iter().take(n_watch).copied().collect();
    for p in &watched {
        writeln!(
            watch_yaml,
            "  - prefix: {p}\n    origins: [{}]",
            first_origin[p]
        )
        .unwrap();
    }
    let set: HashSet<IpNet> = watched.iter().copied().collect();
    let nested = watched
        .iter()
        .filter(|p| {
            watched
                .iter()
                .any(|q| q != *p && q.contains(*p) && set.contains(q))
        })
        .count();
    let moas = watched.iter().filter(|p| origins[p].len() > 1).count();
    eprintln!(
        "{} frames, {events} route events, {} peers; watch list: {} prefixes, {nested} nested in \
         another watched one, {moas} announced with more than one origin in the file",
        frames.len(),
        peers.len(),
        watched.len()
    );
    Replay {
        frames,
        events,
        times,
        peers: [peers[0], peers[1 % peers.len()]],
        path,
        watch_yaml,
        watched,
    }
}

/// What the server task sends.
enum Out {
    Frame(Utf8Bytes),
    /// Hijack frames, sent and flushed together; the time they were written is reported.
    Hijack(Vec<String>, std::sync::mpsc::Sender<Written>),
}

async fn serve_ws(listener: TcpListener, mut rx: mpsc::Receiver<Out>) {
    let Ok((tcp, _)) = listener.accept().await else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move { while stream.next().await.is_some() {} });
    while let Some(out) = rx.recv().await {
        let r = match out {
            Out::Frame(f) => sink.feed(Message::text(f)).await,
            Out::Hijack(fs, tx) => {
                let mut r = Ok(());
                for f in fs {
                    r = r.and(sink.feed(Message::text(f)).await);
                }
                r = r.and(sink.flush().await);
                let _ = tx.send(Written {
                    at: Instant::now(),
                    wall: SystemTime::now(),
                });
                r
            }
        };
        if r.is_err() {
            return;
        }
        if rx.is_empty() {
            let _ = sink.flush().await;
        }
    }
}

/// When a hijack's frames were written to the socket.
#[derive(Clone, Copy)]
struct Written {
    at: Instant,
    /// The same instant on the wall clock, to line up with the service's own log.
    wall: SystemTime,
}

/// The service's account of one alert's way to `/alerts` (its `bgpsentry::latency` debug line),
/// in microseconds.
#[derive(Debug, Default, Clone)]
struct Stages {
    received_unix_us: u64,
    batch_events: u64,
    group_commits: u64,
    engine_queue_us: u64,
    engine_us: u64,
    commit_queue_us: u64,
    store_wait_us: u64,
    store_write_us: u64,
    publish_us: u64,
    total_us: u64,
}

/// The stages of a `bgpsentry::latency` "alert visible" line, with the alert's origin.
fn parse_stages(line: &str) -> Option<(u32, Stages)> {
    if !line.contains("bgpsentry::latency") || !line.contains("alert visible") {
        return None;
    }
    let mut origin = None;
    let mut s = Stages::default();
    for kv in line.split_whitespace() {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let n = || v.parse::<u64>().ok();
        match k {
            "origin" => origin = v.parse::<u32>().ok(),
            "received_unix_us" => s.received_unix_us = n()?,
            "batch_events" => s.batch_events = n()?,
            "group_commits" => s.group_commits = n()?,
            "engine_queue_us" => s.engine_queue_us = n()?,
            "engine_us" => s.engine_us = n()?,
            "commit_queue_us" => s.commit_queue_us = n()?,
            "store_wait_us" => s.store_wait_us = n()?,
            "store_write_us" => s.store_write_us = n()?,
            "publish_us" => s.publish_us = n()?,
            "total_us" => s.total_us = n()?,
            _ => {}
        }
    }
    Some((origin?, s))
}

struct Service {
    child: Child,
    base: String,
    /// Per-stage lines of the alerts that fired, by origin.
    stages: Arc<Mutex<HashMap<u32, Stages>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(bin: &Path, replay: &Replay, ws_port: u16) -> Service {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut yaml = replay.watch_yaml.clone();
    write!(
        yaml,
        "feeds:\n  - kind: ris_live\n    url: ws://127.0.0.1:{ws_port}/v1/ws/\n    beacons: []\n    warm_start: false\n\
         store:\n  path: {}\n",
        dir.path().join("store.db").display()
    )
    .unwrap();
    let config = dir.path().join("loadreal.yml");
    std::fs::write(&config, yaml).expect("write config");
    let mut child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        // The per-stage line of each alert that fires (see `src/service/latency.rs`).
        .env("RUST_LOG", "info,bgpsentry::latency=debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let stages = Arc::new(Mutex::new(HashMap::new()));
    let stages_in = stages.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((origin, s)) = parse_stages(&line) {
                // The first alert with the hijacker's origin is the hijack; a `new_upstream`
                // alert for its neighbour may follow once its hold-down has run out.
                stages_in.lock().unwrap().entry(origin).or_insert(s);
                continue;
            }
            if !sent && let Some(i) = line.find("listening on http://") {
                let addr = line[i + "listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("service did not log its listening address");
    Service {
        child,
        base,
        stages,
        _dir: dir,
    }
}

/// A hijack waiting to be seen.
struct Pending {
    /// Its place in the run (0 = first sent).
    order: usize,
    origin: u32,
    url: String,
    needle: String,
    sent: std::sync::mpsc::Receiver<Written>,
    sent_at: Option<Written>,
    /// When the last request that did not show it yet was sent.
    last_miss: Option<Instant>,
}

/// A hijack seen in `/alerts`.
struct Seen {
    order: usize,
    origin: u32,
    written: Written,
    /// Frames written → the response that showed it read (an upper bound).
    ms: f64,
    /// How much of `ms` may be the polling's own resolution: from the start of the last
    /// request that did not show it (or from the write) to the end of the one that did.
    resolution_ms: f64,
}

/// Polls `/alerts?prefix=` for every pending hijack in turn until each is seen; one thread, so
/// that the polling load stays the same whatever the latency.
fn poller(
    agent: ureq::Agent,
    pending: Arc<Mutex<Vec<Pending>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        let batch: Vec<Pending> = std::mem::take(&mut *pending.lock().unwrap());
        let mut left = Vec::new();
        for mut p in batch {
            if p.sent_at.is_none() {
                match p.sent.try_recv() {
                    Ok(t) => p.sent_at = Some(t),
                    Err(_) => {
                        left.push(p);
                        continue;
                    }
                }
            }
            let asked = Instant::now();
            let body = agent.get(&p.url).call().ok().and_then(|mut r| {
                r.body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_string()
                    .ok()
            });
            let Some(written) = p.sent_at else { continue };
            let since = written.at.elapsed();
            if body.is_some_and(|b| b.contains(&p.needle)) {
                let from = p.last_miss.unwrap_or(written.at).max(written.at);
                seen.lock().unwrap().push(Seen {
                    order: p.order,
                    origin: p.origin,
                    written,
                    ms: since.as_secs_f64() * 1e3,
                    resolution_ms: from.elapsed().as_secs_f64() * 1e3,
                });
            } else if since > Duration::from_secs(60) {
                eprintln!("{} not seen within 60 s", p.needle);
            } else {
                p.last_miss = Some(asked);
                left.push(p);
            }
        }
        let empty = left.is_empty();
        pending.lock().unwrap().extend(left);
        if empty && stop.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

struct Outcome {
    rate: f64,
    secs: f64,
    cpu_us: f64,
    cpu_us_all: f64,
    util: f64,
    rss_mb: f64,
    /// Frames written → visible in `/alerts`, sorted (ms).
    lat: Vec<f64>,
    sent_hijacks: usize,
    /// Each seen hijack's latency split into stages.
    stages: Vec<Breakdown>,
    /// From the last frame written to every event processed: what was still queued when the
    /// burst ended (0 when the service kept up).
    drain_secs: f64,
    /// CPU per message until every event is processed, by thread name (µs): `tokio-rt-worker`
    /// is the feed, the HTTP server and the notifier; `engine` and `store` are theirs.
    cpu_us_by_thread: Vec<(String, f64)>,
}

/// One hijack's latency split into stages (ms): the wire and the feed (frames written → the
/// feed hands the batch to the engine queue), the service's stages as it logs them, and what is
/// left of the measured latency (the alert book → the poller's request seeing it).
struct Breakdown {
    order: usize,
    total: f64,
    parts: [f64; STAGES.len()],
    resolution: f64,
    batch_events: f64,
    group_commits: f64,
}

const STAGES: [&str; 8] = [
    "wire+feed",
    "engine_queue",
    "engine",
    "commit_queue",
    "store_wait",
    "store_write",
    "publish",
    "poll",
];

fn breakdown(seen: &Seen, s: &Stages) -> Breakdown {
    let ms = |us: u64| us as f64 / 1e3;
    let written_us = seen
        .written
        .wall
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6);
    let wire = (s.received_unix_us as f64 - written_us) / 1e3;
    Breakdown {
        order: seen.order,
        total: seen.ms,
        parts: [
            wire,
            ms(s.engine_queue_us),
            ms(s.engine_us),
            ms(s.commit_queue_us),
            ms(s.store_wait_us),
            ms(s.store_write_us),
            ms(s.publish_us),
            seen.ms - wire - ms(s.total_us),
        ],
        resolution: seen.resolution_ms,
        batch_events: s.batch_events as f64,
        group_commits: s.group_commits as f64,
    }
}

/// Per-stage p50/p99/max, and the mean of each stage over the slowest 10 % of the hijacks
/// (what holds the tail).
fn print_breakdown(label: &str, b: &[Breakdown]) {
    if b.is_empty() {
        return;
    }
    let sorted = |f: &dyn Fn(&Breakdown) -> f64| {
        let mut v: Vec<f64> = b.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let mut by_total: Vec<&Breakdown> = b.iter().collect();
    by_total.sort_by(|x, y| x.total.total_cmp(&y.total));
    let tail = &by_total[by_total.len() * 9 / 10..];
    let mean =
        |f: &dyn Fn(&Breakdown) -> f64| tail.iter().map(|x| f(x)).sum::<f64>() / tail.len() as f64;
    let mut line = format!("stages run={label} hijacks={}", b.len());
    let mut show = |name: &str, f: &dyn Fn(&Breakdown) -> f64| {
        let v = sorted(f);
        write!(
            line,
            "\n  {name:<14} p50={:8.2} p99={:8.2} max={:8.2} slowest10%_mean={:8.2}",
            pct(&v, 0.5),
            pct(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN),
            mean(f)
        )
        .unwrap();
    };
    for (i, name) in STAGES.iter().enumerate() {
        show(name, &|x: &Breakdown| x.parts[i]);
    }
    show("total", &|x: &Breakdown| x.total);
    show("poll_resol.", &|x: &Breakdown| x.resolution);
    show("batch_events", &|x: &Breakdown| x.batch_events);
    show("group_commits", &|x: &Breakdown| x.group_commits);
    // A queue that grows over the run shows as later hijacks waiting longer.
    let third = b.len() / 3;
    if third > 0 {
        let mut by_order: Vec<&Breakdown> = b.iter().collect();
        by_order.sort_by_key(|x| x.order);
        let p50 = |xs: &[&Breakdown]| {
            let mut v: Vec<f64> = xs.iter().map(|x| x.total).collect();
            v.sort_by(f64::total_cmp);
            pct(&v, 0.5)
        };
        write!(
            line,
            "\n  trend: p50 of the first third {:.2} ms, of the last third {:.2} ms",
            p50(&by_order[..third]),
            p50(&by_order[b.len() - third..])
        )
        .unwrap();
    }
    println!("{line}");
}

/// The service's CPU time (total and by thread, seconds) at an instant.
struct Usage {
    at: Instant,
    cpu: f64,
    by_thread: std::collections::BTreeMap<String, f64>,
}

impl Usage {
    fn of(pid: u32) -> Usage {
        Usage {
            at: Instant::now(),
            cpu: cpu_seconds(pid),
            by_thread: cpu_seconds_by_thread(pid),
        }
    }
}

/// How long the service must stay under a quarter of a core before `/metrics` is read to see
/// whether it has processed everything.
const QUIET_FOR: Duration = Duration::from_millis(10);

/// Waits until the service has processed `target` events and returns its usage when it fell
/// quiet after them (within 2 ms of its last work), or `None` on timeout. The service is
/// watched through `/proc` (its threads' run time, every 2 ms) rather than through `/metrics`,
/// each read of which costs it about 5 ms of CPU with 1,000 watched prefixes (4,000 series; a
/// Prometheus scrape every 15 s costs it as much): `/metrics` is read only once the service has
/// been quiet for [`QUIET_FOR`], to check the count of events.
async fn wait_events(
    agent: &ureq::Agent,
    base: &str,
    pid: u32,
    target: f64,
    timeout: Duration,
) -> Option<Usage> {
    let deadline = Instant::now() + timeout;
    let mut prev = (Instant::now(), run_ns(pid));
    // The usage when the service last fell quiet: it used under a quarter of a core since.
    let mut quiet: Option<Usage> = None;
    loop {
        if Instant::now() > deadline {
            eprintln!("stopped waiting for {target} events after {timeout:?}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = (Instant::now(), run_ns(pid));
        let elapsed = now.0.duration_since(prev.0).as_nanos() as u64;
        let busy = now.1.saturating_sub(prev.1) * 4 > elapsed;
        prev = now;
        if busy {
            quiet = None;
            continue;
        }
        let since = quiet.get_or_insert_with(|| Usage::of(pid)).at;
        if now.0.duration_since(since) < QUIET_FOR {
            continue;
        }
        let a = agent.clone();
        let url = format!("{base}/metrics");
        let ev = tokio::task::spawn_blocking(move || {
            a.get(&url)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .map(|m| metric(&m, "bgpsentry_route_events_total"))
                .unwrap_or(0.0)
        })
        .await
        .unwrap_or(0.0);
        if ev >= target {
            return quiet;
        }
        // The read itself made it busy: start the quiet over.
        quiet = None;
        prev = (Instant::now(), run_ns(pid));
    }
}

/// One run: a fresh service, every frame at `rate` frames/s (`None`: as fast as it reads),
/// hijacks every `every` during the burst (`None`: one after the last frame).
async fn run(a: &Args, replay: &Replay, rate: Option<f64>, every: Option<Duration>) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws_port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel::<Out>(1024);
    let server = tokio::spawn(serve_ws(listener, rx));
    let svc = start_service(&a.bin, replay, ws_port);
    let pid = svc.child.id();
    let base = svc.base.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // Ready: the feed is connected.
    loop {
        let ag = agent.clone();
        let url = format!("{base}/readyz");
        let ok = tokio::task::spawn_blocking(move || {
            ag.get(&url).call().is_ok_and(|r| r.status() == 200)
        })
        .await
        .unwrap_or(false);
        if ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending = Arc::new(Mutex::new(Vec::<Pending>::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poll = std::thread::spawn({
        let (agent, pending, seen, stop) =
            (agent.clone(), pending.clone(), seen.clone(), stop.clone());
        move || poller(agent, pending, seen, stop)
    });
    let mut k = 0usize;
    let mut hijack = |ts: f64| -> Out {
        let p = replay.watched[(k * 7) % replay.watched.len()];
        let hijacker = 4_200_000_000 + k as u32;
        k += 1;
        let mut path = replay.path.clone();
        path.push(hijacker);
        let attrs = RouteAttrs {
            path: bgpsentry::event::AsPath::from_asns(path),
            communities: vec![].into(),
            next_hop: None,
        };
        let frames = replay
            .peers
            .iter()
            .map(|(ip, asn)| {
                let vp = VantagePoint {
                    feed: "ris_live".into(),
                    collector: "rrc00".into(),
                    peer_asn: *asn,
                    peer_ip: *ip,
                    exporter: None,
                };
                ris_frame(&vp, ts, Some(&attrs), &[p], &[])
            })
            .collect();
        let (stx, srx) = std::sync::mpsc::channel();
        pending.lock().unwrap().push(Pending {
            order: k - 1,
            origin: hijacker,
            url: format!("{base}/alerts?prefix={p}"),
            needle: format!("\"origin\":{hijacker}"),
            sent: srx,
            sent_at: None,
            last_miss: None,
        });
        Out::Hijack(frames, stx)
    };

    let cpu0 = cpu_seconds(pid);
    let threads0 = cpu_seconds_by_thread(pid);
    let t0 = Instant::now();
    let mut next_hijack = every.map(|e| t0 + e);
    let n = replay.frames.len();
    let mut i = 0;
    while i < n {
        let due = match rate {
            None => n,
            Some(r) => ((t0.elapsed().as_secs_f64() * r) as usize + 1).min(n),
        };
        while i < due {
            if tx.send(Out::Frame(replay.frames[i].clone())).await.is_err() {
                panic!("the WebSocket server ended");
            }
            i += 1;
            if let Some(h) = next_hijack
                && Instant::now() >= h
            {
                let _ = tx.send(hijack(replay.times[i - 1])).await;
                next_hijack = every.map(|e| h + e);
            }
        }
        if rate.is_some() && i < n {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    if every.is_none() {
        let _ = tx.send(hijack(replay.times[n - 1])).await;
    }
    let burst_end = Instant::now();
    let done = wait_events(
        &agent,
        &base,
        pid,
        replay.events as f64,
        Duration::from_secs(300),
    )
    .await;
    let processed = done.is_some();
    let done = done.unwrap_or_else(|| Usage::of(pid));
    let secs = done.at.duration_since(t0).as_secs_f64();
    let drain_secs = done.at.saturating_duration_since(burst_end).as_secs_f64();
    let cpu = done.cpu - cpu0;
    let cpu_us_by_thread = done
        .by_thread
        .into_iter()
        .map(|(name, s)| {
            let before = threads0.get(&name).copied().unwrap_or(0.0);
            (name, (s - before) * 1e6 / replay.frames.len() as f64)
        })
        .filter(|(_, us)| *us > 0.0)
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Release);
    // Every hijack seen: everything before the last one is stored too.
    let _ = tokio::task::spawn_blocking(move || poll.join()).await;
    let cpu_all = cpu_seconds(pid) - cpu0;
    let rss_mb = status_kb(pid, "VmHWM:") as f64 / 1024.0;
    drop(tx);
    // The last lines of the log are read once the service is gone.
    let stages_of = svc.stages.clone();
    drop(svc);
    let _ = server.await;
    if !processed {
        eprintln!("warning: not every event was processed");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut lat: Vec<f64> = seen.iter().map(|s| s.ms).collect();
    lat.sort_by(f64::total_cmp);
    let stages = {
        let by_origin = stages_of.lock().unwrap();
        seen.iter()
            .filter_map(|s| Some(breakdown(s, by_origin.get(&s.origin)?)))
            .collect()
    };
    Outcome {
        rate: n as f64 / secs,
        secs,
        cpu_us: cpu * 1e6 / n as f64,
        cpu_us_all: cpu_all * 1e6 / n as f64,
        util: cpu / secs,
        rss_mb,
        lat,
        sent_hijacks: k,
        stages,
        drain_secs,
        cpu_us_by_thread,
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    eprintln!("reading {}…", a.file.display());
    let replay = load(&a.file, a.prefixes);
    let mut capacity = a.capacity;
    for r in &a.runs {
        let (rate, every, label) = match r.as_str() {
            "max" => (None, None, "max".to_string()),
            pct_s => {
                let p: f64 = pct_s.parse().unwrap_or_else(|_| usage("--runs"));
                let cap = *capacity.get_or_insert_with(|| {
                    eprintln!("no `max` run first: assuming 40,000 frames/s");
                    40_000.0
                });
                (
                    Some(cap * p / 100.0),
                    Some(Duration::from_millis(a.hijack_every_ms)),
                    format!("{p}%"),
                )
            }
        };
        let o = run(&a, &replay, rate, every).await;
        if r == "max" {
            capacity = Some(o.rate);
        }
        println!(
            "run={label} frames={} events={} seconds={:.3} msgs_per_s={:.0} cpu_us_per_msg={:.2} \
             (with the store's backlog {:.2}) cpu_util={:.2} peak_rss_mb={:.1} hijacks={} seen={} latency_ms p50={:.2} p99={:.2} \
             max={:.2} drain_after_burst_s={:.3}",
            replay.frames.len(),
            replay.events,
            o.secs,
            o.rate,
            o.cpu_us,
            o.cpu_us_all,
            o.util,
            o.rss_mb,
            o.sent_hijacks,
            o.lat.len(),
            pct(&o.lat, 0.5),
            pct(&o.lat, 0.99),
            o.lat.last().copied().unwrap_or(f64::NAN),
            o.drain_secs
        );
        let by_thread: Vec<String> = o
            .cpu_us_by_thread
            .iter()
            .map(|(name, us)| format!("{name}={us:.2}"))
            .collect();
        println!(
            "cpu_us_per_msg_by_thread run={label} {}",
            by_thread.join(" ")
        );
        print_breakdown(&label, &o.stages);
    }
}
