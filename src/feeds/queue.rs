//! The queue between the feeds and the engine, bounded by events rather than batches.
//!
//! Batches differ in size by three orders of magnitude (a tick is empty, a coalesced WebSocket
//! read holds up to 4096 events), so a bound on batches bounds nothing: 1024 full batches held
//! hundreds of megabytes. Each queued batch holds one permit per event (at least one, at most
//! the whole capacity) until the engine has processed it, so the events queued and in the engine
//! never exceed the capacity. A sender with no room waits: a live feed then stops reading its
//! socket and TCP slows the peer down, a file replay just waits; nothing is dropped.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};

use super::Batch;

/// Route events waiting for (or being processed by) the engine; bounded so that a slow engine
/// slows the feeds down instead of growing memory. An event takes about 400 bytes with its
/// attributes (real RIS paths and communities), so a full queue holds about 13 MB.
pub const ENGINE_QUEUE_EVENTS: usize = 32 * 1024;

/// A batch in the queue, with the room it takes; the room is given back when it is dropped.
#[derive(Debug)]
pub struct Queued {
    /// The batch.
    pub batch: Batch,
    _room: OwnedSemaphorePermit,
}

/// Why a batch was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The engine is gone (the service is stopping or its engine thread died).
    Closed,
    /// No room now (only [`EventSender::try_send`]).
    Full,
}

/// The feeds' end of the queue.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Queued>,
    room: Arc<Semaphore>,
    capacity: u32,
}

/// The engine's end of the queue.
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Queued>,
    room: Arc<Semaphore>,
    capacity: u32,
}

/// A queue that holds at most `capacity` events (at least 1).
pub fn engine_queue(capacity: usize) -> (EventSender, EventReceiver) {
    // Tokio's semaphore holds fewer than `usize::MAX >> 3` permits; this is far below.
    let capacity = u32::try_from(capacity.max(1))
        .unwrap_or(u32::MAX)
        .min(u32::MAX >> 3);
    let room = Arc::new(Semaphore::new(capacity as usize));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        EventSender {
            tx,
            room: room.clone(),
            capacity,
        },
        EventReceiver { rx, room, capacity },
    )
}

impl EventSender {
    /// Room a batch takes: one per event, at least one (an empty tick), at most everything (a
    /// batch larger than the queue waits until the queue is empty).
    fn cost(&self, batch: &Batch) -> u32 {
        u32::try_from(batch.events.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity)
    }

    /// Queues a batch, waiting for room.
    pub async fn send(&self, batch: Batch) -> Result<(), SendError> {
        let room = self
            .room
            .clone()
            .acquire_many_owned(self.cost(&batch))
            .await
            .map_err(|_| SendError::Closed)?;
        self.tx
            .send(Queued { batch, _room: room })
            .map_err(|_| SendError::Closed)
    }

    /// Queues a batch from a thread outside the runtime's workers (a blocking task), waiting
    /// for room.
    pub fn blocking_send(&self, batch: Batch) -> Result<(), SendError> {
        let cost = self.cost(&batch);
        let room = match self.room.clone().try_acquire_many_owned(cost) {
            Ok(r) => r,
            Err(TryAcquireError::Closed) => return Err(SendError::Closed),
            Err(TryAcquireError::NoPermits) => {
                let handle =
                    tokio::runtime::Handle::try_current().map_err(|_| SendError::Closed)?;
                handle
                    .block_on(self.room.clone().acquire_many_owned(cost))
                    .map_err(|_| SendError::Closed)?
            }
        };
        self.tx
            .send(Queued { batch, _room: room })
            .map_err(|_| SendError::Closed)
    }

    /// Events waiting or being processed (the room taken).
    pub fn events(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.room.available_permits())
    }

    /// Queues a batch if there is room now.
    pub fn try_send(&self, batch: Batch) -> Result<(), SendError> {
        let room = match self.room.clone().try_acquire_many_owned(self.cost(&batch)) {
            Ok(r) => r,
            Err(TryAcquireError::Closed) => return Err(SendError::Closed),
            Err(TryAcquireError::NoPermits) => return Err(SendError::Full),
        };
        self.tx
            .send(Queued { batch, _room: room })
            .map_err(|_| SendError::Closed)
    }
}

