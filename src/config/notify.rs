//! Notification settings (`notify:`): channels, routing, grouping and retries.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Located;
use crate::alerts::{Rule, Severity};

/// `notify:` as a whole.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Transitions arriving within this many seconds of the first one are sent together
    /// (one email for one incident over many prefixes).
    #[serde(default = "default_group_window")]
    pub group_window_seconds: f64,
    /// A notification still undelivered this long after it was queued is given up (dead).
    #[serde(default = "default_max_age")]
    pub max_age_seconds: u64,
    /// First retry delay; doubles on each failure, with jitter.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_seconds: f64,
    /// Longest delay between retries.
    #[serde(default = "default_retry_max")]
    pub retry_max_seconds: f64,
    /// Default for every channel: send resolutions.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Default for every channel: remind about alerts still firing after this many seconds
    /// (0 = off).
    #[serde(default)]
    pub renotify_seconds: u64,
    /// The channels.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

fn default_group_window() -> f64 {
    3.0
}
fn default_max_age() -> u64 {
    86_400
}
fn default_retry_initial() -> f64 {
    1.0
}
fn default_retry_max() -> f64 {
    300.0
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> f64 {
    10.0
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            group_window_seconds: default_group_window(),
            max_age_seconds: default_max_age(),
            retry_initial_seconds: default_retry_initial(),
            retry_max_seconds: default_retry_max(),
            send_resolved: true,
            renotify_seconds: 0,
            channels: Vec::new(),
        }
    }
}

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// SMTP email.
    Email,
    /// Generic signed JSON webhook.
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Mattermost incoming webhook (Slack format).
    Mattermost,
    /// Discord webhook.
    Discord,
    /// Microsoft Teams workflow webhook (Adaptive Card).
    Teams,
    /// Prometheus Alertmanager API v2.
    Alertmanager,
}

impl ChannelKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Mattermost => "mattermost",
            ChannelKind::Discord => "discord",
            ChannelKind::Teams => "teams",
            ChannelKind::Alertmanager => "alertmanager",
        }
    }

    fn is_chat(self) -> bool {
        matches!(
            self,
            ChannelKind::Slack
                | ChannelKind::Mattermost
                | ChannelKind::Discord
                | ChannelKind::Teams
        )
    }
}

/// How to secure the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (only for a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS (required, never skipped).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// One `notify.channels` entry. Kind-specific keys are checked by [`ChannelConfig::validate`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Unique name (metrics label, `notify test --channel`).
    pub name: Spanned<String>,
    /// Which kind of channel.
    pub kind: Spanned<ChannelKind>,
    /// Only alerts of watched prefixes in one of these groups (empty = all).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Only these rules (empty = all).
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Only these severities (empty = all).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Send resolutions (default: `notify.send_resolved`).
    #[serde(default)]
    pub send_resolved: Option<bool>,
    /// Re-notify interval for alerts still firing (default: `notify.renotify_seconds`).
    #[serde(default)]
    pub renotify_seconds: Option<u64>,

    /// Target URL (webhook, chat kinds; Alertmanager base URL).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Environment variable holding the URL (for chat webhooks, whose URL is a secret).
    #[serde(default)]
    pub url_env: Option<Spanned<String>>,
    /// File holding the URL.
    #[serde(default)]
    pub url_file: Option<Spanned<PathBuf>>,
    /// Extra HTTP headers (webhook, alertmanager).
    #[serde(default)]
    pub headers: Option<Spanned<BTreeMap<String, String>>>,
    /// Environment variable holding the webhook signing secret.
    #[serde(default)]
    pub secret_env: Option<Spanned<String>>,
    /// File holding the webhook signing secret.
    #[serde(default)]
    pub secret_file: Option<Spanned<PathBuf>>,
    /// Seconds before one delivery attempt is abandoned.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,

    /// SMTP server host name (email).
    #[serde(default)]
    pub smtp_host: Option<Spanned<String>>,
    /// SMTP port (default by `smtp_tls`: 25, 587 or 465).
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub smtp_tls: Option<Spanned<SmtpTls>>,
    /// PEM file of CA certificates to trust for the SMTP server, besides the public roots
    /// (a relay with a private CA).
    #[serde(default)]
    pub smtp_ca_file: Option<Spanned<PathBuf>>,
    /// SMTP user name; enables authentication.
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    /// Environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// File holding the SMTP password.
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    /// Sender address, e.g. `bgpsentry <noc@example.net>`.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Recipient addresses.
    #[serde(default)]
    pub to: Vec<Spanned<String>>,
    /// Subject template (email).
    #[serde(default)]
    pub subject: Option<Spanned<String>>,
    /// Text body template (email).
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    /// HTML body template (email, optional).
    #[serde(default)]
    pub html_body: Option<Spanned<String>>,
    /// Message template (chat kinds).
    #[serde(default)]
    pub text: Option<Spanned<String>>,

    /// Seconds between re-pushes of firing alerts (alertmanager); keep it well under
    /// Alertmanager's `resolve_timeout` (default 5 minutes).
    #[serde(default)]
    pub repush_seconds: Option<Spanned<f64>>,
    /// Keep an alert firing in Alertmanager at least this long after its first push, so that
    /// incidents shorter than Alertmanager's `group_wait` are still notified.
    #[serde(default)]
    pub hold_resolved_seconds: Option<f64>,
    /// Extra static labels on every alert (alertmanager); identical on both members of an HA
    /// pair, or Alertmanager sees two alerts.
    #[serde(default)]
    pub labels: Option<Spanned<BTreeMap<String, String>>>,
}

