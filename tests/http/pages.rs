//! Operator triage on the real service, fed the MRT fixture with a known hijack (AS58678 takes
//! 202.134.148.0/24 from AS18196 at 16:00:06 and lets go at 16:00:56): one log line per alert
//! transition, in text and with `--log-json`, and the alert page a notification links to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::util::browser::run_chromium;
use crate::util::{Launch, Service, fixture, poll_until};

const HIJACKED: &str = "202.134.148.0/24";

/// The watched /24 as AS18196's, with a description that is markup, fed the fixture.
fn config(dir: &Path) -> PathBuf {
    let mrt = fixture("hijack-202.134.148.0_24.20160811.1600.mrt.gz");
    let yaml = format!(
        "prefixes:\n  - prefix: {HIJACKED}\n    description: \"<script>alert('ops')</script> & co\"\n    origins: [18196]\nfeeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
        mrt.display()
    );
    let path = dir.join("bgpsentry.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Stops the service and returns every line it logged.
fn stop(mut svc: Service) -> Vec<String> {
    svc.proc.terminate();
    svc.proc.lines()
}

/// GET on loopback with an optional Accept header: (status, content type, body).
fn get(addr: &str, path: &str, accept: Option<&str>) -> Option<(u16, String, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = agent.get(&format!("http://{addr}{path}"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let mut resp = req.call().ok()?;
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let status = resp.status().as_u16();
    Some((status, ctype, resp.body_mut().read_to_string().ok()?))
}

/// Every alert in the book, firing and resolved.
fn all_alerts(addr: &str) -> Vec<Value> {
    let (status, _, body) = get(addr, "/alerts?state=all", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["alerts"].as_array().unwrap().clone()
}

/// Waits until the hijack has fired and resolved in the book, and returns its id.
fn resolved_hijack(addr: &str) -> String {
    poll_until("the origin hijack to fire and resolve", 60, || {
        all_alerts(addr)
            .into_iter()
            .find(|a| {
                a["rule"] == "origin_hijack" && a["prefix"] == HIJACKED && a["state"] == "resolved"
            })
            .and_then(|a| a["id"].as_str().map(str::to_string))
    })
}

/// (fired, resolved) transitions the book holds: every alert fired once, resolved ones once more.
fn transitions(alerts: &[Value]) -> (usize, usize) {
    let resolved = alerts.iter().filter(|a| a["state"] == "resolved").count();
    (alerts.len(), resolved)
}

#[test]
fn every_alert_transition_is_logged_once_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(&config(dir.path()));
    let id = resolved_hijack(&svc.addr);
    let count = |lines: &[String], what: &str| lines.iter().filter(|l| l.contains(what)).count();
    // The line is written just after the book changes: wait for it, then compare the whole log.
    let alerts = all_alerts(&svc.addr);
    let (fired, resolved) = transitions(&alerts);
    poll_until("a log line per transition", 30, || {
        let lines = svc.proc.lines();
        (count(&lines, "alert fired: ") == fired && count(&lines, "alert resolved: ") == resolved)
            .then_some(())
    });
    let lines = stop(svc);
    assert_eq!(count(&lines, "alert fired: "), fired, "{lines:#?}");
    assert_eq!(count(&lines, "alert resolved: "), resolved, "{lines:#?}");
    let hijack: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&format!("alert fired: origin_hijack {HIJACKED}")))
        .collect();
    assert_eq!(hijack.len(), 1, "{lines:#?}");
    let line = hijack[0];
    assert!(line.contains(" WARN "), "{line}");
    assert!(line.contains(&format!("alert_id={id}")), "{line}");
    assert!(line.contains("origin AS58678"), "{line}");
    assert!(line.contains("rule=origin_hijack"), "{line}");
    // Resolving is news, not an emergency: info.
    let back: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&format!("alert resolved: origin_hijack {HIJACKED}")))
        .collect();
    assert_eq!(back.len(), 1, "{lines:#?}");
    assert!(back[0].contains(" INFO "), "{}", back[0]);
    assert!(back[0].contains(&format!("alert_id={id}")), "{}", back[0]);
}

