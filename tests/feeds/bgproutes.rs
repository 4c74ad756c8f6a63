//! bgproutes.io feed end to end: a live manager (HTTP) and a WebSocket server on loopback
//! speaking bgproutes' format, the real `bgpsentry` binary and the library client.

use std::process::Command;

use crate::util::feeds::{Cmd, LiveManager, WsServer, bgp_announce};
use crate::util::{Launch, Service, poll_until_async};
use bgpsentry::feeds::bgproutes::{BgproutesClient, ClientError};
use futures_util::StreamExt;

const KEY: &str = "test-secret-key-0123456789";

fn config(ws_port: u16, manager: &str, extra: &str) -> String {
    format!(
        "prefixes:
  - prefix: 192.0.2.0/24
    origins: [64500]
  - prefix: 2001:db8::/32
    origins: [64500]
feeds:
  - kind: bgproutes
    url: ws://127.0.0.1:{ws_port}
    live_manager_url: {manager}
    warm_start: false
{extra}"
    )
}

fn hijack_frames() -> [String; 2] {
    [
        bgp_announce(
            "64501_198.51.100.1",
            "64501 64666",
            "192.0.2.0/24",
            1700000000,
        ),
        serde_json::json!({
            "record_type": "bmp_update", "vp": "65000_10.0.0.1", "bmp_peer": "64502_198.51.100.2",
            "sec": 1700000001, "Usec": 500000, "prefixes": "192.0.2.0/24",
            "as-path": "64502 3 64666", "communities": "64502:1", "nexthop": "198.51.100.2",
            "origin": "IGP"
        })
        .to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hijack_alert_then_reconnect_reassociates_without_duplicates() {
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let svc = Launch::yaml(&config(server.addr.port(), &manager.url, ""))
        .log("bgpsentry=debug")
        .envs(&[("BGP_API_KEY", KEY)])
        .start_async()
        .await;
    let conn = server.accept(20).await;
    assert_eq!(conn.uri, format!("/?api_key={KEY}"));
    assert_eq!(
        manager.requests.lock().unwrap()[0],
        (KEY.to_string(), "192.0.2.0/24,2001:db8::/32".to_string())
    );
    for bad in [
        "garbage",
        r#"{"record_type":"update","vp":"64501_198.51.100.1","sec":5}"#,
        &bgp_announce("64501_198.51.100.1", "64501 64666", "192.0.2.0/40", 1),
    ] {
        conn.send(bad);
    }
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
    assert!(
        alerts[0].to_string().contains("via AS65000/10.0.0.1"),
        "the BMP exporter is kept: {}",
        alerts[0]
    );
    for (reason, n) in [
        ("not_json", 1.0),
        ("unknown_withdrawal", 1.0),
        ("invalid_prefix", 1.0),
    ] {
        let series =
            format!(r#"bgpsentry_invalid_input_total{{feed="bgproutes",reason="{reason}"}}"#);
        assert_eq!(svc.metric(&series).await, Some(n), "{series}");
    }
    assert_eq!(svc.get("/readyz").await.0, 200);

    // Dropped mid-stream: re-associate, reconnect, same messages again, still one alert.
    conn.to_client.send(Cmd::Drop).unwrap();
    let conn2 = server.accept(20).await;
    assert!(manager.count() >= 2, "re-associated before reconnecting");
    for f in hijack_frames() {
        conn2.send(&f);
    }
    svc.wait_metric(
        r#"bgpsentry_route_events_total{feed="bgproutes",type="announce"}"#,
        4.0,
    )
    .await;
    // Three `update` records (one with an invalid prefix), two `bmp_update`, two that did not
    // parse at all.
    for (ty, n) in [("update", 3.0), ("bmp_update", 2.0), ("invalid", 2.0)] {
        let series = format!(r#"bgpsentry_feed_messages_total{{feed="bgproutes",type="{ty}"}}"#);
        assert_eq!(svc.metric(&series).await, Some(n), "{series}");
    }
    let all = svc.json("/alerts?state=all").await;
    assert_eq!(all["alerts"].as_array().unwrap().len(), 1, "{all}");
    let ready = svc.json("/readyz").await;
    assert_eq!(ready["feeds"]["bgproutes"]["connected"], true);
    assert!(ready["feeds"]["bgproutes"]["reconnects"].as_u64().unwrap() >= 1);

    // The key never leaks.
    let metrics = svc.get("/metrics").await.1;
    let everything = format!("{}{}{}", svc.log_text(), metrics, ready);
    assert!(!everything.contains(KEY), "the API key leaked");
    assert!(svc.log_text().contains("api_key=REDACTED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_frame_is_surfaced_and_backed_off() {
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let svc = Launch::yaml(&config(server.addr.port(), &manager.url, ""))
        .log("bgpsentry=debug")
        .envs(&[("BGP_API_KEY", KEY)])
        .start_async()
        .await;
    let conn = server.accept(20).await;
    conn.send(r#"{"error": "Another session is already open with this API key"}"#);
    let health = poll_until_async("the server's reason in /readyz", 20, || async {
        let v = svc.json("/readyz").await;
        let e = v["feeds"]["bgproutes"]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        e.contains("Another session is already open").then_some(v)
    })
    .await;
    assert_eq!(health["ready"], false);
    for _ in 0..2 {
        let conn = server.accept(20).await;
        conn.send(r#"{"error": "Invalid API key"}"#);
    }
    svc.wait_metric(
        r#"bgpsentry_feed_errors_total{feed="bgproutes",reason="server_error"}"#,
        3.0,
    )
    .await;
    let waits = poll_until_async("three logged reconnect delays", 20, || async {
        let w: Vec<f64> = svc
            .log_text()
            .lines()
            .filter_map(|l| l.split("reconnecting in ").nth(1))
            .filter_map(|d| {
                let d = d.split_whitespace().next()?;
                match d.strip_suffix("ms") {
                    Some(ms) => ms.parse::<f64>().ok().map(|v| v / 1000.0),
                    None => d.strip_suffix('s')?.parse().ok(),
                }
            })
            .collect();
        (w.len() >= 3).then_some(w)
    })
    .await;
    // Exponential: the first wait is at most 0.5 s, the third at least 1 s.
    assert!(waits[0] <= 0.5 && waits[2] >= 1.0, "{waits:?}");
    assert!(manager.count() >= 3, "each attempt re-associates");
    assert!(
        svc.log_text()
            .contains("bgproutes rejected the connection: Invalid API key")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_manager_refusal_is_a_clear_association_error() {
    let manager = LiveManager::start(400, "Too many prefixes for this API key").await;
    let mut server = WsServer::start().await;
    let svc = Launch::yaml(&config(server.addr.port(), &manager.url, ""))
        .log("bgpsentry=debug")
        .envs(&[("BGP_API_KEY", KEY)])
        .start_async()
        .await;
    let err = poll_until_async("the association error in /readyz", 20, || async {
        let v = svc.json("/readyz").await;
        v["feeds"]["bgproutes"]["last_error"]
            .as_str()
            .filter(|e| e.contains("prefix association failed"))
            .map(str::to_string)
    })
    .await;
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(err.contains("Too many prefixes for this API key"), "{err}");
    assert!(!err.contains(KEY));
    svc.wait_metric(
        r#"bgpsentry_feed_errors_total{feed="bgproutes",reason="association"}"#,
        1.0,
    )
    .await;
    // Without an association the WebSocket is never opened.
    assert!(server.try_accept().is_none());

    // The library reports the same as a typed error.
    let mut client = BgproutesClient::new(KEY).with_live_manager_url(&manager.url);
    match client.subscribe_to_prefixes("192.0.2.0/24").await {
        Err(ClientError::PrefixAssociation(m)) => {
            assert!(m.contains("Too many prefixes for this API key"), "{m}");
            assert!(!m.contains(KEY));
        }
        other => panic!("expected a prefix association error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn library_client_streams_messages_and_reports_rejection() {
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let mut client = BgproutesClient::new(KEY)
        .with_live_manager_url(&manager.url)
        .with_websocket_url(format!("ws://{}", server.addr));
    client
        .subscribe_to_prefixes("192.0.2.0/24,2001:db8::/32")
        .await
        .unwrap();
    assert_eq!(
        manager.requests.lock().unwrap()[0].1,
        "192.0.2.0/24,2001:db8::/32"
    );
    let mut messages = client.messages().await.unwrap();
    let conn = server.accept(10).await;
    conn.send(&hijack_frames()[0]);
    conn.send("not json: skipped");
    conn.send(r#"{"error":"Invalid API key"}"#);
    let first = messages.next().await.unwrap().unwrap();
    assert_eq!(
        first.to_string(),
        "1700000000.0|U|64501|198.51.100.1|192.0.2.0/24|64501 64666||IGP|198.51.100.1"
    );
    match messages.next().await {
        Some(Err(ClientError::Connection(m))) => assert!(m.contains("Invalid API key"), "{m}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert!(messages.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn prefixes_are_reassociated_periodically_while_connected() {
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let svc = Launch::yaml(&config(
        server.addr.port(),
        &manager.url,
        "    reassociate_seconds: 0.2\n",
    ))
    .log("bgpsentry=debug")
    .envs(&[("BGP_API_KEY", KEY)])
    .start_async()
    .await;
    let _conn = server.accept(20).await;
    poll_until_async("three associations", 20, || async {
        (manager.count() >= 3).then_some(())
    })
    .await;
    // All on the same connection.
    assert!(server.try_accept().is_none());
    assert_eq!(svc.get("/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn prefixes_are_spread_over_several_keys() {
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let cfg = format!(
        "prefixes:\n{}feeds:\n  - kind: bgproutes\n    url: ws://{}\n    live_manager_url: {}\n    warm_start: false\n    keys:\n      - env: KEY_A\n      - env: KEY_B\n",
        prefixes(11),
        server.addr,
        manager.url
    );
    let svc = Launch::yaml(&cfg)
        .log("bgpsentry=debug")
        .envs(&[("KEY_A", "key-a-secret"), ("KEY_B", "key-b-secret")])
        .start_async()
        .await;
    let a = server.accept(20).await;
    let b = server.accept(20).await;
    let mut uris = [a.uri.clone(), b.uri.clone()];
    uris.sort();
    assert_eq!(uris, ["/?api_key=key-a-secret", "/?api_key=key-b-secret"]);
    let mut reqs = manager.requests.lock().unwrap().clone();
    reqs.sort();
    assert_eq!(reqs[0].0, "key-a-secret");
    assert_eq!(reqs[0].1.split(',').count(), 10);
    assert_eq!(
        reqs[1],
        ("key-b-secret".to_string(), "10.10.0.0/16".to_string())
    );
    let ready = poll_until_async("both keys connected", 20, || async {
        let (status, body) = svc.get("/readyz").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(
        ready.contains("bgproutes/key1") && ready.contains("bgproutes/key2"),
        "{ready}"
    );
    assert!(!svc.log_text().contains("key-a-secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_key_skips_an_optional_feed_and_fails_a_required_one() {
    let cfg = "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64500]\nfeeds:\n  - kind: bgproutes\n    name: extra\n    optional: true\n  - kind: bgproutes\n    name: main\n    api_key_env: MY_BGP_KEY\n";
    let svc = Service::start_yaml(cfg).await;
    let v = poll_until_async("the missing key reported", 20, || async {
        let v = svc.json("/readyz").await;
        v["feeds"]["main"]["last_error"]
            .as_str()
            .is_some()
            .then_some(v)
    })
    .await;
    assert_eq!(v["ready"], false);
    assert!(v["feeds"].get("extra").is_none(), "{v}");
    let err = v["feeds"]["main"]["last_error"].as_str().unwrap();
    assert!(
        err.contains("set the environment variable MY_BGP_KEY"),
        "{err}"
    );
    assert!(
        svc.log_text()
            .contains("optional bgproutes feed not started")
    );
}

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(&path, config).unwrap();
    let out = crate::util::check_config(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn prefixes(n: usize) -> String {
    (0..n)
        .map(|i| format!("  - prefix: 10.{i}.0.0/16\n    origins: [64500]\n"))
        .collect()
}

#[test]
fn eleven_prefixes_on_one_key_is_a_config_error() {
    let (ok, text) = check(&format!(
        "prefixes:\n{}feeds:\n  - kind: bgproutes\n",
        prefixes(11)
    ));
    assert!(!ok);
    assert!(text.contains("c.yml:25:"), "located: {text}");
    assert!(text.contains("at most 10"), "{text}");
    assert!(text.contains("11 watched prefixes"), "{text}");

    // Spread over two keys it is fine.
    let (ok, text) = check(&format!(
        "prefixes:\n{}feeds:\n  - kind: bgproutes\n    keys:\n      - env: KEY_A\n      - env: KEY_B\n",
        prefixes(11)
    ));
    assert!(ok, "{text}");

    // A key's own list is limited too.
    let list: Vec<String> = (0..11).map(|i| format!("10.{i}.0.0/16")).collect();
    let (ok, text) = check(&format!(
        "prefixes:\n{}feeds:\n  - kind: bgproutes\n    keys:\n      - env: KEY_A\n        prefixes: [{}]\n",
        prefixes(1),
        list.join(", ")
    ));
    assert!(!ok);
    assert!(text.contains("lists 11 prefixes"), "{text}");
}

#[test]
fn kind_specific_keys_are_checked() {
    let (ok, text) = check(
        "feeds:\n  - kind: ris_live\n    live_manager_url: http://x\n  - kind: bgproutes\n    url: http://not-a-websocket\n    beacons: [1.2.3.0/24]\n    stale_after_seconds: -1\n",
    );
    assert!(!ok);
    for want in [
        "c.yml:2:",
        "`live_manager_url` does not apply to a `ris_live` feed",
        "`beacons` does not apply to a `bgproutes` feed",
        "c.yml:5:",
        "`url` must start with wss:// or ws://",
        "c.yml:7:",
        "`stale_after_seconds` must be a positive number",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_is_logged_at_no_level_even_trace() {
    const TRACE_KEY: &str = "trace-level-secret-7f3a9c21e5";
    let manager = LiveManager::start(200, "ok").await;
    let mut server = WsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgpsentry.yml");
    std::fs::write(&cfg, config(server.addr.port(), &manager.url, "")).unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .env("BGP_API_KEY", TRACE_KEY)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let conn = server.accept(30).await;
    assert_eq!(conn.uri, format!("/?api_key={TRACE_KEY}"));
    assert!(manager.count() >= 1, "the prefixes were associated first");
    // The WebSocket library's own logs do reach the output (its debug lines), so the key's
    // absence below is not for want of its logging.
    poll_until_async("the library's handshake log", 30, || {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        async move { err.contains("Client handshake done").then_some(()) }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        !out.contains(TRACE_KEY) && !err.contains(TRACE_KEY),
        "the API key is in the trace log: {}",
        err.lines()
            .chain(out.lines())
            .filter(|l| l.contains(TRACE_KEY))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
