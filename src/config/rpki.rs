//! The `rpki:` section: where the validated ROA payloads and ASPA records come from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::Located;

/// Which procedure of the ASPA verification draft verifies a path (`rpki.aspa_procedure`);
/// the RPKI module applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AspaProcedure {
    /// For routes received from a customer or a lateral peer: the path may only go up.
    Upstream,
    /// For routes received from a provider (full tables, as collectors get them): the path may
    /// go up, then down, with no valley.
    #[default]
    Downstream,
}

/// `rpki:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRpki {
    files: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    reload_interval_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    check_interval_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    stale_after_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    aspa_procedure: Option<AspaProcedure>,
}

/// RPKI data settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpkiConfig {
    /// JSON exports of a relying party (Routinator `json`/`jsonext`, rpki-client `json`); their
    /// ROAs and ASPA records are merged.
    pub files: Vec<PathBuf>,
    /// Reload even unchanged files this often.
    pub reload_interval_seconds: u64,
    /// Look at the files' modification times this often, and reload when one changed.
    pub check_interval_seconds: u64,
    /// Data generated longer ago than this is stale: reported by metric, log and alert field.
    pub stale_after_seconds: u64,
    /// Procedure of the `route_leak` rule.
    pub aspa_procedure: AspaProcedure,
}

impl RpkiConfig {
    /// Settings with the defaults for these files.
    pub fn for_files(files: Vec<PathBuf>) -> Self {
        RpkiConfig {
            files,
            reload_interval_seconds: 3600,
            check_interval_seconds: 10,
            stale_after_seconds: 2 * 3600,
            aspa_procedure: AspaProcedure::default(),
        }
    }
}

/// Validates the section, appending problems to `errors`.
pub(super) fn validate(raw: RawRpki, errors: &mut Vec<Located>) -> RpkiConfig {
    let mut files = Vec::with_capacity(raw.files.value.len());
    if raw.files.value.is_empty() {
        errors.push(Located::at(
            &raw.files.referenced,
            "rpki.files is empty; list the JSON file(s) your RPKI validator writes (Routinator `json`/`jsonext`, rpki-client `json`)",
        ));
    }
    for f in &raw.files.value {
        let path = PathBuf::from(f.value.trim());
        if !path.is_file() {
            errors.push(Located::at(
                &f.referenced,
                format!(
                    "RPKI file `{}` does not exist or is not a file; point it at your validator's JSON output",
                    f.value
                ),
            ));
        }
        files.push(path);
    }
    let mut cfg = RpkiConfig::for_files(files);
    let mut positive = |v: &Option<Spanned<u64>>, name: &str, slot: &mut u64| {
        if let Some(v) = v {
            if v.value == 0 {
                errors.push(Located::at(
                    &v.referenced,
                    format!("rpki.{name} must be at least 1"),
                ));
            } else {
                *slot = v.value;
            }
        }
    };
    positive(
        &raw.reload_interval_seconds,
        "reload_interval_seconds",
        &mut cfg.reload_interval_seconds,
    );
    positive(
        &raw.check_interval_seconds,
        "check_interval_seconds",
        &mut cfg.check_interval_seconds,
    );
    positive(
        &raw.stale_after_seconds,
        "stale_after_seconds",
        &mut cfg.stale_after_seconds,
    );
    if let Some(p) = raw.aspa_procedure {
        cfg.aspa_procedure = p;
    }
    cfg
}
