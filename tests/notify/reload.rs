//! Hot reload of notification channels and API tokens: channels added, removed or changed in
//! the config file (or on SIGHUP) take over without a restart and without losing what the
//! notifier knows about firing alerts; a channel that cannot be built rejects the reload and
//! the running channels carry on.

use std::path::Path;

use crate::util::feeds::{WsServer, ris_announce};
use crate::util::notify::{Receiver, WAIT_SECS};
use crate::util::{Service, poll_until_async};
use serde_json::Value;

const HIJACKED: &str = "10.1.0.0/16";
const LATER: &str = "10.2.0.0/16";

/// Two watched prefixes (origin AS100), a RIS Live feed, and `notify` as given.
fn config(ws: &std::net::SocketAddr, notify: &str) -> String {
    let mut yaml = String::from(
        "defaults:\n  min_vantage_points: 1\n  visibility_min_vantage_points: 0\nprefixes:\n",
    );
    for p in [HIJACKED, LATER] {
        yaml.push_str(&format!(
            "  - prefix: {p}\n    origins: [100]\n    upstreams: []\n"
        ));
    }
    yaml.push_str(&format!(
        "feeds:\n  - kind: ris_live\n    url: ws://{ws}/v1/ws/\n    beacons: []\n    warm_start: false\n"
    ));
    yaml.push_str(notify);
    yaml
}

/// A `notify:` section with short windows and retries and these webhooks (name, url, extra).
fn notify(hooks: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        "notify:\n  group_window_seconds: 0.2\n  retry_initial_seconds: 0.2\n  retry_max_seconds: 1\n  channels:\n",
    );
    if hooks.is_empty() {
        s = "notify:\n  group_window_seconds: 0.2\n  channels: []\n".to_string();
    }
    for (name, url, extra) in hooks {
        s.push_str(&format!(
            "    - name: {name}\n      kind: webhook\n      url: {url}\n{extra}"
        ));
    }
    s
}

/// Connects the feed and reads the service's subscriptions.
async fn feed(ws: &mut WsServer) -> crate::util::feeds::Conn {
    let mut conn = ws.accept(30).await;
    for _ in 0..2 {
        let frame: Value = serde_json::from_str(&conn.recv().await).unwrap();
        assert_eq!(frame["type"], "ris_subscribe");
    }
    conn
}

/// Event times are seconds after this (November 2023): feeds reject times before 1990.
const T0: f64 = 1_700_000_000.0;

/// A hijack of `prefix` (origin AS666) seen by one peer.
fn hijack(conn: &crate::util::feeds::Conn, prefix: &str, ts: f64) {
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 666],
        prefix,
        T0 + ts,
    ));
}

/// The same peer goes back to the legitimate origin: the hijack ends.
fn repair(conn: &crate::util::feeds::Conn, prefix: &str, ts: f64) {
    conn.send(&ris_announce(
        "192.0.2.1",
        64501,
        &[64501, 100],
        prefix,
        T0 + ts,
    ));
}

