//! End-to-end load tool: serves a RIS Live-format (or bgproutes-format) stream over loopback
//! WebSocket as fast as the consumer takes it, runs the real `bgpsentry run` against it, and
//! measures sustained messages/s (from `bgpsentry_route_events_total`), detection latency
//! (hijack frame sent → alert visible in `/alerts`), CPU per message and peak RSS.
//!
//! ```sh
//! cargo build --release --bin bgpsentry --example loadgen
//! target/release/examples/loadgen --feed ris_live --prefixes 1000 --messages 1000000 --hijacks 300
//! target/release/examples/loadgen --feed bgproutes --prefixes 10 --messages 1000000 --hijacks 300
//! ```
//!
//! Frames carry real AS paths and communities from `../shared/data/mrt/` (the origin rewritten to
//! the watched prefixes' allowed origin), spread over the watched prefixes and 100 vantage points.
//! Phase 1 (throughput) streams `--messages` frames; phase 2 (latency) then injects `--hijacks`
//! hijacks one at a time (an unexpected origin for a watched prefix) and polls `/alerts` until each
//! one is visible. Everything binds to 127.0.0.1; both phases are bounded by `--seconds`.

#[path = "support/proc_stats.rs"]
mod proc_stats;
use proc_stats::{cpu_seconds, metric, pct, status_kb};

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgpsentry::event::{Community, FeedEvent, PathElem, RouteAttrs, RouteChange, RouteEvent};
use bgpsentry::feeds::mrt::MrtReader;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const OWN_ASN: u32 = 64500;
const VPS: u32 = 100;

struct Args {
    bin: PathBuf,
    feed: String,
    prefixes: usize,
    messages: usize,
    hijacks: usize,
    seconds: u64,
}

fn args() -> Args {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        bin: root.join("target/release/bgpsentry"),
        feed: "ris_live".into(),
        prefixes: 1000,
        messages: 1_000_000,
        hijacks: 300,
        seconds: 120,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage(&k));
        match k.as_str() {
            "--bin" => a.bin = v.into(),
            "--feed" => a.feed = v,
            "--prefixes" => a.prefixes = v.parse().unwrap_or_else(|_| usage(&k)),
            "--messages" => a.messages = v.parse().unwrap_or_else(|_| usage(&k)),
            "--hijacks" => a.hijacks = v.parse().unwrap_or_else(|_| usage(&k)),
            "--seconds" => a.seconds = v.parse().unwrap_or_else(|_| usage(&k)),
            _ => usage(&k),
        }
    }
    if a.feed == "bgproutes" && a.prefixes > 10 {
        eprintln!("bgproutes: one key takes at most 10 prefixes; using 10");
        a.prefixes = 10;
    }
    a
}

fn usage(k: &str) -> ! {
    eprintln!(
        "bad argument {k}\nusage: loadgen [--bin PATH] [--feed ris_live|bgproutes] [--prefixes N] \
         [--messages N] [--hijacks N] [--seconds S]"
    );
    std::process::exit(2)
}

fn watched(n: usize) -> Vec<String> {
    (0..n as u32)
        .map(|i| {
            format!(
                "{}/24",
                Ipv4Addr::from(u32::from(Ipv4Addr::new(1, 0, 0, 0)) + (i << 8))
            )
        })
        .collect()
}

/// Real announcements (AS path, communities) from the MRT update files.
fn real_routes(max: usize) -> Vec<Arc<RouteAttrs>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mrt");
    let mut out = Vec::new();
    for f in [
        "rrc00-updates.20190101.0000.gz",
        "ris-updates.20160811.1600.gz",
    ] {
        let Ok(mut r) = MrtReader::open(&dir.join(f), "mrt", None) else {
            continue;
        };
        let mut evs = Vec::new();
        while out.len() < max && r.next_record(&mut evs).is_some() {
            for ev in evs.drain(..) {
                if let FeedEvent::Route(RouteEvent {
                    change: RouteChange::Announce(a),
                    ..
                }) = ev
                    && a.path.iter().all(|e| matches!(e, PathElem::Asn(_)))
                    && !a.path.is_empty()
                {
                    out.push(a);
                }
            }
        }
    }
    assert!(!out.is_empty(), "no MRT data under {}", dir.display());
    out
}

fn path_of(a: &RouteAttrs, origin: u32) -> Vec<u32> {
    let mut p: Vec<u32> = a
        .path
        .iter()
        .filter_map(|e| match e {
            PathElem::Asn(x) => Some(*x),
            PathElem::Set(_) => None,
        })
        .collect();
    if let Some(last) = p.last_mut() {
        *last = origin;
    }
    p
}

