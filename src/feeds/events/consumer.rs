//! A `kafka` feed of `format: events`: one `run` instance of a scale-out deployment, owning the
//! partitions of the internal topic that its consumer group gives it.
//!
//! On an assignment, each partition new to this instance is **rebuilt** before it is judged:
//! its records from the beginning of the retained topic up to the group's committed offset
//! are read into one route table (withdrawals and peer downs applied), which reaches the
//! engine as one loaded state (a table dump: learned, then judged once as a whole, see
//! [`crate::engine::Engine::load_state`]). The group consumer then goes on from the committed
//! offset, and what follows is judged as it comes, the partitions' records merged back into
//! event-time order (see [`super::merge`]). `/readyz` is not ready while a partition is
//! rebuilt. A partition with no committed offset (a new group) is rebuilt up to its end.
//!
//! On a revocation, the partitions' prefixes are handed over: the engine drops their state and
//! their firing alerts without resolving them (see [`crate::engine::Engine::hand_over`]).
//! Offsets are committed after every revocation and every second: whatever this instance had
//! not judged when it died is rebuilt into the state the next owner starts from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList as Tpl};

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::codec::Decoder;
use super::merge::Merge;
use super::metrics::FeedScaleOut;
use super::partition::Partitioner;
use crate::event::{
    FeedEvent, HandOver, LoadedState, RouteChange, RouteEvent, Timestamp, VantagePoint,
};
use crate::feeds::{Batch, FeedContext};
use crate::health::WarmStartHealth;

/// How long a broker request of a rebalance or a rebuild may take before it is given up.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the group waits for a silent member before it rebalances without it: an instance
/// that dies is noticed after this long. Also how long a revocation waits for the assignment
/// that follows it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Events handed to the engine at once.
const BATCH_EVENTS: usize = 1024;

/// What the group gave or took, noted by the rebalance callback for the feed's loop.
#[derive(Debug)]
enum Change {
    /// Partitions assigned, each with the offset the group consumer starts from.
    Assigned(Vec<(i32, i64)>),
    /// Partitions taken away.
    Revoked(Vec<i32>),
}

/// The consumer's context: runs the rebalances, reports lag and connection state.
struct Rebalancer {
    feed: String,
    topic: String,
    changes: Mutex<Vec<Change>>,
    metrics: crate::feeds::kafka::metrics::KafkaMetrics,
    health: crate::health::Health,
}

impl ClientContext for Rebalancer {
    fn error(&self, error: KafkaError, reason: &str) {
        // A partition read to its end is news for the poll loop (`merge`), not an error.
        if matches!(
            error,
            KafkaError::Global(rdkafka::error::RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        // librdkafka's reasons name brokers and mechanisms, never the password.
        warn!(feed = %self.feed, "kafka: {error}: {reason}");
        let message = format!("{error}: {reason}");
        self.health.update(&self.feed, |h| {
            if message.contains("brokers are down") {
                h.connected = false;
            }
            h.last_error = Some(message);
        });
    }

    fn stats(&self, stats: rdkafka::Statistics) {
        self.metrics.record_statistics(&self.feed, &stats);
    }
}

impl ConsumerContext for Rebalancer {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let change = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // Each partition starts at the group's committed offset, or at its end when the
                // group never committed one: everything before is rebuilt, not judged again.
                let committed = consumer
                    .committed_offsets(tpl.clone(), BROKER_TIMEOUT)
                    .unwrap_or_else(|_| tpl.clone());
                let mut assign = Tpl::new();
                let mut starts = Vec::new();
                for e in committed.elements() {
                    let p = e.partition();
                    let start = match e.offset() {
                        Offset::Offset(o) => o,
                        _ => consumer
                            .fetch_watermarks(&self.topic, p, BROKER_TIMEOUT)
                            .map(|(_, high)| high)
                            .unwrap_or(0),
                    };
                    let _ = assign.add_partition_offset(&self.topic, p, Offset::Offset(start));
                    starts.push((p, start));
                }
                if let Err(e) = consumer.assign(&assign) {
                    warn!("kafka events feed: assigning partitions {partitions:?}: {e}");
                }
                Change::Assigned(starts)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // What this instance judged is the next owner's starting point.
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    // Nothing consumed yet since the last commit is not an error.
                    if !matches!(
                        e,
                        KafkaError::ConsumerCommit(rdkafka::error::RDKafkaErrorCode::NoOffset)
                    ) {
                        warn!("kafka events feed: committing before a revocation: {e}");
                    }
                }
                let _ = consumer.unassign();
                Change::Revoked(partitions)
            }
            other => {
                warn!("kafka events feed: rebalance failed: {other:?}");
                let _ = consumer.unassign();
                Change::Revoked(partitions)
            }
        };
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(change);
    }
}

