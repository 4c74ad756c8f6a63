//! The Grafana dashboards: sound JSON structure, every PromQL expression parses (promtool
//! checks them as rules), and every metric they use is one bgpsentry exports, judged against
//! the `/metrics` of a running service.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::util::promkit::*;
use serde_json::Value;

fn dashboards() -> Vec<(PathBuf, Value)> {
    let mut out: Vec<_> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 2,
        "expected the overview and per-prefix dashboards"
    );
    out
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// (where, expr) of every PromQL expression: panel targets, variable queries, annotations.
fn exprs(d: &Value, file: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: panel {} target without expr", p["title"]));
            out.push((format!("{file}: panel {}", p["title"]), e.to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = v["query"].as_str().unwrap();
            // label_values(SELECTOR, label): the selector is PromQL.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(sel, _)| sel.to_string())
                .unwrap_or_else(|| {
                    panic!(
                        "{file}: variable {} query {q} is not label_values(…)",
                        v["name"]
                    )
                });
            out.push((format!("{file}: variable {}", v["name"]), inner));
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push((format!("{file}: annotation {}", a["name"]), e.to_string()));
        }
    }
    out
}

#[test]
fn dashboards_are_well_formed() {
    for (path, d) in dashboards() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            d["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty() && u.len() <= 40),
            "{file}: uid"
        );
        assert!(
            d["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("bgpsentry")),
            "{file}: title"
        );
        // Variables: a data source picker, and the prefix (whose values come from the metrics).
        let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect();
        let ds = vars
            .get("datasource")
            .unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(
            (ds["type"].as_str(), ds["query"].as_str()),
            (Some("datasource"), Some("prometheus")),
            "{file}"
        );
        let prefix = vars
            .get("prefix")
            .unwrap_or_else(|| panic!("{file}: no prefix variable"));
        assert_eq!(prefix["type"], "query", "{file}");
        assert!(
            prefix["query"]
                .as_str()
                .unwrap()
                .contains("bgpsentry_prefix_vantage_points"),
            "{file}"
        );

        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(i64, i64, i64, i64, String)> = Vec::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let id = p["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: panel {title} has no id"));
            assert!(ids.insert(id), "{file}: panel id {id} is used twice");
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().unwrap(),
                g["y"].as_i64().unwrap(),
                g["w"].as_i64().unwrap(),
                g["h"].as_i64().unwrap(),
            );
            assert!(
                x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24,
                "{file}: panel {title} at {g}"
            );
            for (bx, by, bw, bh, other) in &boxes {
                let overlap = x < bx + bw && *bx < x + w && y < by + bh && *by < y + h;
                assert!(!overlap, "{file}: panels {title} and {other} overlap");
            }
            boxes.push((x, y, w, h, title.clone()));
            if p["type"] != "row" {
                assert!(!title.is_empty(), "{file}: panel {id} has no title");
                assert_eq!(
                    p["datasource"]["uid"], "${datasource}",
                    "{file}: panel {title} must use the datasource variable"
                );
                let targets = p["targets"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{file}: panel {title} has no queries"));
                assert!(!targets.is_empty(), "{file}: panel {title} has no queries");
                let refs: BTreeSet<&str> = targets
                    .iter()
                    .map(|t| t["refId"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    refs.len(),
                    targets.len(),
                    "{file}: panel {title} repeats a refId"
                );
            }
        }
        // Every variable a query mentions is defined.
        for (at, e) in exprs(&d, &file) {
            for var in ["$prefix", "$job", "$feed"] {
                if e.contains(var) {
                    assert!(vars.contains_key(&var[1..]), "{at}: uses undefined {var}");
                }
            }
        }
    }
}

