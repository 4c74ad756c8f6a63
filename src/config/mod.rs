//! Configuration: the YAML file, validated into typed settings, with every error located
//! as `FILE:LINE:COLUMN: message`.
//!
//! Longer than most files here: the top-level sections and the cross-section checks (feeds
//! against prefixes, keys against their limits) are read in one place; each section's own
//! keys live in the files beside it.

mod address;
mod asn;
mod asns;
mod bmp;
mod collect;
mod errors;
mod kafka;
mod notify;
mod proxy;
mod relay;
mod rpki;
mod rule;
mod secret;
mod store;
mod warm_start;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use address::parse_listen;
pub use asn::AsnValue;
pub use asns::{CommunityLabel, CommunityPattern, MonitoredAsn, WELL_KNOWN_COMMUNITIES};
pub use bmp::{
    BmpRib, BmpSettings, DEFAULT_BMP_HOLD_SECONDS, DEFAULT_BMP_MAX_MESSAGE_BYTES,
    DEFAULT_BMP_MAX_ROUTERS, DEFAULT_BMP_RIBS,
};
pub use errors::{ConfigError, ConfigErrors, Located, ValueError};
pub use kafka::{
    DEFAULT_KAFKA_GROUP, DEFAULT_KAFKA_MAX_RECORD_BYTES, KafkaFormat, KafkaSaslConfig,
    KafkaSettings, KafkaStart, KafkaTlsConfig, SaslMechanism,
};
pub use notify::{
    AlertmanagerSettings, ChannelCommon, ChannelConfig, ChannelKind, ChannelSettings, ChatSettings,
    DEFAULT_HOLD_RESOLVED_SECONDS, DEFAULT_REPUSH_SECONDS, EmailSettings, NotifyConfig, SmtpTls,
    UrlSource, WebhookSettings,
};
pub use proxy::ProxyConfig;
pub use relay::{DEFAULT_RELAY_LISTEN, RelayConfig};
pub use rpki::{AspaProcedure, RpkiConfig};
pub use rule::{Rule, Severity};
pub use secret::{Secret, SecretSource, redact_url};
pub use store::{STATE_DIRECTORY_ENV, StoreConfig, check_store_writable};
pub use warm_start::{WarmStartConfig, WarmStartSetting};
/// The warm-start defaults.
pub mod warm_start_defaults {
    pub use super::warm_start::{
        DEFAULT_BATCH_PREFIXES, DEFAULT_BUFFER_EVENTS, DEFAULT_GAP_SECONDS,
        DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_READY_TIMEOUT_SECONDS, DEFAULT_RETRY_MAX_SECONDS,
        DEFAULT_TIMEOUT_SECONDS,
    };
}
pub use watch::{
    HoldDown, HoldDowns, MoreSpecifics, PathRule, PrefixDefaults, RawHoldDown, RawHoldDowns,
    RawPrefix, WatchedPrefix,
};

/// Largest config file accepted; a config is written by people, so anything bigger is a mistake
/// or an attack on the parser.
pub const MAX_CONFIG_BYTES: usize = 8 * 1024 * 1024;

/// The error for a config file that watches nothing: it would run "ready" and never alert.
pub const NOTHING_WATCHED: &str = "nothing is watched: the file has no `prefixes:` and no \
    `asns:`. Add the prefixes you announce, e.g.\n  prefixes:\n    - prefix: 192.0.2.0/24\n      \
    origins: [64496]\nor the ASNs to monitor (`asns:`); `bgpsentry generate --asn ASN --rib \
    FILE` writes the prefixes an ASN originates as a config";

/// Default address of the HTTP server: loopback only, so nothing is exposed until asked for.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9179";

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages and reloads).
    pub source: PathBuf,
    /// Watched prefixes, in file order.
    pub prefixes: Vec<WatchedPrefix>,
    /// HTTP server settings.
    pub http: HttpConfig,
    /// Feeds to consume.
    pub feeds: Vec<FeedConfig>,
    /// Monitored ASNs (`asns:`).
    pub asns: Vec<MonitoredAsn>,
    /// RPKI data (`rpki:`), if any.
    pub rpki: Option<RpkiConfig>,
    /// Labelled communities shown in alerts (`communities:` plus the well-known ones).
    pub communities: Vec<CommunityLabel>,
    /// Notification channels and routing (`notify:`).
    pub notify: NotifyConfig,
    /// The embedded store (`store:`).
    pub store: StoreConfig,
    /// The HTTP proxy for outbound connections (`proxy:`), if any.
    pub proxy: Option<ProxyConfig>,
    /// Where `bgpsentry relay` writes (`relay:`), if any.
    pub relay: Option<RelayConfig>,
}

