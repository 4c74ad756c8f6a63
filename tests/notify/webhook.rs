//! Webhook and chat channels against a real HTTP receiver on loopback.

use crate::util::Launch;
use crate::util::notify::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

/// Verifies a request the way a receiver should (the snippet in docs/src/notifications.md): HMAC-SHA256 over
/// `TIMESTAMP.BODY`, compared in constant time.
fn verify(secret: &[u8], r: &Received) -> bool {
    let ts = header(r, "x-bgpsentry-timestamp");
    let sig = header(r, "x-bgpsentry-signature");
    let Some(hex) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(tag) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    mac.verify_slice(&tag).is_ok()
}

/// The real hijack through `bgpsentry run`: the receiver fails three times, then accepts;
/// the firing is delivered once with one delivery id on all four attempts, then the
/// resolution; both signed and in the documented schema.
#[tokio::test(flavor = "multi_thread")]
async fn hijack_webhook_retried_until_accepted_with_one_delivery_id() {
    let rx = Receiver::start(vec![
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-signing-key";
    std::fs::write(dir.path().join("hook.secret"), format!("{secret}\n")).unwrap();
    let notify = format!(
        "  group_window_seconds: 0.2\n  retry_initial_seconds: 0.2\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n      secret_file: hook.secret\n      headers:\n        X-Team: noc\n",
        rx.url()
    );
    let cfg = hijack_config(dir.path(), "a.db", &notify, true);
    let bg = Launch::config(&cfg).current_dir(dir.path()).start();
    bg.wait_metric("bgpsentry_notifications_sent_total{channel=\"hook\"}", 2.0)
        .await;
    let m = bg.metrics().await;
    assert_eq!(
        metric(
            &m,
            "bgpsentry_notification_failures_total{channel=\"hook\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(&m, "bgpsentry_notification_retries_total{channel=\"hook\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(&m, "bgpsentry_notification_queue_depth{channel=\"hook\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &m,
            "bgpsentry_notification_delivery_seconds_count{channel=\"hook\"}"
        ),
        Some(2.0)
    );
    let log = bg.kill9();
    assert!(!log.contains(secret), "the secret must never be logged");

    let got = rx.got();
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got.iter().all(|r| r.path == "/hook"));
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200, 200]);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| header(r, "x-bgpsentry-delivery"))
        .collect();
    assert!(ids[..4].iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_ne!(ids[4], ids[0]);
    for r in &got {
        assert!(verify(secret.as_bytes(), r), "bad signature");
        assert!(!verify(b"another secret", r));
        assert_eq!(header(r, "x-team"), "noc");
        assert_eq!(header(r, "content-type"), "application/json");
    }
    let fired: Value = serde_json::from_slice(&got[3].body).unwrap();
    let resolved: Value = serde_json::from_slice(&got[4].body).unwrap();
    assert_eq!(fired["version"], 1);
    assert_eq!(fired["event"], "fired");
    assert_eq!(header(&got[3], "x-bgpsentry-event"), "fired");
    assert_eq!(fired["delivery_id"], ids[0]);
    let a = &fired["alert"];
    assert_eq!(a["rule"], "origin_hijack");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["prefix"], "202.134.148.0/24");
    assert_eq!(a["origin"], 58678);
    assert_eq!(a["expected_origins"], serde_json::json!([18196]));
    assert_eq!(a["fired_at"], "2016-08-11T16:00:20.000000Z");
    assert_eq!(a["groups"], serde_json::json!(["noc"]));
    assert_eq!(resolved["event"], "resolved");
    assert_eq!(resolved["delivery_id"], ids[4]);
    assert_eq!(resolved["alert"]["id"], a["id"]);
    assert_eq!(
        resolved["alert"]["resolved_at"],
        "2016-08-11T16:00:56.000000Z"
    );
    // Retries resend the same bytes: receivers can deduplicate on the id or the body.
    assert!(got[..4].iter().all(|r| r.body == got[0].body));
}