fn ris_frame(vp: u32, path: &[u32], comms: &[Community], prefix: &str, ts: f64) -> String {
    let community: Vec<[u32; 2]> = comms
        .iter()
        .filter_map(|c| match c {
            Community::Standard(a, b) => Some([*a as u32, *b as u32]),
            _ => None,
        })
        .collect();
    let peer = Ipv4Addr::from(0x0a00_0000 + vp);
    // Keys in the order RIS Live sends them (`type` before `data`), which the parser's fast
    // path relies on; a `json!` object would sort them.
    format!(
        r#"{{"type":"ris_message","data":{{"timestamp":{ts:.3},"peer":"{peer}","peer_asn":"{asn}","id":"x","host":"rrc00.ripe.net","type":"UPDATE","path":{path},"community":{community},"origin":"IGP","announcements":[{{"next_hop":"{peer}","prefixes":[{prefix}]}}],"withdrawals":[]}}}}"#,
        asn = 65000 + vp,
        path = serde_json::to_string(path).unwrap_or_default(),
        community = serde_json::to_string(&community).unwrap_or_default(),
        prefix = serde_json::to_string(prefix).unwrap_or_default(),
    )
}

fn bgp_frame(vp: u32, path: &[u32], comms: &[Community], prefix: &str, ts: f64) -> String {
    let peer = Ipv4Addr::from(0x0a00_0000 + vp);
    let path: Vec<String> = path.iter().map(u32::to_string).collect();
    let comms: Vec<String> = comms
        .iter()
        .filter_map(|c| match c {
            Community::Standard(a, b) => Some(format!("{a}:{b}")),
            _ => None,
        })
        .collect();
    serde_json::json!({
        "record_type": "update", "vp": format!("{}_{peer}", 65000 + vp),
        "sec": ts as i64, "Usec": ((ts.fract()) * 1e6) as i64,
        "prefixes": prefix, "as-path": path.join(" "), "communities": comms.join(" "),
        "nexthop": peer.to_string(), "origin": "IGP"
    })
    .to_string()
}

