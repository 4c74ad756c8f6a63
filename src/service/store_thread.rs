//! The store thread: the one writer of the store. Whatever commits are queued when it is ready
//! are written in one transaction (a group commit: under load the next group gathers while
//! this one is written, so no commit waits longer than one transaction for its turn); only
//! then are their alert transitions passed on to the alert book, metrics and notifier.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

use crate::alerts::{AlertTransition, TransitionKind};
use crate::metrics::Metrics;
use crate::store::{Commit, Store};

use super::commit_queue::{CommitReceiver, Queued, Room};
use super::latency::Stamps;
use crate::feeds::checkpoint::Checkpoint;

/// A commit for the store thread; `published`, when set, answers once its transitions have
/// reached the publish stage (an operator's request is answered only when its effect shows).
pub(super) struct ToStore {
    /// What to write.
    pub commit: Commit,
    /// Answered after the transitions are published.
    pub published: Option<tokio::sync::oneshot::Sender<()>>,
    /// When the batch behind it crossed each stage (commits made of feed events).
    pub stamps: Option<Stamps>,
    /// Acknowledged once the commit is written: everything their batches caused is in it or
    /// in an earlier commit.
    pub checkpoints: Vec<Checkpoint>,
}

/// What the store thread passes on, in commit order.
// Transitions are nearly all of it and barriers rare: boxing every transition to shrink the
// rare variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Committed {
    /// An alert transition, written to the store, with the stages of the batch behind it.
    Transition(AlertTransition, Option<Stamps>),
    /// Everything before it is published: answer the waiting request.
    Barrier(tokio::sync::oneshot::Sender<()>),
    /// The room the group's commits took in the commit queue, given back once the publish
    /// stage reaches it: what waits here counts against the same bound as what waits to be
    /// written, so this channel holds at most [`super::COMMIT_QUEUE_BYTES`] of transitions.
    Release(Vec<Room>),
}

/// Most bytes of commits (by [`Commit::footprint`]) written in one transaction: a group that
/// size takes tens of milliseconds, and a stop waits for the one being written.
const GROUP_BYTES: usize = 1024 * 1024;