/// HTTP server settings (`http:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen", deserialize_with = "address::listen")]
    pub listen: SocketAddr,
    /// Base URL under which operators reach this server; used for links in notifications.
    #[serde(default)]
    pub external_url: Option<String>,
    /// Bearer tokens for the API.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Serve HTTPS with this certificate and key.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Largest request accepted, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// A request that takes longer than this is answered 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// A connection that has not sent a request's headers this long after it opened or
    /// after its last answer is closed, so idle and slow clients cannot hold connections.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_seconds: u64,
}

/// API authentication (`http.auth:`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted tokens; none = no authentication.
    #[serde(default)]
    pub tokens: Vec<Spanned<SecretSource>>,
    /// Also require a token for `/metrics`.
    #[serde(default)]
    pub protect_metrics: bool,
}

/// HTTPS settings (`http.tls:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

fn default_max_request_bytes() -> usize {
    64 * 1024
}

fn default_request_timeout() -> u64 {
    30
}

fn default_header_timeout() -> u64 {
    10
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| unreachable!("constant address parses"))
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            external_url: None,
            auth: AuthConfig::default(),
            tls: None,
            max_request_bytes: default_max_request_bytes(),
            request_timeout_seconds: default_request_timeout(),
            header_timeout_seconds: default_header_timeout(),
        }
    }
}

/// The kinds of feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    /// MRT update files, replayed once at start-up.
    Mrt,
    /// RIPE RIS Live WebSocket.
    RisLive,
    /// bgproutes.io live WebSocket.
    Bgproutes,
    /// BMP (RFC 7854) from the operator's own routers, which connect to a listener.
    Bmp,
    /// Records of Kafka topics (OpenBMP or RIS Live), read in a consumer group.
    Kafka,
}

/// One feed (`feeds:` entry). Kind-specific keys are checked when the file is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Which feed.
    pub kind: Spanned<FeedKind>,
    /// Name used in metrics and VP identities; defaults to the kind.
    #[serde(default)]
    pub name: Option<String>,
    /// MRT files to replay (kind `mrt`).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// WebSocket URL (`ris_live`, `bgproutes`); defaults to the public service.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Client name sent to RIS Live (`ris_live`; default `bgpsentry`).
    #[serde(default)]
    pub client: Option<String>,
    /// Live-manager base URL for prefix association (`bgproutes`).
    #[serde(default)]
    pub live_manager_url: Option<Spanned<String>>,
    /// Environment variable holding the API key (`bgproutes`; default `BGP_API_KEY`).
    #[serde(default)]
    pub api_key_env: Option<Spanned<String>>,
    /// File holding the API key (`bgproutes`), instead of the environment.
    #[serde(default)]
    pub api_key_file: Option<Spanned<PathBuf>>,
    /// Several API keys (`bgproutes`), each with at most 10 prefixes.
    #[serde(default)]
    pub keys: Option<Spanned<Vec<ApiKeyConfig>>>,
    /// Skip the feed quietly when no API key is available (`bgproutes`).
    #[serde(default)]
    pub optional: bool,
    /// Canary prefixes subscribed besides the watched ones (`ris_live`).
    #[serde(default)]
    pub beacons: Option<Vec<Spanned<String>>>,
    /// No message for this long: the feed is stale and reconnects.
    #[serde(default)]
    pub stale_after_seconds: Option<Spanned<f64>>,
    /// Frames larger than this are counted and dropped (default 1 MiB).
    #[serde(default)]
    pub max_frame_bytes: Option<Spanned<u64>>,
    /// Interval between WebSocket pings (default 30 s); 3 intervals without any frame = dead.
    #[serde(default)]
    pub ping_interval_seconds: Option<Spanned<f64>>,
    /// Largest delay between reconnection attempts (default 60 s).
    #[serde(default)]
    pub reconnect_max_seconds: Option<Spanned<f64>>,
    /// Re-association interval of the prefixes with the key (`bgproutes`; default 3600 s).
    #[serde(default)]
    pub reassociate_seconds: Option<Spanned<f64>>,
    /// Address and port routers connect to (`bmp`).
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    /// Router addresses or prefixes allowed to connect (`bmp`).
    #[serde(default)]
    pub routers: Option<Spanned<Vec<String>>>,
    /// RIB kinds whose routes feed the detectors (`bmp`).
    #[serde(default)]
    pub ribs: Option<Spanned<Vec<BmpRib>>>,
    /// Seconds a disconnected router's routes are kept before they are withdrawn (`bmp`).
    #[serde(default)]
    pub hold_seconds: Option<Spanned<f64>>,
    /// Routers connected at once (`bmp`).
    #[serde(default)]
    pub max_routers: Option<Spanned<u64>>,
    /// Bootstrap brokers, `host:port` (`kafka`).
    #[serde(default)]
    pub brokers: Option<Spanned<Vec<String>>>,
    /// Topics to read (`kafka`).
    #[serde(default)]
    pub topics: Option<Spanned<Vec<String>>>,
    /// A regular expression of the topics to read, instead of `topics` (`kafka`).
    #[serde(default)]
    pub topic_pattern: Option<Spanned<String>>,
    /// Consumer group id (`kafka`; default `bgpsentry`).
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    /// What a record holds (`kafka`).
    #[serde(default)]
    pub format: Option<Spanned<KafkaFormat>>,
    /// Where a group without committed offsets starts (`kafka`; default `latest`).
    #[serde(default)]
    pub start_from: Option<Spanned<KafkaStart>>,
    /// Largest record (`kafka`; default 1 MiB).
    #[serde(default)]
    pub max_record_bytes: Option<Spanned<u64>>,
    /// TLS to the brokers (`kafka`).
    #[serde(default)]
    pub tls: Option<Spanned<KafkaTlsConfig>>,
    /// SASL authentication to the brokers (`kafka`).
    #[serde(default)]
    pub sasl: Option<Spanned<KafkaSaslConfig>>,
    /// Load the current routes from the feed's history service at start and after an outage
    /// (`ris_live`, `bgproutes`; on by default).
    #[serde(default)]
    pub warm_start: Option<Spanned<WarmStartSetting>>,
}

