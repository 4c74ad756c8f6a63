//! Hot reload: a changed config file (or SIGHUP) is applied without a restart; a broken one is
//! refused with its errors in the log and the metrics, and the old config keeps running.

use crate::util::feeds::{WsServer, ris_announce};
use crate::util::{Launch, Service, poll_until_async};

fn config(ws: &std::net::SocketAddr, prefixes: &[&str]) -> String {
    let mut yaml = String::from(
        "defaults:\n  min_vantage_points: 1\n  visibility_min_vantage_points: 0\nprefixes:\n",
    );
    for p in prefixes {
        yaml.push_str(&format!(
            "  - prefix: {p}\n    origins: [100]\n    upstreams: []\n"
        ));
    }
    yaml.push_str(&format!(
        "feeds:\n  - kind: ris_live\n    url: ws://{ws}/v1/ws/\n    beacons: []\n    warm_start: false\n"
    ));
    yaml
}

/// Subscriptions the service sent on a fresh connection.
async fn subscriptions(conn: &mut crate::util::feeds::Conn, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let frame: serde_json::Value = serde_json::from_str(&conn.recv().await).unwrap();
        assert_eq!(frame["type"], "ris_subscribe");
        out.push(frame["data"]["prefix"].as_str().unwrap().to_string());
    }
    out.sort();
    out
}

fn firing_prefixes(alerts: &[serde_json::Value]) -> Vec<String> {
    let mut p: Vec<String> = alerts
        .iter()
        .map(|a| a["prefix"].as_str().unwrap().to_string())
        .collect();
    p.sort();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_prefixes_are_subscribed_and_monitored_broken_configs_refused() {
    let mut ws = WsServer::start().await;
    let svc = Service::start_yaml(&config(&ws.addr, &["10.1.0.0/16"])).await;
    let path = svc.config_path();
    let mut conn = ws.accept(30).await;
    assert_eq!(subscriptions(&mut conn, 1).await, vec!["10.1.0.0/16"]);
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 666],
        "10.1.0.0/16",
        1_700_000_001.0,
    ));
    poll_until_async("the first hijack", 20, || async {
        (firing_prefixes(&svc.alerts().await) == vec!["10.1.0.0/16"]).then_some(())
    })
    .await;

    // Add a prefix: the live feed reconnects and subscribes to it; it is monitored, and the
    // first prefix's alert is still the same alert.
    let before = svc.alerts().await;
    std::fs::write(&path, config(&ws.addr, &["10.1.0.0/16", "10.2.0.0/16"])).unwrap();
    let mut conn = ws.accept(30).await;
    assert_eq!(
        subscriptions(&mut conn, 2).await,
        vec!["10.1.0.0/16", "10.2.0.0/16"]
    );
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 777],
        "10.2.0.0/16",
        1_700_000_002.0,
    ));
    let after = poll_until_async("the hijack of the added prefix", 20, || async {
        let a = svc.alerts().await;
        (firing_prefixes(&a) == vec!["10.1.0.0/16", "10.2.0.0/16"]).then_some(a)
    })
    .await;
    let id = |alerts: &[serde_json::Value], p: &str| {
        alerts
            .iter()
            .find(|a| a["prefix"] == p)
            .map(|a| a["id"].clone())
    };
    assert_eq!(id(&before, "10.1.0.0/16"), id(&after, "10.1.0.0/16"));
    assert_eq!(
        svc.metric("bgpsentry_config_reloads_total{result=\"ok\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(svc.metric("bgpsentry_watched_prefixes").await, Some(2.0));

    // A broken config is refused: logged with its position, counted, and the old one runs on.
    std::fs::write(&path, "prefixes:\n  - prefix: 10.3.0.1/16\n").unwrap();
    svc.wait_metric("bgpsentry_config_reloads_total{result=\"error\"}", 1.0)
        .await;
    let log = svc.log_text();
    assert!(
        log.contains("config reload rejected")
            && log.contains(":2:13: prefix `10.3.0.1/16` has host bits set"),
        "{log}"
    );
    conn.send(&ris_announce(
        "192.0.2.2",
        64502,
        &[64502, 666],
        "10.1.0.0/16",
        1_700_000_003.0,
    ));
    svc.wait_metric(
        "bgpsentry_route_events_matched_total{feed=\"ris_live\"}",
        3.0,
    )
    .await;
    assert_eq!(svc.metric("bgpsentry_watched_prefixes").await, Some(2.0));
    assert!(
        ws.try_accept().is_none(),
        "a refused config must not restart the feeds"
    );

    // SIGHUP reloads too; removing a prefix ends its alerts.
    std::fs::write(&path, config(&ws.addr, &["10.1.0.0/16"])).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &svc.pid().to_string()])
        .status();
    poll_until_async("the removed prefix's alert to end", 20, || async {
        (firing_prefixes(&svc.alerts().await) == vec!["10.1.0.0/16"]).then_some(())
    })
    .await;
    let resolved = svc.json("/alerts?state=resolved").await;
    assert_eq!(resolved["alerts"][0]["prefix"], "10.2.0.0/16");
}

