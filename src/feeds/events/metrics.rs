//! The `bgpsentry_scale_out_*` families of `kafka` feeds of `format: events`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Scale-out metrics, by feed.
#[derive(Clone)]
pub struct ScaleOutMetrics {
    /// Rebalances of the consumer group seen (each assignment and each revocation).
    pub rebalances: IntCounterVec,
    /// Partitions of the internal topic this instance owns.
    pub partitions_owned: IntGaugeVec,
    /// Time to rebuild a partition taken over (replay, and the engine applying it).
    pub rebuild_seconds: HistogramVec,
    /// Records of the internal topic read to rebuild partitions taken over.
    pub records_replayed: IntCounterVec,
}

/// One feed's series.
#[derive(Clone)]
pub struct FeedScaleOut {
    /// See [`ScaleOutMetrics::rebalances`].
    pub rebalances: prometheus::IntCounter,
    /// See [`ScaleOutMetrics::partitions_owned`].
    pub partitions_owned: prometheus::IntGauge,
    /// See [`ScaleOutMetrics::rebuild_seconds`].
    pub rebuild_seconds: prometheus::Histogram,
    /// See [`ScaleOutMetrics::records_replayed`].
    pub records_replayed: prometheus::IntCounter,
}

impl ScaleOutMetrics {
    /// Creates and registers the families.
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = ScaleOutMetrics {
            rebalances: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_scale_out_rebalances_total",
                    "Partition assignments and revocations of the consumer group seen by the feed.",
                ),
                &["feed"],
            )?,
            partitions_owned: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_scale_out_partitions_owned",
                    "Partitions of the internal topic this instance owns.",
                ),
                &["feed"],
            )?,
            rebuild_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "bgpsentry_scale_out_rebuild_seconds",
                    "Time to rebuild the route state of a partition taken over.",
                )
                .buckets(vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0]),
                &["feed"],
            )?,
            records_replayed: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_scale_out_records_replayed_total",
                    "Records of the internal topic read to rebuild partitions taken over.",
                ),
                &["feed"],
            )?,
        };
        r.register(Box::new(m.rebalances.clone()))?;
        r.register(Box::new(m.partitions_owned.clone()))?;
        r.register(Box::new(m.rebuild_seconds.clone()))?;
        r.register(Box::new(m.records_replayed.clone()))?;
        Ok(m)
    }

    /// One feed's series, created at 0.
    pub fn feed(&self, name: &str) -> FeedScaleOut {
        FeedScaleOut {
            rebalances: self.rebalances.with_label_values(&[name]),
            partitions_owned: self.partitions_owned.with_label_values(&[name]),
            rebuild_seconds: self.rebuild_seconds.with_label_values(&[name]),
            records_replayed: self.records_replayed.with_label_values(&[name]),
        }
    }
}
