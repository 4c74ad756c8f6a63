//! Parsing and checking of the `notify:` section.

use std::path::Path;

use crate::config::Config;

fn errors(yaml: &str) -> String {
    match Config::parse(yaml, Path::new("c.yml")) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_full_notify_section_parses_with_defaults() {
    let cfg = Config::parse(
        "notify:\n  channels:\n    - name: mail\n      kind: email\n      smtp_host: mx.example.net\n      from: noc@example.net\n      to: [a@example.net]\n    - name: am\n      kind: alertmanager\n      url: http://127.0.0.1:9093\n",
        Path::new("c.yml"),
    )
    .unwrap();
    assert_eq!(cfg.notify.channels.len(), 2);
    assert_eq!(cfg.notify.group_window_seconds, 3.0);
    assert!(cfg.notify.send_resolved);
    assert_eq!(cfg.notify.renotify_seconds, 0);
    assert_eq!(cfg.store.path, Path::new("bgpsentry.db"));
    assert!(cfg.notify.channel("am").is_some());
}

#[test]
fn a_key_of_another_kind_is_refused_at_its_channel_naming_the_key() {
    // The second channel, a webhook, has an email key: the parser refuses it, pointing at
    // the key (line 9, column 7) and listing the keys a webhook takes (after the first
    // channel's own errors: every error of the file is reported).
    let e = errors(
        "notify:\n  channels:\n    - name: mail\n      kind: email\n      smtp_host: mx\n    - name: hook\n      kind: webhook\n      url: http://a\n      smtp_host: mx\n",
    );
    assert!(
        e.lines()
            .any(|l| l.starts_with("c.yml:9:7: unknown field `smtp_host`, expected one of")),
        "{e}"
    );
    assert!(e.contains("secret_env"), "{e}");
    // And the other way round; a misspelt key gets a suggestion.
    let e =
        errors("notify:\n  channels:\n    - name: mail\n      kind: email\n      url: http://a\n");
    assert!(
        e.lines()
            .any(|l| l.starts_with("c.yml:5:7: unknown field `url`")),
        "{e}"
    );
    let e = errors(
        "notify:\n  channels:\n    - name: chat\n      kind: slack\n      url: http://a\n      txt: hi\n",
    );
    assert!(
        e.contains("unknown field `txt`") && e.contains("did you mean `text`?"),
        "{e}"
    );
    // In flow style the key is not on a line of its own: the channel's position stays.
    let e = errors(
        "notify:\n  channels:\n    - {name: x, kind: webhook, url: \"http://a\", smtp_host: m}\n",
    );
    assert!(e.starts_with("c.yml:3:7: unknown field `smtp_host`"), "{e}");
    for (kind, key) in [
        ("slack", "headers: {X-A: b}"),
        ("discord", "labels: {a: b}"),
        ("alertmanager", "secret_env: S"),
        ("webhook", "repush_seconds: 5"),
        ("teams", "hold_resolved_seconds: 5"),
    ] {
        let e = errors(&format!(
            "notify:\n  channels:\n    - name: x\n      kind: {kind}\n      url: http://a\n      {key}\n"
        ));
        let name = key.split(':').next().unwrap_or_default();
        assert!(
            e.starts_with(&format!("c.yml:6:7: unknown field `{name}`")),
            "{kind}: {e}"
        );
    }
}

#[test]
fn errors_are_located_and_say_what_to_do() {
    let e = errors(
        "notify:\n  channels:\n    - name: hook\n      kind: webhook\n      url: ftp://x\n    - name: hook\n      kind: email\n      to: [\"not an address\"]\n",
    );
    assert!(
        e.contains("c.yml:3:7: `url` must be an absolute http:// or https:// URL"),
        "{e}"
    );
    assert!(
        e.contains("c.yml:6:7: there is already a channel named `hook`"),
        "{e}"
    );
    assert!(e.contains("needs `smtp_host`"), "{e}");
    assert!(e.contains("needs `from`"), "{e}");
    assert!(
        e.contains("`not an address` is not an email address"),
        "{e}"
    );
    let e = errors(
        "notify:\n  channels:\n    - name: mail\n      kind: email\n      smtp_host: mx\n      from: a@b.c\n      to: [d@e.f]\n      smtp_tls: none\n      smtp_ca_file: ca.pem\n",
    );
    assert!(
        e.contains("`smtp_ca_file` does not apply with `smtp_tls: none`"),
        "{e}"
    );
}

#[test]
fn hostile_and_malformed_values_are_rejected() {
    // Unknown kind, unknown key, bad rule name, header injection, nonsense numbers.
    assert!(
        errors("notify:\n  channels:\n    - name: x\n      kind: pager\n      url: http://a\n")
            .contains("unknown variant `pager`")
    );
    assert!(errors("notify:\n  chanels: []\n").contains("chanels"));
    assert!(errors("notify:\n  channels:\n    - name: x\n      kind: webhook\n      url: http://a\n      rules: [hijack]\n").contains("hijack"));
    let e = errors(
        "notify:\n  channels:\n    - name: x\n      kind: webhook\n      url: http://a\n      headers:\n        \"X-A\": \"v\\r\\nX-Evil: 1\"\n",
    );
    assert!(e.contains("header `X-A` is not a valid"), "{e}");
    let e = errors(
        "notify:\n  group_window_seconds: -1\n  retry_initial_seconds: 0\n  max_age_seconds: 0\n",
    );
    assert!(
        e.contains("group_window_seconds")
            && e.contains("retry_initial_seconds")
            && e.contains("max_age_seconds"),
        "{e}"
    );
    let e = errors(
        "notify:\n  channels:\n    - name: x\n      kind: alertmanager\n      url: http://a\n      repush_seconds: 0\n      labels: {\"bad-name\": x}\n",
    );
    assert!(
        e.contains("repush_seconds") && e.contains("label name `bad-name`"),
        "{e}"
    );
    let e = errors("notify:\n  channels:\n    - name: x\n      kind: webhook\n");
    assert!(
        e.contains("exactly one of `url`, `url_env` or `url_file`"),
        "{e}"
    );
    let e = errors(
        "notify:\n  channels:\n    - name: x\n      kind: email\n      smtp_host: h\n      from: a@b.c\n      to: [d@e.f]\n      password_env: P\n",
    );
    assert!(e.contains("no `username`"), "{e}");
    // A huge name is just a name; a truncated document is a YAML error.
    let long = "n".repeat(10_000);
    assert!(Config::parse(&format!("notify:\n  channels:\n    - name: {long}\n      kind: webhook\n      url: http://a\n"), Path::new("c.yml")).is_ok());
    assert!(errors("notify:\n  channels:\n    - name: x\n      kind: [").contains("c.yml"));
}
