//! A Kafka consumer in a consumer group, independent of what the records hold: it connects with
//! a feed's brokers, subscription and security settings, yields [`Record`]s, and commits
//! offsets only when told to ([`Committer`]), so that whoever reads the records decides when a
//! record counts as done (at-least-once). Group events (rebalances, errors, commit results)
//! come out as [`Notice`]s; lag and connection state go straight to the metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::metrics::KafkaMetrics;
use crate::config::{KafkaSettings, Secret};
use crate::event::Timestamp;

/// How often librdkafka reports its statistics (consumer lag, broker states).
const STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

/// A topic and partition.
pub type Partition = (Arc<str>, i32);

/// One record, copied out of librdkafka's buffer.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its topic.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The producer's or the broker's time of the record, when set.
    pub timestamp: Option<Timestamp>,
}

/// What the group and the client report besides records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// These partitions are now this consumer's.
    Assigned(Vec<Partition>),
    /// These partitions are no longer this consumer's: offsets of their records can no longer
    /// be committed by it.
    Revoked(Vec<Partition>),
    /// A client-level error (brokers down, authentication failed, ...), already free of
    /// secrets.
    Error(String),
}

/// The librdkafka callbacks: statistics to metrics, everything else to [`Notice`]s.
struct Callbacks {
    feed: String,
    metrics: KafkaMetrics,
    notices: mpsc::UnboundedSender<Notice>,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<Partition> {
    tpl.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

impl ClientContext for Callbacks {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                warn!(feed = %self.feed, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(feed = %self.feed, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Debug => debug!(feed = %self.feed, "librdkafka {fac}: {message}"),
        }
    }

    fn stats(&self, stats: Statistics) {
        self.metrics.record_statistics(&self.feed, &stats);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka's reasons name brokers and mechanisms, never the password.
        let _ = self
            .notices
            .send(Notice::Error(format!("{error}: {reason}")));
    }
}

impl ConsumerContext for Callbacks {
    fn post_rebalance(&self, _: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let notice = match rebalance {
            Rebalance::Assign(tpl) => Notice::Assigned(partitions(tpl)),
            Rebalance::Revoke(tpl) => Notice::Revoked(partitions(tpl)),
            Rebalance::Error(e) => Notice::Error(format!("rebalance failed: {e}")),
        };
        let _ = self.notices.send(notice);
    }
}

/// A consumer in a group, subscribed to a feed's topics.
pub struct KafkaConsumer {
    inner: Arc<StreamConsumer<Callbacks>>,
    /// Topic names, shared by every record of the topic.
    topics: HashMap<String, Arc<str>>,
}

/// The [`Notice`]s of one consumer, in the order they happened.
pub type Notices = mpsc::UnboundedReceiver<Notice>;

/// Commits offsets of a [`KafkaConsumer`]'s group; cheap to clone.
///
/// Commits are made one after the other, synchronously, on a thread of their own, and their
/// results counted there: an asynchronous commit's result reaches librdkafka's commit callback
/// only through a queue a `StreamConsumer` does not serve (the commits were made, never
/// counted), and one thread keeps them in order, so a committed offset never moves back.
#[derive(Clone)]
pub struct Committer {
    requests: std::sync::mpsc::Sender<CommitRequest>,
}

/// Offsets to commit, and where to answer when the caller waits.
struct CommitRequest {
    offsets: TopicPartitionList,
    done: Option<std::sync::mpsc::Sender<Result<(), String>>>,
}

/// Makes the commits of one consumer until every [`Committer`] is dropped.
fn run_commits(
    consumer: Arc<StreamConsumer<Callbacks>>,
    requests: std::sync::mpsc::Receiver<CommitRequest>,
) {
    let (feed, metrics) = {
        let c = consumer.context();
        (c.feed.clone(), c.metrics.clone())
    };
    for req in requests {
        let result = match consumer.commit(&req.offsets, CommitMode::Sync) {
            Ok(()) => {
                metrics.commits.with_label_values(&[&feed]).inc();
                for e in req.offsets.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        metrics
                            .committed_offset
                            .with_label_values(&[&feed, e.topic(), &e.partition().to_string()])
                            .set(o);
                    }
                }
                Ok(())
            }
            Err(e) => {
                metrics.commit_errors.with_label_values(&[&feed]).inc();
                let e = format!("committing offsets failed: {e}");
                warn!(feed = %feed, "{e}");
                Err(e)
            }
        };
        if let Some(done) = req.done {
            let _ = done.send(result);
        }
    }
}

