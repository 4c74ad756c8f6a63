//! The Alertmanager channel against a real Alertmanager, whose own webhook notifications
//! land in a receiver in the test.

use crate::util::Launch;
use crate::util::notify::*;
use serde_json::{Value, json};

/// Alertmanager's notifications, as (status of the hijack alert, number of hijack alerts);
/// the test's marker notification (which lists the whole group again) is left out.
fn hijack_notifications(rx: &Receiver) -> Vec<(String, usize)> {
    rx.got()
        .iter()
        .filter(|r| !String::from_utf8_lossy(&r.body).contains("\"marker\""))
        .filter_map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let hijacks: Vec<&Value> = v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["labels"]["alertname"] == "origin_hijack")
                .collect();
            (!hijacks.is_empty()).then(|| {
                (
                    hijacks[0]["status"].as_str().unwrap().to_string(),
                    hijacks.len(),
                )
            })
        })
        .collect()
}

fn am_channel(url: &str) -> String {
    format!(
        "  group_window_seconds: 0.2\n  channels:\n    - name: am\n      kind: alertmanager\n      url: {url}\n      repush_seconds: 1\n      hold_resolved_seconds: 4\n      labels:\n        team: noc\n"
    )
}

/// The real hijack through `bgpsentry run` → Alertmanager → its webhook: firing, then
/// resolved, with the documented labels and annotations.
#[tokio::test(flavor = "multi_thread")]
async fn hijack_fires_then_resolves_through_alertmanager() {
    let rx = Receiver::start(vec![]).await;
    let am = Alertmanager::start(&rx.url());
    let dir = tempfile::tempdir().unwrap();
    let cfg = hijack_config(dir.path(), "am.db", &am_channel(&am.url), true);
    let bg = Launch::config(&cfg).current_dir(dir.path()).start();
    poll_until_async(
        "a resolved notification from Alertmanager",
        WAIT_SECS,
        async || {
            hijack_notifications(&rx)
                .iter()
                .any(|(s, _)| s == "resolved")
                .then_some(())
        },
    )
    .await;
    bg.wait_metric("bgpsentry_notifications_sent_total{channel=\"am\"}", 2.0)
        .await;
    drop(bg);
    let notes = hijack_notifications(&rx);
    assert_eq!(
        notes,
        [("firing".to_string(), 1), ("resolved".to_string(), 1)]
    );
    let got = rx.got();
    let first: Value = serde_json::from_slice(&got[0].body).unwrap();
    let a = &first["alerts"][0];
    assert_eq!(
        a["labels"],
        json!({
            "alertname": "origin_hijack",
            "severity": "critical",
            "prefix": "202.134.148.0/24",
            "watched_prefix": "202.134.148.0/24",
            "origin_asn": "58678",
            "groups": "noc",
            "team": "noc",
        })
    );
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("202.134.148.0/24 announced by AS58678 (expected AS18196)")
    );
    assert_eq!(a["annotations"]["expected_origins"], "18196");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("https://bgpsentry.example.net/alerts/")
    );
    assert!(
        a["startsAt"]
            .as_str()
            .unwrap()
            .starts_with("2016-08-11T16:00:20")
    );
    let last: Value = serde_json::from_slice(&got.last().unwrap().body).unwrap();
    let r = &last["alerts"][0];
    assert_eq!(r["status"], "resolved");
    assert!(
        r["endsAt"]
            .as_str()
            .unwrap()
            .starts_with("2016-08-11T16:00:56")
    );
}

/// Two bgpsentry instances see the same hijack and both push it: Alertmanager holds one
/// alert and notifies once for the firing and once for the resolution.
#[tokio::test(flavor = "multi_thread")]
async fn ha_pair_is_deduplicated_by_alertmanager() {
    let rx = Receiver::start(vec![]).await;
    let am = Alertmanager::start(&rx.url());
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let cfg_a = hijack_config(dir_a.path(), "a.db", &am_channel(&am.url), true);
    let cfg_b = hijack_config(dir_b.path(), "b.db", &am_channel(&am.url), true);
    let a = Launch::config(&cfg_a).current_dir(dir_a.path()).start();
    let b = Launch::config(&cfg_b).current_dir(dir_b.path()).start();
    // Both pushed the firing: Alertmanager holds exactly one alert for it.
    a.wait_metric("bgpsentry_notifications_sent_total{channel=\"am\"}", 1.0)
        .await;
    b.wait_metric("bgpsentry_notifications_sent_total{channel=\"am\"}", 1.0)
        .await;
    let alerts: Value = reqwest::get(format!("{}/api/v2/alerts", am.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hijacks: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["labels"]["alertname"] == "origin_hijack")
        .collect();
    assert_eq!(hijacks.len(), 1, "{alerts}");
    // Both pushed the resolution.
    a.wait_metric("bgpsentry_notifications_sent_total{channel=\"am\"}", 2.0)
        .await;
    b.wait_metric("bgpsentry_notifications_sent_total{channel=\"am\"}", 2.0)
        .await;
    poll_until_async("the resolved notification", WAIT_SECS, async || {
        hijack_notifications(&rx)
            .iter()
            .any(|(s, _)| s == "resolved")
            .then_some(())
    })
    .await;
    // A marker alert in the same group: once its notification is out, Alertmanager has
    // handled everything both instances pushed before it.
    let marker = json!([{
        "labels": {"alertname": "marker"},
        "startsAt": "2016-08-11T16:10:00Z",
    }]);
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&marker)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    poll_until_async("the marker notification", WAIT_SECS, async || {
        rx.got()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("\"marker\""))
            .then_some(())
    })
    .await;
    assert_eq!(
        hijack_notifications(&rx),
        [("firing".to_string(), 1), ("resolved".to_string(), 1)]
    );
}
