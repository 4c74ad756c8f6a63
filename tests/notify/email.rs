//! Email through a real SMTP server (aiosmtpd) on loopback.

use crate::util::Launch;
use crate::util::notify::*;
use bgpsentry::alerts::{AlertTransition, TransitionKind};

fn email_channel(port: u16, extra: &str) -> String {
    format!(
        "    - name: mail\n      kind: email\n      smtp_host: 127.0.0.1\n      smtp_port: {port}\n      smtp_tls: none\n      from: \"bgpsentry <bgpsentry@example.net>\"\n      to: [noc@example.net, \"On Call <oncall@example.net>\"]\n{extra}"
    )
}

/// The real hijack through `bgpsentry run`, with SMTP login: one message with the firing
/// and the resolution, every field of the alert in the body, proper headers.
#[tokio::test(flavor = "multi_thread")]
async fn hijack_email_has_headers_and_alert_fields() {
    let mut smtp = Smtp::start(false, Some("noc-user:pa55-w0rd"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp.pass"), "pa55-w0rd\n").unwrap();
    let notify = format!(
        "  group_window_seconds: 1\n  channels:\n{}",
        email_channel(
            smtp.port,
            "      username: noc-user\n      password_file: smtp.pass\n      html_body: \"<p>{{ count }} alerts{% for e in events %} <a href='{{ e.link }}'>{{ e.prefix }}</a>{% endfor %}</p>\"\n"
        )
    );
    let cfg = hijack_config(dir.path(), "e.db", &notify, true);
    let bg = Launch::config(&cfg).current_dir(dir.path()).start();
    let mails = smtp.wait_mails(1).await;
    bg.wait_metric("bgpsentry_notifications_sent_total{channel=\"mail\"}", 1.0)
        .await;
    let log = bg.kill9();
    assert!(
        !log.contains("pa55-w0rd"),
        "the password must never be logged"
    );
    assert_eq!(smtp.poll().len(), 1, "fired and resolved arrive together");
    let m = &mails[0];
    assert_eq!(m["login"], "noc-user");
    assert_eq!(m["mail_from"], "bgpsentry@example.net");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["noc@example.net", "oncall@example.net"])
    );
    let h = &m["headers"];
    assert_eq!(h["from"], "bgpsentry <bgpsentry@example.net>");
    assert!(h["to"].as_str().unwrap().contains("noc@example.net"));
    assert!(
        h["to"]
            .as_str()
            .unwrap()
            .contains("On Call <oncall@example.net>")
    );
    assert!(h["date"].as_str().is_some());
    let delivery = h["x-bgpsentry-delivery"].as_str().unwrap();
    assert_eq!(h["message-id"], format!("<{delivery}@bgpsentry>"));
    let subject = h["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        "[bgpsentry] 2 alerts (1 fired, 1 resolved): origin_hijack 202.134.148.0/24 and 1 more"
    );
    let text = m["text"].as_str().unwrap();
    for needle in [
        "FIRED  [critical] origin_hijack: 202.134.148.0/24 announced by AS58678 (expected AS18196)",
        "RESOLVED  [critical] origin_hijack",
        "Rule:             origin_hijack (critical)",
        "Prefix:           202.134.148.0/24",
        "Watched prefix:   202.134.148.0/24 (test network)",
        "Origin:           AS58678",
        "Expected origins: AS18196",
        "Vantage points:   2 (peak 2)",
        "First seen:       2016-08-11T16:00:0",
        "Resolved at:      2016-08-11T16:00:56.000000Z",
        "Groups:           noc",
        " 9498 58678",
        "Details:          https://bgpsentry.example.net/alerts/",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(text.contains(&format!("delivery {delivery}")));
    let html = m["html"].as_str().unwrap();
    // The HTML template is auto-escaped.
    assert!(
        html.starts_with(
            "<p>2 alerts <a href='https:&#x2f;&#x2f;bgpsentry.example.net&#x2f;alerts&#x2f;"
        ),
        "{html}"
    );
}

/// SMTP refuses connections for a while, then accepts: the message arrives exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_down_then_up_delivers_exactly_once() {
    let mut smtp = Smtp::start(true, None);
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 0\n  retry_initial_seconds: 0.1\n  retry_max_seconds: 0.5\n  channels:\n{}",
        email_channel(smtp.port, "")
    ));
    let t = hijack_transitions();
    n.deliver(&t[0]);
    n.wait_metric(
        "bgpsentry_notification_failures_total{channel=\"mail\"}",
        3.0,
    )
    .await;
    assert!(smtp.poll().is_empty());
    assert_eq!(
        metric(
            &n.metrics(),
            "bgpsentry_notification_queue_depth{channel=\"mail\"}"
        ),
        Some(1.0)
    );
    smtp.up();
    n.wait_metric("bgpsentry_notifications_sent_total{channel=\"mail\"}", 1.0)
        .await;
    n.notifier.take().unwrap().shutdown().await;
    let mails = smtp.wait_mails(1).await;
    assert_eq!(smtp.poll().len(), 1, "delivered exactly once");
    assert!(
        mails[0]["headers"]["subject"]
            .as_str()
            .unwrap()
            .starts_with("[bgpsentry] FIRED: [critical] origin_hijack: 202.134.148.0/24")
    );
    let m = n.metrics();
    assert_eq!(
        metric(&m, "bgpsentry_notifications_sent_total{channel=\"mail\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "bgpsentry_notifications_dead_total{channel=\"mail\"}"),
        Some(0.0)
    );
}

