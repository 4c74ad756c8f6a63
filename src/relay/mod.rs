//! `bgpsentry relay`: the first stage of a scale-out deployment. It reads the configured feeds
//! (the raw Kafka topics, in any of the `kafka` feed's formats, or any other feed), keeps the
//! route events of watched prefixes and their more-specifics (and every peer down), and writes
//! them, normalised ([`crate::feeds::events::codec`]), to the internal topic, each on the
//! partition of its root watched prefix ([`crate::feeds::events::partition`]).
//!
//! At-least-once: a batch of the feeds is acknowledged (its input offsets committed) only
//! after the broker acknowledged every record made of it; a record the broker refuses is sent
//! again until it takes it, so a relay that dies resends, never loses.

mod http;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tracing::{info, warn};

use crate::event::FeedEvent;
use crate::feeds::events::codec;
use crate::feeds::events::partition::{Partitioner, partition_of};

pub use http::serve;
pub use metrics::RelayMetrics;

/// How long a broker request at start-up may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait between two attempts to write a batch the broker refused.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Writes events to the internal topic.
pub struct Relay {
    producer: FutureProducer,
    topic: String,
    partitions: u32,
    partitioner: Partitioner,
    metrics: RelayMetrics,
    buf: Vec<u8>,
}

/// One record to write: its partition, key and value.
struct Record {
    partition: i32,
    key: Option<String>,
    value: Vec<u8>,
}

