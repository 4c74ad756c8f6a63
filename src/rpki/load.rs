//! Loading RPKI files, and the service task that reloads them when they change (or on an
//! interval) and reports data that has grown stale.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{MAX_RPKI_FILE_BYTES, RpkiData, RpkiSnapshot, parse_json};
use crate::config::RpkiConfig;

/// Why the RPKI files could not be loaded: a file that cannot be read, is too large or is
/// not a relying party's JSON export. Names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// Bigger than [`MAX_RPKI_FILE_BYTES`].
    #[error(
        "{} is {size} bytes, more than the limit of {MAX_RPKI_FILE_BYTES}; is it really a VRP export?",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Not a usable export.
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: super::ParseError,
    },
}

/// What one file contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// The file.
    pub path: PathBuf,
    /// VRPs read from it.
    pub vrps: usize,
    /// ASPA records read from it.
    pub aspas: usize,
    /// Entries skipped (values out of range).
    pub rejected: usize,
    /// Why the first one was skipped.
    pub first_rejection: Option<String>,
}

fn mtime_secs(meta: &std::fs::Metadata) -> Option<i64> {
    let t = meta.modified().ok()?;
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

/// Reads and merges every file. The data's generation time is the oldest among the files
/// (from their metadata, else their modification time), so one stale file makes it all stale.
pub fn load_files(paths: &[PathBuf]) -> Result<(RpkiData, Vec<LoadedFile>), LoadError> {
    let mut vrps = Vec::new();
    let mut aspas = Vec::new();
    let mut generated: Option<i64> = None;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let unreadable = |e: std::io::Error| LoadError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if meta.len() > MAX_RPKI_FILE_BYTES as u64 {
            return Err(LoadError::TooLarge {
                path: path.clone(),
                size: meta.len(),
            });
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let parsed =
            parse_json(&bytes, MAX_RPKI_FILE_BYTES).map_err(|source| LoadError::Invalid {
                path: path.clone(),
                source,
            })?;
        let when = parsed.generated.or_else(|| mtime_secs(&meta));
        generated = match (generated, when) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        files.push(LoadedFile {
            path: path.clone(),
            vrps: parsed.vrps.len(),
            aspas: parsed.aspas.len(),
            rejected: parsed.rejected,
            first_rejection: parsed.first_rejection,
        });
        vrps.extend(parsed.vrps);
        aspas.extend(parsed.aspas);
    }
    let mut data = RpkiData::new(vrps, aspas);
    data.generated = generated;
    Ok((data, files))
}

/// Metrics of the RPKI data.
#[derive(Clone)]
struct RpkiMetrics {
    vrps: IntGauge,
    aspas: IntGauge,
    rejected: IntGauge,
    age: IntGauge,
    stale: IntGauge,
    loads: IntCounterVec,
}

impl RpkiMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = RpkiMetrics {
            vrps: IntGauge::new("bgpsentry_rpki_vrps", "Validated ROA payloads loaded.")?,
            aspas: IntGauge::new(
                "bgpsentry_rpki_aspas",
                "Customer ASes with an ASPA record loaded.",
            )?,
            rejected: IntGauge::new(
                "bgpsentry_rpki_rejected_entries",
                "Entries of the last loaded RPKI files skipped because a value was out of range.",
            )?,
            age: IntGauge::new(
                "bgpsentry_rpki_data_age_seconds",
                "Age of the RPKI data: now minus the time the relying-party software generated it.",
            )?,
            stale: IntGauge::new(
                "bgpsentry_rpki_stale",
                "1 when the RPKI data is older than rpki.stale_after_seconds or was never loaded.",
            )?,
            loads: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_rpki_loads_total",
                    "Loads of the RPKI files, by result (ok, error).",
                ),
                &["result"],
            )?,
        };
        registry.register(Box::new(m.vrps.clone()))?;
        registry.register(Box::new(m.aspas.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        registry.register(Box::new(m.age.clone()))?;
        registry.register(Box::new(m.stale.clone()))?;
        registry.register(Box::new(m.loads.clone()))?;
        Ok(m)
    }
}