/// The librdkafka settings of a feed. `password` is the SASL password read from its source.
pub fn client_config(
    name: &str,
    settings: &KafkaSettings,
    password: Option<&Secret>,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", settings.brokers.join(","))
        .set("group.id", &settings.group)
        .set("client.id", format!("bgpsentry-{name}"))
        // Offsets are committed by the feed once the records' effects are stored.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", settings.start_from.as_str())
        .set(
            "statistics.interval.ms",
            STATISTICS_INTERVAL.as_millis().to_string(),
        )
        // A record over the limit is still fetched (and then skipped): a fetch must be able
        // to hold it, or the partition would stall on it.
        .set(
            "max.partition.fetch.bytes",
            settings.max_record_bytes.max(1024 * 1024).to_string(),
        );
    let protocol = match (settings.tls.is_some(), settings.sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    c.set("security.protocol", protocol);
    if let Some(tls) = &settings.tls {
        match &tls.ca_file {
            Some(ca) => c.set("ssl.ca.location", ca.display().to_string()),
            // The system's trusted roots.
            None => c.set("ssl.ca.location", "probe"),
        };
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            c.set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
    }
    if let Some(sasl) = &settings.sasl {
        c.set("sasl.mechanism", sasl.mechanism.as_str())
            .set("sasl.username", &sasl.username);
        if let Some(p) = password {
            c.set("sasl.password", p.expose());
        }
    }
    c
}

impl KafkaConsumer {
    /// Creates the consumer and subscribes it; the brokers are contacted in the background
    /// (errors come as [`Notice::Error`]). The SASL password is read from its source here.
    /// `name` names the client and the metrics' `feed` label.
    pub fn connect(
        name: &str,
        settings: &KafkaSettings,
        metrics: KafkaMetrics,
    ) -> Result<(Self, Notices), String> {
        let password = match &settings.sasl {
            Some(s) => Some(
                s.password
                    .read()
                    .map_err(|e| format!("the SASL password: {}", e.0))?,
            ),
            None => None,
        };
        let (tx, notices) = mpsc::unbounded_channel();
        let callbacks = Callbacks {
            feed: name.to_string(),
            metrics,
            notices: tx,
        };
        let inner: StreamConsumer<Callbacks> = client_config(name, settings, password.as_ref())
            .create_with_context(callbacks)
            // librdkafka's configuration errors name the key, not its value.
            .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
        let topics: Vec<&str> = settings.subscription.iter().map(String::as_str).collect();
        inner
            .subscribe(&topics)
            .map_err(|e| format!("cannot subscribe to {}: {e}", topics.join(", ")))?;
        Ok((
            KafkaConsumer {
                inner: Arc::new(inner),
                topics: HashMap::new(),
            },
            notices,
        ))
    }

    /// The next record. An error is one record's (or one fetch's) failure: the consumer goes
    /// on, and the caller decides whether to wait before asking again.
    pub async fn next(&mut self) -> Result<Record, String> {
        let m = self.inner.recv().await.map_err(|e| e.to_string())?;
        let topic = match self.topics.get(m.topic()) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(m.topic());
                self.topics.insert(m.topic().to_string(), t.clone());
                t
            }
        };
        let timestamp = m
            .timestamp()
            .to_millis()
            .filter(|ms| *ms > 0)
            .map(|ms| Timestamp(ms.saturating_mul(1000)));
        Ok(Record {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp,
        })
    }

    /// A handle that commits this consumer's offsets.
    pub fn committer(&self) -> Committer {
        let (requests, rx) = std::sync::mpsc::channel();
        let consumer = self.inner.clone();
        let started = std::thread::Builder::new()
            .name("kafka-commit".to_string())
            .spawn(move || run_commits(consumer, rx));
        if let Err(e) = started {
            // Without the thread every commit fails, is counted and logged.
            warn!("cannot start the offset committer: {e}");
        }
        Committer { requests }
    }
}

impl Committer {
    /// Commits, for each partition, `next`: the offset of the first record not yet done (the
    /// Kafka convention). Queued without waiting; the result is counted when the coordinator
    /// answers. Offsets of partitions no longer assigned fail there and are counted as errors.
    pub fn commit(&self, next: &[(Partition, i64)]) -> Result<(), String> {
        if next.is_empty() {
            return Ok(());
        }
        self.requests
            .send(CommitRequest {
                offsets: offset_list(next)?,
                done: None,
            })
            .map_err(|_| "committing offsets failed: the committer has stopped".to_string())
    }

    /// Commits after every commit queued before, and waits for the coordinator's answer (at
    /// shutdown).
    pub fn commit_and_wait(&self, next: &[(Partition, i64)]) -> Result<(), String> {
        if next.is_empty() {
            return Ok(());
        }
        let (done, answer) = std::sync::mpsc::channel();
        self.requests
            .send(CommitRequest {
                offsets: offset_list(next)?,
                done: Some(done),
            })
            .map_err(|_| "committing offsets failed: the committer has stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "committing offsets failed: the committer has stopped".to_string())?
    }
}

/// The offsets as librdkafka takes them.
fn offset_list(next: &[(Partition, i64)]) -> Result<TopicPartitionList, String> {
    let mut tpl = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| format!("offset {offset} of {topic}/{partition}: {e}"))?;
    }
    Ok(tpl)
}
