//! Notification settings (`notify:`): channels, routing, grouping and retries.
//!
//! Each channel kind has its own settings type, chosen by the entry's `kind:` (a tagged
//! enum), so a key that does not apply to the kind is refused by the parser, with the
//! channel's position and the keys it takes. What serde cannot say (one URL source of three,
//! valid addresses, header names, ranges) is checked by [`NotifyConfig::validate`]. Templates
//! are checked by the notifier, which compiles them.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};

use super::Located;
use super::{Rule, Severity};

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

/// Declares a channel kind's settings: the keys every channel has, then its own. Unknown
/// keys are refused, so a key of another kind is an error that names it.
macro_rules! channel_settings {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Unique name (metrics label, `notify test --channel`).
            pub name: String,
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
            /// Seconds before one delivery attempt is abandoned.
            #[serde(default = "default_timeout")]
            pub timeout_seconds: f64,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            fn common(&self) -> ChannelCommon<'_> {
                ChannelCommon {
                    name: &self.name,
                    groups: &self.groups,
                    rules: &self.rules,
                    severities: &self.severities,
                    send_resolved: self.send_resolved,
                    renotify_seconds: self.renotify_seconds,
                    timeout_seconds: self.timeout_seconds,
                }
            }
        }
    };
}

/// Where an HTTP channel's URL comes from: exactly one of the three.
#[derive(Debug, Clone, Copy)]
pub struct UrlSource<'a> {
    /// Written in the config.
    pub url: Option<&'a str>,
    /// An environment variable holding it (chat webhook URLs are secrets).
    pub url_env: Option<&'a str>,
    /// A file holding it.
    pub url_file: Option<&'a std::path::Path>,
}

/// Declares an HTTP channel kind's settings: those of [`channel_settings!`], the three keys
/// that say where its URL comes from (`url` documented by `$url_doc`), then its own; and
/// `url_source()`.
macro_rules! http_channel_settings {
    ($(#[$meta:meta])* $name:ident { url: $url_doc:literal, $($fields:tt)* }) => {
        channel_settings! {
            $(#[$meta])*
            $name {
                #[doc = $url_doc]
                #[serde(default)]
                pub url: Option<String>,
                /// Environment variable holding the URL.
                #[serde(default)]
                pub url_env: Option<String>,
                /// File holding the URL.
                #[serde(default)]
                pub url_file: Option<PathBuf>,
                $($fields)*
            }
        }

        impl $name {
            /// Where the URL comes from.
            pub fn url_source(&self) -> UrlSource<'_> {
                UrlSource {
                    url: self.url.as_deref(),
                    url_env: self.url_env.as_deref(),
                    url_file: self.url_file.as_deref(),
                }
            }
        }
    };
}

channel_settings! {
    /// An `email` channel: SMTP.
    EmailSettings {
        /// SMTP server host name.
        #[serde(default)]
        pub smtp_host: Option<String>,
        /// SMTP port (default by `smtp_tls`: 25, 587 or 465).
        #[serde(default, deserialize_with = "super::address::port")]
        pub smtp_port: Option<u16>,
        /// `none`, `starttls` (default) or `tls`.
        #[serde(default)]
        pub smtp_tls: Option<SmtpTls>,
        /// PEM file of CA certificates to trust for the SMTP server, besides the public roots
        /// (a relay with a private CA).
        #[serde(default)]
        pub smtp_ca_file: Option<PathBuf>,
        /// SMTP user name; enables authentication.
        #[serde(default)]
        pub username: Option<String>,
        /// Environment variable holding the SMTP password.
        #[serde(default)]
        pub password_env: Option<String>,
        /// File holding the SMTP password.
        #[serde(default)]
        pub password_file: Option<PathBuf>,
        /// Sender address, e.g. `bgpsentry <noc@example.net>`.
        #[serde(default)]
        pub from: Option<String>,
        /// Recipient addresses.
        #[serde(default)]
        pub to: Vec<String>,
        /// Subject template.
        #[serde(default)]
        pub subject: Option<String>,
        /// Text body template.
        #[serde(default)]
        pub body: Option<String>,
        /// HTML body template (optional).
        #[serde(default)]
        pub html_body: Option<String>,
    }
}

http_channel_settings! {
    /// A `webhook` channel: signed JSON, one event per request.
    WebhookSettings {
        url: "Target URL.",
        /// Extra HTTP headers.
        #[serde(default)]
        pub headers: BTreeMap<String, String>,
        /// Environment variable holding the signing secret.
        #[serde(default)]
        pub secret_env: Option<String>,
        /// File holding the signing secret.
        #[serde(default)]
        pub secret_file: Option<PathBuf>,
    }
}

http_channel_settings! {
    /// A chat channel (`slack`, `mattermost`, `discord`, `teams`): an incoming webhook (its
    /// URL is a secret: prefer `url_env` or `url_file`).
    ChatSettings {
        url: "Webhook URL.",
        /// Message template.
        #[serde(default)]
        pub text: Option<String>,
    }
}

http_channel_settings! {
    /// An `alertmanager` channel: Prometheus Alertmanager API v2.
    AlertmanagerSettings {
        url: "Alertmanager's base URL.",
        /// Extra HTTP headers.
        #[serde(default)]
        pub headers: BTreeMap<String, String>,
        /// Seconds between re-pushes of firing alerts; keep it well under Alertmanager's
        /// `resolve_timeout` (default 5 minutes).
        #[serde(default)]
        pub repush_seconds: Option<f64>,
        /// Keep an alert firing in Alertmanager at least this long after its first push, so
        /// that incidents shorter than Alertmanager's `group_wait` are still notified.
        #[serde(default)]
        pub hold_resolved_seconds: Option<f64>,
        /// Extra static labels on every alert; identical on both members of an HA pair, or
        /// Alertmanager sees two alerts.
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
    }
}

/// A channel's settings, by its `kind:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelSettings {
    /// SMTP email.
    Email(EmailSettings),
    /// Generic signed JSON webhook.
    Webhook(WebhookSettings),
    /// Slack incoming webhook.
    Slack(ChatSettings),
    /// Mattermost incoming webhook (Slack format).
    Mattermost(ChatSettings),
    /// Discord webhook.
    Discord(ChatSettings),
    /// Microsoft Teams workflow webhook (Adaptive Card).
    Teams(ChatSettings),
    /// Prometheus Alertmanager API v2.
    Alertmanager(AlertmanagerSettings),
}

