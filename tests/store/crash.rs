//! Crash safety: `bgpsentry run` fed hijacks over a RIS Live fixture is killed with SIGKILL at
//! several points (alerts just shown, mid-burst, notifications pending), restarted on the same
//! store, and nothing is lost: every alert seen before a kill is there after it, the burst
//! completes into exactly one alert per incident, and every alert event is delivered to the
//! webhook, where a delivery id repeats only for retries of the same notification.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::feeds::{Conn, WsServer, ris_announce};
use crate::util::notify::Receiver;
use crate::util::{Launch, Service, poll_until_async};

/// Watched prefixes; each gets hijacked by AS666 from two peers.
const PREFIXES: usize = 12;

/// Firing alerts: id → prefix.
async fn firing(run: &Service) -> BTreeMap<String, String> {
    let v = run.json("/alerts").await;
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["prefix"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn prefix(i: usize) -> String {
    format!("10.{i}.0.0/16")
}

/// Connects the feed: accepts the service's connection and waits for its subscriptions.
async fn connect(ws: &mut WsServer) -> Conn {
    let mut conn = ws.accept(30).await;
    for _ in 0..PREFIXES {
        let sub = conn.recv().await;
        assert!(sub.contains("ris_subscribe"), "{sub}");
    }
    conn
}

/// Event times are seconds after this (November 2023): feeds reject times before 1990.
const T0: f64 = 1_700_000_000.0;

fn hijack(conn: &Conn, i: usize, ts: f64) {
    for (peer, asn) in [("192.0.2.1", 64501), ("192.0.2.2", 64502)] {
        conn.send(&ris_announce(peer, asn, &[asn, 666], &prefix(i), T0 + ts));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_several_points_loses_no_alert_and_no_notification() {
    // It loads the machine: one such test at a time (see `heavy`).
    let _heavy = crate::util::heavy();
    let mut ws = WsServer::start().await;
    // The webhook refuses connections until the end: every notification stays pending.
    let (socket, hook) = Receiver::reserve();
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from(
        "defaults:\n  min_vantage_points: 2\n  visibility_min_vantage_points: 0\nprefixes:\n",
    );
    for i in 0..PREFIXES {
        yaml.push_str(&format!(
            "  - prefix: {}\n    origins: [100]\n    upstreams: []\n",
            prefix(i)
        ));
    }
    yaml.push_str(&format!(
        "feeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    beacons: []\n    warm_start: false\n\
         store:\n  path: state.db\n  commit_interval_seconds: 1\n\
         notify:\n  group_window_seconds: 0.5\n  retry_initial_seconds: 0.2\n  retry_max_seconds: 1\n  channels:\n    - name: hook\n      kind: webhook\n      url: http://{hook}/hook\n",
        ws.addr
    ));
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(&config, yaml).unwrap();

    // Run 1: the first third is hijacked; kill as soon as the alerts are shown.
    let run = Launch::config(&config)
        .log("bgpsentry=info")
        .start_async()
        .await;
    let conn = connect(&mut ws).await;
    for i in 0..4 {
        hijack(&conn, i, 1_000.0 + i as f64);
    }
    let r = &run;
    let seen_1 = poll_until_async("the first alerts", 30, || async move {
        let f = firing(r).await;
        (f.len() == 4).then_some(f)
    })
    .await;
    run.kill9();
    drop(conn);

    // Run 2: everything from run 1 is back; kill in the middle of the next burst.
    let run = Launch::config(&config)
        .log("bgpsentry=info")
        .start_async()
        .await;
    let after_1 = firing(&run).await;
    assert_eq!(
        after_1, seen_1,
        "alerts shown before the kill must survive it"
    );
    let conn = connect(&mut ws).await;
    for i in 4..PREFIXES {
        hijack(&conn, i, 2_000.0 + i as f64);
    }
    // Some of the burst may be processed, some not: wait for at least one, then kill.
    let r = &run;
    let seen_2 = poll_until_async("part of the burst", 30, || async move {
        let f = firing(r).await;
        (f.len() > 4).then_some(f)
    })
    .await;
    run.kill9();
    drop(conn);

    // Run 3: what was shown is back; the feed sends the whole burst again (as a collector
    // would after a reconnect) and every incident is one alert.
    let run = Launch::config(&config)
        .log("bgpsentry=info")
        .start_async()
        .await;
    let after_2 = firing(&run).await;
    for (id, p) in &seen_2 {
        assert_eq!(
            after_2.get(id),
            Some(p),
            "alert {id} ({p}) was lost by the kill"
        );
    }
    let conn = connect(&mut ws).await;
    for i in 4..PREFIXES {
        hijack(&conn, i, 3_000.0 + i as f64);
    }
    let r = &run;
    let all = poll_until_async("every prefix hijacked", 30, || async move {
        let f = firing(r).await;
        (f.len() == PREFIXES).then_some(f)
    })
    .await;
    let prefixes: BTreeSet<&String> = all.values().collect();
    assert_eq!(prefixes.len(), PREFIXES, "one alert per incident: {all:?}");
    for (id, p) in &seen_2 {
        assert_eq!(all.get(id), Some(p), "alert {id} changed identity");
    }

    // The webhook comes up: every firing alert is delivered, each once per delivery id.
    let receiver = Receiver::start_on(socket, Vec::new());
    let delivered = poll_until_async("every alert delivered", 60, || {
        let receiver = receiver.clone();
        let all = all.clone();
        async move {
            let got = receiver.got();
            let ids: BTreeSet<String> = got
                .iter()
                .filter_map(|r| {
                    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
                    (v["event"] == "fired").then(|| v["alert"]["id"].as_str().unwrap().to_string())
                })
                .collect();
            all.keys().all(|id| ids.contains(id)).then_some(got)
        }
    })
    .await;
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut per_alert: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &delivered {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let delivery = v["delivery_id"].as_str().unwrap().to_string();
        // A delivery id that repeats is a retry: the same notification, byte for byte.
        if let Some(earlier) = bodies.insert(delivery.clone(), r.body.to_vec()) {
            assert_eq!(earlier, r.body.to_vec(), "delivery {delivery} changed");
        }
        if v["event"] == "fired" {
            per_alert
                .entry(v["alert"]["id"].as_str().unwrap().to_string())
                .or_default()
                .insert(delivery);
        }
    }
    for (alert, deliveries) in &per_alert {
        assert_eq!(
            deliveries.len(),
            1,
            "alert {alert} was notified under several delivery ids: {deliveries:?}"
        );
    }
    drop(conn);
    drop(run);
}