#[test]
fn alert_log_lines_carry_their_fields_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Launch::config(&config(dir.path()))
        .arg("--log-json")
        .start();
    let id = resolved_hijack(&svc.addr);
    let fired = poll_until("the JSON line of the fired hijack", 30, || {
        svc.proc.lines().into_iter().find_map(|l| {
            let v: Value = serde_json::from_str(&l).ok()?;
            let message = v["fields"]["message"].as_str()?;
            message
                .starts_with(&format!("alert fired: origin_hijack {HIJACKED}"))
                .then_some(v)
        })
    });
    let lines = stop(svc);
    // Every line is JSON.
    for l in &lines {
        assert!(serde_json::from_str::<Value>(l).is_ok(), "not JSON: {l}");
    }
    assert_eq!(fired["level"], "WARN", "{fired}");
    let f = &fired["fields"];
    assert_eq!(f["alert_id"], id.as_str(), "{fired}");
    assert_eq!(f["rule"], "origin_hijack", "{fired}");
    assert_eq!(f["severity"], "critical", "{fired}");
    assert_eq!(f["prefix"], HIJACKED, "{fired}");
    assert_eq!(f["watched_prefix"], HIJACKED, "{fired}");
    assert_eq!(f["origin"], "AS58678", "{fired}");
    assert!(
        f["vantage_points"].as_u64().is_some_and(|n| n > 0),
        "{fired}"
    );
}

#[test]
fn alert_page_opens_in_a_browser_and_stays_json_for_curl() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(&config(dir.path()));
    let id = resolved_hijack(&svc.addr);
    let path = format!("/alerts/{id}");
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    // The JSON first (curl's default), to check the page against.
    let (_, _, body) = get(&svc.addr, &path, Some("*/*")).unwrap();
    let alert: Value = serde_json::from_str(&body).unwrap();
    // "2016-08-11T16:00:20.123456Z" is shown as "2016-08-11 16:00:20 UTC".
    let shown = |key: &str| {
        let t = alert[key].as_str().unwrap();
        format!("{} UTC", t[..19].replace('T', " "))
    };
    let (status, ctype, html) = get(&svc.addr, &path, Some(browser)).unwrap();
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/html; charset=utf-8");
    let sentence = format!(
        "202.134.148.0&#x2f;24 announced by AS58678 (expected AS18196); fired {} and resolved {}.",
        shown("fired_at"),
        shown("resolved_at")
    );
    let first_seen = format!("<dt>first seen</dt><dd>{}</dd>", shown("first_seen"));
    for needle in [
        // One sentence: what and when.
        sentence.as_str(),
        first_seen.as_str(),
        "<dt>expected origins</dt><dd>AS18196</dd>",
        "<dt>RPKI</dt><dd>no RPKI data</dd>",
        "https:&#x2f;&#x2f;stat.ripe.net&#x2f;202.134.148.0&#x2f;24",
        "https:&#x2f;&#x2f;bgp.tools&#x2f;as&#x2f;58678",
        "https:&#x2f;&#x2f;www.peeringdb.com&#x2f;asn&#x2f;18196",
        // The config's markup comes out as text.
        "&lt;script&gt;alert(&#x27;ops&#x27;)&lt;&#x2f;script&gt; &amp; co",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    assert!(!html.contains("<script"), "{html}");
    // Every sampled VP is listed, with its path ending in the hijacker.
    let sample = alert["sample"].as_array().unwrap();
    assert!(!sample.is_empty(), "{alert}");
    let rows = html.matches("<tr><td>").count();
    assert_eq!(rows, sample.len(), "{html}");
    for s in sample {
        let path = s["as_path"].as_str().unwrap();
        assert!(path.ends_with("58678"), "{s}");
        assert!(
            html.contains(&format!("<code>{path}</code>")),
            "{path}: {html}"
        );
    }
    // curl's default and no Accept at all: the JSON as before.
    for accept in [Some("*/*"), None] {
        let (status, ctype, body) = get(&svc.addr, &path, accept).unwrap();
        assert_eq!(
            (status, ctype.as_str()),
            (200, "application/json"),
            "{body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], id.as_str());
    }

    // A real browser's own Accept gets the page (not JSON in a <pre>), and nothing runs on it.
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}{path}", svc.addr);
    let dom = run_chromium(profile.path(), &["--dump-dom", &url]);
    assert!(dom.contains("<section id=\"vantage-points\">"), "{dom}");
    assert!(
        dom.contains("announced by AS58678 (expected AS18196); fired"),
        "{dom}"
    );
    assert!(!dom.contains("<script"), "{dom}");
    // A screenshot for people to review.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/alert.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    run_chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1100",
            &url,
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    eprintln!("screenshot: {}", shot.display());
}
