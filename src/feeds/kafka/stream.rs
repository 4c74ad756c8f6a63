//! What `bgpsentry stream --feed kafka` reads: the records of some topics, decoded like the
//! feed decodes them, printed without the service. It joins its own consumer group and commits
//! nothing, so it never moves the service's offsets.

use ipnet::IpNet;
use tokio::sync::mpsc;
use tracing::warn;

use super::consumer::KafkaConsumer;
use super::decode::{Decoded, Decoder};
use super::metrics::KafkaMetrics;
use crate::config::{BmpRib, KafkaSettings};
use crate::event::{FeedEvent, Timestamp};
use crate::feeds::bgproutes::stream::BgpLiveMsg;
use crate::feeds::bmp::stream::live_msgs;

/// Whether an event's prefix is one of `prefixes` or more specific.
fn wanted(prefixes: &[IpNet], ev: &FeedEvent) -> bool {
    match ev {
        FeedEvent::Route(r) => prefixes.iter().any(|p| p.contains(&r.prefix)),
        FeedEvent::PeerDown { .. } | FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => false,
    }
}

/// Reads and hands every printed line to `out` until it is closed.
pub async fn run(
    settings: KafkaSettings,
    ribs: Vec<BmpRib>,
    prefixes: Vec<IpNet>,
    out: mpsc::Sender<BgpLiveMsg>,
) -> Result<(), String> {
    // Its counters go nowhere: there is no scrape.
    let metrics = KafkaMetrics::new(&prometheus::Registry::new())
        .map_err(|e| format!("cannot create the metrics: {e}"))?;
    let (mut consumer, mut notices) = KafkaConsumer::connect("stream", &settings, metrics)?;
    eprintln!(
        "reading {} from {}",
        settings.subscription.join(", "),
        settings.brokers.join(", ")
    );
    let mut decoder = Decoder::new(settings.format, "kafka".into(), ribs);
    loop {
        let record = tokio::select! {
            r = consumer.next() => r,
            Some(n) = notices.recv() => {
                if let super::consumer::Notice::Error(e) = n {
                    warn!("{e}");
                }
                continue;
            }
            _ = out.closed() => return Ok(()),
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                warn!("reading a record failed: {e}");
                continue;
            }
        };
        let received = record.timestamp.unwrap_or_else(Timestamp::now);
        let events = match decoder.decode(
            record.payload.as_deref(),
            settings.max_record_bytes,
            received,
        ) {
            Decoded::Events(mut events, _) => {
                events.retain(|e| wanted(&prefixes, e));
                events
            }
            Decoded::Malformed(bad) | Decoded::Oversized(bad) => {
                warn!(
                    "record {}/{}@{}: {bad}",
                    record.topic, record.partition, record.offset
                );
                continue;
            }
            Decoded::Skipped(_) | Decoded::Empty => continue,
        };
        for m in live_msgs(&events) {
            if out.send(m).await.is_err() {
                return Ok(());
            }
        }
    }
}
