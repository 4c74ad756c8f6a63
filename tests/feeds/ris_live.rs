//! RIS Live feed end to end: a WebSocket server on loopback speaking RIS Live, the real
//! `bgpsentry run` binary consuming it.

use std::sync::Arc;
use std::time::Instant;

use crate::util::feeds::{Cmd, WsServer, ris_announce};
use crate::util::{Service, poll_until_async};
use bgpsentry::event::{FeedEvent, PathElem, RouteChange, Timestamp};
use bgpsentry::feeds::ris_live::parser::{self as ris_live_parse, RisFrame};

fn config(port: u16, extra: &str) -> String {
    format!(
        "prefixes:
  - prefix: 192.0.2.0/24
    origins: [64500]
feeds:
  - kind: ris_live
    url: ws://127.0.0.1:{port}/v1/ws/
    client: bgpsentry-test
    beacons: [84.205.64.0/24]
    warm_start: false
{extra}"
    )
}

/// Reads the subscriptions of a fresh connection, checks them, and acknowledges each.
async fn subscribe(conn: &mut crate::util::feeds::Conn) -> Vec<String> {
    let mut prefixes = Vec::new();
    for _ in 0..2 {
        let frame: serde_json::Value = serde_json::from_str(&conn.recv().await).unwrap();
        assert_eq!(frame["type"], "ris_subscribe");
        assert_eq!(frame["data"]["moreSpecific"], true);
        assert_eq!(frame["data"]["socketOptions"]["acknowledge"], true);
        prefixes.push(frame["data"]["prefix"].as_str().unwrap().to_string());
        conn.send(r#"{"type":"ris_subscribe_ok","data":{"subscription":{}}}"#);
    }
    prefixes.sort();
    assert_eq!(prefixes, ["192.0.2.0/24", "84.205.64.0/24"]);
    prefixes
}

fn hijack_frames() -> [String; 2] {
    [
        ris_announce(
            "198.51.100.1",
            64501,
            &[64501, 64666],
            "192.0.2.0/24",
            1700000000.0,
        ),
        ris_announce(
            "2001:db8::2",
            64502,
            &[64502, 3, 64666],
            "192.0.2.0/24",
            1700000001.5,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hijack_alert_then_reconnect_resubscribes_without_duplicates() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    let mut conn = server.accept(20).await;
    assert!(conn.uri.contains("client=bgpsentry-test"), "{}", conn.uri);
    subscribe(&mut conn).await;
    for f in hijack_frames() {
        conn.send(&f);
    }
    let alerts = poll_until_async("the hijack alert", 20, || async {
        let a = svc.alerts().await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"], "origin_hijack");
    assert_eq!(alerts[0]["origin"], 64666);
    let (status, _) = svc.get("/readyz").await;
    assert_eq!(status, 200);
    svc.wait_metric(
        r#"bgpsentry_feed_subscription_acks_total{feed="ris_live"}"#,
        2.0,
    )
    .await;

    // The server drops the connection mid-stream: the feed reconnects and resubscribes.
    conn.to_client.send(Cmd::Drop).unwrap();
    let mut conn2 = server.accept(20).await;
    subscribe(&mut conn2).await;
    for f in hijack_frames() {
        conn2.send(&f);
    }
    svc.wait_metric(
        r#"bgpsentry_route_events_total{feed="ris_live",type="announce"}"#,
        4.0,
    )
    .await;
    svc.wait_metric(
        r#"bgpsentry_feed_subscription_acks_total{feed="ris_live"}"#,
        4.0,
    )
    .await;
    assert!(
        svc.metric(r#"bgpsentry_feed_reconnects_total{feed="ris_live"}"#)
            .await
            .unwrap()
            >= 1.0
    );
    let health = svc.json("/readyz").await;
    assert_eq!(health["feeds"]["ris_live"]["connected"], true);
    assert!(health["feeds"]["ris_live"]["reconnects"].as_u64().unwrap() >= 1);
    let all = svc.json("/alerts?state=all").await;
    assert_eq!(all["alerts"].as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn peer_down_removes_the_peers_routes() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    for f in hijack_frames() {
        conn.send(&f);
    }
    poll_until_async("the hijack alert", 20, || async {
        (!svc.alerts().await.is_empty()).then_some(())
    })
    .await;
    // Both sessions go down: their routes are gone, so the hijack resolves.
    for (peer, asn, ts) in [
        ("198.51.100.1", 64501, 1700000010.0),
        ("2001:db8::2", 64502, 1700000011.0),
    ] {
        conn.send(
            &serde_json::json!({"type":"ris_message","data":{"timestamp":ts,"peer":peer,
                "peer_asn":asn.to_string(),"id":"x","host":"rrc00.ripe.net","type":"STATE","state":"down"}})
            .to_string(),
        );
    }
    poll_until_async("the alert to resolve", 20, || async {
        svc.alerts().await.is_empty().then_some(())
    })
    .await;
    let resolved = svc.json("/alerts?state=resolved").await;
    assert_eq!(
        resolved["alerts"].as_array().unwrap().len(),
        1,
        "{resolved}"
    );
    assert_eq!(
        svc.metric(r#"bgpsentry_route_events_total{feed="ris_live",type="peer_down"}"#)
            .await,
        Some(2.0)
    );
}

#[test]
fn the_real_frames_parse_as_expected() {
    let text =
        std::fs::read_to_string(crate::util::root().join("tests/fixtures/ris-live-frames.jsonl"))
            .unwrap();
    let feed: Arc<str> = "ris_live".into();
    let parsed: Vec<_> = text
        .lines()
        .map(|l| ris_live_parse::parse(l, &feed).unwrap())
        .collect();
    assert_eq!(parsed.len(), 7);
    assert!(parsed.iter().all(|p| p.invalid.is_empty()));
    let msg = |i: usize| match &parsed[i].frame {
        RisFrame::Message { kind, events } => (kind.clone(), events.clone()),
        other => panic!("{other:?}"),
    };
    let route = |e: &FeedEvent| match e {
        FeedEvent::Route(r) => r.clone(),
        other => panic!("{other:?}"),
    };

    // 1: announcement with a global,link-local next-hop pair; string peer_asn.
    let (kind, ev) = msg(0);
    assert_eq!(kind, "update");
    assert_eq!(ev.len(), 1);
    let r = route(&ev[0]);
    assert_eq!(r.prefix.to_string(), "2a12:3fc6::/48");
    assert_eq!(r.vp.peer_asn, 207841);
    assert_eq!(&*r.vp.collector, "rrc01");
    assert_eq!(r.timestamp.secs(), 1789019601);
    assert_eq!(r.timestamp.subsec_micros(), 670000);
    let RouteChange::Announce(a) = &r.change else {
        panic!()
    };
    assert_eq!(a.next_hop.unwrap().to_string(), "2001:7f8:4::3:2be1:1");
    assert_eq!(a.path.origins(), &[57330]);
    assert_eq!(a.path.len(), 8);

    // 2: one announcement, nine uncompressed IPv6 withdrawals, eight communities.
    let (_, ev) = msg(1);
    assert_eq!(ev.len(), 10);
    let r = route(&ev[0]);
    assert_eq!(r.prefix.to_string(), "2806:320:340::/42");
    let RouteChange::Announce(a) = &r.change else {
        panic!()
    };
    assert_eq!(a.communities.len(), 8);
    assert_eq!(a.path.last(), Some(&PathElem::Asn(28438)));
    let withdrawn: Vec<String> = ev[1..]
        .iter()
        .map(|e| {
            let r = route(e);
            assert_eq!(r.change, RouteChange::Withdraw);
            r.prefix.to_string()
        })
        .collect();
    assert_eq!(withdrawn[0], "2a12:ca42::/32");
    assert_eq!(withdrawn[5], "2a12:ca40::/32");
    assert_eq!(withdrawn[6], "2a12:ca40::/29");
    assert_eq!(withdrawn.len(), 9);

    // 3: plain next hop.
    let (_, ev) = msg(2);
    let r = route(&ev[0]);
    assert_eq!(r.prefix.to_string(), "2806:202::/32");

    // 4-7: KEEPALIVE, STATE connected, OPEN, NOTIFICATION: no routes, no errors.
    for (i, want) in [
        (3, "keepalive"),
        (4, "state"),
        (5, "open"),
        (6, "notification"),
    ] {
        let (kind, ev) = msg(i);
        assert_eq!(kind, want);
        assert!(ev.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_frames_through_the_service_count_by_type() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    let text =
        std::fs::read_to_string(crate::util::root().join("tests/fixtures/ris-live-frames.jsonl"))
            .unwrap();
    for line in text.lines() {
        conn.send(line);
    }
    svc.wait_metric(
        r#"bgpsentry_feed_messages_total{feed="ris_live",type="notification"}"#,
        1.0,
    )
    .await;
    for (ty, n) in [
        ("update", 3.0),
        ("keepalive", 1.0),
        ("state", 1.0),
        ("open", 1.0),
    ] {
        let series = format!(r#"bgpsentry_feed_messages_total{{feed="ris_live",type="{ty}"}}"#);
        assert_eq!(svc.metric(&series).await, Some(n), "{series}");
    }
    svc.wait_metric(
        r#"bgpsentry_route_events_total{feed="ris_live",type="withdraw"}"#,
        9.0,
    )
    .await;
    let body = svc.get("/metrics").await.1;
    let invalid: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with(r#"bgpsentry_invalid_input_total{feed="ris_live""#))
        .collect();
    assert!(!invalid.is_empty(), "{body}");
    assert!(invalid.iter().all(|l| l.ends_with(" 0")), "{invalid:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_frames_are_counted_and_the_feed_continues() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "    max_frame_bytes: 4096\n")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    let huge = ris_announce("198.51.100.9", 64509, &[64509, 64666], "192.0.2.0/24", 1.0)
        .replace("\"x\"", &format!("\"{}\"", "x".repeat(5000)));
    let good = &hijack_frames()[0];
    for bad in [
        "this is not json".to_string(),
        good[..good.len() / 2].to_string(),
        huge,
        r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"1","host":"rrc00","type":"UPDATE","path":[1,64666],"announcements":[{"next_hop":"1.1.1.1","prefixes":["192.0.2.0/99"]}]}}"#.to_string(),
        r#"{"type":"ris_message","data":{"timestamp":1,"peer":"1.1.1.1","peer_asn":"-3","type":"UPDATE"}}"#.to_string(),
        r#"{"type":"ris_message","data":[]}"#.to_string(),
    ] {
        conn.send(&bad);
    }
    conn.to_client
        .send(Cmd::Binary(vec![0, 159, 146, 150]))
        .unwrap();
    for f in hijack_frames() {
        conn.send(&f);
    }
    poll_until_async("the hijack alert after bad frames", 20, || async {
        (!svc.alerts().await.is_empty()).then_some(())
    })
    .await;
    for (reason, n) in [
        ("not_json", 3.0), // text, truncated, binary
        ("oversized", 1.0),
        ("invalid_prefix", 1.0),
        ("invalid_asn", 1.0),
        ("schema", 1.0),
    ] {
        let series =
            format!(r#"bgpsentry_invalid_input_total{{feed="ris_live",reason="{reason}"}}"#);
        assert_eq!(svc.metric(&series).await, Some(n), "{series}");
    }
    let (status, _) = svc.get("/readyz").await;
    assert_eq!(status, 200);
    // Only one connection: bad input never forces a reconnect.
    assert!(server.try_accept().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_silence_marks_the_feed_stale_and_reconnects() {
    let mut server = WsServer::start().await;
    let svc =
        Service::start_yaml(&config(server.addr.port(), "    stale_after_seconds: 1\n")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    // Then silence: no message at all.
    let mut conn2 = server.accept(20).await;
    // The new connection resubscribes; this time nothing is acknowledged, so the feed stays
    // stale and not ready.
    let first: serde_json::Value = serde_json::from_str(&conn2.recv().await).unwrap();
    assert_eq!(first["type"], "ris_subscribe");
    let health = poll_until_async("the feed to be marked stale", 20, || async {
        let (status, body) = svc.get("/readyz").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (status == 503 && v["feeds"]["ris_live"]["stale"] == true).then_some(v)
    })
    .await;
    assert!(health["feeds"]["ris_live"]["reconnects"].as_u64().unwrap() >= 1);
    assert!(
        svc.metric(r#"bgpsentry_feed_errors_total{feed="ris_live",reason="stale"}"#)
            .await
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        svc.metric(r#"bgpsentry_feed_stale{feed="ris_live"}"#).await,
        Some(1.0)
    );
    // Data again clears it (sent on the newest connection: a slow machine may already have
    // given up on this one).
    let mut latest = conn2;
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        while let Some(c) = server.try_accept() {
            latest = c;
        }
        let _ = latest.to_client.send(Cmd::Text(hijack_frames()[0].clone()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if svc.json("/readyz").await["feeds"]["ris_live"]["stale"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed never became fresh again"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ris_error_is_surfaced_and_a_closed_socket_backs_off() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    for _ in 0..3 {
        let mut conn = server.accept(20).await;
        subscribe(&mut conn).await;
        conn.send(r#"{"type":"ris_error","data":{"message":"Client too slow"}}"#);
        conn.to_client.send(Cmd::Close).unwrap();
    }
    svc.wait_metric(
        r#"bgpsentry_feed_errors_total{feed="ris_live",reason="server_error"}"#,
        3.0,
    )
    .await;
    assert!(svc.log_text().contains("RIS Live error: Client too slow"));
    // The backoff doubles: the first wait is drawn from [0.25 s, 0.5 s], the third from
    // [1 s, 2 s]; the logged delays show it.
    let waits = poll_until_async("three logged reconnect delays", 20, || async {
        let waits = logged_waits(&svc.log_text());
        (waits.len() >= 3).then_some(waits)
    })
    .await;
    assert!(waits[0] <= 0.5, "{waits:?}");
    assert!(waits[2] >= 1.0, "{waits:?}");
}

/// The delays of the `reconnecting in …` log lines, in seconds.
fn logged_waits(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| l.split("reconnecting in ").nth(1))
        .filter_map(|d| {
            let d = d.split_whitespace().next()?;
            if let Some(ms) = d.strip_suffix("ms") {
                ms.parse::<f64>().ok().map(|v| v / 1000.0)
            } else {
                d.strip_suffix('s')?.parse().ok()
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn unanswered_pings_mean_a_dead_connection() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(
        server.addr.port(),
        "    ping_interval_seconds: 0.3\n",
    ))
    .await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    // The socket stays open but nothing answers: no frames, no pongs.
    conn.to_client.send(Cmd::Freeze).unwrap();
    let mut conn2 = server.accept(20).await;
    subscribe(&mut conn2).await;
    svc.wait_metric(
        r#"bgpsentry_feed_errors_total{feed="ris_live",reason="dead"}"#,
        1.0,
    )
    .await;
}

/// Reconnect time after a server-side drop, median of several; run with
/// `cargo test --test feeds_ris_live -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn measure_reconnect_time() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    let mut times = Vec::new();
    for i in 0..9 {
        // A message first, so the connection counts as working and the backoff resets.
        conn.send(&hijack_frames()[i % 2]);
        svc.wait_metric(
            r#"bgpsentry_feed_messages_total{feed="ris_live",type="update"}"#,
            (i + 1) as f64,
        )
        .await;
        let dropped = Instant::now();
        conn.to_client.send(Cmd::Drop).unwrap();
        conn = server.accept(20).await;
        subscribe(&mut conn).await;
        times.push(dropped.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "reconnect + resubscribe after a drop: median {median:?}, min {:?}, max {:?} (n={})",
        times[0],
        times[times.len() - 1],
        times.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn event_times_outside_the_sane_window_are_counted_not_used() {
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    // Year 11476, 1970 and two days ahead: each would fire the hijack with an absurd time.
    let ahead = Timestamp::now().as_secs_f64() + 2.0 * 86_400.0;
    for ts in [3e11, 1.0, ahead] {
        conn.send(&ris_announce(
            "198.51.100.7",
            64507,
            &[64507, 64666],
            "192.0.2.0/24",
            ts,
        ));
    }
    for f in hijack_frames() {
        conn.send(&f);
    }
    let alerts = poll_until_async("the hijack alert", 20, || async {
        let a = svc.alerts().await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    let series =
        r#"bgpsentry_invalid_input_total{feed="ris_live",reason="timestamp_out_of_range"}"#;
    assert_eq!(svc.metric(series).await, Some(3.0), "{series}");
    assert_eq!(alerts.len(), 1);
    let fired_at = alerts[0]["fired_at"].as_str().unwrap();
    assert!(fired_at.starts_with("2023-11-14T22:13:2"), "{fired_at}");
    assert!(
        !alerts[0].to_string().contains("198.51.100.7"),
        "a rejected event reached the engine: {}",
        alerts[0]
    );
}

/// Resident memory of a process, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_hosts_from_one_peer_do_not_grow_memory() {
    // 1,500 frames of one peer, each with a different 200 KB host: 300 MB of names that the
    // service used to keep for good.
    const FRAMES: usize = 1_500;
    const HOST_BYTES: usize = 200 * 1024;
    const BOUND_KIB: u64 = 150 * 1024;
    let mut server = WsServer::start().await;
    let svc = Service::start_yaml(&config(server.addr.port(), "")).await;
    let mut conn = server.accept(20).await;
    subscribe(&mut conn).await;
    let filler = "h".repeat(HOST_BYTES);
    let handled = || async {
        let mut n = 0.0;
        for ty in ["invalid", "update"] {
            let series = format!(r#"bgpsentry_feed_messages_total{{feed="ris_live",type="{ty}"}}"#);
            n += svc.metric(&series).await.unwrap_or(0.0);
        }
        n
    };
    let mut sent = 0;
    while sent < FRAMES {
        // In steps, as a server would stream them, so the fixture never holds them all.
        for _ in 0..100 {
            let frame = ris_announce(
                "198.51.100.9",
                64509,
                &[64509, 64510],
                "198.18.0.0/15",
                1_700_000_000.0 + sent as f64,
            )
            .replace("rrc00.ripe.net", &format!("rrc{sent}.{filler}"));
            conn.send(&frame);
            sent += 1;
        }
        poll_until_async("the service to read the frames", 60, || async {
            (handled().await >= sent as f64).then_some(())
        })
        .await;
    }
    let rss = vm_rss_kib(svc.pid());
    eprintln!("RSS after the huge hosts: {} MiB", rss / 1024);
    assert!(
        rss < BOUND_KIB,
        "resident memory {} MiB after {FRAMES} huge hosts; the bound is {} MiB",
        rss / 1024,
        BOUND_KIB / 1024
    );
    let series = r#"bgpsentry_invalid_input_total{feed="ris_live",reason="oversized_field"}"#;
    assert_eq!(svc.metric(series).await, Some(FRAMES as f64), "{series}");
}