/// What the feed needs besides the service's context.
pub struct EventsFeed {
    /// Feed name (health, metrics).
    pub name: String,
    /// The internal topic.
    pub topic: String,
    /// The client settings (brokers, security, `group.id`), from the feed's config.
    pub client: ClientConfig,
}

/// Starts the feed on a thread of its own (the consumer's calls block).
pub fn spawn(feed: EventsFeed, ctx: FeedContext) -> JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || run(feed, ctx, runtime))
}

fn run(feed: EventsFeed, ctx: FeedContext, runtime: tokio::runtime::Handle) {
    let name: Arc<str> = feed.name.as_str().into();
    ctx.health.register(&feed.name, "kafka");
    ctx.metrics.init_feed_reasons(&feed.name);
    let metrics = ctx.metrics.scale_out.feed(&feed.name);
    let mut client = feed.client.clone();
    client
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "true")
        // Eager: every rebalance revokes everything first, so a partition's old owner has
        // committed and handed it over before the new owner reads the committed offset.
        .set("partition.assignment.strategy", "range")
        .set(
            "session.timeout.ms",
            SESSION_TIMEOUT.as_millis().to_string(),
        )
        .set("heartbeat.interval.ms", "1000")
        // Each partition's end is reported: a partition read to its end holds back no other's
        // records (see `merge`).
        .set("enable.partition.eof", "true");
    let context = Rebalancer {
        feed: feed.name.clone(),
        topic: feed.topic.clone(),
        changes: Mutex::default(),
        metrics: ctx.metrics.kafka.clone(),
        health: ctx.health.clone(),
    };
    let records = |result: &str| {
        ctx.metrics
            .kafka
            .records
            .with_label_values(&[&feed.name, "events", result])
    };
    let (records_ok, records_malformed, records_empty) =
        (records("ok"), records("malformed"), records("empty"));
    let consumer: BaseConsumer<Rebalancer> = match client.create_with_context(context) {
        Ok(c) => c,
        Err(e) => {
            set_error(
                &ctx,
                &feed.name,
                &format!("creating the Kafka consumer: {e}"),
            );
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[&feed.topic]) {
        set_error(
            &ctx,
            &feed.name,
            &format!("subscribing to {}: {e}", feed.topic),
        );
        return;
    }
    let partitioner = Partitioner::new(ctx.prefixes.iter().copied());
    // Whatever a previous run of this instance saved is no longer its own: the group decides.
    let all: Vec<IpNet> = vec![
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpNet::V6(ipnet::Ipv6Net::default()),
    ];
    send(&runtime, &ctx, &name, vec![hand_over(all)]);
    let mut decoder = Decoder::default();
    let mut owned = Owned {
        partitions: Vec::new(),
        count: 0,
        revoked: Vec::new(),
        revoked_at: Instant::now(),
    };
    let mut merge = Merge::default();
    // The roots of each partition, by (partition, partition count), for scoping peer downs.
    let mut roots_of: HashMap<(i32, u32), Arc<[IpNet]>> = HashMap::new();
    let mut ready: Vec<FeedEvent> = Vec::new();
    let hand_over_of = |owned: &Owned, ps: &[i32]| -> FeedEvent {
        let scope: Vec<IpNet> = ps
            .iter()
            .flat_map(|p| partitioner.roots_of(*p as u32, owned.count))
            .collect();
        info!(
            feed = %name,
            "partitions {ps:?} went to another instance: {} watched prefixes handed over",
            scope.len()
        );
        hand_over(scope)
    };
    let on_change = |owned: &mut Owned, merge: &mut Merge| {
        let changes = std::mem::take(
            &mut *consumer
                .context()
                .changes
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if changes.is_empty() {
            // A revocation that no assignment followed (the group lost this member): what it
            // held is someone else's now.
            if !owned.revoked.is_empty() && owned.revoked_at.elapsed() > SESSION_TIMEOUT {
                let gone = std::mem::take(&mut owned.revoked);
                send(&runtime, &ctx, &name, vec![hand_over_of(owned, &gone)]);
            }
            return;
        }
        // What was read before the rebalance goes first.
        let mut before = Vec::new();
        merge.drain(&mut before);
        send(&runtime, &ctx, &name, before);
        for change in changes {
            metrics.rebalances.inc();
            ctx.health.update(&feed.name, |h| {
                h.connected = true;
                h.last_error = None;
            });
            match change {
                Change::Revoked(ps) => {
                    // Eager rebalancing revokes everything, then assigns: a partition that
                    // comes back is kept as it is; one that does not is handed over then.
                    owned.partitions.retain(|p| !ps.contains(p));
                    owned.revoked.extend(ps);
                    owned.revoked_at = Instant::now();
                }
                Change::Assigned(starts) => {
                    if let Some(n) = partition_count(&consumer, &feed.topic) {
                        owned.count = n;
                    }
                    let kept: Vec<i32> = owned
                        .revoked
                        .iter()
                        .copied()
                        .filter(|p| starts.iter().any(|s| s.0 == *p))
                        .collect();
                    let gone: Vec<i32> = owned
                        .revoked
                        .iter()
                        .copied()
                        .filter(|p| !kept.contains(p))
                        .collect();
                    owned.revoked.clear();
                    if !gone.is_empty() {
                        send(&runtime, &ctx, &name, vec![hand_over_of(owned, &gone)]);
                    }
                    let rebuild_of = Rebuild {
                        feed: &feed,
                        ctx: &ctx,
                        runtime: &runtime,
                        name: &name,
                        metrics: &metrics,
                        partitioner: &partitioner,
                        partitions: owned.count,
                    };
                    for &(p, end) in &starts {
                        owned.partitions.push(p);
                        if !kept.contains(&p) {
                            rebuild_of.run(p, end);
                        }
                    }
                    owned.partitions.sort_unstable();
                    owned.partitions.dedup();
                    info!(
                        feed = %name,
                        "partitions {:?} assigned ({kept:?} kept, the others rebuilt); owned now {:?}",
                        starts.iter().map(|s| s.0).collect::<Vec<_>>(),
                        owned.partitions
                    );
                }
            }
            metrics.partitions_owned.set(owned.partitions.len() as i64);
            ctx.metrics
                .kafka
                .partitions
                .with_label_values(&[&feed.name])
                .set(owned.partitions.len() as i64);
        }
        // Every partition owned now is read from its committed offset: none is known to be at
        // its end, and none is paused.
        merge.reset(&owned.partitions);
        let _ = consumer.resume(&topic_partitions(&feed.topic, &owned.partitions));
    };
    while !*ctx.shutdown.borrow() {
        // Waits for the first record (less long while records wait for a silent partition),
        // then takes what is there at once, up to a batch.
        let mut wait = if merge.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(10)
        };
        while merge.len() < BATCH_EVENTS {
            let msg = consumer.poll(wait);
            wait = Duration::ZERO;
            // A record of a partition just assigned must come after its rebuild.
            on_change(&mut owned, &mut merge);
            match msg {
                Some(Ok(m)) => match m.payload().map(|v| {
                    // The same sane window of event times as every feed's events pass.
                    decoder.decode(v).and_then(|ev| {
                        let at = crate::feeds::admit::event_time(&ev);
                        crate::feeds::admit::check_time(at, Timestamp::now()).map(|()| ev)
                    })
                }) {
                    Some(Ok(ev)) => {
                        records_ok.inc();
                        let ev = match ev {
                            // Every partition carries its own copy of a peer down: each copy
                            // withdraws the routes of its partition only, when it comes in
                            // that partition's order.
                            FeedEvent::PeerDown { timestamp, vp, .. } => {
                                let count = owned.count.max(1);
                                let roots = roots_of
                                    .entry((m.partition(), count))
                                    .or_insert_with(|| {
                                        let mut r =
                                            partitioner.roots_of(m.partition() as u32, count);
                                        r.sort_unstable();
                                        r.into()
                                    })
                                    .clone();
                                FeedEvent::PeerDown {
                                    timestamp,
                                    vp,
                                    within: Some(roots),
                                }
                            }
                            other => other,
                        };
                        merge.push(m.partition(), ev);
                    }
                    Some(Err(bad)) => {
                        records_malformed.inc();
                        ctx.metrics
                            .invalid_input
                            .with_label_values(&[&feed.name, bad.reason.as_str()])
                            .inc();
                    }
                    None => records_empty.inc(),
                },
                Some(Err(KafkaError::PartitionEOF(p))) => merge.at_end(p),
                Some(Err(e)) => {
                    warn!(feed = %name, "kafka events feed: {e}");
                    break;
                }
                None => break,
            }
        }
        // A partition far ahead of the others waits, paused, for them to catch up.
        let (pause, resume) = merge.flow_changes();
        if !pause.is_empty() {
            let _ = consumer.pause(&topic_partitions(&feed.topic, &pause));
        }
        if !resume.is_empty() {
            let _ = consumer.resume(&topic_partitions(&feed.topic, &resume));
        }
        loop {
            merge.release(Instant::now(), BATCH_EVENTS, &mut ready);
            if ready.is_empty() {
                break;
            }
            ctx.health
                .update(&feed.name, |h| h.last_message = Some(Timestamp::now()));
            send(&runtime, &ctx, &name, std::mem::take(&mut ready));
        }
    }
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
}

