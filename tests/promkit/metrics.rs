//! The metric catalogue against a live service: `/metrics` of a running bgpsentry passes
//! `promtool check metrics`, and it exports exactly what the catalogue in docs/src/metrics.md says.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::promkit::*;
use crate::util::{Service, poll_until};

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
    // Every family the service exports is documented, with its type and labels; the client's
    // standard process_* families are described in the text of docs/src/metrics.md.
    for (name, family) in &live {
        if name.starts_with("process_") {
            continue;
        }
        let entry = catalogue.get(name).unwrap_or_else(|| {
            panic!("{name} is exported but missing from the metrics.md catalogue")
        });
        assert_eq!(entry.kind, family.kind, "type of {name} in metrics.md");
        assert_eq!(
            entry.labels, family.labels,
            "labels of {name} in metrics.md"
        );
    }
    // Every core metric the catalogue lists is exported (the replay exercises all of them).
    for entry in catalogue.values() {
        assert!(
            ["core", "feeds", "notifier", "rpki", "relay"].contains(&entry.exported_by.as_str()),
            "{}: `exported by` must be core, feeds, notifier, rpki or relay",
            entry.name
        );
        assert!(
            ["counter", "gauge", "histogram"].contains(&entry.kind.as_str()),
            "{}: unknown type {}",
            entry.name,
            entry.kind
        );
        if entry.exported_by == "core" && !ABSENT_WHEN_NONE.contains(&entry.name.as_str()) {
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
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(live.contains_key(process), "no {process}");
    }
    // build_info names the version and the revision the binary was built from.
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let build_info = format!(
        "bgpsentry_build_info{{revision=\"{revision}\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build_info), "no {build_info} in:\n{text}");
    // The resolved hijack leaves no firing series behind.
    assert!(
        !text.contains("bgpsentry_alerts_firing{"),
        "a resolved alert keeps a series:\n{text}"
    );
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

#[test]
fn alert_series_of_a_monitored_asn_are_labelled_with_the_asn_not_wire_prefixes() {
    // A monitored ASN originates 40 prefixes nobody watches: 40 unexpected_prefix alerts, one
    // series. (A forged origin could otherwise grow the series without bound.)
    let dir = tempfile::tempdir().unwrap();
    let mrt = dir.path().join("updates.mrt");
    let peers = scenario::peers();
    let mut records = scenario::steady(1_700_000_000);
    for i in 0..40u8 {
        let p = (std::net::Ipv4Addr::new(198, 18, i, 0), 24);
        for peer in &peers[..2] {
            records.extend(announce(1_700_000_010, *peer, &[peer.asn, 64520], &[p]));
        }
    }
    std::fs::write(&mrt, records).unwrap();
    let config = dir.path().join("bgpsentry.yml");
    let text = format!(
        "{}asns:\n  - asn: 64520\n    upstreams: []\n    downstreams: []\n    min_vantage_points: 2\n",
        scenario::config(&[&mrt])
    );
    std::fs::write(&config, text).unwrap();
    let mut svc = Service::start(&config);
    let url = format!("http://{}/metrics", svc.addr);
    let series = "bgpsentry_alerts_firing{prefix=\"AS64520\",rule=\"unexpected_prefix\",severity=\"warning\"} 40";
    let body = poll_until("40 unexpected_prefix alerts", 30, || {
        let (_, body) = http_get(&url)?;
        body.contains(series).then_some(body)
    });
    svc.proc.terminate();
    let firing: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("bgpsentry_alerts_firing{"))
        .collect();
    assert_eq!(firing, [series], "{body}");
}

#[test]
fn every_series_rules_and_dashboards_use_is_exported_from_the_first_scrape() {
    // A service that has seen nothing yet: every core and notifier family a rule or a
    // dashboard reads is there, and the counters the alerts take increase() of exist at 0,
    // for every rule and every configured channel.
    let dir = tempfile::tempdir().unwrap();
    let mrt = dir.path().join("empty.mrt");
    std::fs::write(&mrt, b"").unwrap();
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(
        &config,
        format!(
            "{}notify:\n  channels:\n    - name: hook\n      kind: webhook\n      url: http://127.0.0.1:9/hook\n",
            scenario::config(&[&mrt])
        ),
    )
    .unwrap();
    let mut svc = Service::start(&config);
    let (status, text) = http_get(&format!("http://{}/metrics", svc.addr)).unwrap();
    svc.proc.terminate();
    assert_eq!(status, 200);
    let live = parse_exposition(&text);
    let catalogue = catalogue();
    let recorded = recording_rules();
    let mut used = std::collections::BTreeSet::new();
    for rule in rule_file().groups.iter().flat_map(|g| &g.rules) {
        used.extend(names_in_expr(&rule.expr));
    }
    for file in ["bgpsentry-overview.json", "bgpsentry-prefix.json"] {
        let board = std::fs::read_to_string(root().join("dashboards").join(file)).unwrap();
        let board: serde_json::Value = serde_json::from_str(&board).unwrap();
        collect_exprs(&board, &mut used);
    }
    let mut missing = Vec::new();
    for name in &used {
        if recorded.contains_key(name) {
            continue;
        }
        let family = family_of(name, &catalogue);
        let entry = catalogue
            .get(family)
            .unwrap_or_else(|| panic!("{name} is used but not in the catalogue"));
        // Feed message counters come with live feeds, rpki families with `rpki:`; this
        // config has neither.
        if ["core", "notifier"].contains(&entry.exported_by.as_str())
            && !ABSENT_WHEN_NONE.contains(&family)
            && !live.contains_key(family)
        {
            missing.push(family);
        }
    }
    assert!(
        missing.is_empty(),
        "used by the rules or dashboards but missing from the first scrape: {missing:?}\n{text}"
    );
    for rule in bgpsentry::alerts::Rule::ALL {
        for counter in [
            "bgpsentry_alerts_fired_total",
            "bgpsentry_alerts_resolved_total",
        ] {
            let series = format!("{counter}{{rule=\"{rule}\",severity=\"critical\"}} 0");
            assert!(text.contains(&series), "no {series}");
        }
    }
    assert!(text.contains("bgpsentry_config_reloads_total{result=\"error\"} 0"));
    // A feed's failures and invalid input exist at 0 for every reason, so that increase()
    // sees the first one.
    for reason in bgpsentry::feeds::error::InvalidReason::ALL {
        let series = format!(
            "bgpsentry_invalid_input_total{{feed=\"replay\",reason=\"{}\"}} 0",
            reason.as_str()
        );
        assert!(text.contains(&series), "no {series}");
    }
    for reason in bgpsentry::feeds::error::FeedErrorReason::ALL {
        let series = format!(
            "bgpsentry_feed_errors_total{{feed=\"replay\",reason=\"{}\"}} 0",
            reason.as_str()
        );
        assert!(text.contains(&series), "no {series}");
    }
    for entry in catalogue.values().filter(|e| e.exported_by == "notifier") {
        let sample = match entry.kind.as_str() {
            "histogram" => format!("{}_count{{channel=\"hook\"}} 0", entry.name),
            _ => format!("{}{{channel=\"hook\"}} 0", entry.name),
        };
        assert!(text.contains(&sample), "no {sample}\n{text}");
    }
}

/// The `bgpsentry_*` names of every `expr` in a dashboard, panels and annotations alike.
fn collect_exprs(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("expr" | "query", Some(e)) => {
                        out.extend(names_in_expr(&substitute_grafana_vars(e)))
                    }
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}