/// What every channel has, whatever its kind.
#[derive(Debug, Clone, Copy)]
pub struct ChannelCommon<'a> {
    /// Unique name.
    pub name: &'a str,
    /// Only alerts in one of these groups (empty = all).
    pub groups: &'a [String],
    /// Only these rules (empty = all).
    pub rules: &'a [Rule],
    /// Only these severities (empty = all).
    pub severities: &'a [Severity],
    /// Send resolutions (None: the section's default).
    pub send_resolved: Option<bool>,
    /// Re-notify interval (None: the section's default).
    pub renotify_seconds: Option<u64>,
    /// Seconds before one delivery attempt is abandoned.
    pub timeout_seconds: f64,
}

/// One `notify.channels` entry: its kind's settings and where it is in the file.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The settings, by kind.
    pub settings: ChannelSettings,
    /// Where the entry starts, for errors about it.
    pub location: Location,
}

impl<'de> Deserialize<'de> for ChannelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A tagged enum is read from a buffer, which loses positions inside it; the entry's
        // own position is kept, and its errors point there.
        let s = Spanned::<ChannelSettings>::deserialize(d)?;
        Ok(ChannelConfig {
            settings: s.value,
            location: s.referenced,
        })
    }
}

/// Default re-push interval for Alertmanager: a fifth of its default `resolve_timeout`.
pub const DEFAULT_REPUSH_SECONDS: f64 = 60.0;
/// Default hold before pushing a resolution: just over Alertmanager's default `group_wait`.
pub const DEFAULT_HOLD_RESOLVED_SECONDS: f64 = 35.0;

impl ChannelConfig {
    /// What every channel has.
    pub fn common(&self) -> ChannelCommon<'_> {
        match &self.settings {
            ChannelSettings::Email(s) => s.common(),
            ChannelSettings::Webhook(s) => s.common(),
            ChannelSettings::Slack(s)
            | ChannelSettings::Mattermost(s)
            | ChannelSettings::Discord(s)
            | ChannelSettings::Teams(s) => s.common(),
            ChannelSettings::Alertmanager(s) => s.common(),
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.common().name
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        match &self.settings {
            ChannelSettings::Email(_) => ChannelKind::Email,
            ChannelSettings::Webhook(_) => ChannelKind::Webhook,
            ChannelSettings::Slack(_) => ChannelKind::Slack,
            ChannelSettings::Mattermost(_) => ChannelKind::Mattermost,
            ChannelSettings::Discord(_) => ChannelKind::Discord,
            ChannelSettings::Teams(_) => ChannelKind::Teams,
            ChannelSettings::Alertmanager(_) => ChannelKind::Alertmanager,
        }
    }