/// The API token of the guarded configs, given to the service in `BGPSENTRY_TEST_TOKEN`.
const TOKEN: &str = "reload-test-token";

/// `yaml` with the API guarded by [`TOKEN`].
fn guarded(yaml: &str) -> String {
    format!("{yaml}http:\n  auth:\n    tokens:\n      - env: BGPSENTRY_TEST_TOKEN\n")
}

/// The firing alerts' prefixes, asked with the token.
async fn firing_with_token(svc: &Service) -> Vec<String> {
    let (status, body) = svc.get_with_token("/alerts", TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    firing_prefixes(doc["alerts"].as_array().unwrap())
}

/// The sum of `bgpsentry_alerts_firing` over its series: what a Prometheus alert rule sees.
async fn firing_gauge(svc: &Service) -> f64 {
    let body = svc.get("/metrics").await.1;
    body.lines()
        .filter(|l| l.starts_with("bgpsentry_alerts_firing{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn reloads(svc: &Service, result: &str) -> f64 {
    svc.metric(&format!(
        "bgpsentry_config_reloads_total{{result=\"{result}\"}}"
    ))
    .await
    .unwrap_or(0.0)
}

/// Starts the service on `yaml` with the API token, connects its feed and hijacks 10.1.0.0/16.
async fn hijacked(ws: &mut WsServer, yaml: &str) -> (Service, crate::util::feeds::Conn) {
    let svc = Launch::yaml(yaml)
        .log("bgpsentry=debug")
        .envs(&[("BGPSENTRY_TEST_TOKEN", TOKEN)])
        .start_async()
        .await;
    let mut conn = ws.accept(30).await;
    assert_eq!(subscriptions(&mut conn, 1).await, vec!["10.1.0.0/16"]);
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 666],
        "10.1.0.0/16",
        1_700_000_001.0,
    ));
    poll_until_async("the hijack", 20, || async {
        (firing_with_token(&svc).await == vec!["10.1.0.0/16"]).then_some(())
    })
    .await;
    (svc, conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_configs_and_configs_dropping_feeds_or_tokens_are_refused() {
    let mut ws = WsServer::start().await;
    let running = guarded(&config(&ws.addr, &["10.1.0.0/16"]));
    let (svc, _conn) = hijacked(&mut ws, &running).await;
    let path = svc.config_path();
    let alert_id = svc.get_with_token("/alerts", TOKEN).await.1;
    assert_eq!(
        svc.metric("bgpsentry_config_last_reload_successful").await,
        Some(1.0)
    );

    let no_feeds = guarded(
        "defaults:\n  min_vantage_points: 1\nprefixes:\n  - prefix: 10.1.0.0/16\n    origins: [100]\n",
    );
    let no_tokens = config(&ws.addr, &["10.1.0.0/16"]);
    let steps: [(&str, &dyn Fn(), &str); 4] = [
        (
            "truncated to empty, and left so",
            &|| drop(std::fs::File::create(&path).unwrap()),
            "the new config watches no prefix and no ASN",
        ),
        (
            "comment only",
            &|| std::fs::write(&path, "# bgpsentry.yml, being rewritten\n").unwrap(),
            "the new config watches no prefix and no ASN",
        ),
        (
            "no feeds",
            &|| std::fs::write(&path, &no_feeds).unwrap(),
            "the new config has no feeds",
        ),
        (
            "no API tokens",
            &|| std::fs::write(&path, &no_tokens).unwrap(),
            "the new config has no `http.auth.tokens`",
        ),
    ];
    for (n, (what, write, reason)) in steps.into_iter().enumerate() {
        write();
        svc.wait_metric(
            "bgpsentry_config_reloads_total{result=\"error\"}",
            n as f64 + 1.0,
        )
        .await;
        let log = svc.log_text();
        let refused = format!("{}: {reason}", path.display());
        assert!(
            log.lines()
                .filter(|l| l.contains("config reload rejected") && l.contains(&refused))
                .any(|l| l.contains("restart bgpsentry with this config")),
            "{what}: {log}"
        );
        // Nothing changed: the alert fires on (no false all-clear), the API still wants the
        // token, the feed was not restarted.
        assert_eq!(firing_with_token(&svc).await, vec!["10.1.0.0/16"], "{what}");
        assert_eq!(svc.get("/alerts").await.0, 401, "{what}");
        assert_eq!(firing_gauge(&svc).await, 1.0, "{what}");
        assert_eq!(svc.metric("bgpsentry_watched_prefixes").await, Some(1.0));
        assert_eq!(
            svc.metric("bgpsentry_config_last_reload_successful").await,
            Some(0.0)
        );
        assert_eq!(reloads(&svc, "ok").await, 0.0, "{what}");
        assert!(ws.try_accept().is_none(), "{what}: the feed was restarted");
    }

    // The operator's real config is taken again; the alert is the same alert.
    std::fs::write(&path, &running).unwrap();
    svc.wait_metric("bgpsentry_config_reloads_total{result=\"ok\"}", 1.0)
        .await;
    assert_eq!(
        svc.metric("bgpsentry_config_last_reload_successful").await,
        Some(1.0)
    );
    assert_eq!(svc.get_with_token("/alerts", TOKEN).await.1, alert_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_rewritten_slowly_in_place_is_applied_once_and_whole() {
    use std::io::Write;
    let mut ws = WsServer::start().await;
    let running = guarded(&config(&ws.addr, &["10.1.0.0/16"]));
    let svc = Launch::yaml(&running)
        .log("bgpsentry=debug")
        .envs(&[("BGPSENTRY_TEST_TOKEN", TOKEN)])
        .start_async()
        .await;
    let mut conn = ws.accept(30).await;
    assert_eq!(subscriptions(&mut conn, 1).await, vec!["10.1.0.0/16"]);

    // Tokens and feeds first, so that the first half alone is a valid config that nothing
    // would refuse: the running one over again.
    let first_half = format!(
        "http:\n  auth:\n    tokens:\n      - env: BGPSENTRY_TEST_TOKEN\n\
         feeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    beacons: []\n    warm_start: false\n\
         defaults:\n  min_vantage_points: 1\n  visibility_min_vantage_points: 0\n\
         prefixes:\n  - prefix: 10.1.0.0/16\n    origins: [100]\n    upstreams: []\n",
        ws.addr
    );
    let second_half = "  - prefix: 10.2.0.0/16\n    origins: [100]\n    upstreams: []\n";
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(svc.config_path())
        .unwrap();
    file.write_all(first_half.as_bytes()).unwrap();
    // The writer pauses until the service has noticed the change; it must then wait for the
    // file to settle rather than read the half.
    poll_until_async("the service to notice the change", 20, || async {
        let noticed = svc.log_text().contains("is changing; reading it once");
        let reloaded = reloads(&svc, "ok").await + reloads(&svc, "error").await > 0.0;
        (noticed || reloaded).then_some(())
    })
    .await;
    assert_eq!(
        reloads(&svc, "ok").await,
        0.0,
        "the half-written file was applied"
    );
    assert_eq!(
        reloads(&svc, "error").await,
        0.0,
        "the half-written file was read"
    );
    file.write_all(second_half.as_bytes()).unwrap();
    drop(file);

    let mut conn = ws.accept(30).await;
    assert_eq!(
        subscriptions(&mut conn, 2).await,
        vec!["10.1.0.0/16", "10.2.0.0/16"]
    );
    // The engine takes the new watch list a moment after the feeds.
    svc.wait_metric("bgpsentry_watched_prefixes", 2.0).await;
    assert_eq!(reloads(&svc, "ok").await, 1.0);
    assert_eq!(reloads(&svc, "error").await, 0.0);
    let log = svc.log_text();
    let applied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config reloaded"))
        .collect();
    assert_eq!(applied.len(), 1, "{log}");
    assert!(applied[0].contains(": 2 watched prefixes"), "{log}");
    assert_eq!(svc.get("/alerts").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_config_is_refused_at_start_and_on_reload_without_being_read() {
    // Sparse: a terabyte on paper and nothing on disk; reading it would not fit in memory.
    const HUGE: u64 = 1 << 40;
    let refusal = |path: &std::path::Path| {
        format!(
            "{}: the config file is {HUGE} bytes, over the limit of 8388608 bytes (8 MiB); it \
             was not read",
            path.display()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.yml");
    std::fs::File::create(&huge).unwrap().set_len(HUGE).unwrap();
    for command in ["check", "run"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
            .args([command, "--config"])
            .arg(&huge)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(stderr.contains(&refusal(&huge)), "{command}: {stderr}");
    }

    let mut ws = WsServer::start().await;
    let svc = Service::start_yaml(&config(&ws.addr, &["10.1.0.0/16"])).await;
    let mut conn = ws.accept(30).await;
    assert_eq!(subscriptions(&mut conn, 1).await, vec!["10.1.0.0/16"]);
    let path = svc.config_path();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(HUGE)
        .unwrap();
    svc.wait_metric("bgpsentry_config_reloads_total{result=\"error\"}", 1.0)
        .await;
    let log = svc.log_text();
    assert!(log.contains(&refusal(&path)), "{log}");
    assert_eq!(svc.metric("bgpsentry_watched_prefixes").await, Some(1.0));
    assert!(ws.try_accept().is_none(), "the feed was restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_counters_keep_counting_after_a_reload_restarts_the_feed() {
    let mut ws = WsServer::start().await;
    let svc = Service::start_yaml(&config(&ws.addr, &["10.1.0.0/16"])).await;
    let updates = "bgpsentry_feed_messages_total{feed=\"ris_live\",type=\"update\"}";
    let mut conn = ws.accept(30).await;
    subscriptions(&mut conn, 1).await;
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 100],
        "10.1.0.0/16",
        1_700_000_001.0,
    ));
    svc.wait_metric(updates, 1.0).await;

    // A new watch list restarts the live feed: its next connection counts in the same series.
    std::fs::write(
        svc.config_path(),
        config(&ws.addr, &["10.1.0.0/16", "10.2.0.0/16"]),
    )
    .unwrap();
    svc.signal("HUP");
    let mut conn = ws.accept(30).await;
    subscriptions(&mut conn, 2).await;
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 100],
        "10.2.0.0/16",
        1_700_000_002.0,
    ));
    svc.wait_metric(updates, 2.0).await;
    assert!(
        !svc.log_text().contains("feed metrics not registered"),
        "{}",
        svc.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_added_by_a_reload_exports_its_counters_at_zero() {
    let mut ws = WsServer::start().await;
    let yaml = config(&ws.addr, &["10.1.0.0/16"]);
    let svc = Service::start_yaml(&yaml).await;
    let mut conn = ws.accept(30).await;
    subscriptions(&mut conn, 1).await;
    let schema = "bgpsentry_invalid_input_total{feed=\"second\",reason=\"schema\"}";
    assert_eq!(svc.metric(schema).await, None, "no such feed yet");

    let added = format!(
        "{yaml}  - kind: ris_live\n    name: second\n    url: ws://{}/v1/ws/\n    beacons: []\n    warm_start: false\n",
        ws.addr
    );
    std::fs::write(svc.config_path(), added).unwrap();
    svc.signal("HUP");
    poll_until_async("the added feed's counters", 20, || async {
        svc.metric(schema).await
    })
    .await;
    // Nothing has reached the new feed: every series it will ever count in is there, at 0, so
    // that increase() sees its first event.
    let body = svc.get("/metrics").await.1;
    let value = |series: String| {
        body.lines().find_map(|l| {
            l.strip_prefix(series.as_str())
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_string)
        })
    };
    for reason in bgpsentry::feeds::error::InvalidReason::ALL {
        let series = format!(
            "bgpsentry_invalid_input_total{{feed=\"second\",reason=\"{}\"}}",
            reason.as_str()
        );
        assert_eq!(value(series.clone()).as_deref(), Some("0"), "{series}");
    }
    for reason in bgpsentry::feeds::error::FeedErrorReason::ALL {
        let series = format!(
            "bgpsentry_feed_errors_total{{feed=\"second\",reason=\"{}\"}}",
            reason.as_str()
        );
        assert!(value(series.clone()).is_some(), "no {series}\n{body}");
    }
    for kind in ["announce", "withdraw", "peer_down"] {
        let series = format!("bgpsentry_route_events_total{{feed=\"second\",type=\"{kind}\"}}");
        assert_eq!(value(series.clone()).as_deref(), Some("0"), "{series}");
    }
}
