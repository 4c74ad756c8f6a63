//! Configuration: the YAML file, validated into typed settings, with every error located
//! as `FILE:LINE:COLUMN: message`.

mod asn;
mod errors;
mod notify;
mod store;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use asn::AsnValue;
pub use errors::{ConfigError, ConfigErrors, Located};
pub use notify::{
    ChannelConfig, ChannelKind, DEFAULT_HOLD_RESOLVED_SECONDS, DEFAULT_REPUSH_SECONDS,
    NotifyConfig, SmtpTls,
};
pub use store::{DEFAULT_STORE_PATH, StoreConfig};
pub use watch::{MoreSpecifics, PrefixDefaults, RawPrefix, WatchedPrefix};

/// Largest config file accepted; a config is written by people, so anything bigger is a mistake
/// or an attack on the parser.
pub const MAX_CONFIG_BYTES: usize = 8 * 1024 * 1024;

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
    /// Notification channels and routing.
    pub notify: NotifyConfig,
    /// Where state that survives restarts is kept.
    pub store: StoreConfig,
}

/// HTTP server settings (`http:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Base URL under which operators reach this server; used for links in notifications.
    #[serde(default)]
    pub external_url: Option<String>,
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
}

/// One feed (`feeds:` entry). Kind-specific keys are checked by [`FeedConfig::validate`].
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
}

impl FeedConfig {
    /// The feed's name: as configured, or its kind.
    pub fn name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => match self.kind.value {
                FeedKind::Mrt => "mrt".into(),
                FeedKind::RisLive => "ris_live".into(),
                FeedKind::Bgproutes => "bgproutes".into(),
            },
        }
    }

    fn validate(&self, errors: &mut Vec<Located>) {
        if self.kind.value == FeedKind::Mrt && self.files.is_empty() {
            errors.push(Located::at(
                &self.kind.referenced,
                "an `mrt` feed needs `files:`, a list of MRT update files to replay",
            ));
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
    notify: NotifyConfig,
    #[serde(default)]
    store: StoreConfig,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let bytes = std::fs::read(path).map_err(|e| {
            ConfigErrors::single(
                path,
                Located::nowhere(format!("cannot read the config file: {e}")),
            )
        })?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ConfigErrors::single(
                path,
                Located::nowhere(format!(
                    "the config file is {} bytes; the limit is {MAX_CONFIG_BYTES}",
                    bytes.len()
                )),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            ConfigErrors::single(
                path,
                Located::nowhere(format!("the config file is not UTF-8: {e}")),
            )
        })?;
        Config::parse(&text, path)
    }

    /// Validates config text; `source` names it in error messages.
    pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig {
                defaults: PrefixDefaults::default(),
                prefixes: Vec::new(),
                http: HttpConfig::default(),
                feeds: Vec::new(),
                notify: NotifyConfig::default(),
                store: StoreConfig::default(),
            }
        } else {
            serde_saphyr::from_str_with_options(text, options)
                .map_err(|e| ConfigErrors::single(source, Located::from_yaml(&e)))?
        };
        let mut errors = Vec::new();
        let prefixes = watch::validate_prefixes(&raw.defaults, raw.prefixes, &mut errors);
        for feed in &raw.feeds {
            feed.validate(&mut errors);
        }
        raw.notify.validate(&mut errors);
        if errors.is_empty() {
            Ok(Config {
                source: source.to_path_buf(),
                prefixes,
                http: raw.http,
                feeds: raw.feeds,
                notify: raw.notify,
                store: raw.store,
            })
        } else {
            Err(ConfigErrors::new(source, errors))
        }
    }
}

#[cfg(test)]
mod tests;
