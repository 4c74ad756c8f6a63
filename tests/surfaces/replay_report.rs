//! `bgpsentry replay --report`: the backtest table and timeline agree with the transitions the
//! same replay prints, on real data.

use std::collections::BTreeMap;
use std::process::Command;

use crate::util::{bin, replay, shared_data, write_config};
use serde_json::Value;

const UPDATES_2016: &str = "mrt/ris-updates.20160811.1600.gz";

/// The 12 prefixes AS18196 and AS58678 both originate in the file are covered by these three
/// blocks; the beacon, learning its upstreams from the first instant only, gets a new upstream.
/// Several rules fire, some resolve.
const CONFIG: &str = "prefixes:
  - prefix: 202.134.148.0/22
    origins: [18196]
    upstreams: [4755]
  - prefix: 202.134.152.0/21
    origins: [18196]
    upstreams: [4755]
    more_specifics: ignore
  - prefix: 43.248.68.0/22
    origins: [58678]
  - prefix: 84.205.64.0/24
    origins: [12654]
    learning_window_seconds: 0
";

fn run_report(json: bool) -> String {
    let (_dir, cfg) = write_config(CONFIG);
    let mut cmd = Command::new(bin());
    cmd.arg("replay").arg("--report").arg("--config").arg(&cfg);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.arg(shared_data(UPDATES_2016)).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("alerts fired"), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn report_matches_the_transitions_of_the_same_replay() {
    // What the plain replay prints, counted per rule by this test.
    let plain = replay(CONFIG, &[&shared_data(UPDATES_2016)], &[]);
    assert!(plain.success, "{}", plain.stderr);
    let mut expect: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut resolved_at: BTreeMap<String, String> = BTreeMap::new();
    let mut per_prefix: BTreeMap<String, u64> = BTreeMap::new();
    for l in &plain.lines {
        if l.event == "fired" {
            *per_prefix.entry(l.watched_prefix.clone()).or_default() += 1;
        }
        let e = expect.entry(l.rule.clone()).or_default();
        match l.event.as_str() {
            "fired" => e.0 += 1,
            "resolved" => {
                e.1 += 1;
                let id = l.json["alert"]["id"].as_str().unwrap().to_string();
                resolved_at.insert(id, l.resolved_at.clone().unwrap());
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(expect.len() >= 3, "too few rules fired to test: {expect:?}");
    assert!(!resolved_at.is_empty());
    let fired_total: u64 = expect.values().map(|e| e.0).sum();

    // The JSON report says the same.
    let report: Value = serde_json::from_str(&run_report(true)).unwrap();
    assert_eq!(report["start"], "2016-08-11T16:00:00.000000Z");
    assert_eq!(report["end"], "2016-08-11T16:04:59.000000Z");
    let rules = report["rules"].as_object().unwrap();
    let got: BTreeMap<String, (u64, u64)> = rules
        .iter()
        .map(|(k, v)| {
            assert_eq!(
                v["fired"].as_u64().unwrap(),
                v["resolved"].as_u64().unwrap() + v["still_firing"].as_u64().unwrap()
            );
            (
                k.clone(),
                (
                    v["fired"].as_u64().unwrap(),
                    v["resolved"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, expect);
    let incidents = report["incidents"].as_array().unwrap();
    assert_eq!(incidents.len() as u64, fired_total);
    let mut last_fired = String::new();
    for inc in incidents {
        let fired = inc["fired_at"].as_str().unwrap().to_string();
        assert!(fired >= last_fired, "timeline out of order");
        last_fired = fired;
        let id = inc["id"].as_str().unwrap();
        assert_eq!(
            inc["resolved_at"].as_str(),
            resolved_at.get(id).map(String::as_str),
            "{inc}"
        );
        assert!(inc["peak_vantage_points"].as_u64().unwrap() >= 2, "{inc}");
    }
    // The prefixes with the most alerts, most first, with the counts of the plain replay.
    let top: Vec<(String, u64)> = report["top_prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["watched_prefix"].as_str().unwrap().to_string(),
                p["fired"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expect_top: Vec<(String, u64)> = per_prefix.clone().into_iter().collect();
    expect_top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert!(expect_top.len() >= 3, "{expect_top:?}");
    assert_eq!(top, expect_top);

    // The hijack of the /24 by AS58678 lasted from 16:00:20 (the first second that ends with
    // two VPs showing it) to 16:00:56.
    let hijack = incidents
        .iter()
        .find(|i| i["rule"] == "subprefix_hijack" && i["prefix"] == "202.134.148.0/24")
        .expect("the subprefix hijack of 202.134.148.0/24");
    assert_eq!(hijack["asn"], 58678);
    assert_eq!(hijack["fired_at"], "2016-08-11T16:00:20.000000Z");
    assert_eq!(hijack["resolved_at"], "2016-08-11T16:00:56.000000Z");
    assert_eq!(
        rules["subprefix_hijack"]["max_duration_seconds"].as_f64(),
        Some(36.0)
    );

    // The text report: one table row per rule with the same counts, then one timeline line per
    // incident.
    let text = run_report(false);
    assert!(
        text.starts_with("Backtest report: 2016-08-11 16:00:00 to 2016-08-11 16:04:59 UTC (4m59s)"),
        "{text}"
    );
    let header = text
        .lines()
        .find(|l| l.starts_with("rule "))
        .unwrap_or_else(|| panic!("no table in:\n{text}"));
    assert!(header.contains("still firing") && header.contains("median duration"));
    for (rule, (fired, resolved)) in &expect {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(rule.as_str()))
            .unwrap_or_else(|| panic!("no row for {rule} in:\n{text}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], fired.to_string(), "{row}");
        assert_eq!(cells[2], resolved.to_string(), "{row}");
        assert_eq!(cells[3], (fired - resolved).to_string(), "{row}");
    }
    let total = text.lines().find(|l| l.starts_with("total")).unwrap();
    assert_eq!(
        total.split_whitespace().nth(1),
        Some(fired_total.to_string().as_str())
    );
    for (prefix, fired) in &per_prefix {
        let row = text
            .lines()
            .skip_while(|l| !l.starts_with("Watched prefixes with the most alerts"))
            .find(|l| l.split_whitespace().next() == Some(prefix.as_str()))
            .unwrap_or_else(|| panic!("no row for {prefix} in:\n{text}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(fired.to_string().as_str()),
            "{row}"
        );
    }
    let bars: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(bars.len() as u64, fired_total, "{text}");
    let hijack_bar = bars
        .iter()
        .find(|l| l.contains("subprefix_hijack") && l.contains("202.134.148.0/24"))
        .unwrap();
    assert!(
        hijack_bar.contains("2016-08-11 16:00:20 -> 16:00:56 (36s)"),
        "{hijack_bar}"
    );
    // 16:00:20 to 16:00:56 of a 299 s span on a 40-column bar: starts in the third column,
    // ends before the eighth; a still-firing incident runs to the end.
    let bar = &hijack_bar[1..41];
    assert!(bar.starts_with("..#") && bar.ends_with('.'), "{bar}");
    assert!(bar.matches('#').count() <= 8, "{bar}");
    if let Some(open) = bars.iter().find(|l| l.contains("still firing")) {
        assert_eq!(&open[40..42], ">|", "{open}");
    }
}

#[test]
fn report_of_a_quiet_replay_says_nothing_fired() {
    let (_dir, cfg) = write_config("prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\n");
    let out = Command::new(bin())
        .args(["replay", "--report", "--config"])
        .arg(&cfg)
        .arg(shared_data(UPDATES_2016))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("No alert fired."), "{text}");
}
