//! The embedded store (`store:`).

use std::path::PathBuf;

use serde::Deserialize;

/// Where and how state is kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file; a relative path is relative to the config file's folder.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Route changes without alert transitions are saved at least this often (alert
    /// transitions are saved at once, with the routes they concern).
    #[serde(default = "default_commit_interval")]
    pub commit_interval_seconds: u64,
    /// Resolved alerts and delivered notifications older than this are deleted.
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
}

fn default_path() -> PathBuf {
    PathBuf::from("bgpsentry.db")
}

fn default_commit_interval() -> u64 {
    5
}

fn default_retention_days() -> u64 {
    90
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_path(),
            commit_interval_seconds: default_commit_interval(),
            retention_days: default_retention_days(),
        }
    }
}
