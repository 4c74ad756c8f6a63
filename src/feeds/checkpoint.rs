//! Checkpoints: a feed that must know when its input is safely applied (a Kafka consumer,
//! which commits offsets only then) puts a [`Checkpoint`] on a batch. The engine hands it on
//! with its next commit, and the store thread acknowledges it once the transaction holding
//! everything the batch (and every batch before it) caused is written. A checkpoint dropped
//! without acknowledgement (a stop, a crash) is simply never acknowledged: its input is read
//! again.

use tokio::sync::mpsc;

/// A mark after a batch's events; acknowledged to its feed once they are durably stored.
#[derive(Debug)]
pub struct Checkpoint {
    id: u64,
    acks: mpsc::UnboundedSender<u64>,
}

/// The feed's end: the ids of acknowledged checkpoints, in acknowledgement order.
pub type Acknowledgements = mpsc::UnboundedReceiver<u64>;

/// Makes checkpoints of one feed.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    next: u64,
    acks: mpsc::UnboundedSender<u64>,
}

impl Checkpoints {
    /// A maker and the receiver of its acknowledgements.
    pub fn new() -> (Self, Acknowledgements) {
        let (acks, rx) = mpsc::unbounded_channel();
        (Checkpoints { next: 0, acks }, rx)
    }

    /// The next checkpoint (ids count up from 0).
    pub fn make(&mut self) -> Checkpoint {
        let id = self.next;
        self.next += 1;
        Checkpoint {
            id,
            acks: self.acks.clone(),
        }
    }
}

impl Checkpoint {
    /// Its id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Everything before it is durably stored (the feed may be gone: then nobody cares).
    pub fn acknowledge(self) {
        let _ = self.acks.send(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_checkpoints_reach_their_feed_and_dropped_ones_do_not() {
        let (mut make, mut acks) = Checkpoints::new();
        let (a, b, c) = (make.make(), make.make(), make.make());
        assert_eq!((a.id(), b.id(), c.id()), (0, 1, 2));
        c.acknowledge();
        drop(b);
        a.acknowledge();
        assert_eq!(acks.try_recv().ok(), Some(2));
        assert_eq!(acks.try_recv().ok(), Some(0));
        assert!(acks.try_recv().is_err());
    }
}