impl Relay {
    /// A relay writing to `topic` through a producer made of `client` (brokers, security).
    /// The topic must exist: its partition count is read once, and every relay and instance
    /// must see the same count.
    pub fn new(
        client: &ClientConfig,
        topic: &str,
        partitioner: Partitioner,
        metrics: RelayMetrics,
    ) -> Result<Self, String> {
        let mut client = client.clone();
        client
            // The broker acknowledges a record once every in-sync replica holds it, and a
            // retried record is not written twice.
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("compression.type", "none");
        let producer: FutureProducer = client
            .create()
            .map_err(|e| format!("creating the Kafka producer: {e}"))?;
        let md = producer
            .client()
            .fetch_metadata(Some(topic), BROKER_TIMEOUT)
            .map_err(|e| format!("reading the metadata of topic {topic}: {e}"))?;
        let partitions = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!(
                    "topic {topic} does not exist: create it with as many partitions as run \
                     instances may ever be (see docs: scale-out, sizing)"
                )
            })?;
        info!("relaying to topic {topic} ({partitions} partitions)");
        Ok(Relay {
            producer,
            topic: topic.to_string(),
            partitions: partitions as u32,
            partitioner,
            metrics,
            buf: Vec::new(),
        })
    }

    /// The records that `events` make: route events of watched prefixes on their root's
    /// partition, peer downs on every partition, the rest counted as filtered.
    fn records(&mut self, events: &[FeedEvent]) -> Vec<Record> {
        let mut out = Vec::new();
        for ev in events {
            match ev {
                FeedEvent::Route(r) => {
                    let Some(root) = self.partitioner.root(&r.prefix) else {
                        self.metrics.filtered.inc();
                        continue;
                    };
                    if !codec::encode(ev, &mut self.buf) {
                        self.metrics.filtered.inc();
                        continue;
                    }
                    self.metrics.relayed.inc();
                    out.push(Record {
                        partition: partition_of(&root, self.partitions) as i32,
                        key: Some(root.to_string()),
                        value: self.buf.clone(),
                    });
                }
                FeedEvent::PeerDown { .. } => {
                    if !codec::encode(ev, &mut self.buf) {
                        continue;
                    }
                    // The VP may have routes of any root: every partition must hear of it.
                    self.metrics.relayed.inc();
                    for p in 0..self.partitions {
                        out.push(Record {
                            partition: p as i32,
                            key: None,
                            value: self.buf.clone(),
                        });
                    }
                }
                // A feed's warm start is not relayed: the instances rebuild from the topic.
                FeedEvent::Loaded(_) | FeedEvent::HandOver(_) => self.metrics.filtered.inc(),
            }
        }
        out
    }

    /// Writes the records of `events` and returns once the broker acknowledged every one,
    /// resending refused ones with a growing pause; false when `stop` ended the wait first.
    pub async fn relay(
        &mut self,
        events: &[FeedEvent],
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let mut records = self.records(events);
        let mut backoff = Duration::from_millis(100);
        while !records.is_empty() {
            let failed = self.write(records).await;
            if failed.is_empty() {
                break;
            }
            warn!(
                "{} records not acknowledged by the broker; sending them again in {} ms",
                failed.len(),
                backoff.as_millis()
            );
            records = failed;
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        true
    }

    /// Hands the records to the producer and waits for their acknowledgements; returns the
    /// refused ones.
    async fn write(&self, records: Vec<Record>) -> Vec<Record> {
        let mut sent: Vec<(Record, DeliveryFuture)> = Vec::with_capacity(records.len());
        let mut failed = Vec::new();
        for rec in records {
            loop {
                let mut fr = FutureRecord::<str, [u8]>::to(&self.topic)
                    .partition(rec.partition)
                    .payload(&rec.value);
                if let Some(k) = &rec.key {
                    fr = fr.key(k.as_str());
                }
                match self.producer.send_result(fr) {
                    Ok(delivery) => {
                        sent.push((rec, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // The producer's queue is full: wait for the oldest acknowledgement.
                        self.settle(&mut sent, &mut failed, 1).await;
                        if sent.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    Err((e, _)) => {
                        warn!("producing to {}: {e}", self.topic);
                        self.metrics.produce_errors.inc();
                        failed.push(rec);
                        break;
                    }
                }
            }
        }
        let n = sent.len();
        self.settle(&mut sent, &mut failed, n).await;
        failed
    }

    /// Waits for the first `n` acknowledgements of `sent`.
    async fn settle(
        &self,
        sent: &mut Vec<(Record, DeliveryFuture)>,
        failed: &mut Vec<Record>,
        n: usize,
    ) {
        for (rec, delivery) in sent.drain(..n.min(sent.len())) {
            match delivery.await {
                Ok(Ok(_)) => self.metrics.produced.inc(),
                Ok(Err((e, _))) => {
                    warn!("the broker refused a record for {}: {e}", self.topic);
                    self.metrics.produce_errors.inc();
                    failed.push(rec);
                }
                Err(_) => {
                    self.metrics.produce_errors.inc();
                    failed.push(rec);
                }
            }
        }
    }

    /// Waits until the producer has handed over everything queued (at shutdown).
    pub fn flush(&self) {
        let _ = self.producer.flush(BROKER_TIMEOUT);
    }
}

/// The relay's view of the world, for `/readyz`.
#[derive(Clone, Default)]
pub struct RelayState {
    /// The feeds' health.
    pub health: crate::health::Health,
    /// Set once the producer reached the broker and the topic exists.
    pub producing: Arc<std::sync::atomic::AtomicBool>,
}

/// Events queued between the feeds and the producer (as the service's engine queue bounds them).
const QUEUE_EVENTS: usize = 64 * 1024;

/// Runs the relay of `cfg` (which has a `relay:` section) until a signal, or until its feeds
/// end (a relay of MRT files stops once they are relayed).
pub async fn run(
    cfg: crate::config::Config,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;

    use anyhow::Context as _;

    let rc = cfg
        .relay
        .clone()
        .context("the config has no `relay:` section")?;
    let metrics = crate::metrics::Metrics::new().context("registering the metrics")?;
    let relay_metrics =
        RelayMetrics::register(&metrics.registry).context("registering the metrics")?;
    let health = crate::health::Health::with_metrics(metrics.feed.clone());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let state = RelayState {
        health: health.clone(),
        producing: Arc::default(),
    };
    let addr = listen.unwrap_or(rc.listen);
    // The server stops when the relay does, whether a signal or the end of its feeds ends it.
    let (http_stop_tx, http_stop) = tokio::sync::watch::channel(false);
    let (bound, http) = serve(&addr.to_string(), metrics.clone(), state.clone(), http_stop)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    info!(address = %bound, "listening on http://{bound}");

    let password = match &rc.sasl {
        Some(s) => Some(
            s.password
                .read()
                .map_err(|e| anyhow::anyhow!("relay.sasl.password: {}", e.0))?,
        ),
        None => None,
    };
    let mut client = crate::feeds::kafka::consumer::client_config(
        "relay",
        &rc.kafka_settings(),
        password.as_ref(),
    );
    for consumer_only in [
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "max.partition.fetch.bytes",
        // The producer's statistics would only be logged.
        "statistics.interval.ms",
    ] {
        client.remove(consumer_only);
    }
    let partitioner = Partitioner::new(cfg.prefixes.iter().map(|p| p.prefix));
    // The broker may start after the relay (compose): wait for it, and for the topic.
    let mut relay = {
        let mut delay = Duration::from_secs(1);
        let mut stop = stop.clone();
        loop {
            let made = {
                let (client, topic, partitioner, m) = (
                    client.clone(),
                    rc.topic.value.clone(),
                    partitioner.clone(),
                    relay_metrics.clone(),
                );
                tokio::task::spawn_blocking(move || Relay::new(&client, &topic, partitioner, m))
                    .await
                    .context("the producer's start-up")?
            };
            match made {
                Ok(r) => break r,
                Err(e) => {
                    warn!("{e}; trying again in {} s", delay.as_secs());
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    };
    state.producing.store(true, Ordering::Release);

    let (events, mut queue) = crate::feeds::queue::engine_queue(QUEUE_EVENTS);
    let ctx = crate::feeds::FeedContext {
        events,
        health,
        metrics: metrics.clone(),
        shutdown: stop.clone(),
        prefixes: cfg.prefixes.iter().map(|p| p.prefix).collect(),
    };
    let mut feeds = Vec::new();
    for f in &cfg.feeds {
        feeds.push(crate::feeds::spawn(f, ctx.clone()));
    }
    // The feeds hold the only senders now: the queue ends when they all do.
    drop(ctx);
    let mut stopping = stop.clone();
    loop {
        let queued = tokio::select! {
            q = queue.recv() => q,
            _ = stopping.wait_for(|s| *s) => None,
        };
        let Some(mut queued) = queued else { break };
        if !relay.relay(&queued.batch.events, &mut stopping).await {
            break;
        }
        // Every record of the batch is acknowledged: its input may be committed.
        if let Some(c) = queued.batch.checkpoint.take() {
            c.acknowledge();
        }
    }
    relay.flush();
    for f in feeds {
        f.abort();
    }
    let _ = http_stop_tx.send(true);
    let _ = http.await;
    info!("relay stopped");
    Ok(())
}

/// Waits for SIGTERM or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
