//! Soak: the real `bgpsentry run` is fed a looping real-data stream (the RIS Live frames of the
//! hijack fixture, an AS58678 hijack of 202.134.148.0/24 that fires and resolves, replayed round
//! after round with event times moved forward) while faults are mixed in by a seeded schedule:
//! connection drops, garbage and oversized frames, frames with over-long `host` names, a
//! webhook that answers 500 or hangs, SIGHUP with good and with bad configs, and `kill -9`
//! right after an alert resolved. At the end every alert event in the store has reached the webhook, the peak
//! heap (peak RSS less resident code) of every run stayed under the bound docs/src/reliability.md states, the store
//! is intact and readable, and a restart shows the same alerts.
//!
//! `BGPSENTRY_SOAK_SEED=N` replays another schedule; the seed in use is printed.
//!
//! Longer than most files: the fault schedule, the fixture servers and the final accounting are
//! one scenario, kept together.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::util::feeds::{Cmd, Conn, WsServer};
use crate::util::notify::{Answer, Receiver, hijack_fixture};
use crate::util::{Launch, Rng, Service, poll_until_async};
use bgpsentry::event::{Community, FeedEvent, PathElem, RouteChange};
use serde_json::{Value, json};

/// Rounds of the fixture; each raises one hijack alert that fires and resolves.
const ROUNDS: u64 = 60;
/// Event time between the starts of two rounds (the fixture spans five minutes).
const ROUND_SECS: i64 = 600;
/// Rounds after which the service is killed with SIGKILL, right after the round's alert
/// resolved (inside the grouping window) and after its `fired` was delivered.
const KILLS: usize = 4;
/// Peak heap (peak RSS less resident code and libraries) allowed to any run: the bound
/// docs/src/reliability.md states.
const HEAP_BOUND_KIB: u64 = 56 * 1024;
/// The feed's `max_frame_bytes`: frames over it are dropped and counted.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Seed used unless `BGPSENTRY_SOAK_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x5eed_b9b5_2016_0811;
/// 2016-08-11T16:00:30Z: the fixture's hijack fired before this time and resolves after it.
const FIXTURE_MIDDLE: f64 = 1_470_931_230.0;
/// Watched besides the fixture's prefix in every other generation of the config, so that
/// good reloads change the watch list (and the feed reconnects with the new one).
const EXTRA_PREFIX: &str = "10.99.0.0/16";
/// An unwatched prefix for the junk frames.
const UNWATCHED: &str = "192.0.2.0/24";

/// One RIS Live frame of the fixture: its original event time and its body.
struct Frame {
    ts: f64,
    body: Value,
}

impl Frame {
    /// The frame with its event time moved by `shift` seconds.
    fn at(&self, shift: i64) -> String {
        let mut body = self.body.clone();
        body["data"]["timestamp"] = json!(self.ts + shift as f64);
        body.to_string()
    }
}