/// A receiver that never answers, then answers 500 with an endless body: both attempts
/// fail within bounds (timeout; the error body is read only in part), and the third
/// delivers with the same delivery id.
#[tokio::test(flavor = "multi_thread")]
async fn hanging_receiver_times_out_and_is_retried() {
    let rx = Receiver::start(vec![Answer::Hang, Answer::Endless]).await;
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0\n  retry_initial_seconds: 0.1\n  channels:\n    - name: slow\n      kind: webhook\n      url: {}\n      timeout_seconds: 0.5\n",
        rx.url()
    ));
    let t = hijack_transitions();
    n.deliver(&t[0]);
    n.wait_metric("bgpsentry_notifications_sent_total{channel=\"slow\"}", 1.0)
        .await;
    let got = rx.got();
    assert_eq!(got.len(), 3);
    let id = header(&got[0], "x-bgpsentry-delivery");
    assert!(got.iter().all(|r| header(r, "x-bgpsentry-delivery") == id));
    let m = n.metrics();
    assert_eq!(
        metric(
            &m,
            "bgpsentry_notification_failures_total{channel=\"slow\"}"
        ),
        Some(2.0)
    );
    n.notifier.take().unwrap().shutdown().await;
}

/// Routing: a channel limited to other groups, rules or severities gets nothing; one with
/// `send_resolved: false` gets the firing only.
#[tokio::test(flavor = "multi_thread")]
async fn routing_filters_groups_rules_severities_and_resolutions() {
    let rx_all = Receiver::start(vec![]).await;
    let rx_other = Receiver::start(vec![]).await;
    let yaml = format!(
        r#"store:
  path: {{dir}}/o.db
notify:
  group_window_seconds: 0
  channels:
    - name: firing-only
      kind: webhook
      url: {a}
      groups: [noc, other]
      rules: [origin_hijack]
      severities: [critical]
      send_resolved: false
    - name: other-group
      kind: webhook
      url: {b}
      groups: [finance]
    - name: other-rule
      kind: webhook
      url: {b}
      rules: [new_upstream]
    - name: other-severity
      kind: webhook
      url: {b}
      severities: [info]
"#,
        a = rx_all.url(),
        b = rx_other.url()
    );
    let mut n = InProcess::start(&yaml);
    for t in hijack_transitions() {
        n.deliver(&t);
    }
    n.notifier.as_ref().unwrap().flush().await;
    n.wait_metric(
        "bgpsentry_notifications_sent_total{channel=\"firing-only\"}",
        1.0,
    )
    .await;
    n.notifier.take().unwrap().shutdown().await;
    let got = rx_all.got();
    assert_eq!(got.len(), 1);
    let v: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(v["event"], "fired");
    assert!(rx_other.got().is_empty());
}

