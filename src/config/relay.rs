//! `relay:`: where `bgpsentry relay` writes the normalised route events of a scale-out
//! deployment (the internal topic), and where it serves its metrics.

use std::net::SocketAddr;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::kafka::{broker_ok, topic_ok};
use super::{KafkaFormat, KafkaSaslConfig, KafkaSettings, KafkaStart, KafkaTlsConfig, Located};

/// Where the relay serves `/metrics`, `/healthz` and `/readyz` by default.
pub const DEFAULT_RELAY_LISTEN: &str = "127.0.0.1:9180";

/// `relay:` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Bootstrap brokers of the internal topic's cluster, `host:port`.
    pub brokers: Spanned<Vec<String>>,
    /// The internal topic (it must exist).
    pub topic: Spanned<String>,
    /// Address of the relay's HTTP server.
    #[serde(
        default = "default_listen",
        deserialize_with = "super::address::listen"
    )]
    pub listen: SocketAddr,
    /// TLS to the brokers.
    #[serde(default)]
    pub tls: Option<KafkaTlsConfig>,
    /// SASL authentication to the brokers.
    #[serde(default)]
    pub sasl: Option<KafkaSaslConfig>,
}

fn default_listen() -> SocketAddr {
    // A constant that parses.
    DEFAULT_RELAY_LISTEN
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9180)))
}

impl RelayConfig {
    /// Checks the brokers and the topic name.
    pub(super) fn validate(&self, errors: &mut Vec<Located>) {
        if self.brokers.value.is_empty() {
            errors.push(Located::at(
                &self.brokers.referenced,
                "`relay.brokers` is empty; list the `host:port` of one or more bootstrap brokers",
            ));
        }
        for b in self.brokers.value.iter().filter(|b| !broker_ok(b)) {
            errors.push(Located::at(
                &self.brokers.referenced,
                format!(
                    "`{b}` in `relay.brokers` is not `host:port` (an IPv6 address in brackets: `[2001:db8::1]:9092`)"
                ),
            ));
        }
        if !topic_ok(&self.topic.value) {
            errors.push(Located::at(
                &self.topic.referenced,
                format!(
                    "`relay.topic`: `{}` is not a Kafka topic name (1 to 249 letters, digits, `.`, `_`, `-`)",
                    self.topic.value
                ),
            ));
        }
        if let Some(s) = &self.sasl
            && let Some(msg) = s.password.shape_error()
        {
            errors.push(Located::at(
                &self.topic.referenced,
                format!("`relay.sasl.password`: {msg}"),
            ));
        }
    }

    /// The connection settings, in the form the Kafka client is configured from (the
    /// consumer-only parts left at their defaults).
    pub fn kafka_settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.value.clone(),
            subscription: Vec::new(),
            group: String::new(),
            format: KafkaFormat::Events,
            start_from: KafkaStart::Latest,
            max_record_bytes: super::DEFAULT_KAFKA_MAX_RECORD_BYTES as usize,
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
        }
    }
}
