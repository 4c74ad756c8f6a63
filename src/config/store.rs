//! The state store's settings (`store:`).

use std::path::PathBuf;

use serde::Deserialize;

/// Default database file, relative to the working directory.
pub const DEFAULT_STORE_PATH: &str = "bgpsentry.db";

/// Where bgpsentry keeps state that must survive restarts (`store:`); today the notification
/// outbox lives there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file.
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from(DEFAULT_STORE_PATH)
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_path(),
        }
    }
}