/// Slack, Mattermost, Discord and Teams payloads, one message for the group.
#[tokio::test(flavor = "multi_thread")]
async fn chat_channels_post_their_formats() {
    let rx = Receiver::start(vec![]).await;
    let url = rx.url();
    let mut n = InProcess::start(&format!(
        "http:\n  external_url: https://sentry.example.net\nstore:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0.2\n  channels:\n    - {{name: s, kind: slack, url: \"{url}/s\"}}\n    - {{name: m, kind: mattermost, url: \"{url}/m\"}}\n    - {{name: d, kind: discord, url: \"{url}/d\"}}\n    - {{name: t, kind: teams, url: \"{url}/t\"}}\n"
    ));
    for t in hijack_transitions() {
        n.deliver(&t);
    }
    let got = rx.wait_count(4).await;
    n.notifier.take().unwrap().shutdown().await;
    assert_eq!(rx.got().len(), 4);
    let mut texts = Vec::new();
    for r in &got {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let text = if let Some(t) = v["text"].as_str() {
            t.to_string()
        } else if let Some(t) = v["content"].as_str() {
            t.to_string()
        } else {
            let card = &v["attachments"][0];
            assert_eq!(
                card["contentType"],
                "application/vnd.microsoft.card.adaptive"
            );
            card["content"]["body"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        };
        texts.push(text);
    }
    for t in &texts {
        assert!(t.contains("FIRED"), "{t}");
        assert!(t.contains("RESOLVED"), "{t}");
        assert!(t.contains("202.134.148.0/24"), "{t}");
        assert!(t.contains("AS58678"), "{t}");
        assert!(t.contains("https://sentry.example.net/alerts/"), "{t}");
    }
    assert!(
        texts.iter().any(|t| t.contains("|details>")),
        "Slack link syntax"
    );
    assert!(
        texts.iter().any(|t| t.contains("[details](")),
        "Markdown link"
    );
}

/// `bgpsentry notify test` sends a sample through the channel; an unknown channel fails
/// with the list of channels.
#[tokio::test(flavor = "multi_thread")]
async fn notify_test_command_sends_a_sample() {
    let rx = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = hijack_config(
        dir.path(),
        "t.db",
        &format!(
            "  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n",
            rx.url()
        ),
        false,
    );
    let bin = env!("CARGO_BIN_EXE_bgpsentry");
    let out = tokio::process::Command::new(bin)
        .args(["notify", "test", "--channel", "hook", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = rx.got();
    assert_eq!(got.len(), 1);
    let v: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(v["event"], "fired");
    assert_eq!(v["alert"]["prefix"], "202.134.148.0/24");
    assert!(String::from_utf8_lossy(&out.stdout).contains(v["delivery_id"].as_str().unwrap()));

    let out = tokio::process::Command::new(bin)
        .args(["notify", "test", "--channel", "nope", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no channel named `nope`") && err.contains("hook"),
        "{err}"
    );

    // A receiver that refuses: the command says so and fails.
    let refused = Receiver::start(vec![Answer::Status(403)]).await;
    let cfg2 = hijack_config(
        dir.path(),
        "t2.db",
        &format!(
            "  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n",
            refused.url()
        ),
        false,
    );
    let out = tokio::process::Command::new(bin)
        .args(["notify", "test", "--channel", "hook", "--config"])
        .arg(&cfg2)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("/hook"), "the URL path is redacted: {err}");
}

/// A target that stays down: the notification is retried until `max_age_seconds`, then
/// recorded as dead and counted, and the queue is empty again.
#[tokio::test(flavor = "multi_thread")]
async fn notification_goes_dead_after_max_age() {
    let (_socket, addr) = Receiver::reserve();
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0\n  retry_initial_seconds: 0.2\n  retry_max_seconds: 0.4\n  max_age_seconds: 1\n  channels:\n    - name: down\n      kind: webhook\n      url: http://{addr}/hook\n"
    ));
    n.deliver(&hijack_transitions()[0]);
    n.wait_metric("bgpsentry_notifications_dead_total{channel=\"down\"}", 1.0)
        .await;
    let m = poll_until_async("an empty queue", WAIT_SECS, async || {
        let m = n.metrics();
        (metric(&m, "bgpsentry_notification_queue_depth{channel=\"down\"}") == Some(0.0))
            .then_some(m)
    })
    .await;
    assert_eq!(
        metric(&m, "bgpsentry_notification_queue_depth{channel=\"down\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "bgpsentry_notifications_sent_total{channel=\"down\"}"),
        Some(0.0)
    );
    assert!(
        metric(
            &m,
            "bgpsentry_notification_failures_total{channel=\"down\"}"
        )
        .unwrap()
            >= 2.0
    );
    let path = n.dir.path().join("o.db");
    n.notifier.take().unwrap().shutdown().await;
    let db = rusqlite::Connection::open(path).unwrap();
    let (state, err): (String, String) = db
        .query_row("SELECT state, last_error FROM notify_outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, "dead");
    assert!(err.contains("cannot connect"), "{err}");
}

/// `renotify_seconds`: an alert still firing is told about again, as a `reminder` with a
/// new delivery id.
#[tokio::test(flavor = "multi_thread")]
async fn firing_alert_is_renotified() {
    let rx = Receiver::start(vec![]).await;
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n      renotify_seconds: 1\n",
        rx.url()
    ));
    let fired = hijack_transitions().remove(0);
    n.deliver(&fired);
    let got = rx.wait_count(3).await;
    n.notifier.take().unwrap().shutdown().await;
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["event"], "fired");
    assert_eq!(bodies[1]["event"], "reminder");
    assert_eq!(bodies[2]["event"], "reminder");
    assert!(
        bodies
            .iter()
            .all(|b| b["alert"]["id"] == fired.alert.id.as_str())
    );
    assert_ne!(bodies[0]["delivery_id"], bodies[1]["delivery_id"]);
    assert_ne!(bodies[1]["delivery_id"], bodies[2]["delivery_id"]);
}