/// Twenty prefixes hijacked in the same second: one email that lists all of them.
#[tokio::test(flavor = "multi_thread")]
async fn twenty_prefixes_hijacked_together_make_one_email() {
    let mut smtp = Smtp::start(false, None);
    let mut n = InProcess::start(&format!(
        "store:\n  path: {{dir}}/o.db\nnotify:\n  group_window_seconds: 2\n  channels:\n{}",
        email_channel(smtp.port, "")
    ));
    let base = hijack_transitions()
        .into_iter()
        .find(|t| t.event == TransitionKind::Fired)
        .unwrap();
    let mut prefixes = Vec::new();
    for i in 0..20u32 {
        let mut a = base.alert.clone();
        let p: ipnet::IpNet = format!("198.51.{i}.0/24").parse().unwrap();
        a.prefix = p;
        a.watched_prefix = p;
        a.id = format!("{:016x}", 0xabc000 + i);
        prefixes.push(p.to_string());
        n.deliver(&AlertTransition {
            event: TransitionKind::Fired,
            alert: a,
        });
    }
    let mails = smtp.wait_mails(1).await;
    n.wait_metric("bgpsentry_notifications_sent_total{channel=\"mail\"}", 1.0)
        .await;
    n.notifier.take().unwrap().shutdown().await;
    assert_eq!(smtp.poll().len(), 1, "one email for the incident");
    let subject = mails[0]["headers"]["subject"].as_str().unwrap();
    assert!(
        subject.contains("20 alerts (20 fired, 0 resolved)"),
        "{subject}"
    );
    let text = mails[0]["text"].as_str().unwrap();
    for p in &prefixes {
        assert!(
            text.contains(&format!("Prefix:           {p}")),
            "{p} missing"
        );
    }
}