/// What the server thread sends: background frames, or one hijack whose send time is reported.
enum Out {
    /// A background frame (shared: cloning it for each send costs no copy).
    Frame(Utf8Bytes),
    Hijack(String, std::sync::mpsc::Sender<Instant>),
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
    // Drain subscriptions and pings (pongs are answered when the next frame is written).
    tokio::spawn(async move { while stream.next().await.is_some() {} });
    while let Some(out) = rx.recv().await {
        let r = match out {
            Out::Frame(f) => sink.feed(Message::text(f)).await,
            Out::Hijack(f, tx) => {
                let r = sink.send(Message::text(f)).await;
                let _ = tx.send(Instant::now());
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

fn http_get(url: &str) -> Option<String> {
    let mut resp = ureq::get(url).call().ok()?;
    resp.body_mut().read_to_string().ok()
}

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(bin: &Path, config: &Path) -> Service {
    let mut child = Command::new(bin)
        .args(["run", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .env("BGP_API_KEY", "loadgen-key")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
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
    Service { child, base }
}

#[tokio::main]
async fn main() {
    let a = args();
    let prefixes = watched(a.prefixes);
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ws_port = listener.local_addr().expect("addr").port();

    // Live manager for bgproutes: answers 200 to every association.
    let lm = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let lm_port = lm.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "ok" });
        let _ = axum::serve(lm, app).await;
    });

    let mut yaml = String::from("prefixes:\n");
    for p in &prefixes {
        yaml.push_str(&format!(
            "  - prefix: {p}\n    origins: [{OWN_ASN}]\n    upstreams: []\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\n"
        ));
    }
    yaml.push_str("feeds:\n");
    match a.feed.as_str() {
        "ris_live" => yaml.push_str(&format!(
            "  - kind: ris_live\n    url: ws://127.0.0.1:{ws_port}/v1/ws/\n    beacons: []\n    warm_start: false\n"
        )),
        "bgproutes" => yaml.push_str(&format!(
            "  - kind: bgproutes\n    url: ws://127.0.0.1:{ws_port}/\n    live_manager_url: http://127.0.0.1:{lm_port}\n    warm_start: false\n"
        )),
        other => panic!("unknown feed {other}"),
    }
    let config = dir.path().join("loadgen.yml");
    std::fs::write(&config, yaml).expect("write config");

    eprintln!("building frames from real MRT updates…");
    let routes = real_routes(200_000);
    let frame = if a.feed == "ris_live" {
        ris_frame
    } else {
        bgp_frame
    };
    // A pool of background frames, cycled: real paths on the watched prefixes, all legitimate.
    let pool_len = a.messages.min(400_000);
    let base_ts = 1_800_000_000.0;
    let pool: Vec<Utf8Bytes> = (0..pool_len)
        .map(|i| {
            let r = &routes[i % routes.len()];
            let vp = (i as u32 * 7919) % VPS;
            let p = &prefixes[(i * 104_729) % prefixes.len()];
            frame(
                vp,
                &path_of(r, OWN_ASN),
                &r.communities,
                p,
                base_ts + i as f64 * 1e-3,
            )
            .into()
        })
        .collect();

    let (tx, rx) = mpsc::channel::<Out>(4096);
    tokio::spawn(serve_ws(listener, rx));
    let started = Instant::now();
    let svc = start_service(&a.bin, &config);
    let pid = svc.child.id();
    let base = svc.base.clone();
    // Ready: the feed is connected.
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    loop {
        let b = base.clone();
        let ok =
            tokio::task::spawn_blocking(move || ureq::get(&format!("{b}/readyz")).call().is_ok())
                .await
                .unwrap_or(false);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "service never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "service ready after {:.3} s",
        started.elapsed().as_secs_f64()
    );

    let events_of = |b: String| async move {
        tokio::task::spawn_blocking(move || {
            http_get(&format!("{b}/metrics"))
                .map(|m| metric(&m, "bgpsentry_route_events_total"))
                .unwrap_or(0.0)
        })
        .await
        .unwrap_or(0.0)
    };

    // Phase 1: throughput.
    let ev0 = events_of(base.clone()).await;
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let sender = {
        let tx = tx.clone();
        let n = a.messages;
        let pool = pool.clone();
        tokio::spawn(async move {
            for i in 0..n {
                if tx
                    .send(Out::Frame(pool[i % pool.len()].clone()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    let target = ev0 + a.messages as f64;
    let mut last = ev0;
    let mut last_change = Instant::now();
    loop {
        // Each poll renders the whole `/metrics` page in the service (thousands of per-prefix
        // series): polled every 100 ms it costs the service little, unlike a tight loop.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ev = events_of(base.clone()).await;
        if ev >= target {
            last = ev;
            break;
        }
        if ev > last {
            last = ev;
            last_change = Instant::now();
        }
        if Instant::now() > deadline || last_change.elapsed() > Duration::from_secs(10) {
            eprintln!("phase 1 stopped early at {} events", last - ev0);
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let _ = sender.await;
    let done = last - ev0;
    println!(
        "feed={} prefixes={} messages={} events={} seconds={:.3} msgs_per_s={:.0} cpu_s={:.2} \
         cpu_us_per_msg={:.2} cpu_util={:.2}",
        a.feed,
        a.prefixes,
        a.messages,
        done,
        secs,
        done / secs,
        cpu,
        cpu * 1e6 / done.max(1.0),
        cpu / secs
    );

    // Phase 2: detection latency, one hijack at a time.
    let mut lat = Vec::with_capacity(a.hijacks);
    for k in 0..a.hijacks {
        if Instant::now() > deadline + Duration::from_secs(a.seconds) {
            break;
        }
        let p = prefixes[k % prefixes.len()].clone();
        let hijacker = 4_200_000_000 + k as u32;
        let r = &routes[k % routes.len()];
        let f = frame(
            (k as u32) % VPS,
            &path_of(r, hijacker),
            &[],
            &p,
            base_ts + 1e6 + k as f64,
        );
        let (stx, srx) = std::sync::mpsc::channel();
        if tx.send(Out::Hijack(f, stx)).await.is_err() {
            break;
        }
        let b = base.clone();
        let needle = format!("{hijacker}");
        let seen = tokio::task::spawn_blocking(move || {
            let sent = srx.recv().ok()?;
            let url = format!("{b}/alerts?prefix={p}");
            let stop = Instant::now() + Duration::from_secs(10);
            while Instant::now() < stop {
                if let Some(body) = http_get(&url)
                    && body.contains(&needle)
                {
                    return Some(Instant::now().saturating_duration_since(sent));
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        match seen {
            Some(d) => lat.push(d.as_secs_f64() * 1e3),
            None => eprintln!("hijack {k} not seen within 10 s"),
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "hijacks={} seen={} latency_ms p50={:.3} p99={:.3} p99.9={:.3} max={:.3}",
        a.hijacks,
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "peak_rss_mb={:.1} rss_mb={:.1}",
        status_kb(pid, "VmHWM:") as f64 / 1024.0,
        status_kb(pid, "VmRSS:") as f64 / 1024.0
    );
    let _ = IpAddr::V4(Ipv4Addr::LOCALHOST);
    drop(svc);
}
