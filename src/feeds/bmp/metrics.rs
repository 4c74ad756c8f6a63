//! The BMP listener's own metrics, by router: registered once with the core metrics so that
//! a listener restarted by a reload keeps counting in the same series.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Why a router's connection was refused before a message was read.
pub const REJECT_REASONS: [&str; 2] = ["not_allowed", "limit"];

/// Why a router's connection ended or a message was not used (`reason` of the error counter).
pub const ERROR_REASONS: [&str; 6] = [
    "bad_version",
    "bad_length",
    "oversized",
    "truncated",
    "read",
    "bmp_message",
];

/// Per-router BMP metrics.
#[derive(Clone)]
pub struct BmpMetrics {
    /// 1 while the router is connected.
    pub connected: IntGaugeVec,
    /// Messages by type.
    pub messages: IntCounterVec,
    /// Peers up.
    pub peers_up: IntGaugeVec,
    /// Unix time of the router's last message.
    pub last_message: GaugeVec,
    /// Errors by reason.
    pub errors: IntCounterVec,
    /// Connections refused, by reason.
    pub rejected: IntCounterVec,
    /// Routers disconnected whose routes are held.
    pub held: IntGaugeVec,
    /// Statistics Report counters.
    pub statistics: GaugeVec,
}

impl BmpMetrics {
    /// Creates the families and registers them on `r`.
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = BmpMetrics {
            connected: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_bmp_router_connected",
                    "1 while the router's BMP session is connected, else 0.",
                ),
                &["feed", "router"],
            )?,
            messages: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_bmp_messages_total",
                    "BMP messages received from the router, by message type.",
                ),
                &["feed", "router", "type"],
            )?,
            peers_up: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_bmp_peers_up",
                    "BGP peers of the router that are up (Peer Up without Peer Down).",
                ),
                &["feed", "router"],
            )?,
            last_message: GaugeVec::new(
                Opts::new(
                    "bgpsentry_bmp_router_last_message_timestamp_seconds",
                    "Unix time at which the router last sent a BMP message.",
                ),
                &["feed", "router"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_bmp_router_errors_total",
                    "BMP messages of the router that could not be used or ended its connection, by reason.",
                ),
                &["feed", "router", "reason"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "bgpsentry_bmp_connections_rejected_total",
                    "BMP connections refused: from an address not in `routers:`, or over `max_routers`.",
                ),
                &["feed", "reason"],
            )?,
            held: IntGaugeVec::new(
                Opts::new(
                    "bgpsentry_bmp_routers_held",
                    "Disconnected routers whose routes are kept until they reconnect or the hold time ends.",
                ),
                &["feed"],
            )?,
            statistics: GaugeVec::new(
                Opts::new(
                    "bgpsentry_bmp_statistic",
                    "Last value of a BMP Statistics Report counter, by peer and IANA statistics type (type/AFI/SAFI for per-family ones).",
                ),
                &["feed", "router", "peer", "stat"],
            )?,
        };
        r.register(Box::new(m.connected.clone()))?;
        r.register(Box::new(m.messages.clone()))?;
        r.register(Box::new(m.peers_up.clone()))?;
        r.register(Box::new(m.last_message.clone()))?;
        r.register(Box::new(m.errors.clone()))?;
        r.register(Box::new(m.rejected.clone()))?;
        r.register(Box::new(m.held.clone()))?;
        r.register(Box::new(m.statistics.clone()))?;
        Ok(m)
    }

    /// The feed's series that exist before any router connects.
    pub fn init_feed(&self, feed: &str) {
        for reason in REJECT_REASONS {
            self.rejected.with_label_values(&[feed, reason]);
        }
        self.held.with_label_values(&[feed]);
    }

    /// A router's series, at 0, when it first connects.
    pub fn init_router(&self, feed: &str, router: &str) {
        for kind in super::session::KINDS {
            self.messages.with_label_values(&[feed, router, kind]);
        }
        for reason in ERROR_REASONS {
            self.errors.with_label_values(&[feed, router, reason]);
        }
    }
}
