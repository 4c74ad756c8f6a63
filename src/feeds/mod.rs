//! Feeds: sources of BGP data, turned into [`FeedEvent`]s and handed to the engine in batches.
//!
//! One folder per source ([`ris_live`], [`bgproutes`], [`mrt`], [`bmp`], [`kafka`]) holds its parser, its
//! connection and what `bgpsentry stream` prints for it. What they share sits here: the
//! [`error`] reasons and size limits, the [`fields`] and [`json`] pieces their parsers use, the
//! [`websocket`] loop of the live feeds and their [`handle`] on health and metrics, the
//! [`admit`] checks every event passes, the [`queue`] to the engine and the [`checkpoint`]s
//! that tell a feed its input is stored.

pub mod admit;
pub mod bgproutes;
pub mod bmp;
pub mod checkpoint;
pub mod error;
pub mod events;
pub mod fields;
pub mod handle;
pub mod json;
pub mod kafka;
pub mod mrt;
pub mod queue;
pub mod ris_live;
pub mod warm_start;
pub mod websocket;

use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{FeedConfig, FeedKind};
use crate::event::FeedEvent;
use crate::health::Health;
use crate::metrics::Metrics;

/// Events from one feed, handed to the engine together.
#[derive(Debug)]
pub struct Batch {
    /// The feed's name.
    pub feed: Arc<str>,
    /// The events, in feed order.
    pub events: Vec<FeedEvent>,
    /// When the feed received them (for the processing latency).
    pub received: Instant,
    /// Acknowledged once these events, and those of every batch before, are durably stored
    /// (feeds that commit their input's position, like Kafka consumers).
    pub checkpoint: Option<checkpoint::Checkpoint>,
}

/// What a feed task gets: where to send events, where to report health, when to stop.
#[derive(Clone)]
pub struct FeedContext {
    /// The engine's queue, bounded by events: sending waits while it is full.
    pub events: queue::EventSender,
    /// Feed health for `/readyz` and `/metrics`.
    pub health: Health,
    /// Metrics registry and core metrics.
    pub metrics: Metrics,
    /// Becomes true when the service shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// The watched prefixes, to subscribe to.
    pub prefixes: Vec<IpNet>,
}

/// Starts a feed; the task ends when the feed is done or the service shuts down.
pub fn spawn(cfg: &FeedConfig, ctx: FeedContext) -> JoinHandle<()> {
    let name = cfg.name();
    // A feed added by a reload gets its counters here, at 0, like those configured at start.
    ctx.metrics.init_feed(&name);
    match cfg.kind.value {
        FeedKind::Mrt => mrt::feed::spawn(name, cfg.files.clone(), ctx),
        FeedKind::RisLive => ris_live::spawn(name, cfg, ctx),
        FeedKind::Bmp => bmp::spawn(name, cfg, ctx),
        FeedKind::Kafka => kafka::spawn(name, cfg, ctx),
        FeedKind::Bgproutes => {
            // One connection per API key; the feed's task waits for all of them.
            let tasks = bgproutes::spawn(name, cfg, ctx);
            tokio::spawn(async move {
                for t in tasks {
                    let _ = t.await;
                }
            })
        }
    }
}
