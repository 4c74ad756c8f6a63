//! The metric catalogue against a live service: `/metrics` of a running bgpsentry passes
//! `promtool check metrics`, and it exports exactly what the README's catalogue says.

mod promkit_common;

use std::io::Write;
use std::process::{Command, Stdio};

use promkit_common::*;

#[test]
fn live_metrics_pass_promtool_and_match_the_catalogue() {
    let promtool = tool("promtool", "prometheus");
    let text = live_metrics();

    // promtool's linter: naming, units, HELP, counter suffixes.
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{report}\n---\n{text}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool check metrics found problems:\n{report}"
    );

    let live = parse_exposition(&text);
    let catalogue = catalogue();
    // Every family the service exports is documented, with its type and labels.
    for (name, family) in &live {
        let entry = catalogue.get(name).unwrap_or_else(|| {
            panic!("{name} is exported but missing from the README's metric catalogue")
        });
        assert_eq!(entry.kind, family.kind, "type of {name} in the README");
        assert_eq!(
            entry.labels, family.labels,
            "labels of {name} in the README"
        );
    }
    // Every core metric the catalogue lists is exported (the replay exercises all of them).
    for entry in catalogue.values() {
        assert!(
            ["core", "feeds", "notifier", "rpki"].contains(&entry.exported_by.as_str()),
            "{}: `exported by` must be core, feeds, notifier or rpki",
            entry.name
        );
        assert!(
            ["counter", "gauge", "histogram"].contains(&entry.kind.as_str()),
            "{}: unknown type {}",
            entry.name,
            entry.kind
        );
        if entry.exported_by == "core" {
            assert!(
                live.contains_key(&entry.name),
                "{} is in the catalogue but not exported",
                entry.name
            );
        }
        if entry.kind == "counter" {
            assert!(
                entry.name.ends_with("_total"),
                "counter {} must end in _total",
                entry.name
            );
        }
    }
    // Per-prefix series exist only for watched prefixes: bounded cardinality.
    for line in text.lines().filter(|l| l.contains("prefix=\"")) {
        assert!(
            line.contains(&format!("prefix=\"{}\"", scenario::PREFIX)),
            "unwatched prefix in {line}"
        );
    }
    // The replay is visible in the numbers: one hijack fired and resolved, one bad record.
    assert!(
        text.contains(
            "bgpsentry_alerts_fired_total{rule=\"origin_hijack\",severity=\"critical\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "bgpsentry_alerts_resolved_total{rule=\"origin_hijack\",severity=\"critical\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("bgpsentry_invalid_input_total{feed=\"replay\",reason=\"mrt_record\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "bgpsentry_prefix_vantage_points{{prefix=\"{}\"}} 3",
            scenario::PREFIX
        )),
        "{text}"
    );
}

#[test]
fn catalogue_lists_the_feed_and_notifier_metrics_that_rules_and_dashboards_rely_on() {
    let catalogue = catalogue();
    for (name, kind, by) in [
        ("bgpsentry_feed_connected", "gauge", "core"),
        ("bgpsentry_feed_stale", "gauge", "core"),
        (
            "bgpsentry_feed_last_message_timestamp_seconds",
            "gauge",
            "core",
        ),
        ("bgpsentry_feed_reconnects_total", "counter", "core"),
        ("bgpsentry_feed_messages_total", "counter", "feeds"),
        ("bgpsentry_notifications_sent_total", "counter", "notifier"),
        (
            "bgpsentry_notification_failures_total",
            "counter",
            "notifier",
        ),
        (
            "bgpsentry_notification_retries_total",
            "counter",
            "notifier",
        ),
        ("bgpsentry_notifications_dead_total", "counter", "notifier"),
        ("bgpsentry_notification_queue_depth", "gauge", "notifier"),
        (
            "bgpsentry_notification_delivery_seconds",
            "histogram",
            "notifier",
        ),
    ] {
        let e = catalogue
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from the catalogue"));
        assert_eq!(
            (e.kind.as_str(), e.exported_by.as_str()),
            (kind, by),
            "{name}"
        );
    }
}