#[test]
fn every_dashboard_query_parses_and_uses_exported_metrics() {
    let promtool = tool("promtool", "prometheus");
    let all: Vec<(String, String)> = dashboards()
        .iter()
        .flat_map(|(p, d)| exprs(d, &p.file_name().unwrap().to_string_lossy()))
        .collect();
    assert!(all.len() > 20, "only {} queries found", all.len());

    // promtool parses each expression as a recording rule.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    write_exprs_as_rules(&all, &file);
    let (ok, out) = run_tool(
        &promtool,
        &["check", "rules", file.to_str().unwrap()],
        dir.path(),
    );
    assert!(
        ok,
        "promtool rejects a dashboard query:\n{out}\n{}",
        std::fs::read_to_string(&file).unwrap()
    );

    // Metric names: exported by a running bgpsentry, or by the feeds or notifier per the
    // catalogue (their families appear once they have samples), or recorded by our rules.
    let live = parse_exposition(&live_metrics());
    let catalogue = catalogue();
    let recorded = recording_rules();
    let mut used = BTreeSet::new();
    for (at, e) in &all {
        for name in names_in_expr(e) {
            let family = family_of(&name, &catalogue).to_string();
            // A documented core family without series while there is nothing to count
            // (no alert firing after the replay's hijack resolved) counts when catalogued.
            let ok = live.contains_key(&family)
                || recorded.contains_key(&name)
                || (ABSENT_WHEN_NONE.contains(&family.as_str()) && catalogue.contains_key(&family))
                || catalogue
                    .get(&family)
                    .is_some_and(|c| c.exported_by != "core");
            assert!(ok, "{at}: {name} is not exported by bgpsentry");
            used.insert(family);
        }
    }
    // The panels the issue asks for are there: feeds, event rates, alerts, notifications,
    // visibility, origins and upstreams.
    for needed in [
        "bgpsentry_feed_connected",
        "bgpsentry:route_events:rate5m",
        "bgpsentry_alerts_firing",
        "bgpsentry_notification_failures_total",
        "bgpsentry_prefix_vantage_points",
        "bgpsentry_prefix_origin_vantage_points",
        "bgpsentry_prefix_upstream_vantage_points",
    ] {
        assert!(used.contains(needed), "no dashboard query uses {needed}");
    }
}

#[test]
fn panels_show_states_words_and_ratios_as_such_and_link_where_they_point() {
    let boards = dashboards();
    let uids: BTreeSet<String> = boards
        .iter()
        .map(|(_, d)| d["uid"].as_str().unwrap().to_string())
        .collect();
    for (path, d) in &boards {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        // Each dashboard links to the others, by uid.
        let links = d["links"].to_string();
        for uid in uids
            .iter()
            .filter(|u| Some(u.as_str()) != d["uid"].as_str())
        {
            assert!(
                links.contains(&format!("/d/{uid}")),
                "{file}: no link to {uid}"
            );
        }
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            let defaults = &p["fieldConfig"]["defaults"];
            // A stat without thresholds is grey whatever it shows.
            if p["type"] == "stat" {
                let steps = defaults["thresholds"]["steps"].as_array();
                assert!(
                    steps.is_some_and(|s| !s.is_empty()),
                    "{file}: stat {title} has no thresholds"
                );
            }
            // A 1/0 state reads as words.
            let exprs: Vec<&str> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str())
                .collect();
            if exprs
                .iter()
                .any(|e| e.starts_with("min(up{") || e.starts_with("bgpsentry_feed_connected{"))
            {
                let mappings = defaults["mappings"].to_string();
                assert!(
                    mappings.contains("\"0\"") && mappings.contains("\"1\""),
                    "{file}: {title} shows a state as 1/0 without value mappings"
                );
            }
            // A ratio is not drawn in seconds.
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                if !expr.contains("ratio") {
                    continue;
                }
                let overridden = p["fieldConfig"]["overrides"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|o| o["matcher"]["options"] == t["refId"])
                    .and_then(|o| {
                        o["properties"]
                            .as_array()?
                            .iter()
                            .find(|pr| pr["id"] == "unit")
                            .map(|pr| pr["value"].clone())
                    });
                let unit = overridden.unwrap_or_else(|| defaults["unit"].clone());
                assert!(
                    ["percentunit", "percent", "none"].contains(&unit.as_str().unwrap_or("none")),
                    "{file}: {title} draws the ratio {expr} in {unit}"
                );
            }
            // A description that sends people to another dashboard comes with a link to it.
            let description = p["description"].as_str().unwrap_or_default();
            if description.contains("per-prefix dashboard") {
                assert!(
                    p.to_string().contains("/d/bgpsentry-prefix"),
                    "{file}: {title} points at the per-prefix dashboard without a link"
                );
            }
        }
    }
    // The visibility panel draws the prefix's threshold.
    let (_, prefix_board) = boards
        .iter()
        .find(|(p, _)| p.ends_with("bgpsentry-prefix.json"))
        .unwrap();
    let visibility = panels(prefix_board)
        .into_iter()
        .find(|p| p["title"] == "Visibility")
        .expect("a Visibility panel");
    assert!(
        visibility["targets"]
            .to_string()
            .contains("bgpsentry_prefix_visibility_threshold"),
        "no visibility threshold line"
    );
}
