//! Acknowledging and silencing on a running service: in a browser on the status page, through
//! the JSON API and the CLI, across a restart, and what the notifier does with them (real
//! webhook and Alertmanager receivers on loopback).
//!
//! The hijack fixture is replayed with `origins: [64500]`, so that AS18196, the prefix's real
//! origin, raises an `origin_hijack` that stays firing (the alert acted on), while AS58678's
//! short hijack fires and resolves (a resolved alert, and a notification nobody silenced).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::util::browser::DevTools;
use crate::util::notify::{Receiver, WAIT_SECS, hijack_fixture};
use crate::util::{Launch, Service, bin, metric, poll_until_async};

const TOKEN: &str = "triage-token-5d1f0c8a";
const STAYS: u64 = 18196;
const PASSES: u64 = 58678;

/// A config for the fixture's prefix with a token, the store at `dir/s.db`, the feed if
/// `feed`, and `notify` (YAML indented under `notify:`).
fn config(dir: &Path, name: &str, feed: bool, tokens: bool, notify: &str) -> PathBuf {
    let feed = if feed {
        format!(
            "feeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
            hijack_fixture().display()
        )
    } else {
        String::new()
    };
    let auth = if tokens {
        "  auth:\n    tokens:\n      - env: BGPSENTRY_TEST_TOKEN\n"
    } else {
        ""
    };
    let text = format!(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    description: test network\n    origins: [64500]\n    visibility_min_vantage_points: 0\n    groups: [noc]\n\
         {feed}http:\n  external_url: https://bgpsentry.example.net/\n{auth}store:\n  path: {}\nnotify:\n{notify}",
        dir.join("s.db").display()
    );
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn launch(cfg: &Path) -> Launch {
    Launch::config(cfg).env("BGPSENTRY_TEST_TOKEN", TOKEN)
}

/// A request with the token (or without, when `token` is false); status and JSON body.
async fn call(
    svc: &Service,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    token: bool,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", svc.base));
    if token {
        req = req.bearer_auth(TOKEN);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the service answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn alerts(svc: &Service, state: &str) -> Vec<Value> {
    let (status, body) = call(
        svc,
        reqwest::Method::GET,
        &format!("/alerts?state={state}"),
        None,
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

/// Waits until the fixture has been read: AS18196's alert firing and AS58678's resolved.
/// Returns (id firing, id resolved).
async fn replayed(svc: &Service) -> (String, String) {
    poll_until_async("the fixture's alerts", WAIT_SECS, async || {
        let all = alerts(svc, "all").await;
        let find = |origin: u64, state: &str| {
            all.iter()
                .find(|a| a["origin"] == origin && a["state"] == state)
                .map(|a| a["id"].as_str().unwrap().to_string())
        };
        Some((find(STAYS, "firing")?, find(PASSES, "resolved")?))
    })
    .await
}

/// The webhook bodies about one alert.
fn about(rx: &Receiver, id: &str) -> Vec<Value> {
    rx.got()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|b| b["alert"]["id"] == id)
        .collect()
}

/// Runs the CLI against the service; (success, stdout, stderr).
fn cli(svc: &Service, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("BGPSENTRY_URL", &svc.base)
        .env("BGPSENTRY_TOKEN", TOKEN)
        .env("USER", "cli-user")
        .env_remove("BGPSENTRY_OPERATOR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// In a real browser, on the status page with the page's own Basic credentials and no script:
/// an operator acknowledges the alert that stays firing and adds a silence for its origin. The
/// webhook (reminders every second) gets no reminder for it after that; Alertmanager, which has
/// its own silences, keeps getting it, with the acknowledgement; `/alerts`, `/silences` and the
/// metrics show both.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledge_and_silence_on_the_status_page_in_a_browser() {
    let hook = Receiver::start(vec![]).await;
    let am = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "browser",
        true,
        true,
        &format!(
            "  group_window_seconds: 0\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n      renotify_seconds: 1\n    - name: am\n      kind: alertmanager\n      url: http://{}/\n      repush_seconds: 1\n      hold_resolved_seconds: 0\n",
            hook.url(),
            am.addr
        ),
    );
    let svc = launch(&cfg).start_async().await;
    let (stays, _) = replayed(&svc).await;
    // Reminders work before anything is done: the alert is told again.
    poll_until_async("a reminder of the alert", WAIT_SECS, async || {
        about(&hook, &stays)
            .iter()
            .any(|b| b["event"] == "reminder")
            .then_some(())
    })
    .await;

    let mut browser = DevTools::launch().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{TOKEN}"));
    browser.authorize(&format!("Basic {basic}")).await;
    let page = format!("{}/?triage=1", svc.base);
    browser.open(&page).await;
    // The forms start with the Basic user name; the comment is typed.
    let form = format!("document.querySelector('form.ack[action=\"/ui/alerts/{stays}/ack\"]')");
    assert_eq!(
        browser
            .eval(&format!("{form}.querySelector('[name=by]').value"))
            .await,
        "alice"
    );
    browser
        .eval(&format!(
            "{form}.querySelector('[name=comment]').value = 'calling AS18196'; {form}.querySelector('button').click(); true"
        ))
        .await;
    browser
        .wait_until(
            "the page after the acknowledgement",
            &format!(
                "location.href === '{page}' && document.readyState === 'complete' && document.body.innerText.includes('acknowledged by alice') && document.querySelector('form.unack[action=\"/ui/alerts/{stays}/unack\"]') !== null"
            ),
        )
        .await;
    let silence = "document.querySelector('form.add-silence')";
    browser
        .eval(&format!(
            "{silence}.querySelector('[name=origin]').value = 'AS18196'; \
             {silence}.querySelector('[name=duration]').value = '1h'; \
             {silence}.querySelector('[name=comment]').value = 'planned renumbering'; \
             {silence}.querySelector('button').click(); true"
        ))
        .await;
    browser
        .wait_until(
            "the page after the silence",
            "document.readyState === 'complete' && document.querySelector('form.remove-silence') !== null && document.body.innerText.includes('origin=AS18196')",
        )
        .await;
    // A screenshot of the triage view for people to review.
    let shot = crate::util::root().join("target/screenshots/triage.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    browser
        .call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
    let png = browser
        .call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        )
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    std::fs::write(&shot, png).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // `/alerts` shows both, and so does `/silences`.
    let firing = alerts(&svc, "firing").await;
    let a = firing.iter().find(|a| a["id"] == stays.as_str()).unwrap();
    assert_eq!(a["acknowledged"]["by"], "alice", "{a}");
    assert_eq!(a["acknowledged"]["comment"], "calling AS18196", "{a}");
    let (_, silences) = call(&svc, reqwest::Method::GET, "/silences", None, true).await;
    let listed = silences["silences"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{silences}");
    assert_eq!(listed[0]["matchers"], json!({ "origin": STAYS }));
    assert_eq!(listed[0]["created_by"], "alice");
    assert_eq!(listed[0]["matching_firing_alerts"], 1);
    assert_eq!(a["silenced_by"], json!([listed[0]["id"]]), "{a}");

    // Alertmanager keeps getting it, with who acknowledged it: three more pushes after the
    // acknowledgement are more than a reminder interval, so a reminder would be out by then.
    let pushes = |rx: &Receiver| -> Vec<Value> {
        rx.got()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .collect()
    };
    let acked_pushes = poll_until_async(
        "three pushes with the acknowledgement",
        WAIT_SECS,
        async || {
            let with: Vec<Value> = pushes(&am)
                .into_iter()
                .filter(|p| {
                    p.as_array().unwrap().iter().any(|a| {
                        a["annotations"]["alert_id"] == stays.as_str()
                            && a["annotations"]["acknowledged_by"] == "alice"
                    })
                })
                .collect();
            (with.len() >= 3).then_some(with)
        },
    )
    .await;
    assert!(!acked_pushes.is_empty());
    // The webhook: no reminder made after the acknowledgement (it would say who acknowledged).
    let told = about(&hook, &stays);
    assert!(
        told.iter().all(|b| b["acknowledged"].is_null()),
        "a notification about the acknowledged, silenced alert: {told:?}"
    );
    let m = svc.metrics().await;
    assert_eq!(
        metric(
            &m,
            "bgpsentry_alerts_firing_triage{acknowledged=\"true\",silenced=\"true\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(metric(&m, "bgpsentry_silences_active"), Some(1.0), "{m}");
    // The alert page shows both too.
    let page = reqwest::Client::new()
        .get(format!("{}/alerts/{stays}", svc.base))
        .bearer_auth(TOKEN)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("by alice at"), "{page}");
    assert!(page.contains("planned renumbering"), "{page}");

    // And both are undone on the page: the acknowledgement withdrawn, the silence removed.
    browser
        .eval("document.querySelector('form.unack button').click(); true")
        .await;
    browser
        .wait_until(
            "the page after the withdrawal",
            &format!("document.readyState === 'complete' && document.querySelector('form.ack[action=\"/ui/alerts/{stays}/ack\"]') !== null"),
        )
        .await;
    browser
        .eval("document.querySelector('form.remove-silence button').click(); true")
        .await;
    browser
        .wait_until(
            "the page after the removal",
            "document.readyState === 'complete' && document.querySelector('form.add-silence') !== null && document.querySelector('form.remove-silence') === null",
        )
        .await;
    let firing = alerts(&svc, "firing").await;
    let a = firing.iter().find(|a| a["id"] == stays.as_str()).unwrap();
    assert!(
        a["acknowledged"].is_null() && a["silenced_by"] == json!([]),
        "{a}"
    );
}

/// Bad requests are refused with the reason, and nothing changes: no token 401, unknown
/// alert 404, resolved alert 409, bad fields 400, a body that is not JSON 415, a form post from
/// elsewhere 403.
#[tokio::test(flavor = "multi_thread")]
async fn bad_triage_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "bad", true, true, "  channels: []\n");
    let svc = launch(&cfg).start_async().await;
    let (stays, passed) = replayed(&svc).await;
    use reqwest::Method;
    let ack = json!({ "by": "alice", "comment": "on it" });
    // (method, path, body, with the token, status, what the error says)
    type Case = (Method, String, Option<Value>, bool, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            format!("/alerts/{stays}/ack"),
            Some(ack.clone()),
            false,
            401,
            "token",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(json!({})),
            false,
            401,
            "token",
        ),
        (
            Method::DELETE,
            "/silences/abc".into(),
            None,
            false,
            401,
            "token",
        ),
        (
            Method::POST,
            "/alerts/0123456789abcdef/ack".into(),
            Some(ack.clone()),
            true,
            404,
            "no alert",
        ),
        (
            Method::POST,
            format!("/alerts/{passed}/ack"),
            Some(ack.clone()),
            true,
            409,
            "resolved",
        ),
        (
            Method::POST,
            format!("/alerts/{stays}/ack"),
            Some(json!({ "comment": "x" })),
            true,
            400,
            "`by` is required",
        ),
        (
            Method::POST,
            format!("/alerts/{stays}/ack"),
            Some(json!({ "by": "a", "who": "b" })),
            true,
            400,
            "unknown field",
        ),
        (
            Method::DELETE,
            format!("/alerts/{stays}/ack"),
            None,
            true,
            404,
            "not acknowledged",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(json!({ "matchers": { "rule": "hijack" }, "duration": "1h", "created_by": "a" })),
            true,
            400,
            "is not one of",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(
                json!({ "matchers": { "prefix": "202.134.148.0/33" }, "duration": "1h", "created_by": "a" }),
            ),
            true,
            400,
            "is not a prefix",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(json!({ "matchers": { "origin": "AS-1" }, "duration": "1h", "created_by": "a" })),
            true,
            400,
            "is not an ASN",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(json!({ "matchers": {}, "duration": "1h", "created_by": "a" })),
            true,
            400,
            "at least one matcher",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(
                json!({ "matchers": { "rule": "origin_hijack" }, "expires_at": "2020-01-01T00:00:00Z", "created_by": "a" }),
            ),
            true,
            400,
            "in the past",
        ),
        (
            Method::POST,
            "/silences".into(),
            Some(
                json!({ "matchers": { "rule": "origin_hijack" }, "duration": "soon", "created_by": "a" }),
            ),
            true,
            400,
            "not a duration",
        ),
        (
            Method::DELETE,
            "/silences/0123456789abcdef".into(),
            None,
            true,
            404,
            "no silence",
        ),
    ];
    for (method, path, body, token, want, says) in cases {
        let (status, answer) = call(&svc, method.clone(), &path, body, token).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(says)),
            "{method} {path}: {answer}"
        );
    }
    // A body that is not JSON.
    let resp = reqwest::Client::new()
        .post(format!("{}/alerts/{stays}/ack", svc.base))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("by=mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    // A form post that does not come from the service's own page, with valid credentials (as a
    // browser would send them from another site), and one with no sign of where it comes from.
    for headers in [
        vec![
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "https://evil.example"),
        ],
        vec![("Origin", "https://evil.example")],
        vec![],
    ] {
        let mut req = reqwest::Client::new()
            .post(format!("{}/ui/alerts/{stays}/ack", svc.base))
            .bearer_auth(TOKEN)
            .form(&[("by", "mallory"), ("comment", "")]);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{headers:?}");
    }
    // Nothing of that changed anything.
    let a = alerts(&svc, "firing").await;
    assert!(a.iter().all(|a| a["acknowledged"].is_null()), "{a:?}");
    let (_, silences) = call(
        &svc,
        reqwest::Method::GET,
        "/silences?state=all",
        None,
        true,
    )
    .await;
    assert_eq!(silences["silences"], json!([]));
}

/// Without any API token configured, acknowledging, silencing and accepting baselines are
/// refused (403, saying how to configure one): anyone who reaches the port could mute the
/// alerts otherwise. Reading stays open.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_acknowledging_and_silencing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "open", true, false, "  channels: []\n");
    let svc = launch(&cfg).start_async().await;
    let (stays, _) = replayed(&svc).await;
    let (status, body) = call(
        &svc,
        reqwest::Method::POST,
        &format!("/alerts/{stays}/ack"),
        Some(json!({ "by": "alice" })),
        false,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("http.auth.tokens"),
        "{body}"
    );
    let (status, _) = call(
        &svc,
        reqwest::Method::POST,
        "/silences",
        Some(
            json!({ "matchers": { "rule": "origin_hijack" }, "duration": "1h", "created_by": "a" }),
        ),
        false,
    )
    .await;
    assert_eq!(status, 403);
    let resp = reqwest::Client::new()
        .post(format!("{}/ui/silences", svc.base))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("rule", "origin_hijack"), ("duration", "1h"), ("by", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    // Accepting a baseline would make a hijacker's origin expected: refused alike.
    let (status, body) = call(
        &svc,
        reqwest::Method::POST,
        "/baselines/202.134.148.0/24",
        Some(json!({ "origins": [58678] })),
        false,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&svc, reqwest::Method::GET, "/silences", None, false).await;
    assert_eq!((status, body), (200, json!({ "silences": [] })));
}

/// With the CLI: `ack` and `silence add` on a running service; both survive a restart, and
/// `silence list`, `silence rm` and `ack --remove` work on the restarted one.
#[tokio::test(flavor = "multi_thread")]
async fn acks_and_silences_survive_a_restart_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "restart", true, true, "  channels: []\n");
    let svc = launch(&cfg).start_async().await;
    let (stays, _) = replayed(&svc).await;
    let (ok, out, err) = cli(&svc, &["ack", &stays, "--comment", "ticket 4711"]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("alert {stays} acknowledged by cli-user\n"));
    let (ok, out, err) = cli(
        &svc,
        &[
            "silence",
            "add",
            "--rule",
            "origin_hijack",
            "--prefix",
            "202.134.0.0/16",
            "--duration",
            "2h",
            "--comment",
            "maintenance",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("it matches 1 firing alerts now"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    // Refusals come back with the service's reason and exit 1.
    let (ok, _, err) = cli(
        &svc,
        &["silence", "add", "--rule", "nope", "--duration", "1h"],
    );
    assert!(!ok);
    assert!(
        err.contains("400") && err.contains("`nope` is not one of"),
        "{err}"
    );
    let (ok, _, err) = cli(&svc, &["ack", "0123456789abcdef"]);
    assert!(!ok);
    assert!(err.contains("404"), "{err}");

    svc.terminate(30).await;
    let svc = launch(&cfg).start_async().await;
    replayed(&svc).await;
    let firing = alerts(&svc, "firing").await;
    let a = firing.iter().find(|a| a["id"] == stays.as_str()).unwrap();
    assert_eq!(a["acknowledged"]["by"], "cli-user", "{a}");
    assert_eq!(a["acknowledged"]["comment"], "ticket 4711", "{a}");
    assert_eq!(a["silenced_by"], json!([id]), "{a}");
    let (ok, out, err) = cli(&svc, &["silence", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&id)
            && out.contains("rule=origin_hijack prefix=202.134.0.0/16")
            && out.contains("\"maintenance\""),
        "{out}"
    );
    let (ok, _, err) = cli(&svc, &["silence", "rm", &id]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&svc, &["ack", &stays, "--remove"]);
    assert!(ok, "{err}");
    let firing = alerts(&svc, "firing").await;
    let a = firing.iter().find(|a| a["id"] == stays.as_str()).unwrap();
    assert!(
        a["acknowledged"].is_null() && a["silenced_by"] == json!([]),
        "{a}"
    );
    let (ok, out, _) = cli(&svc, &["silence", "list"]);
    assert!(ok);
    assert_eq!(out, "no silences\n");
}

/// A silence in force when alerts fire: the webhook hears nothing of the alerts it matches
/// (but of the others); when it expires, the alert still firing is notified, as a reminder.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_silence_notifies_what_is_still_firing() {
    let hook = Receiver::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let notify = format!(
        "  group_window_seconds: 0\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n",
        hook.url()
    );
    // First without the feed: the silence is in place before anything fires.
    let quiet = config(dir.path(), "quiet", false, true, &notify);
    let svc = launch(&quiet).start_async().await;
    let (status, silence) = call(
        &svc,
        reqwest::Method::POST,
        "/silences",
        Some(json!({ "matchers": { "origin": STAYS }, "duration": "15s", "created_by": "ops" })),
        true,
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    svc.terminate(30).await;

    let cfg = config(dir.path(), "fed", true, true, &notify);
    let svc = launch(&cfg).start_async().await;
    let (stays, passed) = replayed(&svc).await;
    let firing = alerts(&svc, "firing").await;
    let a = firing.iter().find(|a| a["id"] == stays.as_str()).unwrap();
    assert_eq!(
        a["silenced_by"],
        json!([silence["id"]]),
        "the silence ended before the alert fired: {a}"
    );
    // The alert nobody silenced is told, fired and resolved.
    poll_until_async(
        "the unsilenced alert's notifications",
        WAIT_SECS,
        async || (about(&hook, &passed).len() >= 2).then_some(()),
    )
    .await;
    // The silenced one is told once the silence is over, as still firing.
    let told = poll_until_async("the alert after its silence", WAIT_SECS, async || {
        let told = about(&hook, &stays);
        (!told.is_empty()).then_some(told)
    })
    .await;
    assert_eq!(told[0]["event"], "reminder", "{told:?}");
    assert!(told.iter().all(|b| b["event"] != "fired"), "{told:?}");
    let (_, listed) = call(
        &svc,
        reqwest::Method::GET,
        "/silences?state=expired",
        None,
        true,
    )
    .await;
    assert_eq!(listed["silences"][0]["state"], "expired", "{listed}");
}