/// The hijack fixture as RIS Live frames: one UPDATE per MRT record and vantage point (its
/// announcements grouped by attributes, its withdrawals), one `STATE` down per peer-down.
fn fixture_frames() -> Vec<Frame> {
    let mut reader =
        bgpsentry::feeds::mrt::MrtReader::open(&hijack_fixture(), "mrt", Some("rrc00")).unwrap();
    let mut frames = Vec::new();
    let mut events = Vec::new();
    while let Some(record) = reader.next_record(&mut events) {
        record.unwrap();
        let mut update: Option<(f64, Value)> = None;
        for ev in events.drain(..) {
            match ev {
                FeedEvent::PeerDown { timestamp, vp, .. } => frames.push(Frame {
                    ts: timestamp.as_secs_f64(),
                    body: json!({"type": "ris_message", "data": {
                        "peer": vp.peer_ip.to_string(), "peer_asn": vp.peer_asn.to_string(),
                        "id": "soak", "host": "rrc00.ripe.net", "type": "STATE", "state": "down"
                    }}),
                }),
                FeedEvent::Route(r) => {
                    let (ts, data) = update.get_or_insert_with(|| {
                        (
                            r.timestamp.as_secs_f64(),
                            json!({
                                "peer": r.vp.peer_ip.to_string(),
                                "peer_asn": r.vp.peer_asn.to_string(),
                                "id": "soak", "host": "rrc00.ripe.net", "type": "UPDATE",
                                "announcements": [], "withdrawals": []
                            }),
                        )
                    });
                    assert_eq!(*ts, r.timestamp.as_secs_f64(), "one time per record");
                    match &r.change {
                        RouteChange::Withdraw => data["withdrawals"]
                            .as_array_mut()
                            .unwrap()
                            .push(json!(r.prefix.to_string())),
                        RouteChange::Announce(attrs) => {
                            let path: Vec<Value> = attrs
                                .path
                                .iter()
                                .map(|e| match e {
                                    PathElem::Asn(a) => json!(a),
                                    PathElem::Set(s) => json!(s),
                                })
                                .collect();
                            let communities: Vec<Value> = attrs
                                .communities
                                .iter()
                                .filter_map(|c| match c {
                                    Community::Standard(a, b) => Some(json!([a, b])),
                                    Community::Large(..) => None,
                                })
                                .collect();
                            data["path"] = json!(path);
                            data["community"] = json!(communities);
                            data["origin"] = json!("IGP");
                            let next_hop = attrs
                                .next_hop
                                .map(|n| n.to_string())
                                .unwrap_or_else(|| r.vp.peer_ip.to_string());
                            let anns = data["announcements"].as_array_mut().unwrap();
                            match anns.iter_mut().find(|a| a["next_hop"] == json!(next_hop)) {
                                Some(a) => a["prefixes"]
                                    .as_array_mut()
                                    .unwrap()
                                    .push(json!(r.prefix.to_string())),
                                None => anns.push(json!({
                                    "next_hop": next_hop,
                                    "prefixes": [r.prefix.to_string()]
                                })),
                            }
                        }
                    }
                }
                // An MRT file holds no loaded state.
                FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => {}
            }
        }
        if let Some((ts, data)) = update {
            frames.push(Frame {
                ts,
                body: json!({"type": "ris_message", "data": data}),
            });
        }
    }
    assert!(
        frames.iter().any(|f| f.ts < FIXTURE_MIDDLE)
            && frames.iter().any(|f| f.ts > FIXTURE_MIDDLE),
        "the fixture spans its hijack"
    );
    frames
}

/// A fault sent between two frames of a round.
enum Junk {
    /// Bytes that are not a frame of any kind.
    Garbage,
    /// A real-looking UPDATE over `max_frame_bytes`.
    Oversized,
    /// An UPDATE of an unwatched prefix from a `host` over 255 bytes and under the frame limit, a
    /// new one each time.
    LongHost,
    /// The server drops the TCP connection without a close frame.
    Drop,
}

/// What happens after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    /// The config is rewritten with the next good generation, then SIGHUP.
    GoodReload,
    /// The config is rewritten with a bad one (a kind below [`BAD_CONFIGS`]), then SIGHUP; then
    /// the good one goes back, with SIGHUP.
    BadReload(u64),
}

/// The running config: `generation` toggles the extra prefix and the description.
fn config(generation: u64, ws: SocketAddr, hook: &str, store: &Path) -> String {
    let mut yaml = format!(
        "defaults:\n  min_vantage_points: 2\n  visibility_min_vantage_points: 0\nprefixes:\n  \
         - prefix: 202.134.148.0/24\n    description: soak generation {generation}\n    origins: [18196]\n"
    );
    if generation % 2 == 1 {
        yaml.push_str(&format!(
            "  - prefix: {EXTRA_PREFIX}\n    origins: [100]\n    upstreams: []\n"
        ));
    }
    yaml.push_str(&format!(
        "feeds:\n  - kind: ris_live\n    url: ws://{ws}/v1/ws/\n    beacons: []\n    warm_start: false\n    max_frame_bytes: {MAX_FRAME_BYTES}\n\
         store:\n  path: {}\n  commit_interval_seconds: 1\n\
         notify:\n  group_window_seconds: 1\n  retry_initial_seconds: 0.2\n  retry_max_seconds: 1\n  \
         channels:\n    - name: hook\n      kind: webhook\n      url: {hook}\n      timeout_seconds: 1\n",
        store.display()
    ));
    yaml
}

