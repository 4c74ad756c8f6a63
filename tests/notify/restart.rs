//! The outbox survives a crash: notifications that could not be delivered before are
//! delivered after a restart, with their original delivery ids.

use crate::util::Launch;
use crate::util::notify::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn undelivered_notifications_are_delivered_after_restart() {
    // The receiver's port refuses connections during the first run.
    let (socket, addr) = Receiver::reserve();
    let url = format!("http://{addr}/hook");
    let dir = tempfile::tempdir().unwrap();
    let notify = format!(
        "  group_window_seconds: 0.2\n  retry_initial_seconds: 0.2\n  retry_max_seconds: 1\n  channels:\n    - name: hook\n      kind: webhook\n      url: {url}\n"
    );
    let with_feed = hijack_config(dir.path(), "outbox.db", &notify, true);
    let first = Launch::config(&with_feed).current_dir(dir.path()).start();
    first
        .wait_metric("bgpsentry_notification_queue_depth{channel=\"hook\"}", 2.0)
        .await;
    first
        .wait_metric(
            "bgpsentry_notification_failures_total{channel=\"hook\"}",
            2.0,
        )
        .await;
    // A crash, not a clean stop.
    first.kill9();

    let db = rusqlite::Connection::open(dir.path().join("outbox.db")).unwrap();
    let queued: Vec<String> = db
        .prepare("SELECT delivery_id FROM notify_outbox WHERE state = 'pending' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(db);
    assert_eq!(queued.len(), 2);

    // The receiver comes up; the second run has no feed, so whatever arrives comes from
    // the outbox.
    let rx = Receiver::start_on(socket, vec![]);
    let without_feed = hijack_config(dir.path(), "outbox.db", &notify, false);
    let second = Launch::config(&without_feed)
        .current_dir(dir.path())
        .start();
    second
        .wait_metric("bgpsentry_notifications_sent_total{channel=\"hook\"}", 2.0)
        .await;
    let m = second.metrics().await;
    assert_eq!(
        metric(&m, "bgpsentry_notification_queue_depth{channel=\"hook\"}"),
        Some(0.0)
    );
    let log = second.kill9();
    assert!(
        log.contains("2 notifications waiting in the outbox"),
        "{log}"
    );

    let got = rx.got();
    assert_eq!(got.len(), 2);
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let ids: Vec<&str> = bodies
        .iter()
        .map(|b| b["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, queued, "same delivery ids, same order");
    assert_eq!(bodies[0]["event"], "fired");
    assert_eq!(bodies[1]["event"], "resolved");
    for b in &bodies {
        assert_eq!(b["alert"]["prefix"], "202.134.148.0/24");
        assert_eq!(b["alert"]["origin"], 58678);
    }
}