/// The partitions this instance owns, and the topic's partition count.
struct Owned {
    partitions: Vec<i32>,
    count: u32,
    /// Revoked by the rebalance in progress, still held until the assignment shows whether
    /// they come back.
    revoked: Vec<i32>,
    revoked_at: Instant,
}

fn hand_over(scope: Vec<IpNet>) -> FeedEvent {
    FeedEvent::HandOver(Arc::new(HandOver {
        timestamp: Timestamp::now(),
        scope,
    }))
}

fn set_error(ctx: &FeedContext, name: &str, message: &str) {
    warn!(feed = %name, "{message}");
    let msg = message.to_string();
    ctx.health.update(name, |h| {
        h.connected = false;
        h.last_error = Some(msg);
    });
}

fn send(
    runtime: &tokio::runtime::Handle,
    ctx: &FeedContext,
    name: &Arc<str>,
    events: Vec<FeedEvent>,
) {
    if events.is_empty() {
        return;
    }
    let batch = Batch {
        feed: name.clone(),
        events,
        received: Instant::now(),
        checkpoint: None,
    };
    let _ = runtime.block_on(ctx.events.send(batch));
}

/// The list of partitions `ps` of `topic`, for pausing and resuming them.
fn topic_partitions(topic: &str, ps: &[i32]) -> Tpl {
    let mut tpl = Tpl::new();
    for &p in ps {
        tpl.add_partition(topic, p);
    }
    tpl
}