/// Default re-push interval for Alertmanager: a fifth of its default `resolve_timeout`.
pub const DEFAULT_REPUSH_SECONDS: f64 = 60.0;
/// Default hold before pushing a resolution: just over Alertmanager's default `group_wait`.
pub const DEFAULT_HOLD_RESOLVED_SECONDS: f64 = 35.0;

impl ChannelConfig {
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind.value
    }

    fn validate(&self, errors: &mut Vec<Located>) {
        let kind = self.kind.value;
        let here = &self.kind.referenced;
        let mut not_for = |present: bool, key: &str, loc: &serde_saphyr::Location| {
            if present {
                errors.push(Located::at(
                    loc,
                    format!(
                        "`{key}` does not apply to a `{}` channel; remove it",
                        kind.as_str()
                    ),
                ));
            }
        };
        let is_email = kind == ChannelKind::Email;
        let is_http = !is_email;
        let loc = |s: Option<&serde_saphyr::Location>| s.copied().unwrap_or(*here);
        not_for(
            is_http && self.smtp_host.is_some(),
            "smtp_host",
            &loc(self.smtp_host.as_ref().map(|s| &s.referenced)),
        );
        not_for(is_http && self.smtp_port.is_some(), "smtp_port", here);
        not_for(
            is_http && self.smtp_tls.is_some(),
            "smtp_tls",
            &loc(self.smtp_tls.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            (is_http || self.smtp_tls.as_ref().map(|t| t.value) == Some(SmtpTls::None))
                && self.smtp_ca_file.is_some(),
            "smtp_ca_file",
            &loc(self.smtp_ca_file.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            is_http && self.username.is_some(),
            "username",
            &loc(self.username.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            is_http && self.password_env.is_some(),
            "password_env",
            &loc(self.password_env.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            is_http && self.password_file.is_some(),
            "password_file",
            &loc(self.password_file.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            is_http && self.from.is_some(),
            "from",
            &loc(self.from.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            is_http && !self.to.is_empty(),
            "to",
            &loc(self.to.first().map(|s| &s.referenced)),
        );
        for (key, v) in [
            ("subject", &self.subject),
            ("body", &self.body),
            ("html_body", &self.html_body),
        ] {
            not_for(
                is_http && v.is_some(),
                key,
                &loc(v.as_ref().map(|s| &s.referenced)),
            );
        }
        not_for(
            !kind.is_chat() && self.text.is_some(),
            "text",
            &loc(self.text.as_ref().map(|s| &s.referenced)),
        );
        for (key, v) in [("url", &self.url), ("url_env", &self.url_env)] {
            not_for(
                is_email && v.is_some(),
                key,
                &loc(v.as_ref().map(|s| &s.referenced)),
            );
        }
        not_for(
            is_email && self.url_file.is_some(),
            "url_file",
            &loc(self.url_file.as_ref().map(|s| &s.referenced)),
        );
        let no_headers = !matches!(kind, ChannelKind::Webhook | ChannelKind::Alertmanager);
        not_for(
            no_headers && self.headers.is_some(),
            "headers",
            &loc(self.headers.as_ref().map(|s| &s.referenced)),
        );
        let not_webhook = kind != ChannelKind::Webhook;
        not_for(
            not_webhook && self.secret_env.is_some(),
            "secret_env",
            &loc(self.secret_env.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            not_webhook && self.secret_file.is_some(),
            "secret_file",
            &loc(self.secret_file.as_ref().map(|s| &s.referenced)),
        );
        let not_am = kind != ChannelKind::Alertmanager;
        not_for(
            not_am && self.repush_seconds.is_some(),
            "repush_seconds",
            &loc(self.repush_seconds.as_ref().map(|s| &s.referenced)),
        );
        not_for(
            not_am && self.hold_resolved_seconds.is_some(),
            "hold_resolved_seconds",
            here,
        );
        not_for(
            not_am && self.labels.is_some(),
            "labels",
            &loc(self.labels.as_ref().map(|s| &s.referenced)),
        );

        if self.name.value.trim().is_empty() {
            errors.push(Located::at(
                &self.name.referenced,
                "a channel needs a non-empty `name`",
            ));
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= 600.0) {
            errors.push(Located::at(
                here,
                "`timeout_seconds` must be more than 0 and at most 600",
            ));
        }
        if is_email {
            if self.smtp_host.is_none() {
                errors.push(Located::at(
                    here,
                    "an `email` channel needs `smtp_host`, the SMTP server to send through",
                ));
            }
            match &self.from {
                None => errors.push(Located::at(
                    here,
                    "an `email` channel needs `from`, the sender address",
                )),
                Some(f) => check_mailbox(f, errors),
            }
            if self.to.is_empty() {
                errors.push(Located::at(
                    here,
                    "an `email` channel needs `to`, a list of recipient addresses",
                ));
            }
            for t in &self.to {
                check_mailbox(t, errors);
            }
            if self.password_env.is_some() && self.password_file.is_some() {
                errors.push(Located::at(
                    here,
                    "set only one of `password_env` and `password_file`",
                ));
            }
            if self.username.is_none()
                && (self.password_env.is_some() || self.password_file.is_some())
            {
                errors.push(Located::at(
                    here,
                    "a password is set but no `username`; add the SMTP user name",
                ));
            }
        } else {
            let sources = usize::from(self.url.is_some())
                + usize::from(self.url_env.is_some())
                + usize::from(self.url_file.is_some());
            if sources != 1 {
                errors.push(Located::at(
                    here,
                    format!(
                        "a `{}` channel needs exactly one of `url`, `url_env` or `url_file`",
                        kind.as_str()
                    ),
                ));
            }
            if let Some(url) = &self.url
                && reqwest::Url::parse(url.value.trim())
                    .map(|u| !matches!(u.scheme(), "http" | "https"))
                    .unwrap_or(true)
            {
                errors.push(Located::at(
                    &url.referenced,
                    "`url` must be an absolute http:// or https:// URL",
                ));
            }
            if self.secret_env.is_some() && self.secret_file.is_some() {
                errors.push(Located::at(
                    here,
                    "set only one of `secret_env` and `secret_file`",
                ));
            }
        }
        if let Some(r) = &self.repush_seconds
            && !(r.value >= 1.0 && r.value <= 3600.0)
        {
            errors.push(Located::at(
                &r.referenced,
                "`repush_seconds` must be between 1 and 3600 (and below Alertmanager's resolve_timeout)",
            ));
        }
        if let Some(h) = &self.headers {
            for (k, v) in &h.value {
                if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || reqwest::header::HeaderValue::from_str(v).is_err()
                {
                    errors.push(Located::at(
                        &h.referenced,
                        format!("header `{k}` is not a valid HTTP header name and value"),
                    ));
                }
            }
        }
        if let Some(l) = &self.labels {
            for k in l.value.keys() {
                let ok = k.chars().enumerate().all(|(i, c)| {
                    c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                });
                if k.is_empty() || !ok {
                    errors.push(Located::at(
                        &l.referenced,
                        format!("label name `{k}` is not valid; use letters, digits and `_`"),
                    ));
                }
            }
        }
        for t in [&self.subject, &self.body, &self.html_body, &self.text]
            .into_iter()
            .flatten()
        {
            if let Err(e) = crate::notify::template::check(&t.value) {
                errors.push(Located::at(
                    &t.referenced,
                    format!("the template does not compile: {e}"),
                ));
            }
        }
    }
}

fn check_mailbox(addr: &Spanned<String>, errors: &mut Vec<Located>) {
    if addr.value.parse::<lettre::message::Mailbox>().is_err() {
        errors.push(Located::at(
            &addr.referenced,
            format!(
                "`{}` is not an email address; write `name@example.net` or `Name <name@example.net>`",
                addr.value
            ),
        ));
    }
}

impl NotifyConfig {
    /// Checks the whole section, appending every problem to `errors`.
    pub(super) fn validate(&self, errors: &mut Vec<Located>) {
        let mut names = HashSet::new();
        for ch in &self.channels {
            ch.validate(errors);
            if !names.insert(ch.name.value.clone()) {
                errors.push(Located::at(
                    &ch.name.referenced,
                    format!(
                        "there is already a channel named `{}`; names must be unique",
                        ch.name.value
                    ),
                ));
            }
        }
        let bad = |v: f64| !(v.is_finite() && v >= 0.0);
        if bad(self.group_window_seconds) || self.group_window_seconds > 300.0 {
            errors.push(Located::nowhere(
                "notify.group_window_seconds must be between 0 and 300",
            ));
        }
        if bad(self.retry_initial_seconds)
            || self.retry_initial_seconds == 0.0
            || bad(self.retry_max_seconds)
            || self.retry_max_seconds < self.retry_initial_seconds
        {
            errors.push(Located::nowhere(
                "notify.retry_initial_seconds must be above 0 and at most notify.retry_max_seconds",
            ));
        }
        if self.max_age_seconds == 0 {
            errors.push(Located::nowhere(
                "notify.max_age_seconds must be at least 1",
            ));
        }
    }

    /// The channel of that name.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name.value == name)
    }
}

#[cfg(test)]
mod tests {
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
    fn errors_are_located_and_say_what_to_do() {
        let e = errors(
            "notify:\n  channels:\n    - name: hook\n      kind: webhook\n      url: ftp://x\n      smtp_host: mx\n    - name: hook\n      kind: email\n      to: [\"not an address\"]\n",
        );
        assert!(
            e.contains("c.yml:5:12: `url` must be an absolute http:// or https:// URL"),
            "{e}"
        );
        assert!(
            e.contains("c.yml:6:18: `smtp_host` does not apply to a `webhook` channel"),
            "{e}"
        );
        assert!(e.contains("already a channel named `hook`"), "{e}");
        assert!(e.contains("needs `smtp_host`"), "{e}");
        assert!(e.contains("needs `from`"), "{e}");
        assert!(
            e.contains("`not an address` is not an email address"),
            "{e}"
        );
    }

    #[test]
    fn hostile_and_malformed_values_are_rejected() {
        // Unknown kind, unknown key, bad rule name, header injection, bad template,
        // nonsense numbers.
        assert!(
            errors("notify:\n  channels:\n    - name: x\n      kind: pager\n      url: http://a\n")
                .contains("pager")
        );
        assert!(errors("notify:\n  chanels: []\n").contains("chanels"));
        assert!(errors("notify:\n  channels:\n    - name: x\n      kind: webhook\n      url: http://a\n      rules: [hijack]\n").contains("hijack"));
        let e = errors(
            "notify:\n  channels:\n    - name: x\n      kind: webhook\n      url: http://a\n      headers:\n        \"X-A\": \"v\\r\\nX-Evil: 1\"\n",
        );
        assert!(e.contains("header `X-A` is not a valid"), "{e}");
        let e = errors(
            "notify:\n  channels:\n    - name: x\n      kind: slack\n      url: http://a\n      text: \"{% for %}\"\n",
        );
        assert!(e.contains("the template does not compile"), "{e}");
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
}