/// Kinds of config a reload must refuse.
const BAD_CONFIGS: u64 = 5;

/// A config a reload must refuse, by kind (`0..BAD_CONFIGS`), made from the running one.
fn bad_config(kind: u64, good: &str) -> String {
    let feeds = good.find("feeds:").unwrap();
    let store = good.find("store:").unwrap();
    match kind {
        // Not YAML: the file caught half-written.
        0 => format!("{}\n  - prefix: [unclosed\n", &good[..good.len() / 2]),
        // Empty: the file caught truncated.
        1 => String::new(),
        // Valid, but watches nothing.
        2 => format!("prefixes: []\n{}", &good[feeds..]),
        // Valid, but without a feed.
        3 => format!("{}feeds: []\n{}", &good[..feeds], &good[store..]),
        // A channel whose secret cannot be read.
        _ => format!("{good}      secret_file: /nonexistent/bgpsentry-soak-secret\n"),
    }
}

/// The command that sends `junk` (from `peer`, at event time `ts`) to the service.
fn junk_frame(rng: &mut Rng, junk: &Junk, peer: (&str, u32), ts: f64) -> Cmd {
    let update = |host: &str, id: &str| {
        json!({"type": "ris_message", "data": {
            "timestamp": ts, "peer": peer.0, "peer_asn": peer.1.to_string(), "id": id,
            "host": host, "type": "UPDATE", "path": [peer.1, 64500], "community": [],
            "origin": "IGP",
            "announcements": [{"next_hop": peer.0, "prefixes": [UNWATCHED]}],
            "withdrawals": []
        }})
        .to_string()
    };
    match junk {
        Junk::Garbage => match rng.below(4) {
            0 => Cmd::Text(format!("{{\"type\": \"ris_message\", {}", rng.text(40))),
            1 => Cmd::Binary((0..rng.below(512) + 1).map(|_| rng.next() as u8).collect()),
            2 => {
                let whole = update("rrc00.ripe.net", "garbage");
                let cut = rng.below(whole.len() as u64 - 1) as usize + 1;
                Cmd::Text(whole[..cut].to_string())
            }
            _ => Cmd::Text(
                json!({"type": "ris_message", "data": {"type": "UPDATE", "peer": [], "path": "x",
                    "announcements": 7}})
                .to_string(),
            ),
        },
        Junk::Oversized => {
            let len = MAX_FRAME_BYTES + rng.below(64 * 1024) as usize;
            let pad = rng.text(len);
            Cmd::Text(update("rrc00.ripe.net", &pad))
        }
        Junk::LongHost => {
            let len = 256 + rng.below(MAX_FRAME_BYTES as u64 - 1024) as usize;
            Cmd::Text(update(&rng.text(len), "long-host"))
        }
        Junk::Drop => Cmd::Drop,
    }
}

/// Accepts the service's next feed connection and reads its subscriptions.
async fn connect(ws: &mut WsServer, watched: usize) -> Conn {
    let mut conn = ws.accept(30).await;
    for _ in 0..watched {
        let sub = conn.recv().await;
        assert!(sub.contains("ris_subscribe"), "{sub}");
    }
    conn
}

/// Prefixes the config of `generation` watches (one subscription each).
fn watched(generation: u64) -> usize {
    1 + (generation % 2) as usize
}

/// Every alert of `/alerts?state=all`: id → (state, rule, fired_at Unix seconds).
async fn all_alerts(svc: &Service) -> BTreeMap<String, (String, String, i64)> {
    let v = svc.json("/alerts?state=all").await;
    v["alerts"]
        .as_array()
        .expect("alerts list")
        .iter()
        .map(|a| {
            let fired = chrono::DateTime::parse_from_rfc3339(a["fired_at"].as_str().unwrap())
                .unwrap()
                .timestamp();
            (
                a["id"].as_str().unwrap().to_string(),
                (
                    a["state"].as_str().unwrap().to_string(),
                    a["rule"].as_str().unwrap().to_string(),
                    fired,
                ),
            )
        })
        .collect()
}

