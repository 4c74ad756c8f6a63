//! Hot reload: a changed config file (or SIGHUP) is applied without a restart; a broken one is
//! refused with its errors in the log and the metrics, and the old config keeps running.

mod feeds_common;

use feeds_common::{Service, WsServer, poll, ris_announce};

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
        "feeds:\n  - kind: ris_live\n    url: ws://{ws}/v1/ws/\n    beacons: []\n"
    ));
    yaml
}

/// Subscriptions the service sent on a fresh connection.
async fn subscriptions(conn: &mut feeds_common::Conn, n: usize) -> Vec<String> {
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
    let svc = Service::start(&config(&ws.addr, &["10.1.0.0/16"]), &[]).await;
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
    poll("the first hijack", 20, || async {
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
    let after = poll("the hijack of the added prefix", 20, || async {
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
    poll("the removed prefix's alert to end", 20, || async {
        (firing_prefixes(&svc.alerts().await) == vec!["10.1.0.0/16"]).then_some(())
    })
    .await;
    let resolved = svc.json("/alerts?state=resolved").await;
    assert_eq!(resolved["alerts"][0]["prefix"], "10.2.0.0/16");
}
