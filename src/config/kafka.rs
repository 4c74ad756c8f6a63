//! The keys of a `kafka` feed: the brokers, what to subscribe to, the consumer group, the
//! record format, TLS and SASL, and the limits.

use std::path::PathBuf;

use serde::Deserialize;

use super::{FeedConfig, FeedKind, Located, SecretSource};

/// Largest record by default: one BMP message (at most 64 KiB of BGP, or 1 MiB for a Peer Up
/// with long TLVs) in its OpenBMP header, or one RIS Live message.
pub const DEFAULT_KAFKA_MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// Smallest `max_record_bytes`: an extended BGP message in its BMP and OpenBMP headers.
pub const MIN_KAFKA_RECORD_BYTES: u64 = 65_535 + 6 + 42 + 1024;

/// Consumer group by default.
pub const DEFAULT_KAFKA_GROUP: &str = "bgpsentry";

/// What one record of the topics holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormat {
    /// OpenBMP's binary header (v1.7) followed by one raw BMP message, as RouteViews and
    /// OpenBMP collectors publish (`*.bmp_raw` topics).
    Openbmp,
    /// One RIS Live message as JSON (`ris_message` or its `data` alone).
    RisLive,
    /// One normalised route event of a scale-out deployment's internal topic, as
    /// `bgpsentry relay` writes it (see `crate::feeds::events`).
    Events,
}

impl KafkaFormat {
    /// Every format, for metrics that exist from the start.
    pub const ALL: [KafkaFormat; 3] = [
        KafkaFormat::Openbmp,
        KafkaFormat::RisLive,
        KafkaFormat::Events,
    ];

    /// The name in the config and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaFormat::Openbmp => "openbmp",
            KafkaFormat::RisLive => "ris_live",
            KafkaFormat::Events => "events",
        }
    }
}

/// Where a consumer group without committed offsets starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaStart {
    /// At the oldest record the topic retains (a replay of everything retained).
    Earliest,
    /// At the next record published (what happens from now on).
    #[default]
    Latest,
}

impl KafkaStart {
    /// librdkafka's `auto.offset.reset` value.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaStart::Earliest => "earliest",
            KafkaStart::Latest => "latest",
        }
    }
}

/// `tls:` of a `kafka` feed: present means the connection to the brokers uses TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTlsConfig {
    /// PEM file of the CA(s) that signed the brokers' certificates; the system's roots
    /// without it.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that authenticate clients by TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// A SASL mechanism librdkafka speaks without extra system libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// The password in clear (use it only over TLS).
    #[serde(rename = "PLAIN")]
    Plain,
    /// SCRAM with SHA-256 (RFC 7677).
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `sasl:` of a `kafka` feed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslConfig {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// Where the password is (`env:` or `file:`); never in the config itself.
    pub password: SecretSource,
}

/// A validated `kafka` feed.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    /// `host:port` of the bootstrap brokers.
    pub brokers: Vec<String>,
    /// Topic names, or one librdkafka regular expression (starting with `^`).
    pub subscription: Vec<String>,
    /// Consumer group id.
    pub group: String,
    /// What a record holds.
    pub format: KafkaFormat,
    /// Where a group without committed offsets starts.
    pub start_from: KafkaStart,
    /// Largest record; a larger one is counted and skipped.
    pub max_record_bytes: usize,
    /// TLS, when set.
    pub tls: Option<KafkaTlsConfig>,
    /// SASL, when set.
    pub sasl: Option<KafkaSaslConfig>,
}

impl FeedConfig {
    fn any_kafka_key(&self) -> bool {
        self.brokers.is_some()
            || self.topics.is_some()
            || self.topic_pattern.is_some()
            || self.group.is_some()
            || self.format.is_some()
            || self.start_from.is_some()
            || self.max_record_bytes.is_some()
            || self.tls.is_some()
            || self.sasl.is_some()
    }
}