/// (event, alert prefix, alert id) of every webhook POST so far.
fn events(rx: &Receiver) -> Vec<(String, String, String)> {
    rx.got()
        .iter()
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["event"].as_str().unwrap().to_string(),
                b["alert"]["prefix"].as_str().unwrap().to_string(),
                b["alert"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until the receiver got an `event` about `prefix`; returns the alert id.
async fn wait_event(rx: &Receiver, event: &str, prefix: &str) -> String {
    poll_until_async(&format!("{event} {prefix}"), WAIT_SECS, async || {
        events(rx)
            .into_iter()
            .find(|(e, p, _)| e == event && p == prefix)
            .map(|(_, _, id)| id)
    })
    .await
}

async fn reloads(svc: &Service, result: &str, n: f64) {
    svc.wait_metric(
        &format!("bgpsentry_config_reloads_total{{result=\"{result}\"}}"),
        n,
    )
    .await;
}

fn rewrite(svc: &Service, text: &str) {
    std::fs::write(svc.config_path(), text).unwrap();
}

/// Alert events the store still holds for the notifier.
fn unhanded(dir: &Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("bgpsentry.db")).unwrap();
    db.query_row(
        "SELECT count(*) FROM alert_events WHERE notified = 0",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_added_and_removed_by_a_reload_keep_what_is_firing() {
    let a = Receiver::start(vec![]).await;
    let b = Receiver::start(vec![]).await;
    let (a_url, b_url) = (a.url(), b.url());
    let mut ws = WsServer::start().await;
    let svc = Service::start_yaml(&config(&ws.addr, &notify(&[("a", &a_url, "")]))).await;
    let conn = feed(&mut ws).await;

    hijack(&conn, HIJACKED, 1.0);
    let first = wait_event(&a, "fired", HIJACKED).await;

    // Add `b`: it hears about the alert already firing, as still firing.
    rewrite(
        &svc,
        &config(&ws.addr, &notify(&[("a", &a_url, ""), ("b", &b_url, "")])),
    );
    reloads(&svc, "ok", 1.0).await;
    // The added channel's series exist from the reload on, at 0 until something happens.
    poll_until_async("b's metric series to appear at 0", 20, || async {
        (svc.metric("bgpsentry_notifications_dead_total{channel=\"b\"}")
            .await
            == Some(0.0))
        .then_some(())
    })
    .await;
    assert_eq!(wait_event(&b, "reminder", HIJACKED).await, first);
    svc.wait_metric("bgpsentry_notifications_sent_total{channel=\"b\"}", 1.0)
        .await;

    // The alert ends: both channels that were told about it hear so, `a` across the reload.
    repair(&conn, HIJACKED, 2.0);
    assert_eq!(wait_event(&a, "resolved", HIJACKED).await, first);
    assert_eq!(wait_event(&b, "resolved", HIJACKED).await, first);

    // Remove `a` (SIGHUP this time): a new hijack goes to `b` only, and `a`'s series go.
    std::fs::write(
        svc.config_path(),
        config(&ws.addr, &notify(&[("b", &b_url, "")])),
    )
    .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &svc.pid().to_string()])
        .status();
    reloads(&svc, "ok", 2.0).await;
    poll_until_async("a's metric series to go", 20, || async {
        svc.metric("bgpsentry_notifications_sent_total{channel=\"a\"}")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    hijack(&conn, LATER, 3.0);
    let second = wait_event(&b, "fired", LATER).await;
    assert_ne!(second, first);
    let to_a: Vec<String> = events(&a)
        .into_iter()
        .map(|(e, p, _)| format!("{e} {p}"))
        .collect();
    assert_eq!(
        to_a,
        vec![format!("fired {HIJACKED}"), format!("resolved {HIJACKED}")],
        "a removed channel is told nothing more"
    );
    let to_b: Vec<String> = events(&b)
        .into_iter()
        .map(|(e, p, _)| format!("{e} {p}"))
        .collect();
    assert_eq!(
        to_b,
        vec![
            format!("reminder {HIJACKED}"),
            format!("resolved {HIJACKED}"),
            format!("fired {LATER}")
        ]
    );
    let log = svc.log_text();
    assert!(log.contains("notification channels reloaded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_no_channels_to_some_and_back() {
    let b = Receiver::start(vec![]).await;
    let b_url = b.url();
    let mut ws = WsServer::start().await;
    let svc = Service::start_yaml(&config(&ws.addr, "")).await;
    let dir = svc.config_path().parent().unwrap().to_path_buf();
    let conn = feed(&mut ws).await;

    // Without a notifier the alert events are recorded as handled.
    hijack(&conn, HIJACKED, 1.0);
    poll_until_async("the first alert", 20, || async {
        (svc.alerts().await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(unhanded(&dir), 0);

    // The first channel starts the notifier; it hears about the alert already firing.
    rewrite(&svc, &config(&ws.addr, &notify(&[("b", &b_url, "")])));
    reloads(&svc, "ok", 1.0).await;
    wait_event(&b, "reminder", HIJACKED).await;
    hijack(&conn, LATER, 2.0);
    let later = wait_event(&b, "fired", LATER).await;
    poll_until_async("the fired event to be handed over", 20, || async {
        (unhanded(&dir) == 0).then_some(())
    })
    .await;

    // No channels again: the resolution goes nowhere and is handed over all the same.
    rewrite(&svc, &config(&ws.addr, &notify(&[])));
    reloads(&svc, "ok", 2.0).await;
    repair(&conn, LATER, 3.0);
    poll_until_async("the later alert to end", 20, || async {
        svc.alerts()
            .await
            .iter()
            .all(|a| a["id"] != later.as_str())
            .then_some(())
    })
    .await;
    poll_until_async("the resolution to be handed over", 20, || async {
        (unhanded(&dir) == 0).then_some(())
    })
    .await;
    assert_eq!(
        events(&b).len(),
        2,
        "a channel removed is told nothing: {:?}",
        events(&b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_cannot_be_built_rejects_the_reload() {
    let a = Receiver::start(vec![]).await;
    let b = Receiver::start(vec![]).await;
    let (a_url, b_url) = (a.url(), b.url());
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("hook-secret");
    std::fs::write(&secret, "very-secret-signing-key\n").unwrap();
    let signed = format!("      secret_file: {}\n", secret.display());
    let missing = secrets.path().join("missing-secret");
    let broken = format!("      secret_file: {}\n", missing.display());
    let mut ws = WsServer::start().await;
    let svc = Service::start_yaml(&config(&ws.addr, &notify(&[("a", &a_url, &signed)]))).await;
    let conn = feed(&mut ws).await;
    hijack(&conn, HIJACKED, 1.0);
    wait_event(&a, "fired", HIJACKED).await;

    // `b` cannot be built: the whole reload is refused, counted, and `a` carries on.
    rewrite(
        &svc,
        &config(
            &ws.addr,
            &notify(&[("a", &a_url, &signed), ("b", &b_url, &broken)]),
        ),
    );
    reloads(&svc, "error", 1.0).await;
    assert_eq!(
        svc.metric("bgpsentry_config_reloads_total{result=\"ok\"}")
            .await,
        Some(0.0)
    );
    let log = svc.log_text();
    assert!(
        log.contains("config reload rejected") && log.contains("missing-secret"),
        "{log}"
    );
    assert!(!log.contains("very-secret-signing-key"), "{log}");

    hijack(&conn, LATER, 2.0);
    wait_event(&a, "fired", LATER).await;
    // Signed with the secret read at start: the running channel is the old one.
    assert!(
        a.got()
            .iter()
            .all(|r| r.headers.contains_key("x-bgpsentry-signature")),
        "{:?}",
        a.got()
    );
    assert!(b.got().is_empty());
    assert!(
        svc.metric("bgpsentry_notifications_sent_total{channel=\"b\"}")
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_are_reloaded() {
    let secrets = tempfile::tempdir().unwrap();
    let (one, two) = (secrets.path().join("one"), secrets.path().join("two"));
    std::fs::write(&one, "token-one\n").unwrap();
    std::fs::write(&two, "token-two\n").unwrap();
    let ws = WsServer::start().await;
    let with = |file: &Path| {
        format!(
            "{}http:\n  auth:\n    tokens:\n      - file: {}\n",
            config(&ws.addr, ""),
            file.display()
        )
    };
    let svc = Service::start_yaml(&with(&one)).await;
    let status = |token: &'static str| {
        let url = format!("{}/alerts", svc.base);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("token-one").await, 200);
    assert_eq!(status("token-two").await, 401);

    rewrite(&svc, &with(&two));
    reloads(&svc, "ok", 1.0).await;
    assert_eq!(status("token-two").await, 200);
    assert_eq!(status("token-one").await, 401);

    // A token that cannot be read refuses the reload; the running tokens stay.
    rewrite(&svc, &with(&secrets.path().join("gone")));
    reloads(&svc, "error", 1.0).await;
    assert_eq!(status("token-two").await, 200);
}
