//! Puts the records of an instance's partitions back into event-time order.
//!
//! The relay writes events in time order, but each partition is fetched on its own: a consumer
//! that catches up on a backlog gets hundreds of one partition's records, then hundreds of
//! another's, minutes apart in event time. The engine judges on one clock (hold-downs run out,
//! conditions settle when time moves on), so it must see one time-ordered stream, as one
//! bgpsentry reading the raw feed would.
//!
//! An event is released once every owned partition either holds a later event or is known to
//! be at its end (the broker said so, and nothing came since): live, partitions are at their
//! end and events pass at once. A partition that neither delivers nor reaches its end (its
//! broker is unreachable) holds the others back for at most [`MAX_HOLD`], after which what is
//! buffered is released in order anyway. [`Merge::flow_changes`] tells which partitions to
//! pause so the buffer stays bounded while a lagging partition catches up.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::event::{FeedEvent, Timestamp};
use crate::feeds::admit::event_time;

/// How long a silent partition may hold back the others' events.
pub const MAX_HOLD: Duration = Duration::from_secs(2);

/// Events buffered for one partition above which it is paused (resumed at half of it).
pub const PARTITION_CAP: usize = 20_000;

#[derive(Default)]
struct Lane {
    events: VecDeque<(Timestamp, FeedEvent)>,
    /// The broker reported this partition's end, and nothing came since.
    at_end: bool,
    paused: bool,
}

/// The per-partition buffers of the partitions an instance owns.
#[derive(Default)]
pub struct Merge {
    lanes: BTreeMap<i32, Lane>,
    /// Since when a partition with nothing buffered, not at its end, holds the others back.
    held_since: Option<Instant>,
}

impl Merge {
    /// The owned partitions are now `partitions`, each read again from its committed offset:
    /// every lane starts empty, not at its end, not paused (take the buffered events with
    /// [`Merge::drain`] first).
    pub fn reset(&mut self, partitions: &[i32]) {
        self.lanes = partitions.iter().map(|&p| (p, Lane::default())).collect();
        self.held_since = None;
    }

    /// An event read from partition `p` (ignored when `p` is not owned).
    pub fn push(&mut self, p: i32, ev: FeedEvent) {
        if let Some(lane) = self.lanes.get_mut(&p) {
            lane.at_end = false;
            lane.events.push_back((event_time(&ev), ev));
        }
    }

    /// Partition `p` has been read to its end.
    pub fn at_end(&mut self, p: i32) {
        if let Some(lane) = self.lanes.get_mut(&p) {
            lane.at_end = true;
        }
    }

    /// Events buffered in all lanes.
    pub fn len(&self) -> usize {
        self.lanes.values().map(|l| l.events.len()).sum()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.lanes.values().all(|l| l.events.is_empty())
    }

    /// Moves the events that can go, in event-time order, to `out` (at most `max`). At `now`,
    /// a partition that held the others back for longer than [`MAX_HOLD`] no longer does.
    pub fn release(&mut self, now: Instant, max: usize, out: &mut Vec<FeedEvent>) {
        let mut moved = 0;
        while moved < max {
            let held = self
                .lanes
                .values()
                .any(|l| l.events.is_empty() && !l.at_end);
            let next = self
                .lanes
                .iter()
                .filter_map(|(p, l)| l.events.front().map(|(t, _)| (*t, *p)))
                .min();
            let Some((_, p)) = next else {
                // Nothing buffered: nothing is held back.
                self.held_since = None;
                return;
            };
            if held {
                let since = *self.held_since.get_or_insert(now);
                if now.duration_since(since) < MAX_HOLD {
                    return;
                }
            } else {
                self.held_since = None;
            }
            if let Some((_, ev)) = self.lanes.get_mut(&p).and_then(|l| l.events.pop_front()) {
                out.push(ev);
                moved += 1;
            }
        }
    }

    /// Every buffered event, in event-time order, whatever is held back (before a rebalance
    /// changes what this instance owns).
    pub fn drain(&mut self, out: &mut Vec<FeedEvent>) {
        let mut all: Vec<(Timestamp, i32, usize, FeedEvent)> = Vec::with_capacity(self.len());
        for (p, lane) in &mut self.lanes {
            for (i, (t, ev)) in lane.events.drain(..).enumerate() {
                all.push((t, *p, i, ev));
            }
        }
        // Stable within a partition: its order is the relay's.
        all.sort_by_key(|(t, p, i, _)| (*t, *p, *i));
        out.extend(all.into_iter().map(|(_, _, _, ev)| ev));
        self.held_since = None;
    }