/// `smtp_tls: starttls` never falls back to plain text: against a server without
/// STARTTLS, `notify test` fails and says why.
#[tokio::test(flavor = "multi_thread")]
async fn starttls_is_required_not_optional() {
    let mut smtp = Smtp::start(false, None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = hijack_config(
        dir.path(),
        "s.db",
        &format!(
            "  channels:\n{}",
            email_channel(smtp.port, "").replace("smtp_tls: none", "smtp_tls: starttls")
        ),
        false,
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["notify", "test", "--channel", "mail", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("channel `mail`") && err.contains("SMTP 127.0.0.1"),
        "{err}"
    );
    assert!(smtp.poll().is_empty());

    // The same server in plain mode takes the sample.
    let cfg = hijack_config(
        dir.path(),
        "p.db",
        &format!("  channels:\n{}", email_channel(smtp.port, "")),
        false,
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["notify", "test", "--channel", "mail", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails = smtp.wait_mails(1).await;
    assert!(
        mails[0]["text"]
            .as_str()
            .unwrap()
            .contains("not a real incident")
    );
}

/// STARTTLS and implicit TLS against servers whose certificate comes from a private CA:
/// delivered with `smtp_ca_file`, refused without it (no silent downgrade).
#[tokio::test(flavor = "multi_thread")]
async fn starttls_and_implicit_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    for (mode, flag) in [("starttls", "--starttls"), ("tls", "--tls")] {
        let mut smtp = Smtp::start_with(false, None, &[flag, &cert, &key]);
        let channel =
            email_channel(smtp.port, "").replace("smtp_tls: none", &format!("smtp_tls: {mode}"));
        let trusted = hijack_config(
            dir.path(),
            &format!("{mode}-ca.db"),
            &format!(
                "  channels:\n{channel}      smtp_ca_file: {}\n",
                ca.display()
            ),
            false,
        );
        let untrusted = hijack_config(
            dir.path(),
            &format!("{mode}.db"),
            &format!("  channels:\n{channel}"),
            false,
        );
        let send = async |cfg: &std::path::Path| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
                .args(["notify", "test", "--channel", "mail", "--config"])
                .arg(cfg)
                .output()
                .await
                .unwrap()
        };
        let out = send(&untrusted).await;
        assert!(
            !out.status.success(),
            "{mode}: an unknown CA must be refused"
        );
        let out = send(&trusted).await;
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mails = smtp.wait_mails(1).await;
        assert_eq!(mails.len(), 1, "{mode}");
        assert!(
            mails[0]["text"]
                .as_str()
                .unwrap()
                .contains("not a real incident")
        );
    }
}

/// Secrets from the environment and from files: the SMTP password from `password_env`,
/// a chat URL from `url_file`; a missing variable is named in the error, and no secret
/// appears in any output.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_come_from_env_and_files_and_are_never_printed() {
    let mut smtp = Smtp::start(false, Some("noc-user:env-pa55"));
    let rx = Receiver::start(vec![Answer::Status(404)]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("chat.url"),
        format!("{}/T0/B0/url-s3cret\n", rx.url()),
    )
    .unwrap();
    let cfg = hijack_config(
        dir.path(),
        "sec.db",
        &format!(
            "  channels:\n{}    - name: chat\n      kind: slack\n      url_file: chat.url\n",
            email_channel(
                smtp.port,
                "      username: noc-user\n      password_env: BGPSENTRY_TEST_SMTP_PASSWORD\n"
            )
        ),
        false,
    );
    let run = async |channel: &str, env: Option<&str>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bgpsentry"));
        cmd.args(["notify", "test", "--channel", channel, "--config"])
            .arg(&cfg)
            .current_dir(dir.path())
            .env_remove("BGPSENTRY_TEST_SMTP_PASSWORD");
        if let Some(v) = env {
            cmd.env("BGPSENTRY_TEST_SMTP_PASSWORD", v);
        }
        let out = cmd.output().await.unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run("mail", None).await;
    assert!(!ok);
    assert!(
        text.contains("environment variable BGPSENTRY_TEST_SMTP_PASSWORD, which is not set"),
        "{text}"
    );
    let (ok, text) = run("mail", Some("wrong-pa55")).await;
    assert!(!ok, "a wrong password is refused");
    assert!(!text.contains("wrong-pa55"), "{text}");
    let (ok, text) = run("mail", Some("env-pa55")).await;
    assert!(ok, "{text}");
    assert!(!text.contains("env-pa55"));
    let mails = smtp.wait_mails(1).await;
    assert_eq!(mails[0]["login"], "noc-user");

    // The chat URL's key stays out of the error of a failed post.
    let (ok, text) = run("chat", None).await;
    assert!(!ok);
    assert!(text.contains("HTTP 404"), "{text}");
    assert!(!text.contains("url-s3cret"), "{text}");
    assert_eq!(rx.got().len(), 1);
    assert_eq!(rx.got()[0].path, "/hook/T0/B0/url-s3cret");
}