/// Waits until the hijack of the round starting at `start` (event time) has `state`.
async fn round_alert(svc: &Service, start: i64, state: &str) -> String {
    poll_until_async(
        &format!("the hijack of the round at {start} {state}"),
        60,
        || async {
            all_alerts(svc)
                .await
                .into_iter()
                .find_map(|(id, (s, rule, fired))| {
                    (rule == "origin_hijack"
                        && s == state
                        && (start..start + ROUND_SECS).contains(&fired))
                    .then_some(id)
                })
        },
    )
    .await
}

/// (alert id, event) of every webhook POST the receiver answered with 200.
fn delivered(rx: &Receiver) -> BTreeSet<(String, String)> {
    rx.got()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["alert"]["id"].as_str().unwrap().to_string(),
                b["event"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn reloads(svc: &Service, result: &str) -> f64 {
    svc.metric_sum(&format!(
        "bgpsentry_config_reloads_total{{result=\"{result}\"}}"
    ))
    .await
}

/// Rewrites the config, sends SIGHUP, and waits until a reload with `result` is counted.
async fn reload(svc: &Service, text: &str, result: &str) {
    let before = reloads(svc, result).await;
    std::fs::write(svc.config_path(), text).unwrap();
    svc.signal("HUP");
    poll_until_async(&format!("a reload counted {result}"), 30, || async {
        (reloads(svc, result).await > before).then_some(())
    })
    .await;
}

/// What the store holds, read with SQLite directly; fails on anything unreadable.
struct Stored {
    /// id → state, from the `alerts` table.
    alerts: BTreeMap<String, String>,
    /// (alert id, event) of every alert event.
    events: BTreeSet<(String, String)>,
}

fn read_store(path: &Path) -> Stored {
    let db = rusqlite::Connection::open(path).unwrap();
    let check: Vec<String> = db
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(check, ["ok"], "integrity check of {}", path.display());

    let mut alerts = BTreeMap::new();
    let mut stmt = db.prepare("SELECT id, state, json FROM alerts").unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, state, text) = row.unwrap();
        let alert: bgpsentry::alerts::Alert = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("alert {id} does not decode: {e}: {text}"));
        assert_eq!(alert.id, id);
        let json_state = serde_json::to_value(alert.state).unwrap();
        assert_eq!(
            json_state,
            json!(state),
            "alert {id}: state column and JSON differ"
        );
        alerts.insert(id, state);
    }

    let mut events = BTreeSet::new();
    let mut stmt = db
        .prepare("SELECT seq, alert_id, event, json, notified FROM alert_events")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (seq, id, event, text, notified) = row.unwrap();
        let alert: bgpsentry::alerts::Alert = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("alert event {seq} does not decode: {e}: {text}"));
        assert_eq!(alert.id, id, "alert event {seq}");
        assert!(
            event == "fired" || event == "resolved",
            "alert event {seq}: {event}"
        );
        assert_eq!(
            notified, 1,
            "alert event {seq} ({event} {id}) was never handed over"
        );
        events.insert((id, event));
    }

    let mut stmt = db
        .prepare("SELECT seq, state, payload FROM notify_outbox")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (seq, state, payload) = row.unwrap();
        let decoded: Result<Vec<bgpsentry::notify::NotifyEvent>, _> =
            serde_json::from_str(&payload);
        assert!(
            decoded.is_ok(),
            "outbox row {seq} does not decode: {decoded:?}: {payload}"
        );
        assert_eq!(state, "delivered", "outbox row {seq} left {state}");
    }
    Stored { alerts, events }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_faults_delivers_every_alert_event_and_keeps_the_store_sound() {
    // It loads the machine: one such test at a time (see `heavy`).
    let _heavy = crate::util::heavy();
    let seed = std::env::var("BGPSENTRY_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("soak seed: {seed} (set BGPSENTRY_SOAK_SEED={seed} to replay this schedule)");
    let mut rng = Rng(seed);

    // Kills, reloads and the webhook's answers are drawn up front, the junk frame by frame: all
    // of it from the seed alone.
    let mut kill_after: BTreeSet<u64> = BTreeSet::new();
    for k in 0..KILLS as u64 {
        let span = ROUNDS / KILLS as u64;
        kill_after.insert(k * span + 2 + rng.below(span - 3));
    }
    let after: Vec<After> = (0..ROUNDS)
        .map(|r| match (r % 3, kill_after.contains(&r)) {
            (_, true) | (0, _) => After::Nothing,
            _ if rng.chance(50) => After::GoodReload,
            _ => After::BadReload(rng.below(BAD_CONFIGS)),
        })
        .collect();
    // The webhook's answers: mostly 200, some 500s, some hangs past the 1 s timeout, some
    // endless 500 bodies.
    let plan: Vec<Answer> = (0..1000)
        .map(|_| match rng.below(100) {
            0..75 => Answer::Status(200),
            75..88 => Answer::Status(500),
            88..96 => Answer::Hang,
            _ => Answer::Endless,
        })
        .collect();

    let frames = fixture_frames();
    // The first frame after the hijack fired (frames are in the file's order).
    let middle = frames.iter().position(|f| f.ts >= FIXTURE_MIDDLE).unwrap();
    let fixture_start = frames.iter().map(|f| f.ts as i64).min().unwrap();
    let now = chrono::Utc::now().timestamp();
    // Live-feed event times: recent, each round later than the one before, none in the future.
    let first_round = now - (ROUNDS as i64 + 1) * ROUND_SECS;

    let rx = Receiver::start(plan).await;
    let mut ws = WsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store: PathBuf = dir.path().join("state.db");
    let mut generation = 0;
    let ws_addr = ws.addr;
    let yaml = |generation| config(generation, ws_addr, &rx.url(), &store);

    let mut svc = Launch::yaml(&yaml(generation))
        .log("bgpsentry=info")
        .start_async()
        .await;
    let mut conn = connect(&mut ws, watched(generation)).await;
    let mut peak_kib = 0;
    let mut injected = BTreeMap::<&str, u64>::new();

    for round in 0..ROUNDS {
        let start = first_round + round as i64 * ROUND_SECS;
        let shift = start - fixture_start;
        let kill = kill_after.contains(&round);
        let mut dropped = false;
        for (i, frame) in frames.iter().enumerate() {
            if kill && i == middle {
                // Let `fired` be delivered before the alert resolves.
                let id = round_alert(&svc, start, "firing").await;
                poll_until_async("fired delivered", 60, || async {
                    delivered(&rx)
                        .contains(&(id.clone(), "fired".to_string()))
                        .then_some(())
                })
                .await;
            }
            let ts = frame.ts + shift as f64;
            let junk = match rng.below(100) {
                0..8 => Some(Junk::Garbage),
                8..11 => Some(Junk::Oversized),
                11..19 => Some(Junk::LongHost),
                19..21 if !dropped && !kill => Some(Junk::Drop),
                _ => None,
            };
            if let Some(junk) = junk {
                let name = match junk {
                    Junk::Garbage => "garbage",
                    Junk::Oversized => "oversized",
                    Junk::LongHost => "long host",
                    Junk::Drop => "drop",
                };
                *injected.entry(name).or_default() += 1;
                let peer = ("192.0.2.77", 64_577);
                let cmd = junk_frame(&mut rng, &junk, peer, ts);
                conn.to_client.send(cmd).unwrap();
                if matches!(junk, Junk::Drop) {
                    dropped = true;
                    conn = connect(&mut ws, watched(generation)).await;
                }
            }
            conn.to_client.send(Cmd::Text(frame.at(shift))).unwrap();
        }
        if kill {
            // SIGKILL as soon as the resolution shows: it is stored, its notification is
            // still inside the grouping window.
            round_alert(&svc, start, "resolved").await;
            let (rss, heap) = (svc.peak_rss_kib(), svc.peak_heap_kib());
            svc.kill9();
            eprintln!(
                "soak: kill -9 after round {round}, peak RSS of that run {rss} KiB, of it heap {heap} KiB"
            );
            peak_kib = peak_kib.max(heap);
            *injected.entry("kill -9").or_default() += 1;
            svc = Launch::yaml(&yaml(generation))
                .log("bgpsentry=info")
                .start_async()
                .await;
            conn = connect(&mut ws, watched(generation)).await;
            continue;
        }
        round_alert(&svc, start, "resolved").await;
        match after[round as usize] {
            After::Nothing => {}
            After::GoodReload => {
                generation += 1;
                reload(&svc, &yaml(generation), "ok").await;
                conn = connect(&mut ws, watched(generation)).await;
                *injected.entry("good reload").or_default() += 1;
            }
            After::BadReload(kind) => {
                let good = yaml(generation);
                reload(&svc, &bad_config(kind, &good), "error").await;
                reload(&svc, &good, "ok").await;
                *injected.entry("bad reload").or_default() += 1;
            }
        }
    }
    eprintln!("soak faults injected: {injected:?}");
    assert_eq!(
        injected.len(),
        7,
        "every kind of fault was drawn: {injected:?}"
    );

    // Every alert event reaches the webhook at least once (answered 200).
    let shown = all_alerts(&svc).await;
    let expected: BTreeSet<(String, String)> = shown
        .iter()
        .flat_map(|(id, (state, _, _))| {
            let mut e = vec![(id.clone(), "fired".to_string())];
            if state == "resolved" {
                e.push((id.clone(), "resolved".to_string()));
            }
            e
        })
        .collect();
    let wait = poll_until_async("every alert event delivered", 120, || async {
        expected.is_subset(&delivered(&rx)).then_some(())
    });
    if tokio::time::timeout(std::time::Duration::from_secs(60), wait)
        .await
        .is_err()
    {
        let got = delivered(&rx);
        let missing: Vec<_> = expected.difference(&got).collect();
        panic!("alert events never delivered to the webhook: {missing:?}");
    }
    assert!(
        shown.len() as u64 >= ROUNDS,
        "one hijack alert per round at least: {shown:?}"
    );

    // The junk reached the parsers and was counted, not silently lost.
    assert!(
        svc.metric_sum("bgpsentry_invalid_input_total").await > 0.0,
        "invalid input counted"
    );

    // A clean stop ends in bounded time with success.
    let last_rss = svc.peak_rss_kib();
    peak_kib = peak_kib.max(svc.peak_heap_kib());
    let status = svc.terminate(60).await;
    assert!(status.success(), "exit after SIGTERM: {status}");
    eprintln!(
        "soak: {} alerts, {} webhook requests, peak heap {} KiB (peak RSS of the last run {} KiB)",
        shown.len(),
        rx.got().len(),
        peak_kib,
        last_rss
    );
    assert!(
        peak_kib < HEAP_BOUND_KIB,
        "peak heap {peak_kib} KiB over the bound of {HEAP_BOUND_KIB} KiB"
    );

    // Nothing unreadable in the store, and it holds exactly what was shown and delivered.
    let stored = read_store(&store);
    let shown_states: BTreeMap<String, String> = shown
        .iter()
        .map(|(id, (state, _, _))| (id.clone(), state.clone()))
        .collect();
    assert_eq!(stored.alerts, shown_states, "the store and /alerts differ");
    let got = delivered(&rx);
    let undelivered: Vec<_> = stored.events.difference(&got).collect();
    assert!(
        undelivered.is_empty(),
        "stored alert events never delivered: {undelivered:?}"
    );

    // A restart shows the same alerts.
    let svc = Launch::yaml(&yaml(generation))
        .log("bgpsentry=info")
        .start_async()
        .await;
    let again: BTreeMap<String, String> = all_alerts(&svc)
        .await
        .into_iter()
        .map(|(id, (state, _, _))| (id, state))
        .collect();
    assert_eq!(again, shown_states, "/alerts?state=all after a restart");
    let status = svc.terminate(60).await;
    assert!(status.success(), "exit after SIGTERM: {status}");
}
