//! Live events held back while a warm start runs, so that they reach the engine after the
//! loaded state and in event-time order; bounded, and never blocking the live connection.

use std::sync::Mutex;

use crate::event::FeedEvent;

/// What the live connection does with a batch.
#[derive(Debug)]
pub enum Hold {
    /// Held in the buffer.
    Held,
    /// Send these (the buffer, which overflowed) first, then the batch.
    SendFirst(Vec<FeedEvent>),
    /// Send the batch as usual.
    Pass,
}

#[derive(Debug, Default)]
struct State {
    holding: bool,
    /// The state is being handed over: an overflow now only stops holding.
    draining: bool,
    overflowed: bool,
    buffer: Vec<FeedEvent>,
    /// The latest event time seen from the live connection.
    latest: Option<crate::event::Timestamp>,
    /// When the live connection last brought events (wall clock), to measure a gap.
    last_live: Option<std::time::Instant>,
}

/// The hold on one live connection's events.
#[derive(Debug)]
pub struct Gate {
    capacity: usize,
    state: Mutex<State>,
}

impl Gate {
    /// A gate that holds at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Gate {
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts holding events (a warm start begins).
    pub fn close(&self) {
        let mut s = self.lock();
        s.holding = true;
        s.draining = false;
        s.overflowed = false;
    }

    /// The latest event time the live connection brought, held or not.
    pub fn latest(&self) -> Option<crate::event::Timestamp> {
        self.lock().latest
    }

    /// When the live connection last brought events.
    pub fn last_live(&self) -> Option<std::time::Instant> {
        self.lock().last_live
    }

    /// Whether events are held now.
    pub fn is_holding(&self) -> bool {
        self.lock().holding
    }

    /// Takes a batch from the live connection.
    pub fn hold(&self, events: &mut Vec<FeedEvent>) -> Hold {
        let newest = events.iter().map(crate::feeds::admit::event_time).max();
        let mut s = self.lock();
        s.latest = s.latest.max(newest);
        s.last_live = Some(std::time::Instant::now());
        if !s.holding {
            return Hold::Pass;
        }
        if s.buffer.len() + events.len() > self.capacity {
            // Never block or drop live data: let it all through, in order, and give up
            // ordering the loaded state before it (unless it is already handed over).
            s.holding = false;
            s.overflowed = !s.draining;
            return Hold::SendFirst(std::mem::take(&mut s.buffer));
        }
        s.buffer.append(events);
        Hold::Held
    }

    /// Whether the buffer overflowed since [`Gate::close`] (the loaded state must then not be
    /// applied: newer live events went through already).
    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// The event time of the first event held, if any.
    pub fn first_held(&self) -> Option<crate::event::Timestamp> {
        self.lock()
            .buffer
            .first()
            .map(crate::feeds::admit::event_time)
    }

    /// Begins the hand-over: from now on an overflow no longer cancels the warm start.
    pub fn start_draining(&self) {
        self.lock().draining = true;
    }

    /// The events held so far; when there are none, stops holding (the hand-over is complete).
    pub fn take_or_open(&self) -> Vec<FeedEvent> {
        let mut s = self.lock();
        if s.buffer.is_empty() {
            s.holding = false;
            s.draining = false;
        }
        std::mem::take(&mut s.buffer)
    }

    /// Stops holding and returns what was held (a failed warm start).
    pub fn open(&self) -> Vec<FeedEvent> {
        let mut s = self.lock();
        s.holding = false;
        s.draining = false;
        std::mem::take(&mut s.buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Timestamp, VantagePoint};
    use std::sync::Arc;

    fn evs(n: usize, t: i64) -> Vec<FeedEvent> {
        let vp = Arc::new(VantagePoint {
            feed: "f".into(),
            collector: "".into(),
            peer_asn: 1,
            peer_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            exporter: None,
        });
        (0..n)
            .map(|_| FeedEvent::PeerDown {
                timestamp: Timestamp(t),
                vp: vp.clone(),
                within: None,
            })
            .collect()
    }

    #[test]
    fn holds_until_handed_over_and_overflows_without_dropping() {
        let g = Gate::new(3);
        assert!(matches!(g.hold(&mut evs(1, 1)), Hold::Pass));
        assert_eq!(g.latest(), Some(Timestamp(1)));
        g.close();
        let mut b = evs(2, 5);
        assert!(matches!(g.hold(&mut b), Hold::Held));
        assert!(b.is_empty());
        assert_eq!(g.first_held(), Some(Timestamp(5)));
        // Over the bound: the held events come back to be sent first, nothing is lost.
        let mut b = evs(2, 6);
        match g.hold(&mut b) {
            Hold::SendFirst(first) => assert_eq!(first.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.len(), 2);
        assert!(g.overflowed());
        assert!(matches!(g.hold(&mut evs(1, 7)), Hold::Pass));

        g.close();
        assert!(!g.overflowed());
        assert!(matches!(g.hold(&mut evs(1, 8)), Hold::Held));
        g.start_draining();
        assert_eq!(g.take_or_open().len(), 1);
        assert!(g.is_holding());
        assert!(matches!(g.hold(&mut evs(3, 9)), Hold::Held));
        // An overflow while draining does not cancel the hand-over.
        assert!(matches!(g.hold(&mut evs(1, 9)), Hold::SendFirst(_)));
        assert!(!g.overflowed());
        assert!(g.take_or_open().is_empty());
        assert!(!g.is_holding());
    }
}
