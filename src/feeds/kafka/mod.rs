//! The `kafka` feed: records of Kafka topics, read in a consumer group, as OpenBMP (a BMP
//! message behind OpenBMP's header, as RouteViews and OpenBMP collectors publish) or RIS Live
//! JSON.
//!
//! [`consumer`] is the Kafka client, independent of the records' format; [`openbmp`] and
//! [`decode`] turn a record into route events; [`offsets`] decides which offsets may be
//! committed; [`feed`] is the service's feed, [`stream`] what `bgpsentry stream` reads, and
//! [`metrics`] the per-feed series.
//!
//! Delivery is at-least-once: a batch's checkpoint comes back from the store thread once the
//! events of its records are applied and what they caused is written, and only then are the
//! records' offsets committed to the group.

pub mod consumer;
pub mod decode;
pub mod feed;
pub mod metrics;
pub mod offsets;
pub mod openbmp;
pub mod stream;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::{BmpRib, FeedConfig};
use crate::feeds::FeedContext;
use crate::feeds::handle::FeedHandle;

/// The RIB kinds whose routes become events unless `ribs:` says otherwise: what a peer sent
/// (the pre-policy Adj-RIB-In is what a collector's stream, RouteViews' for one, carries),
/// what the router accepted from it, and what it selected.
pub const DEFAULT_KAFKA_RIBS: [BmpRib; 3] =
    [BmpRib::AdjRibInPre, BmpRib::AdjRibInPost, BmpRib::LocRib];

/// Starts the consumer of a `kafka` feed.
pub fn spawn(name: String, cfg: &FeedConfig, ctx: FeedContext) -> JoinHandle<()> {
    let feed: Arc<str> = name.as_str().into();
    let settings = cfg.kafka_settings();
    if let Some(s) = &settings {
        ctx.metrics.kafka.init_feed(&name, s.format);
        if s.format == crate::config::KafkaFormat::Events {
            return spawn_events(name, s, ctx);
        }
    }
    let handle = FeedHandle::new(ctx, &name, feed, "kafka");
    let ribs = cfg
        .ribs
        .as_ref()
        .map(|r| r.value.clone())
        .unwrap_or_else(|| DEFAULT_KAFKA_RIBS.to_vec());
    tokio::spawn(async move {
        match settings {
            Some(s) => feed::run(handle, s, ribs).await,
            // Validation refuses such a config; this is only reached if it did not.
            None => warn!(feed = %name, "the kafka feed has no valid settings; it does not start"),
        }
    })
}

/// A `kafka` feed of `format: events`: a run instance of a scale-out deployment, which owns
/// partitions of the internal topic (see [`crate::feeds::events::consumer`]).
fn spawn_events(
    name: String,
    s: &crate::config::KafkaSettings,
    ctx: FeedContext,
) -> JoinHandle<()> {
    let password = match &s.sasl {
        Some(sasl) => match sasl.password.read() {
            Ok(p) => Some(p),
            Err(e) => {
                let message = format!("the SASL password: {}", e.0);
                return tokio::spawn(async move {
                    ctx.health.register(&name, "kafka");
                    warn!(feed = %name, "{message}");
                    ctx.health.update(&name, |h| h.last_error = Some(message));
                });
            }
        },
        None => None,
    };
    let client = consumer::client_config(&name, s, password.as_ref());
    let feed = crate::feeds::events::consumer::EventsFeed {
        name,
        // Validation requires exactly one topic for this format.
        topic: s.subscription.first().cloned().unwrap_or_default(),
        client,
    };
    crate::feeds::events::consumer::spawn(feed, ctx)
}
