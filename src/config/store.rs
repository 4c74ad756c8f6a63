//! The embedded store (`store:`) and where its file goes.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Config, ValueError};

/// The environment variable systemd sets to the unit's `StateDirectory=` (colon-separated
/// when there are several; the first one is used). The container images set it too.
pub const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";

/// Where and how state is kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file; a relative path is relative to `$STATE_DIRECTORY` when that is set, else
    /// to the config file's folder (see [`Config::store_file`]).
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

impl Config {
    /// The store's file: `store.path` as is when absolute; else under `$STATE_DIRECTORY` (set
    /// by systemd's `StateDirectory=` and by the shipped images), because the config's folder is
    /// read-only in every shipped deployment; else beside the config file.
    pub fn store_file(&self) -> PathBuf {
        let path = &self.store.path;
        if path.is_absolute() {
            return path.clone();
        }
        match state_directory() {
            Some(dir) => dir.join(path),
            None => self.resolve_path(path),
        }
    }
}

/// The first directory of `$STATE_DIRECTORY`, if it is set to an absolute path.
fn state_directory() -> Option<PathBuf> {
    let value = std::env::var_os(STATE_DIRECTORY_ENV)?;
    std::env::split_paths(&value).find(|p| p.is_absolute())
}

/// Checks that the store's file and its folder (SQLite writes `-wal` and `-shm` files beside
/// it) can be written by this process, so that a read-only location is reported with the way
/// out instead of SQLite's "unable to open database file".
pub fn check_store_writable(file: &Path) -> Result<(), ValueError> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fix = format!(
        "set the environment variable {STATE_DIRECTORY_ENV} to a writable directory (the systemd \
         unit's StateDirectory= does this; the container images use /var/lib/bgpsentry), or point \
         store.path in the config at a writable file"
    );
    // A probe file, removed at once: the only portable way to ask "may I create files here".
    let probe = dir.join(format!(".bgpsentry-write-test-{}", std::process::id()));
    if let Err(e) = std::fs::File::create(&probe) {
        return Err(ValueError(format!(
            "the store {} cannot be created: its folder {} is not writable ({e}); {fix}",
            file.display(),
            dir.display()
        )));
    }
    let _ = std::fs::remove_file(&probe);
    if file.exists()
        && let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(file)
    {
        return Err(ValueError(format!(
            "the store {} is not writable ({e}); {fix}",
            file.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_folder_is_named_with_the_fix() {
        let missing = Path::new("/nonexistent-bgpsentry-dir/bgpsentry.db");
        let err = check_store_writable(missing).unwrap_err().to_string();
        assert!(err.contains("/nonexistent-bgpsentry-dir"), "{err}");
        assert!(
            err.contains(STATE_DIRECTORY_ENV) && err.contains("store.path"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_store_writable(&dir.path().join("bgpsentry.db")),
            Ok(())
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe is left"
        );
    }
}
