//! The Kafka consumers' own metrics, by feed: registered once with the core metrics so that a
//! consumer restarted by a reload keeps counting in the same series.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::config::KafkaFormat;

/// What became of a record: the `result` label of `bgpsentry_kafka_records_total`.
pub const RESULTS: [&str; 5] = ["ok", "skipped", "empty", "oversized", "malformed"];

/// Per-feed Kafka metrics.
#[derive(Clone)]
pub struct KafkaMetrics {
    /// Records read, by format and result.
    pub records: IntCounterVec,
    /// Records behind the partition's high watermark, from librdkafka's statistics.
    pub lag: IntGaugeVec,
    /// The offset last committed to the group, by partition.
    pub committed_offset: IntGaugeVec,
    /// Offset commits sent to the group coordinator and accepted.
    pub commits: IntCounterVec,
    /// Offset commits that failed.
    pub commit_errors: IntCounterVec,
    /// 1 while at least one broker connection is up.
    pub connected: IntGaugeVec,
    /// Records read whose events are not yet durably stored.
    pub in_flight: IntGaugeVec,
    /// Partitions assigned to this consumer now.
    pub partitions: IntGaugeVec,
}

impl KafkaMetrics {
    /// Broker connection state and per-partition lag from librdkafka's periodic statistics.
    pub fn record_statistics(&self, feed: &str, stats: &rdkafka::Statistics) {
        let up = stats.brokers.values().any(|b| b.state == "UP");
        self.connected.with_label_values(&[feed]).set(i64::from(up));
        for (topic, t) in &stats.topics {
            for (id, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || !p.desired {
                    continue;
                }
                self.lag
                    .with_label_values(&[feed, topic, &id.to_string()])
                    .set(p.consumer_lag);
            }
        }
    }

    /// Creates the families and registers them on `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = KafkaMetrics {
            records: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_kafka_records_total",
                    "Kafka records read, by format and result (ok, skipped: not a route message, empty, oversized, malformed).",
                ),
                &["feed", "format", "result"],
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_kafka_consumer_lag",
                    "Records of the partition not yet read (its high watermark less the consumer's position), from librdkafka's statistics; -1 until known.",
                ),
                &["feed", "topic", "partition"],
            )?,
            committed_offset: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_kafka_committed_offset",
                    "The offset last committed to the consumer group for the partition: every record before it is applied and stored.",
                ),
                &["feed", "topic", "partition"],
            )?,
            commits: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_kafka_offset_commits_total",
                    "Offset commits the consumer group's coordinator accepted.",
                ),
                &["feed"],
            )?,
            commit_errors: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_kafka_offset_commit_errors_total",
                    "Offset commits that failed (the records are read again after a restart or rebalance).",
                ),
                &["feed"],
            )?,
            connected: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_kafka_connected",
                    "1 while at least one of the feed's broker connections is up, else 0.",
                ),
                &["feed"],
            )?,
            in_flight: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_kafka_records_in_flight",
                    "Records read whose events are not yet applied and durably stored (their offsets are not committed yet).",
                ),
                &["feed"],
            )?,
            partitions: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_kafka_assigned_partitions",
                    "Partitions the consumer group assigned to this consumer.",
                ),
                &["feed"],
            )?,
        };
        r.register(Box::new(m.records.clone()))?;
        r.register(Box::new(m.lag.clone()))?;
        r.register(Box::new(m.committed_offset.clone()))?;
        r.register(Box::new(m.commits.clone()))?;
        r.register(Box::new(m.commit_errors.clone()))?;
        r.register(Box::new(m.connected.clone()))?;
        r.register(Box::new(m.in_flight.clone()))?;
        r.register(Box::new(m.partitions.clone()))?;
        Ok(m)
    }

    /// The feed's series that exist before any record is read.
    pub fn init_feed(&self, feed: &str, format: KafkaFormat) {
        for result in RESULTS {
            self.records
                .with_label_values(&[feed, format.as_str(), result]);
        }
        self.commits.with_label_values(&[feed]);
        self.commit_errors.with_label_values(&[feed]);
        self.connected.with_label_values(&[feed]);
        self.in_flight.with_label_values(&[feed]);
        self.partitions.with_label_values(&[feed]);
    }
}
