//! The `bgpsentry_relay_*` families of `bgpsentry relay`.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// The relay's counters.
#[derive(Clone)]
pub struct RelayMetrics {
    /// Route events and peer downs written to the internal topic.
    pub relayed: IntCounter,
    /// Events dropped: no watched prefix covers them (or a loaded state, not relayed).
    pub filtered: IntCounter,
    /// Records the broker acknowledged.
    pub produced: IntCounter,
    /// Records the producer or the broker refused (each sent again).
    pub produce_errors: IntCounter,
}

impl RelayMetrics {
    /// Creates and registers the families, at 0.
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let events = IntCounterVec::new(
            Opts::new(
                "bgpsentry_relay_events_total",
                "Events the relay read from its feeds, by result (relayed or filtered).",
            ),
            &["result"],
        )?;
        let produced = IntCounter::new(
            "bgpsentry_relay_records_produced_total",
            "Records of the internal topic the broker acknowledged.",
        )?;
        let produce_errors = IntCounter::new(
            "bgpsentry_relay_produce_errors_total",
            "Records of the internal topic the producer or the broker refused (each sent again).",
        )?;
        r.register(Box::new(events.clone()))?;
        r.register(Box::new(produced.clone()))?;
        r.register(Box::new(produce_errors.clone()))?;
        Ok(RelayMetrics {
            relayed: events.with_label_values(&["relayed"]),
            filtered: events.with_label_values(&["filtered"]),
            produced,
            produce_errors,
        })
    }
}