/// A broker address as librdkafka takes it: `host:port` (an IPv6 address in brackets).
pub(super) fn broker_ok(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && !host.contains(',')
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// A topic name Kafka accepts: 1 to 249 of `[A-Za-z0-9._-]`.
pub(super) fn topic_ok(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl FeedConfig {
    /// The settings of a `kafka` feed (None for other kinds). Call after validation.
    pub fn kafka_settings(&self) -> Option<KafkaSettings> {
        if self.kind.value != FeedKind::Kafka {
            return None;
        }
        let k = self;
        let subscription = match (&k.topics, &k.topic_pattern) {
            (Some(t), _) => t.value.clone(),
            // librdkafka takes a subscription starting with `^` as a regular expression.
            (None, Some(p)) if p.value.starts_with('^') => vec![p.value.clone()],
            (None, Some(p)) => vec![format!("^{}", p.value)],
            (None, None) => return None,
        };
        Some(KafkaSettings {
            brokers: k.brokers.as_ref()?.value.clone(),
            subscription,
            group: k
                .group
                .as_ref()
                .map_or(DEFAULT_KAFKA_GROUP.to_string(), |g| g.value.clone()),
            format: k.format.as_ref()?.value,
            start_from: k.start_from.as_ref().map(|s| s.value).unwrap_or_default(),
            max_record_bytes: k
                .max_record_bytes
                .as_ref()
                .map_or(DEFAULT_KAFKA_MAX_RECORD_BYTES, |m| m.value)
                as usize,
            tls: k.tls.as_ref().map(|t| t.value.clone()),
            sasl: k.sasl.as_ref().map(|s| s.value.clone()),
        })
    }

    /// The `kafka` keys: only on a `kafka` feed, and complete there.
    pub(super) fn validate_kafka(&self, errors: &mut Vec<Located>) {
        let at = &self.kind.referenced;
        let k = self;
        if self.kind.value != FeedKind::Kafka {
            if self.any_kafka_key() {
                errors.push(Located::at(
                    at,
                    format!(
                        "`brokers`, `topics`, `topic_pattern`, `group`, `format`, `start_from`, `max_record_bytes`, `tls` and `sasl` apply only to a `kafka` feed; remove them from this `{}` feed",
                        self.kind.value.as_str()
                    ),
                ));
            }
            return;
        }
        match &k.brokers {
            None => errors.push(Located::at(
                at,
                "a `kafka` feed needs `brokers:`, the `host:port` of one or more bootstrap brokers, e.g. `brokers: [kafka1.example.net:9092]`",
            )),
            Some(b) if b.value.is_empty() => errors.push(Located::at(
                &b.referenced,
                "`brokers:` is empty; list the `host:port` of one or more bootstrap brokers",
            )),
            Some(b) => {
                for s in b.value.iter().filter(|s| !broker_ok(s)) {
                    errors.push(Located::at(
                        &b.referenced,
                        format!(
                            "`{s}` in `brokers:` is not `host:port` (an IPv6 address in brackets: `[2001:db8::1]:9092`)"
                        ),
                    ));
                }
            }
        }
        match (&k.topics, &k.topic_pattern) {
            (None, None) => errors.push(Located::at(
                at,
                "a `kafka` feed needs `topics:` (a list of topic names) or `topic_pattern:` (a regular expression of topic names)",
            )),
            (Some(t), Some(_)) => errors.push(Located::at(
                &t.referenced,
                "give either `topics:` or `topic_pattern:`, not both",
            )),
            (Some(t), None) => {
                if t.value.is_empty() {
                    errors.push(Located::at(
                        &t.referenced,
                        "`topics:` is empty; list the topics to read",
                    ));
                }
                for s in t.value.iter().filter(|s| !topic_ok(s)) {
                    errors.push(Located::at(
                        &t.referenced,
                        format!(
                            "`{s}` in `topics:` is not a Kafka topic name (1 to 249 letters, digits, `.`, `_`, `-`); for a regular expression use `topic_pattern:`"
                        ),
                    ));
                }
            }
            (None, Some(p)) => {
                if let Err(e) = regex::Regex::new(&p.value) {
                    errors.push(Located::at(
                        &p.referenced,
                        format!("`topic_pattern` is not a regular expression: {e}"),
                    ));
                }
            }
        }
        if let Some(g) = &k.group
            && (g.value.trim().is_empty() || g.value.len() > 255)
        {
            errors.push(Located::at(
                &g.referenced,
                "`group` must be a consumer group id of 1 to 255 characters",
            ));
        }
        if k.format.is_none() {
            errors.push(Located::at(
                at,
                "a `kafka` feed needs `format:`, what a record holds: `openbmp` (an OpenBMP header and a raw BMP message), `ris_live` (one RIS Live message as JSON) or `events` (the internal topic of a scale-out deployment, written by `bgpsentry relay`)",
            ));
        }
        if k.format
            .as_ref()
            .is_some_and(|f| f.value == KafkaFormat::Events)
            && k.topics.as_ref().is_none_or(|t| t.value.len() != 1)
        {
            errors.push(Located::at(
                at,
                "`format: events` reads one topic, the internal topic that `bgpsentry relay` writes: give it as `topics: [NAME]` (one name, no `topic_pattern`)",
            ));
        }
        if let Some(r) = &self.ribs {
            if r.value.is_empty() {
                errors.push(Located::at(
                    &r.referenced,
                    "`ribs:` is empty: no route would reach the detectors; list at least one of adj_rib_in_pre, adj_rib_in_post, loc_rib, adj_rib_out_pre, adj_rib_out_post",
                ));
            }
            if k.format
                .as_ref()
                .is_some_and(|f| f.value != KafkaFormat::Openbmp)
            {
                errors.push(Located::at(
                    &r.referenced,
                    "`ribs:` applies only to `format: openbmp` (RIS Live records have no RIB kinds); remove it",
                ));
            }
        }
        if let Some(m) = &k.max_record_bytes
            && !(MIN_KAFKA_RECORD_BYTES..=256 * 1024 * 1024).contains(&m.value)
        {
            errors.push(Located::at(
                &m.referenced,
                format!(
                    "`max_record_bytes` must be between {MIN_KAFKA_RECORD_BYTES} (an extended BGP message in its BMP and OpenBMP headers) and 268435456; got {}",
                    m.value
                ),
            ));
        }
        if let Some(t) = &k.tls {
            for (path, key) in [
                (&t.value.ca_file, "ca_file"),
                (&t.value.cert_file, "cert_file"),
                (&t.value.key_file, "key_file"),
            ] {
                if let Some(p) = path
                    && !p.is_file()
                {
                    errors.push(Located::at(
                        &t.referenced,
                        format!(
                            "`tls.{key}`: {} is not a readable file; give the path of a PEM file",
                            p.display()
                        ),
                    ));
                }
            }
            if t.value.cert_file.is_some() != t.value.key_file.is_some() {
                errors.push(Located::at(
                    &t.referenced,
                    "`tls.cert_file` and `tls.key_file` go together: give both, or neither",
                ));
            }
        }
        if let Some(s) = &k.sasl {
            if s.value.username.is_empty() {
                errors.push(Located::at(
                    &s.referenced,
                    "`sasl.username` is empty; give the user name",
                ));
            }
            if let Some(msg) = s.value.password.shape_error() {
                errors.push(Located::at(
                    &s.referenced,
                    format!("`sasl.password`: {msg}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn errors(text: &str) -> String {
        match Config::parse(text, Path::new("test.yml")) {
            Ok(_) => panic!("config was accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_kafka_feed_with_its_defaults() {
        let cfg = Config::parse(
            "feeds:\n  - kind: kafka\n    brokers: ['127.0.0.1:9092', '[::1]:9093']\n    topics: [routeviews.amsix.ams.bmp_raw]\n    format: openbmp\n",
            Path::new("test.yml"),
        )
        .unwrap();
        let s = cfg.feeds[0].kafka_settings().unwrap();
        assert_eq!(s.brokers, ["127.0.0.1:9092", "[::1]:9093"]);
        assert_eq!(s.subscription, ["routeviews.amsix.ams.bmp_raw"]);
        assert_eq!(s.group, "bgpsentry");
        assert_eq!(s.format, KafkaFormat::Openbmp);
        assert_eq!(s.start_from, KafkaStart::Latest);
        assert_eq!(s.max_record_bytes, 1024 * 1024);
        assert!(s.tls.is_none() && s.sasl.is_none());
        assert_eq!(cfg.feeds[0].name(), "kafka");
    }

    #[test]
    fn a_topic_pattern_becomes_a_regex_subscription() {
        let cfg = Config::parse(
            "feeds:\n  - kind: kafka\n    brokers: ['k:9092']\n    topic_pattern: 'routeviews\\..*\\.bmp_raw'\n    format: ris_live\n    group: mine\n    start_from: earliest\n    tls: {}\n    sasl: {mechanism: SCRAM-SHA-512, username: u, password: {env: KAFKA_PASSWORD}}\n",
            Path::new("test.yml"),
        )
        .unwrap();
        let s = cfg.feeds[0].kafka_settings().unwrap();
        assert_eq!(s.subscription, ["^routeviews\\..*\\.bmp_raw"]);
        assert_eq!(s.group, "mine");
        assert_eq!(s.start_from, KafkaStart::Earliest);
        assert_eq!(s.tls, Some(KafkaTlsConfig::default()));
        assert_eq!(
            s.sasl.map(|s| s.mechanism),
            Some(SaslMechanism::ScramSha512)
        );
    }

    #[test]
    fn a_kafka_feed_says_what_it_lacks_and_where() {
        let e = errors("feeds:\n  - kind: kafka\n");
        assert!(e.contains("test.yml:2:"), "{e}");
        for needle in ["needs `brokers:`", "needs `topics:`", "needs `format:`"] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let e = errors(
            "feeds:\n  - kind: kafka\n    brokers: [nohost, 'a:0']\n    topics: ['bad topic']\n    format: openbmp\n    max_record_bytes: 10\n    tls: {ca_file: /nonexistent/ca.pem, cert_file: /nonexistent/c.pem}\n    sasl: {mechanism: PLAIN, username: '', password: {}}\n",
        );
        for needle in [
            "`nohost` in `brokers:`",
            "`a:0` in `brokers:`",
            "`bad topic` in `topics:`",
            "`max_record_bytes` must be between",
            "`tls.ca_file`",
            "go together",
            "`sasl.username` is empty",
            "`sasl.password`",
            "test.yml:4:",
            "test.yml:6:",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let e = errors(
            "feeds:\n  - kind: kafka\n    brokers: ['k:1']\n    topics: [a]\n    topic_pattern: '('\n    format: openbmp\n",
        );
        assert!(e.contains("not both"), "{e}");
        let e = errors(
            "feeds:\n  - kind: kafka\n    brokers: ['k:1']\n    topic_pattern: '('\n    format: openbmp\n",
        );
        assert!(
            e.contains("test.yml:4:") && e.contains("not a regular expression"),
            "{e}"
        );
        let e = errors(
            "feeds:\n  - kind: kafka\n    brokers: ['k:1']\n    topics: [a]\n    format: json\n",
        );
        assert!(e.contains("test.yml:5:"), "{e}");
        let e = errors("feeds:\n  - kind: ris_live\n    brokers: ['k:1']\n");
        assert!(e.contains("apply only to a `kafka` feed"), "{e}");
    }
}
