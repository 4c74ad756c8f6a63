//! The core Prometheus metrics. Feeds and the notifier register their own families on the same
//! registry; every family carries the `bgpsentry_` prefix.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::alerts::{Alert, Rule, Severity};
use crate::feeds::error::{FeedErrorReason, InvalidReason};

/// The git revision bgpsentry was built from (`unknown` when built outside a git checkout
/// without `BGPSENTRY_GIT_REVISION` set; see build.rs).
pub const GIT_REVISION: &str = env!("BGPSENTRY_GIT_REVISION");

/// Every severity, for the alert counters that exist from the start.
const SEVERITIES: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

/// The `prefix` label of an alert's series: the watched prefix, or for the rules of a
/// monitored ASN (whose prefixes come off the wire) the ASN as `AS64500`, so that the series
/// count is bounded by the config.
pub fn alert_series_label(alert: &Alert) -> String {
    match alert.detail.monitored_asn {
        Some(asn) => format!("AS{asn}"),
        None => alert.watched_prefix.to_string(),
    }
}

/// Per-feed state, kept in step with [`crate::health::Health`] so that every kind of feed
/// exports the same series without registering them itself.
#[derive(Clone)]
pub struct FeedMetrics {
    /// 1 while the feed is connected and receiving (for MRT: all files read).
    pub connected: IntGaugeVec,
    /// 1 while the feed is connected but silent for too long.
    pub stale: IntGaugeVec,
    /// Unix time of the last message received.
    pub last_message_timestamp: GaugeVec,
    /// Reconnections since start.
    pub reconnects: IntCounterVec,
    /// Messages received, by feed and message type.
    pub messages: IntCounterVec,
    /// Connection-level failures, by feed and reason.
    pub errors: IntCounterVec,
    /// Subscriptions acknowledged, by feed.
    pub subscription_acks: IntCounterVec,
}

impl FeedMetrics {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = FeedMetrics {
            connected: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_feed_connected",
                    "1 while the feed is connected and receiving, else 0.",
                ),
                &["feed"],
            )?,
            stale: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_feed_stale",
                    "1 while the feed is connected but has been silent for too long, else 0.",
                ),
                &["feed"],
            )?,
            last_message_timestamp: GaugeVec::new(
                Opts::new(
                    "bgpsentry_feed_last_message_timestamp_seconds",
                    "Unix time at which the feed last received a message.",
                ),
                &["feed"],
            )?,
            reconnects: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_feed_reconnects_total",
                    "Reconnections of the feed since start.",
                ),
                &["feed"],
            )?,
            // Registered once here rather than by each connection: a feed restarted by a
            // reload keeps counting in the same series.
            messages: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_feed_messages_total",
                    "Messages received from the feed, by message type.",
                ),
                &["feed", "type"],
            )?,
            // Every reason of a feed is created at 0 when the feed starts: see
            // `Metrics::init_feed_reasons`.
            errors: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_feed_errors_total",
                    "Connection-level failures of the feed, by reason.",
                ),
                &["feed", "reason"],
            )?,
            subscription_acks: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_feed_subscription_acks_total",
                    "Subscriptions acknowledged by the feed's server.",
                ),
                &["feed"],
            )?,
        };
        r.register(Box::new(m.connected.clone()))?;
        r.register(Box::new(m.stale.clone()))?;
        r.register(Box::new(m.last_message_timestamp.clone()))?;
        r.register(Box::new(m.reconnects.clone()))?;
        r.register(Box::new(m.messages.clone()))?;
        r.register(Box::new(m.errors.clone()))?;
        r.register(Box::new(m.subscription_acks.clone()))?;
        Ok(m)
    }
}