/// Keeps the RPKI data current for a running service.
pub struct RpkiLoader {
    cfg: RpkiConfig,
    metrics: RpkiMetrics,
    tx: watch::Sender<RpkiSnapshot>,
    /// (modification time, length) of each file at the last load.
    seen: Vec<Option<(SystemTime, u64)>>,
    last_load: Option<Instant>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl RpkiLoader {
    /// Loads the files once (a failure is logged and the data stays empty and stale) and
    /// returns the loader with the receiver the engine reads snapshots from.
    pub fn start(
        cfg: RpkiConfig,
        registry: &Registry,
    ) -> Result<(Self, watch::Receiver<RpkiSnapshot>), prometheus::Error> {
        let metrics = RpkiMetrics::new(registry)?;
        let (tx, rx) = watch::channel(RpkiSnapshot {
            data: None,
            stale: true,
            procedure: cfg.aspa_procedure,
        });
        let mut loader = RpkiLoader {
            seen: vec![None; cfg.files.len()],
            cfg,
            metrics,
            tx,
            last_load: None,
        };
        loader.metrics.stale.set(1);
        loader.tick();
        Ok((loader, rx))
    }

    /// Runs until shutdown: checks the files for changes every few seconds.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_secs(self.cfg.check_interval_seconds.max(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            // Reading a few hundred megabytes of JSON must not stall the runtime's workers.
            self = match tokio::task::spawn_blocking(move || {
                self.tick();
                self
            })
            .await
            {
                Ok(s) => s,
                Err(e) => {
                    warn!("the RPKI loader stopped: {e}");
                    return;
                }
            };
        }
    }

    /// Reloads when a file changed or the reload interval passed, then re-judges staleness.
    fn tick(&mut self) {
        let stamps: Vec<_> = self.cfg.files.iter().map(|p| stamp(p)).collect();
        let due = self
            .last_load
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(self.cfg.reload_interval_seconds));
        if stamps != self.seen || due {
            self.last_load = Some(Instant::now());
            match load_files(&self.cfg.files) {
                Ok((data, files)) => {
                    self.seen = stamps;
                    self.metrics.loads.with_label_values(&["ok"]).inc();
                    self.metrics.vrps.set(data.vrp_count() as i64);
                    self.metrics.aspas.set(data.aspa_count() as i64);
                    let rejected: usize = files.iter().map(|f| f.rejected).sum();
                    self.metrics.rejected.set(rejected as i64);
                    for f in files.iter().filter(|f| f.rejected > 0) {
                        warn!(
                            file = %f.path.display(),
                            skipped = f.rejected,
                            "skipped RPKI entries with values out of range; first: {}",
                            f.first_rejection.as_deref().unwrap_or("")
                        );
                    }
                    info!(
                        vrps = data.vrp_count(),
                        aspas = data.aspa_count(),
                        "loaded RPKI data"
                    );
                    let data = Arc::new(data);
                    self.tx.send_modify(|s| s.data = Some(data));
                }
                Err(e) => {
                    self.metrics.loads.with_label_values(&["error"]).inc();
                    warn!(
                        "cannot load RPKI data, keeping what was loaded before: {e}; fix the file or the rpki.files setting"
                    );
                }
            }
        }
        let generated = self.tx.borrow().data.as_ref().and_then(|d| d.generated);
        let age = generated.map(|g| now_secs().saturating_sub(g));
        if let Some(age) = age {
            self.metrics.age.set(age);
        }
        let stale = age.is_none_or(|a| a > self.cfg.stale_after_seconds as i64);
        let was = self.tx.borrow().stale;
        if stale != was {
            if stale {
                warn!(
                    age_seconds = age,
                    limit = self.cfg.stale_after_seconds,
                    "RPKI data is stale; is the relying-party software still running?"
                );
            } else {
                info!(age_seconds = age, "RPKI data is fresh again");
            }
            self.tx.send_modify(|s| s.stale = stale);
        }
        self.metrics.stale.set(i64::from(stale));
    }
}