/// The Alertmanager channel re-pushes firing alerts (with `endsAt` in the future) and
/// pushes the resolution with the incident's end time; seen by a plain HTTP receiver in
/// Alertmanager's place.
#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_channel_repushes_firing_alerts() {
    let rx = Receiver::start(vec![]).await;
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0.5\n  channels:\n    - name: am\n      kind: alertmanager\n      url: http://{}/prefix/\n      repush_seconds: 1\n      hold_resolved_seconds: 0\n",
        rx.addr
    ));
    let mut t = hijack_transitions();
    let resolved = t.pop().unwrap();
    // A second alert that stays firing throughout.
    let mut other = t[0].clone();
    other.alert.id = "00000000000000b2".into();
    other.alert.prefix = "198.51.100.0/24".parse().unwrap();
    n.deliver(&t[0]);
    n.deliver(&other);
    let got = rx.wait_count(3).await;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for r in &got {
        assert_eq!(r.path, "/prefix/api/v2/alerts");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
        for a in v.as_array().unwrap() {
            assert_eq!(a["labels"]["alertname"], "origin_hijack");
            assert!(a["endsAt"].as_str().unwrap() > now.as_str(), "{a}");
        }
    }
    n.deliver(&resolved);
    let (at, resolution) = poll_until_async("the resolution push", WAIT_SECS, async || {
        rx.got().into_iter().enumerate().find_map(|(i, r)| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            (v[0]["endsAt"] == "2016-08-11T16:00:56.000000Z").then_some((i, v))
        })
    })
    .await;
    assert_eq!(resolution[0]["labels"]["origin_asn"], "58678");
    // Later re-pushes carry only the alert still firing.
    let got = rx.wait_count(at + 3).await;
    n.notifier.take().unwrap().shutdown().await;
    for r in &got[at + 1..] {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let prefixes: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["prefix"].as_str().unwrap())
            .collect();
        assert_eq!(prefixes, ["198.51.100.0/24"]);
    }
}

/// A steady stream of `updated` transitions (a busy feed) does not hold the timers back:
/// reminders still go out on schedule.
#[tokio::test(flavor = "multi_thread")]
async fn busy_stream_of_updates_does_not_starve_reminders() {
    use bgpsentry::alerts::AlertSink;
    use bgpsentry::alerts::{AlertTransition, TransitionKind};
    let rx = Receiver::start(vec![]).await;
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n      renotify_seconds: 1\n",
        rx.url()
    ));
    let fired = hijack_transitions().remove(0);
    n.deliver(&fired);
    let mut sink = n.notifier.as_ref().unwrap().sink();
    let update = AlertTransition {
        event: TransitionKind::Updated,
        alert: fired.alert.clone(),
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let feeder = tokio::spawn(async move {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            sink.deliver(&update);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    let got = rx.wait_count(3).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.await.unwrap();
    n.notifier.take().unwrap().shutdown().await;
    let events: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events[..3], ["\"fired\"", "\"reminder\"", "\"reminder\""]);
}