    /// Where an HTTP channel's URL comes from (None for email).
    pub fn url_source(&self) -> Option<UrlSource<'_>> {
        match &self.settings {
            ChannelSettings::Email(_) => None,
            ChannelSettings::Webhook(s) => Some(s.url_source()),
            ChannelSettings::Slack(s)
            | ChannelSettings::Mattermost(s)
            | ChannelSettings::Discord(s)
            | ChannelSettings::Teams(s) => Some(s.url_source()),
            ChannelSettings::Alertmanager(s) => Some(s.url_source()),
        }
    }

    /// The message templates the channel sets, by key.
    pub fn templates(&self) -> Vec<(&'static str, &str)> {
        match &self.settings {
            ChannelSettings::Email(s) => [
                ("subject", &s.subject),
                ("body", &s.body),
                ("html_body", &s.html_body),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect(),
            ChannelSettings::Slack(s)
            | ChannelSettings::Mattermost(s)
            | ChannelSettings::Discord(s)
            | ChannelSettings::Teams(s) => {
                s.text.as_deref().map(|t| ("text", t)).into_iter().collect()
            }
            ChannelSettings::Webhook(_) | ChannelSettings::Alertmanager(_) => Vec::new(),
        }
    }

    fn validate(&self, errors: &mut Vec<Located>) {
        let here = &self.location;
        let mut error = |message: String| errors.push(Located::at(here, message));
        let common = self.common();
        if common.name.trim().is_empty() {
            error("a channel needs a non-empty `name`".into());
        }
        if !(common.timeout_seconds > 0.0 && common.timeout_seconds <= 600.0) {
            error("`timeout_seconds` must be more than 0 and at most 600".into());
        }
        if let Some(url) = self.url_source() {
            let sources = usize::from(url.url.is_some())
                + usize::from(url.url_env.is_some())
                + usize::from(url.url_file.is_some());
            if sources != 1 {
                error(format!(
                    "a `{}` channel needs exactly one of `url`, `url_env` or `url_file`",
                    self.kind().as_str()
                ));
            }
            if let Some(u) = url.url
                && reqwest::Url::parse(u.trim())
                    .map(|u| !matches!(u.scheme(), "http" | "https"))
                    .unwrap_or(true)
            {
                error("`url` must be an absolute http:// or https:// URL".into());
            }
        }
        match &self.settings {
            ChannelSettings::Email(s) => {
                if s.smtp_host.is_none() {
                    error(
                        "an `email` channel needs `smtp_host`, the SMTP server to send through"
                            .into(),
                    );
                }
                if s.smtp_tls == Some(SmtpTls::None) && s.smtp_ca_file.is_some() {
                    error("`smtp_ca_file` does not apply with `smtp_tls: none`; remove it".into());
                }
                match &s.from {
                    None => error("an `email` channel needs `from`, the sender address".into()),
                    Some(f) => check_mailbox(f, &mut error),
                }
                if s.to.is_empty() {
                    error("an `email` channel needs `to`, a list of recipient addresses".into());
                }
                for t in &s.to {
                    check_mailbox(t, &mut error);
                }
                if s.password_env.is_some() && s.password_file.is_some() {
                    error("set only one of `password_env` and `password_file`".into());
                }
                if s.username.is_none() && (s.password_env.is_some() || s.password_file.is_some()) {
                    error("a password is set but no `username`; add the SMTP user name".into());
                }
            }
            ChannelSettings::Webhook(s) => {
                if s.secret_env.is_some() && s.secret_file.is_some() {
                    error("set only one of `secret_env` and `secret_file`".into());
                }
                check_headers(&s.headers, &mut error);
            }
            ChannelSettings::Alertmanager(s) => {
                if let Some(r) = s.repush_seconds
                    && !(1.0..=3600.0).contains(&r)
                {
                    error("`repush_seconds` must be between 1 and 3600 (and below Alertmanager's resolve_timeout)".into());
                }
                check_headers(&s.headers, &mut error);
                for k in s.labels.keys() {
                    let ok = k.chars().enumerate().all(|(i, c)| {
                        c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                    });
                    if k.is_empty() || !ok {
                        error(format!(
                            "label name `{k}` is not valid; use letters, digits and `_`"
                        ));
                    }
                }
            }
            ChannelSettings::Slack(_)
            | ChannelSettings::Mattermost(_)
            | ChannelSettings::Discord(_)
            | ChannelSettings::Teams(_) => {}
        }
    }
}

fn check_headers(headers: &BTreeMap<String, String>, error: &mut impl FnMut(String)) {
    for (k, v) in headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(v).is_err()
        {
            error(format!(
                "header `{k}` is not a valid HTTP header name and value"
            ));
        }
    }
}

fn check_mailbox(addr: &str, error: &mut impl FnMut(String)) {
    if addr.parse::<lettre::message::Mailbox>().is_err() {
        error(format!(
            "`{addr}` is not an email address; write `name@example.net` or `Name <name@example.net>`"
        ));
    }
}

impl NotifyConfig {
    /// Checks the whole section, appending every problem to `errors`.
    pub(super) fn validate(&self, errors: &mut Vec<Located>) {
        let mut names = HashSet::new();
        for ch in &self.channels {
            ch.validate(errors);
            if !names.insert(ch.name()) {
                errors.push(Located::at(
                    &ch.location,
                    format!(
                        "there is already a channel named `{}`; names must be unique",
                        ch.name()
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
        self.channels.iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