/// Handles to the core metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// The registry that `/metrics` renders.
    pub registry: Registry,
    /// Route events read, by feed and type (`announce`, `withdraw`, `peer_down`).
    pub events: IntCounterVec,
    /// Route events that touched a watched prefix or one of its more-specifics, by feed.
    pub events_matched: IntCounterVec,
    /// Firing alerts by rule, severity and watched prefix or monitored ASN (see
    /// [`alert_series_label`]); change it through [`Metrics::alert_fired`] and
    /// [`Metrics::alert_resolved`].
    pub alerts_firing: IntGaugeVec,
    /// Alerts fired, by rule and severity.
    pub alerts_fired: IntCounterVec,
    /// Alerts resolved, by rule and severity.
    pub alerts_resolved: IntCounterVec,
    /// VPs with a route to each watched prefix (exact prefix).
    pub prefix_vantage_points: IntGaugeVec,
    /// Each watched prefix's `visibility_min_vantage_points` (0 = not checked), for the
    /// threshold line of the dashboards.
    pub prefix_visibility_threshold: IntGaugeVec,
    /// VPs per origin ASN of each watched prefix (exact prefix).
    pub prefix_origin_vantage_points: IntGaugeVec,
    /// VPs per upstream ASN of each watched prefix (exact prefix).
    pub prefix_upstream_vantage_points: IntGaugeVec,
    /// VPs per RPKI origin validation state of the watched prefix (exact prefix).
    pub prefix_rpki_vantage_points: IntGaugeVec,
    /// Number of watched prefixes.
    pub watched_prefixes: IntGauge,
    /// Distinct vantage points seen.
    pub vantage_points: IntGauge,
    /// Routes held for watched prefixes and their more-specifics.
    pub routes: IntGauge,
    /// Time from a feed receiving a batch of events to the engine having processed it.
    pub processing_latency: Histogram,
    /// Time from a feed receiving the events that fired an alert to the alert being in the
    /// alert book (`/alerts`), the store's durable write included.
    pub alert_visible: Histogram,
    /// Invalid input by feed and reason (MRT records that do not parse, bad frames, …).
    pub invalid_input: IntCounterVec,
    /// Config reloads by result (`ok`, `error`).
    pub config_reloads: IntCounterVec,
    /// 1 if the last reload was applied (or none was tried since start), 0 if it was refused.
    pub config_last_reload_successful: IntGauge,
    /// Unix time at which the running config was taken into use (at start or by a reload).
    pub config_last_reload_success_timestamp: prometheus::Gauge,
    /// Store transactions committed.
    pub store_commits: IntCounter,
    /// Store writes that failed (and were retried).
    pub store_errors: IntCounter,
    /// Age of the route state restored at start-up (0 when none was restored).
    pub restored_state_age: prometheus::Gauge,
    /// Batches waiting in the bounded queue between the feeds and the engine (full = the
    /// engine is the bottleneck and the feeds are being slowed down).
    pub engine_queue_batches: IntGauge,
    /// Route events in that queue or being processed by the engine, against its bound.
    pub engine_queue_events: IntGauge,
    /// HTTP connections open now (each holds a file descriptor).
    pub http_connections: IntGauge,
    /// Most HTTP connections served at once: the file limit less a reserve for the store,
    /// the notifier and the feeds.
    pub http_connection_limit: IntGauge,
    /// HTTP connections closed at once because the limit was reached.
    pub http_connections_rejected: IntCounter,
    /// Per-feed connection state, written through [`crate::health::Health`].
    pub feed: FeedMetrics,
    /// The BMP listeners' per-router metrics.
    pub bmp: crate::feeds::bmp::metrics::BmpMetrics,
    /// The Kafka consumers' per-feed metrics.
    pub kafka: crate::feeds::kafka::metrics::KafkaMetrics,
    /// The `bgpsentry_warm_start_*` families.
    pub warm_start: crate::feeds::warm_start::WarmStartMetrics,
    /// The `bgpsentry_scale_out_*` families (`kafka` feeds of `format: events`).
    pub scale_out: crate::feeds::events::metrics::ScaleOutMetrics,
}

