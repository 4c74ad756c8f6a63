//! The queue between the engine thread and the store thread, bounded by the bytes its commits
//! hold rather than by their number.
//!
//! A commit carries the alert transitions of one batch of events and the routes behind them:
//! a quiet batch a few hundred bytes, one in an alert storm megabytes (thousands of alerts
//! with their samples). A bound in commits bounded nothing; this one counts each commit's
//! [`Commit::footprint`] from the moment it is queued until the store thread has written it
//! and the publish stage has applied its transitions (so the channel from the store thread to
//! the publish stage is bounded by the same bytes). A commit larger than the whole bound is let through alone
//! once the queue is empty, so it cannot wait forever. When the queue is full the engine
//! thread waits, its own queue fills and the feeds slow down, as for a slow engine.

use std::sync::{Arc, Condvar, Mutex, mpsc};

use crate::store::Commit;

use super::store_thread::ToStore;

/// Bytes of commits (by [`Commit::footprint`]) queued for the store thread or being written.
pub const COMMIT_QUEUE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Default)]
struct Used {
    bytes: usize,
    /// The store thread is gone: nothing will free room.
    closed: bool,
}

#[derive(Debug)]
struct Budget {
    used: Mutex<Used>,
    freed: Condvar,
    capacity: usize,
}

impl Budget {
    fn lock(&self) -> std::sync::MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release(&self, bytes: usize) {
        let mut used = self.lock();
        used.bytes = used.bytes.saturating_sub(bytes);
        drop(used);
        self.freed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.freed.notify_all();
    }
}

/// Room taken in the queue, given back when dropped.
#[derive(Debug)]
pub(super) struct Room {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Room {
    /// Bytes it stands for.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// A commit in the queue with the room it takes.
pub(super) struct Queued {
    /// The commit.
    pub to_store: ToStore,
    /// Held until the commit's transitions are published.
    pub room: Room,
}

/// The engine thread's end.
pub(super) struct CommitSender {
    tx: mpsc::Sender<Queued>,
    budget: Arc<Budget>,
}

/// The store thread's end.
pub(super) struct CommitReceiver {
    rx: mpsc::Receiver<Queued>,
    budget: Arc<Budget>,
}

/// A queue holding commits of at most `capacity` bytes (by [`Commit::footprint`]).
pub(super) fn commit_queue(capacity: usize) -> (CommitSender, CommitReceiver) {
    let budget = Arc::new(Budget {
        used: Mutex::new(Used::default()),
        freed: Condvar::new(),
        capacity: capacity.max(1),
    });
    let (tx, rx) = mpsc::channel();
    (
        CommitSender {
            tx,
            budget: budget.clone(),
        },
        CommitReceiver { rx, budget },
    )
}

/// The store thread is gone; the commit was not queued.
#[derive(Debug)]
pub(super) struct Closed;

impl CommitSender {
    /// Queues a commit, waiting for room; fails once the store thread is gone.
    pub fn send(&self, mut to_store: ToStore) -> Result<(), Closed> {
        let bytes = to_store.commit.footprint();
        let mut used = self.budget.lock();
        // An empty queue takes any commit, so that one larger than the bound still goes.
        while !used.closed && used.bytes > 0 && used.bytes + bytes > self.budget.capacity {
            used = self
                .budget
                .freed
                .wait(used)
                .unwrap_or_else(|p| p.into_inner());
        }
        if used.closed {
            return Err(Closed);
        }
        used.bytes += bytes;
        drop(used);
        if let Some(s) = &mut to_store.stamps {
            s.queued = std::time::Instant::now();
        }
        let room = Room {
            budget: self.budget.clone(),
            bytes,
        };
        self.tx.send(Queued { to_store, room }).map_err(|_| Closed)
    }

    /// Bytes queued or being written.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.budget.lock().bytes
    }
}

impl CommitReceiver {
    /// The next commit, waiting for one; `None` once the engine thread is gone and the queue
    /// is empty.
    pub fn recv(&self) -> Option<Queued> {
        self.rx.recv().ok()
    }

    /// The next commit if one is queued now.
    pub fn try_recv(&self) -> Option<Queued> {
        self.rx.try_recv().ok()
    }

    /// Every commit still queued (for a stop that drops them).
    pub fn drain(&self) -> usize {
        self.rx.try_iter().count()
    }
}

impl Drop for CommitReceiver {
    fn drop(&mut self) {
        // An engine thread waiting for room must learn that none will come.
        self.budget.close();
    }
}

impl From<Commit> for ToStore {
    fn from(commit: Commit) -> Self {
        ToStore {
            commit,
            published: None,
            stamps: None,
            checkpoints: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertTransition;

    fn commit_of(transitions: usize) -> ToStore {
        let t: AlertTransition = serde_json::from_str(SAMPLE).unwrap();
        Commit {
            transitions: vec![t; transitions],
            changes: Default::default(),
        }
        .into()
    }

    const SAMPLE: &str = r#"{"event":"fired","alert":{"id":"0123456789abcdef","rule":"origin_hijack",
        "severity":"critical","state":"firing","prefix":"192.0.2.0/24","watched_prefix":"192.0.2.0/24",
        "description":"","origin":64511,"upstream":null,"expected_origins":[64500],"expected_upstreams":[],
        "vantage_points":2,"peak_vantage_points":2,"sample":[{"vantage_point":"ris_live/rrc00/AS3333/193.0.0.56",
        "as_path":"3333 1299 64511","seen_at":"2019-01-01T00:00:00.000000Z"}],"groups":[],
        "first_seen":"2019-01-01T00:00:00.000000Z","fired_at":"2019-01-01T00:00:00.000000Z",
        "last_seen":"2019-01-01T00:00:00.000000Z","resolved_at":null}}"#;

    #[test]
    fn the_bound_counts_bytes_and_room_returns_when_written() {
        let one = commit_of(1).commit.footprint();
        let six = commit_of(6).commit.footprint();
        assert!(
            one > 200 && six > one,
            "an alert with a sample takes more than its struct: {one}, {six}"
        );
        // Room for one and a half commits of six alerts.
        let (tx, rx) = commit_queue(six * 3 / 2);
        tx.send(commit_of(6)).unwrap();
        assert_eq!(tx.bytes(), six);
        let waiting = std::thread::spawn(move || {
            tx.send(commit_of(6)).unwrap();
            tx
        });
        // The second does not fit until the first is written and its room dropped.
        let first = rx.recv().unwrap();
        assert!(rx.try_recv().is_none());
        drop(first);
        let second = rx.recv().unwrap();
        assert_eq!(second.to_store.commit.transitions.len(), 6);
        let tx = waiting.join().unwrap();
        assert_eq!(tx.bytes(), six);
        drop(second);
        assert_eq!(tx.bytes(), 0);
    }

    #[test]
    fn a_commit_larger_than_the_bound_goes_alone() {
        let (tx, rx) = commit_queue(1);
        tx.send(commit_of(50)).unwrap();
        let big = rx.recv().unwrap();
        assert_eq!(big.to_store.commit.transitions.len(), 50);
        drop(big);
        tx.send(commit_of(50)).unwrap();
    }

    #[test]
    fn a_waiting_sender_fails_once_the_store_thread_is_gone() {
        let (tx, rx) = commit_queue(1);
        tx.send(commit_of(1)).unwrap();
        let waiting = std::thread::spawn(move || tx.send(commit_of(1)));
        drop(rx);
        assert!(waiting.join().unwrap().is_err());
    }
}
