//! What the scale-out tests share: the watch list (real prefixes of the 2016 RIS data), the
//! configs of a relay and of an instance on a broker, and what an instance says about the
//! partitions it owns.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::kafka::{Broker, feed_yaml, write};
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