fn partition_count(consumer: &BaseConsumer<Rebalancer>, topic: &str) -> Option<u32> {
    let md = consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    u32::try_from(t.partitions().len()).ok().filter(|n| *n > 0)
}

/// Reads partition `p` from its beginning up to `end` into one route table, and hands it to
/// the engine as the loaded state of the partition's prefixes; returns once the engine holds
/// it. `/readyz` is not ready meanwhile.
struct Rebuild<'a> {
    feed: &'a EventsFeed,
    ctx: &'a FeedContext,
    runtime: &'a tokio::runtime::Handle,
    name: &'a Arc<str>,
    metrics: &'a FeedScaleOut,
    partitioner: &'a Partitioner,
    partitions: u32,
}

impl Rebuild<'_> {
    fn run(&self, p: i32, end: i64) {
        let Rebuild {
            feed,
            ctx,
            runtime,
            name,
            metrics,
            partitioner,
            partitions,
        } = *self;
        let started = Instant::now();
        let set_state = |state: &'static str, holds: bool, routes: u64| {
            ctx.health.update(&feed.name, |h| {
                let w = h.warm_start.get_or_insert(WarmStartHealth {
                    state,
                    holds_readiness: holds,
                    routes: 0,
                    vantage_points: 0,
                    last_success: None,
                    failures: 0,
                    last_error: None,
                });
                w.state = state;
                w.holds_readiness = holds;
                if !holds {
                    w.routes = routes;
                    w.last_success = Some(Timestamp::now());
                }
            });
        };
        set_state("rebuilding", true, 0);
        info!(feed = %name, "rebuilding partition {p} up to offset {end}; /readyz is not ready until it is done");
        let scope = partitioner.roots_of(p as u32, partitions.max(1));
        let (routes, latest, replayed) = match replay(feed, p, end) {
            Ok(r) => r,
            Err(e) => {
                // The partition is judged from what the stream brings from now on.
                warn!(feed = %name, "rebuilding partition {p}: {e}; its prefixes start empty");
                ctx.health.update(&feed.name, |h| {
                    if let Some(w) = h.warm_start.as_mut() {
                        w.failures += 1;
                        w.last_error = Some(e.clone());
                    }
                });
                (Vec::new(), Timestamp::default(), 0)
            }
        };
        metrics.records_replayed.inc_by(replayed);
        let count = routes.len() as u64;
        // An empty table changes nothing (the engine holds nothing of a partition this instance
        // did not own), and its only time would be this host's clock, which would move the
        // engine's event time past the stream's: then nothing settles while the stream runs.
        if !routes.is_empty() {
            let state = Arc::new(LoadedState {
                feed: name.clone(),
                timestamp: latest,
                scope,
                routes,
                applied: Default::default(),
            });
            let applied = state.applied.clone();
            send(runtime, ctx, name, vec![FeedEvent::Loaded(state)]);
            runtime.block_on(async {
                tokio::select! {
                    _ = applied.wait() => {}
                    _ = async {
                        let mut stop = ctx.shutdown.clone();
                        let _ = stop.wait_for(|s| *s).await;
                    } => {}
                }
            });
        }
        metrics
            .rebuild_seconds
            .observe(started.elapsed().as_secs_f64());
        set_state("done", false, count);
    }
}

