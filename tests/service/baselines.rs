//! Baselines on a running service: listed over HTTP and by `bgpsentry baseline`, accepted
//! without editing the config (the alert it explains resolves), kept across a restart, and
//! bad requests refused.

use std::process::Command;
use std::time::Duration;

use crate::util::{Launch, bin, http_agent, http_get, poll_until, shared_data, write_config};
use serde_json::{Value, json};

const TOKEN: &str = "baseline-test-token-0123456789abcdef";

fn get(addr: &str, path: &str) -> (u16, Value) {
    let mut resp = http_agent()
        .get(&format!("http://{addr}{path}"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(addr: &str, path: &str, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http_agent()
        .post(&format!("http://{addr}{path}"))
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn firing_hijacks(addr: &str) -> Vec<Value> {
    let (_, v) = get(addr, "/alerts?rule=origin_hijack");
    v["alerts"].as_array().cloned().unwrap_or_default()
}

/// Route events for watched prefixes the engine has processed (the metric is open).
fn matched(addr: &str) -> f64 {
    let (_, _, text) = http_get(addr, "/metrics").unwrap();
    text.lines()
        .filter(|l| l.starts_with("bgpsentry_route_events_matched_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn cli(addr: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("baseline")
        .args(args)
        .env("BGPSENTRY_URL", format!("http://{addr}"))
        .env("BGPSENTRY_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[test]
fn an_accepted_origin_resolves_its_alert_and_survives_a_restart() {
    let file = shared_data("mrt/ris-updates.20160811.1600.gz");
    // The RIS beacon's real origin is AS12654; the config names another, so the real routes
    // raise origin_hijack until the operator accepts AS12654.
    let (dir, cfg) = write_config(&format!(
        "prefixes:\n  - prefix: 84.205.64.0/24\n    origins: [64496]\n    upstreams: []\n    visibility_min_vantage_points: 0\n  - prefix: 84.205.65.0/24\n    visibility_min_vantage_points: 0\nhttp:\n  auth:\n    tokens:\n      - env: BGPSENTRY_TEST_TOKEN\nfeeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
        file.display()
    ));
    let envs = [("BGPSENTRY_TEST_TOKEN", TOKEN)];
    let svc = Launch::config(&cfg).envs(&envs).start();
    let addr = svc.addr.clone();
    poll_until("readiness", 60, || {
        (http_get(&addr, "/readyz")?.0 == 200).then_some(())
    });
    let hijack = poll_until("the origin_hijack alert", 30, || {
        firing_hijacks(&addr).into_iter().next()
    });
    // Every event of the file processed (the count stops growing once the feed is read).
    let total = poll_until("the whole file", 30, || {
        let before = matched(&addr);
        std::thread::sleep(Duration::from_millis(300));
        (before > 0.0 && matched(&addr) == before).then_some(before)
    });
    assert_eq!(hijack["origin"], 12654);

    // Listed: configured origins, learned ones of the other prefix.
    let (status, list) = get(&addr, "/baselines");
    assert_eq!(status, 200);
    let entry = |list: &Value, p: &str| -> Value {
        list["baselines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["prefix"] == p)
            .cloned()
            .unwrap()
    };
    let b = entry(&list, "84.205.64.0/24");
    assert_eq!(b["origins"], json!([64496]));
    assert_eq!(b["origins_source"], "configured");
    assert_eq!(b["upstreams_source"], "not_checked");
    assert_eq!(entry(&list, "84.205.65.0/24")["origins_source"], "learned");
    let out = cli(&addr, &["list"]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("84.205.64.0/24") && l.contains("AS64496")),
        "{table}"
    );

    // Bad input is refused with a reason; nothing changes.
    let (status, _) = post(
        &addr,
        "/baselines/84.205.64.0/24",
        r#"{"origins":[12654]}"#,
        None,
    );
    assert_eq!(status, 401);
    for (path, body, code, needle) in [
        (
            "/baselines/192.0.2.0/24",
            r#"{"origins":[12654]}"#,
            404,
            "not a watched prefix",
        ),
        (
            "/baselines/banana",
            r#"{"origins":[12654]}"#,
            400,
            "not a prefix",
        ),
        (
            "/baselines/84.205.64.0/24",
            r#"{"origins":["AS12x"]}"#,
            400,
            "not an ASN",
        ),
        (
            "/baselines/84.205.64.0/24",
            r#"{"origins":[0]}"#,
            422,
            "AS0",
        ),
        (
            "/baselines/84.205.64.0/24",
            r#"{"upstreams":[3333]}"#,
            422,
            "not checked",
        ),
        (
            "/baselines/84.205.64.0/24",
            r#"{}"#,
            422,
            "at least one ASN",
        ),
    ] {
        let (status, err) = post(&addr, path, body, Some(TOKEN));
        assert_eq!(status, code, "{path} {body}: {err}");
        assert!(err["error"].as_str().unwrap().contains(needle), "{err}");
    }
    let out = cli(&addr, &["accept", "84.205.64.0/24", "--origin", "ASX"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ASN"));
    assert_eq!(firing_hijacks(&addr).len(), 1);

    // Accepted with the CLI: the alert resolves, the baseline shows it. The answer comes only
    // once the resolution is out of `/alerts`: while the store cannot write (its write lock held
    // here), the accept is not answered.
    let db = rusqlite::Connection::open(dir.path().join("bgpsentry.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let accept = {
        let addr = addr.clone();
        std::thread::spawn(move || cli(&addr, &["accept", "84.205.64.0/24", "--origin", "AS12654"]))
    };
    poll_until("the accept in the log", 30, || {
        svc.proc
            .lines()
            .iter()
            .any(|l| l.contains("baseline accepted"))
            .then_some(())
    });
    // The store gives up waiting for the lock (its busy timeout) and counts an error before it
    // retries: whichever comes first, that or the answer, says whether the answer waited.
    let answered_first = poll_until("the answer or a blocked store write", 30, || {
        if accept.is_finished() {
            return Some(true);
        }
        let (_, _, text) = http_get(&addr, "/metrics")?;
        let errors = text
            .lines()
            .find_map(|l| l.strip_prefix("bgpsentry_store_errors_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())?;
        (errors >= 1.0).then_some(false)
    });
    assert!(
        !answered_first,
        "the accept was answered before the store wrote it: /alerts still shows {:?}",
        firing_hijacks(&addr)
    );
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    let out = accept.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 alerts resolved"));
    assert!(firing_hijacks(&addr).is_empty());
    let (_, resolved) = get(
        &addr,
        &format!("/alerts/{}", hijack["id"].as_str().unwrap()),
    );
    assert_eq!(resolved["state"], "resolved");
    let (_, list) = get(&addr, "/baselines");
    let b = entry(&list, "84.205.64.0/24");
    assert_eq!(b["origins"], json!([12654, 64496]));
    assert_eq!(b["accepted_origins"], json!([12654]));
    let logged = poll_until("the accept in the log", 10, || {
        svc.proc
            .lines()
            .into_iter()
            .find(|l| l.contains("baseline accepted"))
    });
    assert!(logged.contains("84.205.64.0/24"), "{logged}");
    assert!(!logged.contains(TOKEN));

    // Stopped and started again on the same store: the same routes replay, and raise nothing.
    let mut svc = svc;
    assert!(svc.proc.terminate().success());
    drop(svc);
    let svc = Launch::config(&cfg).envs(&envs).start();
    let addr = svc.addr.clone();
    poll_until("the file replayed after the restart", 60, || {
        (matched(&addr) >= total).then_some(())
    });
    let (_, list) = get(&addr, "/baselines");
    assert_eq!(
        entry(&list, "84.205.64.0/24")["accepted_origins"],
        json!([12654])
    );
    assert!(firing_hijacks(&addr).is_empty());
    let (_, all) = get(&addr, "/alerts?state=all&rule=origin_hijack");
    assert_eq!(all["alerts"].as_array().unwrap().len(), 1, "{all}");
    drop(dir);
}