    /// The partitions to pause (over [`PARTITION_CAP`]) and to resume (back under half of
    /// it); each partition is reported once per change.
    pub fn flow_changes(&mut self) -> (Vec<i32>, Vec<i32>) {
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for (p, lane) in &mut self.lanes {
            let n = lane.events.len();
            if !lane.paused && n >= PARTITION_CAP {
                lane.paused = true;
                pause.push(*p);
            } else if lane.paused && n < PARTITION_CAP / 2 {
                lane.paused = false;
                resume.push(*p);
            }
        }
        (pause, resume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RouteChange, RouteEvent, VantagePoint};
    use std::sync::Arc;

    fn ev(secs: i64, prefix: &str) -> FeedEvent {
        FeedEvent::Route(RouteEvent {
            timestamp: Timestamp::from_parts(secs, 0),
            vp: Arc::new(VantagePoint {
                feed: "events".into(),
                collector: "rrc00".into(),
                peer_asn: 64500,
                peer_ip: "192.0.2.1".parse().unwrap(),
                exporter: None,
            }),
            prefix: prefix.parse().unwrap(),
            change: RouteChange::Withdraw,
        })
    }

    fn secs(out: &[FeedEvent]) -> Vec<i64> {
        out.iter().map(|e| event_time(e).0 / 1_000_000).collect()
    }

    #[test]
    fn a_partition_read_ahead_waits_for_the_others() {
        let mut m = Merge::default();
        m.reset(&[0, 1]);
        let t0 = Instant::now();
        for s in [10, 20, 30] {
            m.push(0, ev(s, "192.0.2.0/24"));
        }
        let mut out = Vec::new();
        m.release(t0, usize::MAX, &mut out);
        assert!(out.is_empty(), "partition 1 may still hold earlier events");
        for s in [15, 25] {
            m.push(1, ev(s, "198.51.100.0/24"));
        }
        m.release(t0, usize::MAX, &mut out);
        // 30 waits: partition 1 is empty again and not known to be at its end.
        assert_eq!(secs(&out), [10, 15, 20, 25]);
        m.at_end(1);
        m.release(t0, usize::MAX, &mut out);
        assert_eq!(secs(&out), [10, 15, 20, 25, 30]);
        assert!(m.is_empty());
    }

    #[test]
    fn live_partitions_at_their_end_hold_nothing_back() {
        let mut m = Merge::default();
        m.reset(&[0, 1, 2]);
        m.at_end(1);
        m.at_end(2);
        m.push(0, ev(5, "192.0.2.0/24"));
        let mut out = Vec::new();
        m.release(Instant::now(), usize::MAX, &mut out);
        assert_eq!(secs(&out), [5]);
    }

    #[test]
    fn a_silent_partition_holds_the_others_back_for_a_bounded_time() {
        let mut m = Merge::default();
        m.reset(&[0, 1]);
        m.push(0, ev(1, "192.0.2.0/24"));
        let t0 = Instant::now();
        let mut out = Vec::new();
        m.release(t0, usize::MAX, &mut out);
        m.release(t0 + MAX_HOLD / 2, usize::MAX, &mut out);
        assert!(out.is_empty());
        m.release(t0 + MAX_HOLD, usize::MAX, &mut out);
        assert_eq!(secs(&out), [1]);
    }

    #[test]
    fn release_stops_at_the_batch_size_and_drain_takes_everything_in_order() {
        let mut m = Merge::default();
        m.reset(&[0, 1]);
        m.at_end(1);
        for s in [3, 1, 2] {
            // Out of order within a partition stays in the partition's order.
            m.push(0, ev(s, "192.0.2.0/24"));
        }
        let mut out = Vec::new();
        m.release(Instant::now(), 1, &mut out);
        assert_eq!(secs(&out), [3]);
        m.push(1, ev(0, "198.51.100.0/24"));
        m.drain(&mut out);
        assert_eq!(secs(&out), [3, 0, 1, 2]);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn lanes_over_the_cap_are_paused_until_half_drained() {
        let mut m = Merge::default();
        m.reset(&[0, 1]);
        for s in 0..PARTITION_CAP as i64 {
            m.push(0, ev(s, "192.0.2.0/24"));
        }
        assert_eq!(m.flow_changes(), (vec![0], vec![]));
        assert_eq!(m.flow_changes(), (vec![], vec![]), "reported once");
        m.at_end(1);
        let mut out = Vec::new();
        m.release(Instant::now(), PARTITION_CAP / 2 + 1, &mut out);
        assert_eq!(m.flow_changes(), (vec![], vec![0]));
        assert_eq!(m.flow_changes(), (vec![], vec![]), "reported once");
    }

    #[test]
    fn events_of_partitions_no_longer_owned_are_ignored() {
        let mut m = Merge::default();
        m.reset(&[0]);
        m.push(3, ev(1, "192.0.2.0/24"));
        assert!(m.is_empty());
        m.push(0, ev(1, "192.0.2.0/24"));
        m.reset(&[0, 1]);
        assert!(m.is_empty(), "a reset lane starts empty");
    }
}
