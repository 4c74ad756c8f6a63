//! The shipped Prometheus rules: promtool accepts them and their unit tests pass, every alert
//! is complete (severity, summary, description, a runbook that exists) and tested both ways,
//! and every metric they use is one bgpsentry exports.

use std::collections::{BTreeMap, BTreeSet};

use crate::util::promkit::*;

#[derive(Debug, serde::Deserialize)]
struct TestFile {
    tests: Vec<TestGroup>,
}

#[derive(Debug, serde::Deserialize)]
struct TestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Debug, serde::Deserialize)]
struct AlertTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<serde_json::Value>,
}

fn test_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("rules/tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no promtool tests in rules/tests");
    files
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let promtool = tool("promtool", "prometheus");
    let (ok, out) = run_tool(
        &promtool,
        &["check", "rules", "rules/bgpsentry.rules.yml"],
        &root(),
    );
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(test_files().iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run_tool(&promtool, &args, &root());
    assert!(ok, "promtool test rules:\n{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_is_complete_and_has_a_runbook_section() {
    let readme = std::fs::read_to_string(root().join("docs/src/runbook.md")).unwrap();
    let anchors: BTreeSet<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect();
    let rules = rule_file();
    let mut alerts = 0;
    for rule in rules.groups.iter().flat_map(|g| &g.rules) {
        let Some(name) = &rule.alert else { continue };
        alerts += 1;
        let severity = rule
            .labels
            .get("severity")
            .unwrap_or_else(|| panic!("{name}: no severity"));
        assert!(
            ["critical", "warning", "info", "{{ $labels.severity }}"].contains(&severity.as_str()),
            "{name}: severity {severity}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule.annotations
                    .get(key)
                    .is_some_and(|v| !v.trim().is_empty()),
                "{name}: no {key} annotation"
            );
        }
        let url = &rule.annotations["runbook_url"];
        let (_, fragment) = url
            .split_once("docs/src/runbook.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} is not a runbook.md anchor"));
        assert_eq!(fragment, name.to_lowercase(), "{name}: runbook anchor");
        assert!(
            anchors.contains(fragment),
            "{name}: runbook.md has no section #{fragment}"
        );
    }
    assert!(alerts >= 10, "only {alerts} alerts");
}

#[test]
fn every_alert_has_unit_tests_where_it_fires_and_where_it_must_not() {
    let alerts: BTreeSet<String> = rule_file()
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| r.alert)
        .collect();
    let mut fires: BTreeMap<String, usize> = BTreeMap::new();
    let mut silent: BTreeMap<String, usize> = BTreeMap::new();
    for file in test_files() {
        let tf: TestFile =
            serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for t in tf.tests.iter().flat_map(|g| &g.alert_rule_test) {
            assert!(
                alerts.contains(&t.alertname),
                "{}: tests unknown alert {}",
                file.display(),
                t.alertname
            );
            let counter = if t.exp_alerts.is_empty() {
                &mut silent
            } else {
                &mut fires
            };
            *counter.entry(t.alertname.clone()).or_default() += 1;
        }
    }
    for a in &alerts {
        assert!(fires.contains_key(a), "no promtool test where {a} fires");
        assert!(
            silent.contains_key(a),
            "no promtool test where {a} must not fire"
        );
    }
}

#[test]
fn rules_use_only_exported_metrics() {
    let catalogue = catalogue();
    let recorded = recording_rules();
    for rule in rule_file().groups.iter().flat_map(|g| &g.rules) {
        for name in names_in_expr(&rule.expr) {
            let known = catalogue.contains_key(family_of(&name, &catalogue))
                || recorded.contains_key(&name);
            assert!(
                known,
                "{:?} uses {name}, which bgpsentry does not export",
                rule.alert.as_ref().or(rule.record.as_ref())
            );
        }
    }
    // And the catalogue's feed and notification health is covered by alerts.
    let used: BTreeSet<String> = rule_file()
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.alert.is_some())
        .flat_map(|r| names_in_expr(&r.expr))
        .collect();
    // Groups are evaluated independently: an alert on a recorded series would lag by up to
    // one evaluation, and its promtool tests would depend on group order.
    for name in &used {
        assert!(
            !name.contains(':'),
            "an alert uses the recording rule {name}"
        );
    }
    for needed in [
        "bgpsentry_alerts_firing",
        "bgpsentry_feed_connected",
        "bgpsentry_feed_stale",
        "bgpsentry_notification_failures_total",
        "bgpsentry_notifications_dead_total",
    ] {
        assert!(used.contains(needed), "no alert uses {needed}");
    }
}

#[test]
fn names_in_expr_finds_metrics_but_not_labels_or_strings() {
    let names = names_in_expr(
        "sum by (job) (rate(bgpsentry_a_total{feed=\"bgpsentry_not_me\"}[5m])) / bgpsentry:rec:rate5m",
    );
    assert_eq!(
        names,
        ["bgpsentry:rec:rate5m", "bgpsentry_a_total"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn every_engine_rule_pages_through_an_alert() {
    // The rule names come from the engine itself, so a new detector without an alert fails.
    let alerts: Vec<(String, String)> = rule_file()
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| Some((r.alert?, r.expr)))
        .collect();
    for rule in bgpsentry::alerts::Rule::ALL {
        let selector = format!("bgpsentry_alerts_firing{{rule=\"{}\"}}", rule.as_str());
        let alert = alerts
            .iter()
            .find(|(_, expr)| expr.contains(&selector))
            .unwrap_or_else(|| panic!("no alert fires on the engine's rule {rule}"));
        // And the alert is named after the rule (BgpsentryRpkiInvalid for rpki_invalid).
        let camel: String = rule
            .as_str()
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert_eq!(alert.0, format!("Bgpsentry{camel}"), "the alert on {rule}");
    }
    // The service's own failure modes page too.
    for (metric, alert) in [
        ("bgpsentry_rpki_stale", "BgpsentryRpkiStale"),
        (
            "bgpsentry_config_reloads_total",
            "BgpsentryConfigReloadRejected",
        ),
        ("bgpsentry_store_errors_total", "BgpsentryStoreErrors"),
        ("bgpsentry_engine_queue_events", "BgpsentryEngineQueueFull"),
    ] {
        let (_, expr) = alerts
            .iter()
            .find(|(a, _)| a == alert)
            .unwrap_or_else(|| panic!("no alert {alert}"));
        assert!(names_in_expr(expr).contains(metric), "{alert}: {expr}");
    }
}