/// The routes partition `p` holds at offset `end`: its records from the beginning, read by a
/// consumer outside the group. Also the latest event time (zero when no record had a route or a
/// peer down) and the number of records read.
fn replay(
    feed: &EventsFeed,
    p: i32,
    end: i64,
) -> Result<(Vec<RouteEvent>, Timestamp, u64), String> {
    let mut client = feed.client.clone();
    client
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = client
        .create()
        .map_err(|e| format!("replay consumer: {e}"))?;
    let (low, _) = consumer
        .fetch_watermarks(&feed.topic, p, BROKER_TIMEOUT)
        .map_err(|e| format!("offsets of partition {p}: {e}"))?;
    let mut table: HashMap<(IpNet, Arc<VantagePoint>), RouteEvent> = HashMap::new();
    let mut latest = Timestamp::default();
    let mut read = 0u64;
    if low < end {
        let mut tpl = Tpl::new();
        tpl.add_partition_offset(&feed.topic, p, Offset::Offset(low))
            .map_err(|e| e.to_string())?;
        consumer
            .assign(&tpl)
            .map_err(|e| format!("replay of partition {p}: {e}"))?;
        let mut decoder = Decoder::default();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if Instant::now() > deadline {
                return Err(format!("replay of partition {p} took over 600 s"));
            }
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    read += 1;
                    if let Some(Ok(ev)) = m.payload().map(|v| decoder.decode(v)) {
                        match ev {
                            FeedEvent::Route(r) => {
                                latest = latest.max(r.timestamp);
                                match r.change {
                                    RouteChange::Announce(_) => {
                                        table.insert((r.prefix, r.vp.clone()), r);
                                    }
                                    RouteChange::Withdraw => {
                                        table.remove(&(r.prefix, r.vp.clone()));
                                    }
                                }
                            }
                            FeedEvent::PeerDown { timestamp, vp, .. } => {
                                latest = latest.max(timestamp);
                                table.retain(|(_, v), _| *v != vp);
                            }
                            _ => {}
                        }
                    }
                    if m.offset() + 1 >= end {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(format!("replay of partition {p}: {e}")),
                None => {}
            }
        }
    }
    let mut routes: Vec<RouteEvent> = table.into_values().collect();
    // Map order is random per process; the same records must give the same state.
    routes.sort_by(|a, b| (a.prefix, &a.vp).cmp(&(b.prefix, &b.vp)));
    Ok((routes, latest, read))
}
