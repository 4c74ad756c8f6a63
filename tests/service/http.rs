//! `bgpsentry run` with an MRT feed: the HTTP API and metrics on a live service.

use crate::util::{Service, http_get, poll_until, shared_data, write_config};
use serde_json::Value;

fn json(addr: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = http_get(addr, path).unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

#[test]
fn alerts_metrics_and_health_endpoints() {
    let file = shared_data("mrt/ris-updates.20160811.1600.gz");
    let (_dir, cfg) = write_config(&format!(
        "prefixes:\n  - prefix: 202.134.148.0/22\n    description: Customer block\n    origins: [18196]\n    upstreams: [4755]\n    groups: [noc]\n  - prefix: 84.205.64.0/24\n    origins: [12654]\n    upstreams: []\n    visibility_min_vantage_points: 0\nfeeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
        file.display()
    ));
    let svc = Service::start(&cfg);
    let addr = svc.addr.clone();

    let (status, _, body) = http_get(&addr, "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Ready once the MRT feed has been read; the resolved hijack then reaches the book.
    poll_until("readiness", 60, || {
        (http_get(&addr, "/readyz")?.0 == 200).then_some(())
    });
    let resolved = poll_until("the resolved hijack", 30, || {
        let (_, v) = json(&addr, "/alerts?state=resolved&rule=subprefix_hijack");
        v["alerts"].as_array()?.first().cloned()
    });
    assert_eq!(resolved["prefix"], "202.134.148.0/24");
    assert_eq!(resolved["watched_prefix"], "202.134.148.0/22");
    assert_eq!(resolved["origin"], 58678);
    assert_eq!(resolved["description"], "Customer block");
    assert_eq!(resolved["groups"], serde_json::json!(["noc"]));
    assert_eq!(resolved["first_seen"], "2016-08-11T16:00:03.000000Z");
    assert_eq!(resolved["resolved_at"], "2016-08-11T16:00:56.000000Z");
    assert_eq!(resolved["state"], "resolved");

    // The owner's more-specific is still firing; default state is firing.
    let (status, firing) = json(&addr, "/alerts");
    assert_eq!(status, 200);
    let rules: Vec<&str> = firing["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"more_specific"), "{firing}");
    assert!(!rules.contains(&"subprefix_hijack"), "{firing}");

    // One alert by id; filters; unknown ids and bad filters are clear errors.
    let id = resolved["id"].as_str().unwrap();
    let (status, one) = json(&addr, &format!("/alerts/{id}"));
    assert_eq!(status, 200);
    assert_eq!(one, resolved);
    let (status, err) = json(&addr, "/alerts/0000000000000000");
    assert_eq!(status, 404);
    assert!(err["error"].as_str().unwrap().contains("no alert"));
    let (_, all) = json(
        &addr,
        "/alerts?state=all&prefix=202.134.148.0/24&severity=critical",
    );
    assert_eq!(all["alerts"].as_array().unwrap().len(), 1, "{all}");
    let (_, none) = json(&addr, "/alerts?state=all&prefix=84.205.64.0/24");
    assert!(none["alerts"].as_array().unwrap().is_empty(), "{none}");
    for (q, needle) in [
        ("rule=bogus", "rule `bogus` is not one of"),
        ("state=maybe", "state `maybe`"),
        ("prefix=banana", "prefix `banana`"),
        ("severity=loud", "severity `loud`"),
        ("colour=red", "unknown field"),
    ] {
        let (status, err) = json(&addr, &format!("/alerts?{q}"));
        assert_eq!(status, 400, "{q}");
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{q}: {err}"
        );
    }

    // Metrics: the right content type and the counts of the file.
    let (status, ctype, text) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert_eq!(
        value("bgpsentry_route_events_total{feed=\"mrt\",type=\"announce\"}"),
        39256.0
    );
    assert_eq!(
        value("bgpsentry_route_events_total{feed=\"mrt\",type=\"withdraw\"}"),
        1956.0
    );
    assert_eq!(
        value("bgpsentry_alerts_resolved_total{rule=\"subprefix_hijack\",severity=\"critical\"}"),
        1.0
    );
    // The resolved alert's series is gone, not kept at 0.
    assert!(
        !text.contains("prefix=\"202.134.148.0/22\",rule=\"subprefix_hijack\""),
        "{text}"
    );
    assert_eq!(
        value(
            "bgpsentry_alerts_firing{prefix=\"202.134.148.0/22\",rule=\"more_specific\",severity=\"warning\"}"
        ),
        1.0
    );
    assert!(value("bgpsentry_prefix_vantage_points{prefix=\"84.205.64.0/24\"}") > 10.0);
    assert!(
        value(
            "bgpsentry_prefix_origin_vantage_points{origin_asn=\"12654\",prefix=\"84.205.64.0/24\"}"
        ) > 10.0
    );
    assert_eq!(value("bgpsentry_watched_prefixes"), 2.0);
    assert!(text.contains("# HELP bgpsentry_build_info"));

    // SIGTERM: a clean exit.
    let mut svc = svc;
    let pid = svc.pid() as i32;
    assert_eq!(send_sigterm(pid), 0);
    let status = svc.proc.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

fn send_sigterm(pid: i32) -> i32 {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .map(|s| if s.success() { 0 } else { 1 })
        .unwrap_or(1)
}