impl Metrics {
    /// Creates and registers the core metrics on a new registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let m = Metrics {
            events: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_route_events_total",
                    "Route events read, by feed and type.",
                ),
                &["feed", "type"],
            )?,
            events_matched: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_route_events_matched_total",
                    "Route events for a watched prefix or one of its more-specifics, by feed.",
                ),
                &["feed"],
            )?,
            alerts_firing: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_alerts_firing",
                    "Firing alerts by rule, severity and watched prefix (or monitored ASN, as AS<number>).",
                ),
                &["rule", "severity", "prefix"],
            )?,
            alerts_fired: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_alerts_fired_total",
                    "Alerts fired, by rule and severity.",
                ),
                &["rule", "severity"],
            )?,
            alerts_resolved: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_alerts_resolved_total",
                    "Alerts resolved, by rule and severity.",
                ),
                &["rule", "severity"],
            )?,
            prefix_vantage_points: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_prefix_vantage_points",
                    "Vantage points with a route to the watched prefix (exact match).",
                ),
                &["prefix"],
            )?,
            prefix_visibility_threshold: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_prefix_visibility_threshold",
                    "The watched prefix's visibility_min_vantage_points: fewer vantage points than this, after at least this many, is a visibility loss (0 = not checked).",
                ),
                &["prefix"],
            )?,
            prefix_origin_vantage_points: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_prefix_origin_vantage_points",
                    "Vantage points that see the watched prefix originated by each origin ASN.",
                ),
                &["prefix", "origin_asn"],
            )?,
            prefix_upstream_vantage_points: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_prefix_upstream_vantage_points",
                    "Vantage points that see the watched prefix through each upstream ASN.",
                ),
                &["prefix", "upstream_asn"],
            )?,
            prefix_rpki_vantage_points: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_prefix_rpki_vantage_points",
                    "Vantage points whose route to the watched prefix has each RPKI origin validation state (valid, invalid, not_found).",
                ),
                &["prefix", "state"],
            )?,
            watched_prefixes: IntGauge::new(
                "bgpsentry_watched_prefixes",
                "Number of watched prefixes.",
            )?,
            vantage_points: IntGauge::new(
                "bgpsentry_vantage_points",
                "Distinct vantage points seen since start.",
            )?,
            routes: IntGauge::new(
                "bgpsentry_routes",
                "Routes held for watched prefixes and their more-specifics, over all vantage points.",
            )?,
            processing_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "bgpsentry_processing_latency_seconds",
                    "Time from a feed receiving a batch of route events to the engine having processed it, queueing included.",
                )
                // From a lone event on an idle engine to a backlog that delays alerts noticeably.
                .buckets(vec![
                    1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0,
                ]),
            )?,
            alert_visible: Histogram::with_opts(
                HistogramOpts::new(
                    "bgpsentry_alert_visible_seconds",
                    "Time from a feed receiving the route events that fired an alert to the alert showing in /alerts, the durable store write included.",
                )
                // From an idle service (a millisecond or two) to a backlog of seconds.
                .buckets(vec![
                    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )?,
            invalid_input: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_invalid_input_total",
                    "Input that could not be used, by feed and reason.",
                ),
                &["feed", "reason"],
            )?,
            config_reloads: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_config_reloads_total",
                    "Config reloads (SIGHUP or file change), by result: ok or error.",
                ),
                &["result"],
            )?,
            config_last_reload_successful: IntGauge::new(
                "bgpsentry_config_last_reload_successful",
                "1 if the last config reload was applied (or none was tried since start), 0 if it was refused.",
            )?,
            config_last_reload_success_timestamp: prometheus::Gauge::new(
                "bgpsentry_config_last_reload_success_timestamp_seconds",
                "Unix time at which the running config was taken into use, at start or by a reload.",
            )?,
            store_commits: IntCounter::new(
                "bgpsentry_store_commits_total",
                "Transactions written to the embedded store.",
            )?,
            store_errors: IntCounter::new(
                "bgpsentry_store_errors_total",
                "Writes to the embedded store that failed and were retried.",
            )?,
            restored_state_age: prometheus::Gauge::new(
                "bgpsentry_restored_state_age_seconds",
                "Age of the route state restored from the store at start-up; 0 when none was.",
            )?,
            engine_queue_batches: IntGauge::new(
                "bgpsentry_engine_queue_batches",
                "Batches of route events waiting for the engine in its bounded queue.",
            )?,
            engine_queue_events: IntGauge::new(
                "bgpsentry_engine_queue_events",
                format!(
                    "Route events waiting for or being processed by the engine in its bounded queue (at most {}).",
                    crate::feeds::queue::ENGINE_QUEUE_EVENTS
                ),
            )?,
            http_connections: IntGauge::new(
                "bgpsentry_http_connections",
                "HTTP connections open now.",
            )?,
            http_connection_limit: IntGauge::new(
                "bgpsentry_http_connection_limit",
                "Most HTTP connections served at once (the file limit less a reserve for the store, notifier and feeds).",
            )?,
            http_connections_rejected: IntCounter::new(
                "bgpsentry_http_connections_rejected_total",
                "HTTP connections closed at once because the connection limit was reached.",
            )?,
            feed: FeedMetrics::new(&registry)?,
            bmp: crate::feeds::bmp::metrics::BmpMetrics::new(&registry)?,
            kafka: crate::feeds::kafka::metrics::KafkaMetrics::new(&registry)?,
            warm_start: crate::feeds::warm_start::WarmStartMetrics::register(&registry)?,
            scale_out: crate::feeds::events::metrics::ScaleOutMetrics::register(&registry)?,
            registry,
        };
        let build_info = IntGaugeVec::new(
            Opts::new(
                "bgpsentry_build_info",
                "Build information; the value is always 1.",
            ),
            &["version", "revision"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), GIT_REVISION])
            .set(1);
        let r = &m.registry;
        r.register(Box::new(build_info))?;
        // process_cpu_seconds_total, process_resident_memory_bytes, open file descriptors, …
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        r.register(Box::new(m.events.clone()))?;
        r.register(Box::new(m.events_matched.clone()))?;
        r.register(Box::new(m.alerts_firing.clone()))?;
        r.register(Box::new(m.alerts_fired.clone()))?;
        r.register(Box::new(m.alerts_resolved.clone()))?;
        // Every rule and severity exists at 0 from the start, so that increase() in the rules
        // sees the first alert of each.
        for rule in Rule::ALL {
            for severity in SEVERITIES {
                let labels = [rule.as_str(), severity.as_str()];
                m.alerts_fired.with_label_values(&labels);
                m.alerts_resolved.with_label_values(&labels);
            }
        }
        r.register(Box::new(m.prefix_vantage_points.clone()))?;
        r.register(Box::new(m.prefix_visibility_threshold.clone()))?;
        r.register(Box::new(m.prefix_origin_vantage_points.clone()))?;
        r.register(Box::new(m.prefix_upstream_vantage_points.clone()))?;
        r.register(Box::new(m.prefix_rpki_vantage_points.clone()))?;
        r.register(Box::new(m.watched_prefixes.clone()))?;
        r.register(Box::new(m.vantage_points.clone()))?;
        r.register(Box::new(m.routes.clone()))?;
        r.register(Box::new(m.processing_latency.clone()))?;
        r.register(Box::new(m.alert_visible.clone()))?;
        r.register(Box::new(m.invalid_input.clone()))?;
        r.register(Box::new(m.config_reloads.clone()))?;
        // Both results exist from the start, so rate() and alerts see a 0 before the first reload.
        m.config_reloads.with_label_values(&["ok"]);
        m.config_reloads.with_label_values(&["error"]);
        r.register(Box::new(m.config_last_reload_successful.clone()))?;
        r.register(Box::new(m.config_last_reload_success_timestamp.clone()))?;
        r.register(Box::new(m.store_commits.clone()))?;
        r.register(Box::new(m.store_errors.clone()))?;
        r.register(Box::new(m.restored_state_age.clone()))?;
        r.register(Box::new(m.engine_queue_batches.clone()))?;
        r.register(Box::new(m.engine_queue_events.clone()))?;
        r.register(Box::new(m.http_connections.clone()))?;
        r.register(Box::new(m.http_connection_limit.clone()))?;
        r.register(Box::new(m.http_connections_rejected.clone()))?;
        Ok(m)
    }

    /// Sets the visibility threshold of every watched prefix, dropping those no longer watched.
    pub fn set_visibility_thresholds<'a>(
        &self,
        prefixes: impl IntoIterator<Item = &'a crate::config::WatchedPrefix>,
    ) {
        self.prefix_visibility_threshold.reset();
        for p in prefixes {
            self.prefix_visibility_threshold
                .with_label_values(&[&p.prefix.to_string()])
                .set(i64::from(p.visibility_min_vantage_points));
        }
    }

    /// Creates a feed's route event counters at 0, and its failure and invalid-input counters
    /// for every reason, so that rates and increase() see its first events.
    pub fn init_feed(&self, feed: &str) {
        for kind in ["announce", "withdraw", "peer_down"] {
            self.events.with_label_values(&[feed, kind]);
        }
        self.events_matched.with_label_values(&[feed]);
        self.init_feed_reasons(feed);
    }

    /// Creates `bgpsentry_feed_errors_total` and `bgpsentry_invalid_input_total` at 0 for every
    /// reason of one feed connection (the feed, or `name/keyN` for an extra bgproutes key).
    pub fn init_feed_reasons(&self, name: &str) {
        for reason in FeedErrorReason::ALL {
            self.feed.errors.with_label_values(&[name, reason.as_str()]);
        }
        for reason in InvalidReason::ALL {
            self.invalid_input
                .with_label_values(&[name, reason.as_str()]);
        }
    }

    /// Counts an alert that fired (or was restored firing at start-up).
    pub fn alert_fired(&self, alert: &Alert, restored: bool) {
        let (rule, severity) = (alert.rule.as_str(), alert.severity.as_str());
        if !restored {
            self.alerts_fired.with_label_values(&[rule, severity]).inc();
        }
        self.alerts_firing
            .with_label_values(&[rule, severity, &alert_series_label(alert)])
            .inc();
    }

    /// Counts an alert that resolved; the firing series goes away with its last alert, so
    /// that resolved incidents leave no series behind.
    pub fn alert_resolved(&self, alert: &Alert) {
        let (rule, severity) = (alert.rule.as_str(), alert.severity.as_str());
        self.alerts_resolved
            .with_label_values(&[rule, severity])
            .inc();
        self.alert_handed_over(alert);
    }

    /// A firing alert went to another instance (scale-out): no longer firing here, and not
    /// resolved either.
    pub fn alert_handed_over(&self, alert: &Alert) {
        let (rule, severity) = (alert.rule.as_str(), alert.severity.as_str());
        let label = alert_series_label(alert);
        let labels = [rule, severity, label.as_str()];
        let firing = self.alerts_firing.with_label_values(&labels);
        firing.dec();
        if firing.get() <= 0 {
            let _ = self.alerts_firing.remove_label_values(&labels);
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# error encoding metrics: {e}\n"))
    }
}