/// How often old history is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Writes commits until the engine thread hangs up.
pub(super) fn run(
    mut store: Store,
    commits: CommitReceiver,
    alerts: UnboundedSender<Committed>,
    metrics: Metrics,
    retention_days: u64,
    notifier_running: Arc<AtomicBool>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // When the service began to stop, once it has.
    let mut stopping: Option<Instant> = None;
    let mut last_prune: Option<Instant> = None;
    let mut events_wanted = notifier_running.load(Ordering::Acquire);
    while let Some(first) = commits.recv() {
        if *shutdown.borrow() {
            let since = *stopping.get_or_insert_with(Instant::now);
            if since.elapsed() >= super::STORE_DRAIN {
                // Stop at a commit boundary, as a crash would: the store stays as of the last
                // commit written, and nothing after a gap is written.
                let dropped = 1 + commits.drain();
                warn!(
                    "stopping: {dropped} commits were still queued after {} s and are dropped; \
                     the store is as of the last one written",
                    super::STORE_DRAIN.as_secs()
                );
                return;
            }
        }
        // A backlog (an alert storm, a stop) is written in few transactions, each bounded so
        // that a stop is never stuck in a long one.
        let mut bytes = first.room.bytes();
        let mut batch = vec![first];
        while bytes < GROUP_BYTES
            && let Some(next) = commits.try_recv()
        {
            bytes += next.room.bytes();
            batch.push(next);
        }
        // A reload started the notifier: its sink is in place, so from this commit on the
        // alert events wait for its hand-over (a crash inside its window then loses nothing).
        if !events_wanted && notifier_running.load(Ordering::Acquire) {
            store.notifier_started();
            events_wanted = true;
        }
        let mut delay = Duration::from_millis(100);
        // A failed write is retried until it works: dropping it would lose alerts. While it
        // fails the engine's queue fills and the feeds slow down; the errors say why.
        let mut rooms = Vec::with_capacity(batch.len());
        let mut barriers = Vec::new();
        let mut stamps = Vec::with_capacity(batch.len());
        let mut checkpoints = Vec::new();
        let batch: Vec<Commit> = batch
            .into_iter()
            .map(|Queued { to_store, room }| {
                rooms.push(room);
                barriers.extend(to_store.published);
                stamps.push(to_store.stamps);
                checkpoints.extend(to_store.checkpoints);
                to_store.commit
            })
            .collect();
        let started = Instant::now();
        while let Err(e) = store.commit_all(&batch) {
            metrics.store_errors.inc();
            error!("{e}; retrying in {delay:?}");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        metrics.store_commits.inc();
        let durable = Instant::now();
        // Written: the feeds waiting for it may now count their input as applied.
        for c in checkpoints {
            c.acknowledge();
        }
        let group_commits = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        for s in stamps.iter_mut().flatten() {
            s.picked = started;
            s.durable = durable;
            s.group_commits = group_commits;
        }
        if stopping.is_some() {
            tracing::debug!(
                commits = batch.len(),
                bytes,
                "stopping: a group written in {:?}",
                started.elapsed()
            );
        }
        let transitions = batch
            .into_iter()
            .zip(stamps)
            .flat_map(|(c, s)| c.transitions.into_iter().map(move |t| (t, s)));
        let passed_on = latest_updates(transitions)
            .map(|(t, s)| Committed::Transition(t, s))
            .chain(barriers.into_iter().map(Committed::Barrier))
            .chain(std::iter::once(Committed::Release(rooms)));
        for c in passed_on {
            if alerts.send(c).is_err() {
                warn!("alert sinks are gone; transitions are saved but not passed on");
                break;
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            match store.prune(retention_days) {
                Ok(0) => {}
                Ok(n) => {
                    info!("store: pruned {n} resolved alerts older than {retention_days} days")
                }
                Err(e) => warn!("store: pruning failed: {e}"),
            }
            last_prune = Some(Instant::now());
        }
    }
}

/// The transitions of a group without the updates that a later transition of the same alert
/// supersedes: an update only refreshes the alert (sample, VPs) in the book and the notifier,
/// and the later transition carries the alert as it is after it. Fired and resolved stay, in
/// order, with everything else.
fn latest_updates<S>(
    transitions: impl Iterator<Item = (AlertTransition, S)>,
) -> impl Iterator<Item = (AlertTransition, S)> {
    let all: Vec<(AlertTransition, S)> = transitions.collect();
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(all.len());
    for (i, (t, _)) in all.iter().enumerate() {
        last.insert(t.alert.id.as_str(), i);
    }
    let keep: Vec<bool> = all
        .iter()
        .enumerate()
        .map(|(i, (t, _))| {
            t.event != TransitionKind::Updated || last.get(t.alert.id.as_str()) == Some(&i)
        })
        .collect();
    all.into_iter()
        .zip(keep)
        .filter_map(|(t, keep)| keep.then_some(t))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::alerts::TransitionKind::{Fired, Resolved, Updated};

    /// A transition of alert `id` with `vps` VPs.
    pub(in crate::service) fn t(id: &str, event: TransitionKind, vps: u32) -> AlertTransition {
        let mut tr: AlertTransition = serde_json::from_str(
            r#"{"event":"fired","alert":{"id":"x","rule":"origin_hijack","severity":"critical",
            "state":"firing","prefix":"192.0.2.0/24","watched_prefix":"192.0.2.0/24",
            "description":"","origin":64511,"upstream":null,"expected_origins":[64500],
            "expected_upstreams":[],"vantage_points":2,"peak_vantage_points":2,"sample":[],
            "groups":[],"first_seen":"2019-01-01T00:00:00.000000Z",
            "fired_at":"2019-01-01T00:00:00.000000Z","last_seen":"2019-01-01T00:00:00.000000Z",
            "resolved_at":null}}"#,
        )
        .unwrap();
        tr.event = event;
        tr.alert.id = id.into();
        tr.alert.vantage_points = vps;
        tr
    }

    #[test]
    fn a_commits_room_is_given_back_only_once_the_publish_stage_has_its_transitions() {
        use super::super::commit_queue::commit_queue;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).unwrap();
        let (commits, queued) = commit_queue(1 << 20);
        let (published, mut to_publish) = tokio::sync::mpsc::unbounded_channel();
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let writer = std::thread::spawn(move || {
            run(
                store,
                queued,
                published,
                Metrics::new().unwrap(),
                30,
                Arc::new(AtomicBool::new(false)),
                shutdown,
            )
        });
        let commit = Commit {
            transitions: vec![t("a", Fired, 2), t("b", Fired, 2)],
            changes: Default::default(),
        };
        commits.send(commit.into()).unwrap();
        let mut fired = Vec::new();
        // Written and passed on, but not yet taken by the publish stage: still counted.
        let rooms = loop {
            match to_publish.blocking_recv() {
                Some(Committed::Transition(t, _)) => fired.push(t.alert.id),
                Some(Committed::Release(rooms)) => break rooms,
                Some(Committed::Barrier(_)) => {}
                None => panic!("the store thread ended"),
            }
        };
        assert_eq!(fired, ["a", "b"]);
        assert!(
            commits.bytes() > 0,
            "the room is free before the publish stage has them"
        );
        drop(rooms);
        assert_eq!(commits.bytes(), 0);
        drop(commits);
        writer.join().unwrap();
    }

    #[test]
    fn only_updates_that_a_later_transition_supersedes_are_left_out() {
        let group = vec![
            t("a", Fired, 2),
            t("a", Updated, 3),
            t("b", Updated, 5),
            t("a", Updated, 4),
            t("c", Updated, 1),
            t("b", Resolved, 0),
            t("c", Updated, 2),
        ];
        let kept: Vec<(String, TransitionKind, u32)> =
            latest_updates(group.into_iter().map(|t| (t, ())))
                .map(|(t, ())| (t.alert.id, t.event, t.alert.vantage_points))
                .collect();
        let want = [
            ("a", Fired, 2),
            ("a", Updated, 4),
            ("b", Resolved, 0),
            ("c", Updated, 2),
        ];
        let want: Vec<(String, TransitionKind, u32)> = want
            .iter()
            .map(|(i, e, v)| (i.to_string(), *e, *v))
            .collect();
        assert_eq!(kept, want);
    }
}