/// One bgproutes API key (`keys:` entry): where to read it, and optionally its prefixes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Environment variable holding the key.
    #[serde(default)]
    pub env: Option<String>,
    /// File holding the key.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Prefixes to associate with this key (at most 10); without it, watched prefixes are
    /// spread over the keys that list none.
    #[serde(default)]
    pub prefixes: Option<Spanned<Vec<String>>>,
}

/// Most prefixes one bgproutes API key may be associated with.
pub const BGPROUTES_PREFIXES_PER_KEY: usize = 10;

/// Spreads prefixes over bgproutes keys: a key's own list if it has one, else the watched
/// prefixes not listed anywhere, up to [`BGPROUTES_PREFIXES_PER_KEY`] per key in order.
/// `own` holds each key's list; the error says how many keys are missing.
pub fn spread_prefixes(
    watched: &[ipnet::IpNet],
    own: &[Option<Vec<ipnet::IpNet>>],
) -> Result<Vec<Vec<ipnet::IpNet>>, ValueError> {
    let listed: Vec<ipnet::IpNet> = own.iter().flatten().flatten().copied().collect();
    let mut rest = watched.iter().filter(|p| !listed.contains(p)).copied();
    let free = own.iter().filter(|o| o.is_none()).count();
    let remaining = watched.iter().filter(|p| !listed.contains(p)).count();
    if remaining > free * BGPROUTES_PREFIXES_PER_KEY {
        let needed = remaining.div_ceil(BGPROUTES_PREFIXES_PER_KEY);
        return Err(ValueError(format!(
            "{remaining} watched prefixes must go to bgproutes API keys without their own \
             `prefixes:`, but a key takes at most {BGPROUTES_PREFIXES_PER_KEY} prefixes and \
             there {} {free} such key{}: configure at least {needed} (under `keys:`) or watch \
             fewer prefixes",
            if free == 1 { "is" } else { "are" },
            if free == 1 { "" } else { "s" },
        )));
    }
    Ok(own
        .iter()
        .map(|o| match o {
            Some(list) => list.clone(),
            None => rest.by_ref().take(BGPROUTES_PREFIXES_PER_KEY).collect(),
        })
        .collect())
}

impl FeedKind {
    /// The kind as written in the config (`mrt`, `ris_live`, `bgproutes`).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Mrt => "mrt",
            FeedKind::RisLive => "ris_live",
            FeedKind::Bgproutes => "bgproutes",
            FeedKind::Bmp => "bmp",
            FeedKind::Kafka => "kafka",
        }
    }
}

