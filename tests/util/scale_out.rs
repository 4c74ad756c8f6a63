//! What the scale-out tests share: the watch list (real prefixes of the 2016 RIS data), the
//! configs of a relay and of an instance on a broker, and what an instance says about the
//! partitions it owns.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::collections::BTreeSet;

use serde_json::Value;

use super::kafka::{Broker, feed_yaml, write};
use super::notify::Receiver;
use super::{Launch, Service};

/// The internal topic and its partition count.
pub const EVENTS_TOPIC: &str = "bgpsentry-events";
pub const PARTITIONS: i32 = 4;

/// The instances' consumer group.
pub const INSTANCES: &str = "bgpsentry-instances";

/// AS18196's prefix, hijacked by AS58678 in the 2016 RIS data, and the sixteen RIS routing
/// beacons of AS12654 announced in the same five minutes: real prefixes on every partition.
pub fn watched_prefixes() -> String {
    let mut text = String::from(
        "  - prefix: 202.134.148.0/24\n    origins: [18196]\n    visibility_min_vantage_points: 0\n",
    );
    for i in 64..80 {
        text.push_str(&format!(
            "  - prefix: 84.205.{i}.0/24\n    origins: [12654]\n    visibility_min_vantage_points: 0\n"
        ));
    }
    text
}

/// A relay's config: the raw topics it reads (`(topic, format)`), and the internal topic.
pub fn relay_config(dir: &Path, broker: &Broker, raw: &[(&str, &str)]) -> PathBuf {
    let mut feeds = String::new();
    for (i, (topic, format)) in raw.iter().enumerate() {
        let feed = feed_yaml(broker, topic, &format!("bgpsentry-relay-{i}"), format);
        feeds.push_str(&feed.replacen(
            "- kind: kafka\n",
            &format!("- kind: kafka\n    name: raw{i}\n"),
            1,
        ));
    }
    let text = format!(
        "prefixes:\n{}feeds:\n{feeds}relay:\n  brokers: ['{}']\n  topic: {EVENTS_TOPIC}\n",
        watched_prefixes(),
        broker.addr
    );
    write(dir, "relay.yml", &text)
}

/// An instance's config: the events feed in the instances' group, its own store, and an
/// Alertmanager channel.
pub fn instance_config(dir: &Path, broker: &Broker, name: &str, alertmanager: &str) -> PathBuf {
    let feed = feed_yaml(broker, EVENTS_TOPIC, INSTANCES, "events").replacen(
        "- kind: kafka\n",
        "- kind: kafka\n    name: events\n",
        1,
    );
    let text = format!(
        "prefixes:\n{}feeds:\n{feed}store:\n  path: {}\nnotify:\n  group_window_seconds: 0.2\n  channels:\n    - name: am\n      kind: alertmanager\n      url: {alertmanager}\n      repush_seconds: 1\n      hold_resolved_seconds: 4\n",
        watched_prefixes(),
        dir.join(format!("{name}.db")).display()
    );
    write(dir, &format!("{name}.yml"), &text)
}

/// Starts `bgpsentry relay` on a config, serving on a free port.
pub async fn start_relay(config: &Path) -> Service {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bgpsentry"));
    cmd.args(["relay", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    Launch::command(cmd).start_async().await
}

/// The partitions an instance owns, from the last line it logged about them.
pub fn owned_partitions(svc: &Service) -> Option<Vec<i32>> {
    let log = svc.log_text();
    let line = log.lines().rev().find(|l| l.contains("owned now ["))?;
    let list = line.split("owned now [").nth(1)?.split(']').next()?;
    Some(
        list.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
    )
}

/// (alertname, prefix, origin_asn) of every alert Alertmanager notified as firing.
pub fn notified_firing(rx: &Receiver) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rx.got() {
        let Ok(v) = serde_json::from_slice::<Value>(&r.body) else {
            continue;
        };
        for a in v["alerts"].as_array().into_iter().flatten() {
            if a["status"] != "firing" {
                continue;
            }
            let l = &a["labels"];
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            out.insert((s("alertname"), s("prefix"), s("origin_asn")));
        }
    }
    out
}

/// Alerts an instance fired, over every rule and severity.
pub async fn fired_total(svc: &Service) -> f64 {
    svc.metric_sum("bgpsentry_alerts_fired_total{").await
}

/// True when the service answers `/readyz` with 200.
pub async fn ready(svc: &Service) -> bool {
    svc.get("/readyz").await.0 == 200
}

/// What one bgpsentry raises when it replays `data` with the config `yaml`: the (rule, prefix,
/// origin) of every alert that fires, and how many fire.
pub fn reference_firing(yaml: &str, data: &Path) -> (BTreeSet<(String, String, String)>, f64) {
    let reference = super::replay(yaml, &[data], &[]);
    assert!(reference.success, "{}", reference.stderr);
    let fired: Vec<_> = reference
        .lines
        .iter()
        .filter(|l| l.event == "fired")
        .collect();
    let set = fired
        .iter()
        .map(|l| {
            (
                l.rule.clone(),
                l.prefix.clone(),
                l.origin.map(|o| o.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    (set, fired.len() as f64)
}

/// Waits up to two minutes for Alertmanager to have notified exactly `expected` as firing; when
/// it has not, prints the logs of the relay and the instances, and the instances' counters,
/// alerts and view of the hijacked prefix, for the assertion that follows.
pub async fn await_notified(
    rx: &Receiver,
    expected: &BTreeSet<(String, String, String)>,
    relay: &Service,
    instances: &[&Service],
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while notified_firing(rx) != *expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if notified_firing(rx) == *expected {
        return;
    }
    eprintln!("relay log:\n{}", relay.log_text());
    for (n, svc) in instances.iter().enumerate() {
        eprintln!("instance {n} log:\n{}", svc.log_text());
        let m = svc.metrics().await;
        let interesting: Vec<&str> = m
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.contains("202.134.148")
                    || l.contains("events_total")
                    || l.contains("engine")
                    || l.contains("fired")
                    || l.contains("records_total")
            })
            .collect();
        eprintln!("instance {n} metrics:\n{}", interesting.join("\n"));
        eprintln!(
            "instance {n} alerts: {}",
            svc.json("/alerts?state=all").await
        );
        eprintln!(
            "instance {n} on the hijacked prefix: {}",
            svc.json("/api/prefixes/202.134.148.0/24").await
        );
    }
}