impl EventReceiver {
    /// The next batch; `None` once every sender is gone and the queue is empty. Drop the
    /// [`Queued`] once the batch is processed: only then is its room free again.
    pub async fn recv(&mut self) -> Option<Queued> {
        self.rx.recv().await
    }

    /// [`EventReceiver::recv`] for a thread outside the runtime.
    pub fn blocking_recv(&mut self) -> Option<Queued> {
        self.rx.blocking_recv()
    }

    /// Takes no more batches: senders waiting for room, and later sends, fail with
    /// [`SendError::Closed`]. Batches already queued can still be received.
    pub fn close(&mut self) {
        self.room.close();
        self.rx.close();
    }

    /// The next batch if one is queued now.
    pub fn try_recv(&mut self) -> Option<Queued> {
        self.rx.try_recv().ok()
    }

    /// Batches waiting.
    pub fn batches(&self) -> usize {
        self.rx.len()
    }

    /// Events waiting or being processed (the room taken).
    pub fn events(&self) -> usize {
        (self.capacity as usize).saturating_sub(self.room.available_permits())
    }

    /// The most events the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        // Senders waiting for room must learn that none will come.
        self.room.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FeedEvent, Timestamp, VantagePoint};
    use std::time::Instant;

    fn batch(n: usize) -> Batch {
        let vp = Arc::new(VantagePoint {
            feed: "test".into(),
            collector: "".into(),
            peer_asn: 64500,
            peer_ip: std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            exporter: None,
        });
        Batch {
            feed: "test".into(),
            events: (0..n)
                .map(|_| FeedEvent::PeerDown {
                    timestamp: Timestamp(0),
                    vp: vp.clone(),
                    within: None,
                })
                .collect(),
            received: Instant::now(),
            checkpoint: None,
        }
    }

    #[tokio::test]
    async fn the_bound_counts_events_not_batches() {
        let (tx, mut rx) = engine_queue(100);
        tx.send(batch(60)).await.unwrap();
        tx.send(batch(40)).await.unwrap();
        assert_eq!(rx.events(), 100);
        assert_eq!(tx.try_send(batch(1)), Err(SendError::Full));
        // Empty batches (ticks) take room too, so they cannot pile up either.
        assert_eq!(tx.try_send(batch(0)), Err(SendError::Full));
        let first = rx.recv().await.unwrap();
        assert_eq!(first.batch.events.len(), 60);
        // Taken off the queue but not yet processed: still counted.
        assert_eq!(tx.try_send(batch(1)), Err(SendError::Full));
        drop(first);
        assert_eq!(rx.events(), 40);
        tx.try_send(batch(60)).unwrap();
        assert_eq!(rx.batches(), 2);
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_sender_wait_until_the_engine_is_done() {
        let (tx, mut rx) = engine_queue(10);
        tx.send(batch(10)).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(batch(5)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(rx.recv().await.unwrap());
        waiting.await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap().batch.events.len(), 5);
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_queue_waits_for_an_empty_queue() {
        let (tx, mut rx) = engine_queue(10);
        tx.send(batch(3)).await.unwrap();
        assert_eq!(tx.try_send(batch(50)), Err(SendError::Full));
        drop(rx.recv().await.unwrap());
        tx.try_send(batch(50)).unwrap();
        assert_eq!(rx.recv().await.unwrap().batch.events.len(), 50);
    }

    #[tokio::test]
    async fn senders_waiting_for_room_fail_once_the_engine_is_gone() {
        let (tx, rx) = engine_queue(10);
        tx.send(batch(10)).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(batch(5)).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(SendError::Closed));
        assert_eq!(tx.try_send(batch(1)), Err(SendError::Closed));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocking_sender_waits_for_room() {
        let (tx, mut rx) = engine_queue(10);
        tx.send(batch(10)).await.unwrap();
        let sender = tokio::task::spawn_blocking({
            let tx = tx.clone();
            move || tx.blocking_send(batch(4))
        });
        let first = rx.recv().await.unwrap();
        assert!(!sender.is_finished());
        drop(first);
        sender.await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap().batch.events.len(), 4);
    }
}