impl FeedConfig {
    /// The feed's name: as configured, or its kind.
    pub fn name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.kind.value.as_str().to_string(),
        }
    }

    /// The warm-start settings (defaults when the key is absent).
    pub fn warm_start(&self) -> WarmStartConfig {
        self.warm_start
            .as_ref()
            .map(|w| w.value.0.clone())
            .unwrap_or_default()
    }

    fn validate(&self, errors: &mut Vec<Located>) {
        if self.kind.value == FeedKind::Mrt && self.files.is_empty() {
            errors.push(Located::at(
                &self.kind.referenced,
                "an `mrt` feed needs `files:`, a list of MRT update files to replay",
            ));
        }
        self.validate_live(errors);
        self.validate_bmp(errors);
        self.validate_kafka(errors);
        if let Some(w) = &self.warm_start {
            w.value.0.validate(errors);
        }
    }

    /// Kind-specific keys of the live feeds.
    fn validate_live(&self, errors: &mut Vec<Located>) {
        let kind = self.kind.value;
        let at = &self.kind.referenced;
        let name = kind.as_str();
        let mut only = |set: bool, key: &str, kinds: &[FeedKind]| {
            if set && !kinds.contains(&kind) {
                let allowed: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                errors.push(Located::at(
                    at,
                    format!(
                        "`{key}` does not apply to a `{name}` feed (only to {}); remove it",
                        allowed.join(", ")
                    ),
                ));
            }
        };
        use FeedKind::{Bgproutes, Mrt, RisLive};
        only(!self.files.is_empty(), "files", &[Mrt]);
        only(self.url.is_some(), "url", &[RisLive, Bgproutes]);
        only(self.client.is_some(), "client", &[RisLive]);
        only(self.beacons.is_some(), "beacons", &[RisLive]);
        only(
            self.live_manager_url.is_some(),
            "live_manager_url",
            &[Bgproutes],
        );
        only(self.api_key_env.is_some(), "api_key_env", &[Bgproutes]);
        only(self.api_key_file.is_some(), "api_key_file", &[Bgproutes]);
        only(self.keys.is_some(), "keys", &[Bgproutes]);
        only(self.optional, "optional", &[Bgproutes]);
        only(
            self.warm_start.is_some(),
            "warm_start",
            &[RisLive, Bgproutes],
        );
        only(
            self.reassociate_seconds.is_some(),
            "reassociate_seconds",
            &[Bgproutes],
        );
        only(
            self.max_frame_bytes.is_some(),
            "max_frame_bytes",
            &[RisLive, Bgproutes, FeedKind::Bmp],
        );
        for (set, key) in [
            (self.stale_after_seconds.is_some(), "stale_after_seconds"),
            (
                self.ping_interval_seconds.is_some(),
                "ping_interval_seconds",
            ),
            (
                self.reconnect_max_seconds.is_some(),
                "reconnect_max_seconds",
            ),
        ] {
            only(set, key, &[RisLive, Bgproutes]);
        }
        let check_url = |u: &Option<Spanned<String>>,
                         schemes: &[&str],
                         key: &str,
                         errors: &mut Vec<Located>| {
            if let Some(u) = u
                && !schemes
                    .iter()
                    .any(|s| u.value.starts_with(&format!("{s}://")))
            {
                errors.push(Located::at(
                    &u.referenced,
                    format!(
                        "`{key}` must start with {}; got `{}`",
                        schemes
                            .iter()
                            .map(|s| format!("{s}://"))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        redact_url(&u.value)
                    ),
                ));
            }
        };
        check_url(&self.url, &["wss", "ws"], "url", errors);
        check_url(
            &self.live_manager_url,
            &["https", "http"],
            "live_manager_url",
            errors,
        );
        for (v, key) in [
            (&self.stale_after_seconds, "stale_after_seconds"),
            (&self.ping_interval_seconds, "ping_interval_seconds"),
            (&self.reconnect_max_seconds, "reconnect_max_seconds"),
            (&self.reassociate_seconds, "reassociate_seconds"),
        ] {
            if let Some(v) = v
                && !(v.value.is_finite() && v.value > 0.0 && v.value < 1e9)
            {
                errors.push(Located::at(
                    &v.referenced,
                    format!(
                        "`{key}` must be a positive number of seconds; got {}",
                        v.value
                    ),
                ));
            }
        }
        if let Some(r) = &self.reassociate_seconds
            && r.value >= 4.0 * 3600.0
        {
            errors.push(Located::at(
                &r.referenced,
                "`reassociate_seconds` must be under 14400: bgproutes drops an association after 4 hours without use",
            ));
        }
        if let Some(m) = &self.max_frame_bytes
            && (m.value < 64 || m.value > 64 * 1024 * 1024)
        {
            errors.push(Located::at(
                &m.referenced,
                format!(
                    "`max_frame_bytes` must be between 64 and 67108864; got {}",
                    m.value
                ),
            ));
        }
        for b in self.beacons.iter().flatten() {
            if b.value.parse::<ipnet::IpNet>().is_err() {
                errors.push(Located::at(
                    &b.referenced,
                    format!("beacon `{}` is not a prefix like 84.205.64.0/24", b.value),
                ));
            }
        }
        if self.api_key_file.is_some() && self.api_key_env.is_some() {
            errors.push(Located::at(
                at,
                "set either `api_key_env` or `api_key_file`, not both",
            ));
        }
        if let Some(keys) = &self.keys {
            if self.api_key_file.is_some() || self.api_key_env.is_some() {
                errors.push(Located::at(
                    &keys.referenced,
                    "with `keys:`, give each key its own `env` or `file` instead of `api_key_env`/`api_key_file`",
                ));
            }
            if keys.value.is_empty() {
                errors.push(Located::at(
                    &keys.referenced,
                    "`keys:` is empty; list at least one key",
                ));
            }
            for k in &keys.value {
                if k.env.is_some() == k.file.is_some() {
                    errors.push(Located::at(
                        &keys.referenced,
                        "each `keys:` entry needs exactly one of `env` (a variable name) or `file`",
                    ));
                }
                if let Some(p) = &k.prefixes {
                    if p.value.len() > BGPROUTES_PREFIXES_PER_KEY {
                        errors.push(Located::at(
                            &p.referenced,
                            format!(
                                "this bgproutes API key lists {} prefixes; a key takes at most {BGPROUTES_PREFIXES_PER_KEY}: spread them over several `keys:` entries",
                                p.value.len()
                            ),
                        ));
                    }
                    for s in &p.value {
                        if s.parse::<ipnet::IpNet>().is_err() {
                            errors.push(Located::at(
                                &p.referenced,
                                format!("`{s}` is not a prefix like 192.0.2.0/24"),
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Checks that the watched prefixes fit on the configured bgproutes keys.
    fn validate_prefix_capacity(&self, watched: &[WatchedPrefix], errors: &mut Vec<Located>) {
        if self.kind.value != FeedKind::Bgproutes {
            return;
        }
        let watched: Vec<ipnet::IpNet> = watched.iter().map(|w| w.prefix).collect();
        let own: Vec<Option<Vec<ipnet::IpNet>>> = match &self.keys {
            Some(keys) => keys
                .value
                .iter()
                .map(|k| {
                    k.prefixes.as_ref().map(|p| {
                        p.value
                            .iter()
                            .filter_map(|s| s.parse::<ipnet::IpNet>().ok())
                            .map(|n| n.trunc())
                            .collect()
                    })
                })
                .collect(),
            None => vec![None],
        };
        if let Err(msg) = spread_prefixes(&watched, &own) {
            let at = self
                .keys
                .as_ref()
                .map(|k| &k.referenced)
                .unwrap_or(&self.kind.referenced);
            errors.push(Located::at(at, msg.0));
        }
    }
}

/// The file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: PrefixDefaults,
    #[serde(default)]
    prefixes: Vec<RawPrefix>,
    #[serde(default)]
    http: HttpConfig,
    #[serde(default)]
    feeds: Vec<FeedConfig>,
    #[serde(default)]
    asns: Vec<asns::RawAsn>,
    #[serde(default)]
    rpki: Option<rpki::RawRpki>,
    #[serde(default)]
    communities: Vec<asns::RawCommunity>,
    #[serde(default)]
    notify: NotifyConfig,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    proxy: Option<ProxyConfig>,
    #[serde(default)]
    relay: Option<RelayConfig>,
}

impl Config {
    /// A path from the config, made relative to the config file's folder (the current folder
    /// for the built-in config).
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match self.source.parent() {
            Some(dir) if self.source.exists() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_config_file(path)?;
        Config::parse(&text, path)
    }

    /// Reads and validates a config file that the service is to run with: besides the errors
    /// of [`Config::load`], a file that watches nothing (no prefix, no ASN) is an error.
    pub fn load_watched(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_config_file(path)?;
        Config::parse_with(&text, path, true)
    }

    /// Validates config text; `source` names it in error messages.
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
        Config::parse_with(text, source, false)
    }

    /// Validates config text; `watched`: watching nothing is an error.
    fn parse_with(text: &str, source: &Path, watched: bool) -> Result<Config, ConfigErrors> {
        // The file is at most MAX_CONFIG_BYTES, which bounds the work; the default node and
        // event budgets would refuse a watch list of 100,000 prefixes. Alias limits stay.
        let options = || {
            let mut budget = serde_saphyr::Budget::default();
            budget.max_nodes = 4_000_000;
            budget.max_events = 8_000_000;
            serde_saphyr::options! { with_snippet: false, budget: Some(budget) }
        };
        let empty = || RawConfig {
            defaults: PrefixDefaults::default(),
            prefixes: Vec::new(),
            http: HttpConfig::default(),
            feeds: Vec::new(),
            asns: Vec::new(),
            rpki: None,
            communities: Vec::new(),
            notify: NotifyConfig::default(),
            store: StoreConfig::default(),
            proxy: None,
            relay: None,
        };
        // Every structural error, then the values of what could be read: one run shows all.
        let (raw, mut errors) = collect::deserialize_all::<RawConfig>(text, options, empty);
        let Some(raw) = raw else {
            return Err(ConfigErrors::new(source, errors));
        };
        let prefixes = watch::validate_prefixes(&raw.defaults, raw.prefixes, &mut errors);
        for feed in &raw.feeds {
            feed.validate(&mut errors);
            feed.validate_prefix_capacity(&prefixes, &mut errors);
        }
        for token in &raw.http.auth.tokens {
            if let Some(msg) = token.value.shape_error() {
                errors.push(Located::at(
                    &token.referenced,
                    format!("http.auth.tokens: {msg}"),
                ));
            }
        }
        let asns = asns::validate_asns(&raw.defaults, raw.asns, &mut errors);
        let rpki = raw.rpki.map(|r| rpki::validate(r, &mut errors));
        let communities = asns::validate_communities(raw.communities, &mut errors);
        raw.notify.validate(&mut errors);
        // After a structural error the watch list may be empty only because a broken entry
        // was left out: that is not a second error.
        if watched && errors.is_empty() && prefixes.is_empty() && asns.is_empty() {
            errors.push(Located::nowhere(NOTHING_WATCHED));
        }
        if let Some(p) = &raw.proxy {
            p.validate(&mut errors);
        }
        if let Some(r) = &raw.relay {
            r.validate(&mut errors);
        }
        if errors.is_empty() {
            Ok(Config {
                source: source.to_path_buf(),
                prefixes,
                http: raw.http,
                feeds: raw.feeds,
                asns,
                rpki,
                communities,
                notify: raw.notify,
                store: raw.store,
                proxy: raw.proxy,
                relay: raw.relay,
            })
        } else {
            Err(ConfigErrors::new(source, errors))
        }
    }
}

/// Reads a config file whole, refusing one over [`MAX_CONFIG_BYTES`] before reading it (by its
/// size on disk) and while reading it (a file that grows, or a device that never ends), so an
/// oversized file costs neither the time nor the memory to read it.
fn read_config_file(path: &Path) -> Result<String, ConfigErrors> {
    use std::io::Read;
    let fail = |message: String| ConfigErrors::single(path, Located::nowhere(message));
    let cannot_read = |e: std::io::Error| fail(format!("cannot read the config file: {e}"));
    let limit = format!("the limit of {MAX_CONFIG_BYTES} bytes (8 MiB)");
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let size = file.metadata().map_err(cannot_read)?.len();
    if size > MAX_CONFIG_BYTES as u64 {
        return Err(fail(format!(
            "the config file is {size} bytes, over {limit}; it was not read. Check that the path \
             names the config file"
        )));
    }
    // One byte more than the limit tells a file at the limit from one over it.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(fail(format!(
            "the config file grew past {limit} while it was read (or it is not a regular \
             file); it was not used. Check that the path names the config file"
        )));
    }
    String::from_utf8(bytes).map_err(|e| fail(format!("the config file is not UTF-8: {e}")))
}

#[cfg(test)]
mod detect_tests;
#[cfg(test)]
mod tests;
