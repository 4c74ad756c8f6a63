//! The `bgpsentry_warm_start_*` metrics.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::fetch::Failure;

/// Warm-start metrics, by feed connection.
#[derive(Clone)]
pub struct WarmStartMetrics {
    /// Attempts by result (`ok` or a failure).
    pub runs: IntCounterVec,
    /// How long the last attempt took.
    pub duration: GaugeVec,
    /// Routes the last success loaded.
    pub routes: IntGaugeVec,
    /// Vantage points the last success loaded.
    pub vantage_points: IntGaugeVec,
    /// When the last success finished (UNIX seconds).
    pub last_success: GaugeVec,
    /// 1 while the feed has no loaded state yet or a warm start runs.
    pub pending: IntGaugeVec,
}

impl WarmStartMetrics {
    /// Creates and registers the families.
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = WarmStartMetrics {
            runs: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_warm_start_runs_total",
                    "Warm-start attempts by feed and result (ok or why it failed).",
                ),
                &["feed", "result"],
            )?,
            duration: GaugeVec::new(
                Opts::new(
                    "bgpsentry_warm_start_duration_seconds",
                    "How long the last warm-start attempt of a feed took.",
                ),
                &["feed"],
            )?,
            routes: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_warm_start_routes_loaded",
                    "Routes (or updates, after an outage) the last successful warm start loaded.",
                ),
                &["feed"],
            )?,
            vantage_points: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_warm_start_vantage_points_loaded",
                    "Vantage points in the state the last successful warm start loaded.",
                ),
                &["feed"],
            )?,
            last_success: GaugeVec::new(
                Opts::new(
                    "bgpsentry_warm_start_last_success_timestamp_seconds",
                    "When the last warm start of a feed succeeded (UNIX seconds); 0 before the first.",
                ),
                &["feed"],
            )?,
            pending: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_warm_start_pending",
                    "1 while a feed runs cold: its warm start has not succeeded yet or is running again.",
                ),
                &["feed"],
            )?,
        };
        r.register(Box::new(m.runs.clone()))?;
        r.register(Box::new(m.duration.clone()))?;
        r.register(Box::new(m.routes.clone()))?;
        r.register(Box::new(m.vantage_points.clone()))?;
        r.register(Box::new(m.last_success.clone()))?;
        r.register(Box::new(m.pending.clone()))?;
        Ok(m)
    }

    /// Creates a feed connection's series at 0.
    pub fn init(&self, feed: &str) {
        self.runs.with_label_values(&[feed, "ok"]);
        for f in Failure::ALL {
            self.runs.with_label_values(&[feed, f.as_str()]);
        }
        self.duration.with_label_values(&[feed]);
        self.routes.with_label_values(&[feed]);
        self.vantage_points.with_label_values(&[feed]);
        self.last_success.with_label_values(&[feed]);
        self.pending.with_label_values(&[feed]).set(1);
    }
}
