//! The `warm_start:` key of a live feed: load the current routes from the feed's history
//! service at start and after an outage (on by default; `warm_start: false` turns it off).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use super::{Located, redact_url};

/// Default gap: a live feed down or silent for longer than this is warm-started again.
pub const DEFAULT_GAP_SECONDS: f64 = 300.0;
/// Default timeout of one request (the bgproutes reference client waits 300 s).
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 120.0;
/// Default largest answer read.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Default largest delay between retries.
pub const DEFAULT_RETRY_MAX_SECONDS: f64 = 900.0;
/// Default bound of the live events held while a warm start runs.
pub const DEFAULT_BUFFER_EVENTS: u64 = 200_000;
/// Default time `/readyz` waits for a warm start that keeps failing.
pub const DEFAULT_READY_TIMEOUT_SECONDS: f64 = 600.0;
/// Default prefixes per RIPEstat request.
pub const DEFAULT_BATCH_PREFIXES: u64 = 50;

/// Warm-start settings of one live feed, as written (every key optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmStartConfig {
    /// Turns warm start on or off (default on).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Base URL of the history service: RIPEstat (`https://stat.ripe.net`) for `ris_live`,
    /// the REST API (`https://api.bgproutes.io`) for `bgproutes`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Down or silent longer than this: warm start again after reconnecting.
    #[serde(default)]
    pub gap_seconds: Option<Spanned<f64>>,
    /// Timeout of one request.
    #[serde(default)]
    pub timeout_seconds: Option<Spanned<f64>>,
    /// Largest answer read; a larger one fails as `oversized`.
    #[serde(default)]
    pub max_response_bytes: Option<Spanned<u64>>,
    /// Largest delay between retries of a failed warm start.
    #[serde(default)]
    pub retry_max_seconds: Option<Spanned<f64>>,
    /// Live events held while a warm start runs; beyond it the attempt is given up and retried.
    #[serde(default)]
    pub buffer_events: Option<Spanned<u64>>,
    /// `/readyz` waits this long for a warm start that keeps failing, then reports ready (cold).
    #[serde(default)]
    pub ready_timeout_seconds: Option<Spanned<f64>>,
    /// Prefixes per RIPEstat request (`ris_live`).
    #[serde(default)]
    pub batch_prefixes: Option<Spanned<u64>>,
}

impl WarmStartConfig {
    /// Whether warm start runs (on unless turned off).
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// Checks the values; errors point at the key.
    pub fn validate(&self, errors: &mut Vec<Located>) {
        if let Some(u) = &self.url
            && !(u.value.starts_with("https://") || u.value.starts_with("http://"))
        {
            errors.push(Located::at(
                &u.referenced,
                format!(
                    "`warm_start.url` must start with https:// or http://; got `{}`",
                    redact_url(&u.value)
                ),
            ));
        }
        for (v, key) in [
            (&self.gap_seconds, "gap_seconds"),
            (&self.timeout_seconds, "timeout_seconds"),
            (&self.retry_max_seconds, "retry_max_seconds"),
            (&self.ready_timeout_seconds, "ready_timeout_seconds"),
        ] {
            if let Some(v) = v
                && !(v.value.is_finite() && v.value > 0.0 && v.value < 1e9)
            {
                errors.push(Located::at(
                    &v.referenced,
                    format!(
                        "`warm_start.{key}` must be a positive number of seconds; got {}",
                        v.value
                    ),
                ));
            }
        }
        for (v, key, min, max) in [
            (
                &self.max_response_bytes,
                "max_response_bytes",
                1024,
                1 << 32,
            ),
            (&self.buffer_events, "buffer_events", 1, 100_000_000),
            (&self.batch_prefixes, "batch_prefixes", 1, 1000),
        ] {
            if let Some(v) = v
                && !(min..=max).contains(&v.value)
            {
                errors.push(Located::at(
                    &v.referenced,
                    format!(
                        "`warm_start.{key}` must be between {min} and {max}; got {}",
                        v.value
                    ),
                ));
            }
        }
    }
}

/// `warm_start: true|false` or a mapping of settings.
#[derive(Debug, Clone, Default)]
pub struct WarmStartSetting(pub WarmStartConfig);

impl<'de> Deserialize<'de> for WarmStartSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WarmStartSetting;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a mapping of warm-start settings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(WarmStartSetting(WarmStartConfig {
                    enabled: Some(v),
                    ..WarmStartConfig::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                WarmStartConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(WarmStartSetting)
            }
        }
        d.deserialize_any(V)
    }
}
