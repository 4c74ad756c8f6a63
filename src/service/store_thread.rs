//! The store thread: the one writer of the store. Each commit is written in one transaction;
//! only then are its alert transitions passed on to the alert book, metrics and notifier.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

use crate::alerts::AlertTransition;
use crate::metrics::Metrics;
use crate::store::{Commit, Store};

/// A commit for the store thread; `published`, when set, answers once its transitions have
/// reached the publish stage (an operator's request is answered only when its effect shows).
pub(super) struct ToStore {
    /// What to write.
    pub commit: Commit,
    /// Answered after the transitions are published.
    pub published: Option<tokio::sync::oneshot::Sender<()>>,
}

impl From<Commit> for ToStore {
    fn from(commit: Commit) -> Self {
        ToStore {
            commit,
            published: None,
        }
    }
}

/// What the store thread passes on, in commit order.
// Transitions are nearly all of it and barriers rare: boxing every transition to shrink the
// rare variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Committed {
    /// An alert transition, written to the store.
    Transition(AlertTransition),
    /// Everything before it is published: answer the waiting request.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Most commits written in one transaction.
const GROUP_COMMIT: usize = 16;

/// How often old history is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Writes commits until the engine thread hangs up.
pub(super) fn run(
    mut store: Store,
    commits: Receiver<ToStore>,
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
    while let Ok(first) = commits.recv() {
        if *shutdown.borrow() {
            let since = *stopping.get_or_insert_with(Instant::now);
            if since.elapsed() >= super::STORE_DRAIN {
                // Stop at a commit boundary, as a crash would: the store stays as of the last
                // commit written, and nothing after a gap is written.
                let dropped = 1 + commits.iter().count();
                warn!(
                    "stopping: {dropped} commits were still queued after {} s and are dropped; \
                     the store is as of the last one written",
                    super::STORE_DRAIN.as_secs()
                );
                return;
            }
        }
        // A backlog (an alert storm, a stop) is written in one transaction.
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT
            && let Ok(next) = commits.try_recv()
        {
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
        let (commits_in_batch, barriers): (Vec<Commit>, Vec<_>) =
            batch.into_iter().map(|q| (q.commit, q.published)).unzip();
        let batch = commits_in_batch;
        while let Err(e) = store.commit_all(&batch) {
            metrics.store_errors.inc();
            error!("{e}; retrying in {delay:?}");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        metrics.store_commits.inc();
        let passed_on = batch
            .into_iter()
            .flat_map(|c| c.transitions)
            .map(Committed::Transition)
            .chain(barriers.into_iter().flatten().map(Committed::Barrier));
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
