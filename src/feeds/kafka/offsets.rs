//! Which offsets may be committed: records are read in order per partition, handed on in
//! batches, and acknowledged batch by batch once their effects are stored; a partition's
//! offset moves only past records all of whose predecessors are acknowledged too.

use std::collections::{HashMap, VecDeque};

use super::consumer::Partition;

/// One batch's records of one partition, in reading order.
#[derive(Debug)]
struct Span {
    /// The batch.
    batch: u64,
    /// Offset of its last record in the partition.
    last: i64,
    /// Records it holds.
    records: usize,
    acked: bool,
}

/// Records read and not yet acknowledged, per partition, by batch.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<Partition, VecDeque<Span>>,
    /// Records of unacknowledged batches.
    in_flight: usize,
    /// The partitions of each open batch.
    batches: HashMap<u64, Vec<Partition>>,
}

/// What a batch holds of one partition, collected while the batch is built.
#[derive(Debug, Default)]
pub struct BatchRecords {
    spans: HashMap<Partition, (i64, usize)>,
}

impl BatchRecords {
    /// A record read into the batch.
    pub fn add(&mut self, partition: &Partition, offset: i64) {
        match self.spans.get_mut(partition) {
            Some((last, n)) => {
                *last = (*last).max(offset);
                *n += 1;
            }
            None => {
                self.spans.insert(partition.clone(), (offset, 1));
            }
        }
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.spans.values().map(|(_, n)| n).sum()
    }

    /// No record yet.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl OffsetTracker {
    /// Records a batch handed on, not yet acknowledged.
    pub fn open(&mut self, batch: u64, records: BatchRecords) {
        let mut parts = Vec::with_capacity(records.spans.len());
        for (p, (last, n)) in records.spans {
            self.in_flight += n;
            self.partitions
                .entry(p.clone())
                .or_default()
                .push_back(Span {
                    batch,
                    last,
                    records: n,
                    acked: false,
                });
            parts.push(p);
        }
        self.batches.insert(batch, parts);
    }

    /// A batch is acknowledged: returns, for every partition whose committable offset moved,
    /// the offset to commit (one past the last record all of whose predecessors are done).
    pub fn ack(&mut self, batch: u64) -> Vec<(Partition, i64)> {
        let Some(parts) = self.batches.remove(&batch) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in parts {
            let Some(spans) = self.partitions.get_mut(&p) else {
                continue;
            };
            if let Some(s) = spans.iter_mut().find(|s| s.batch == batch) {
                s.acked = true;
            }
            let mut next = None;
            while spans.front().is_some_and(|s| s.acked) {
                if let Some(s) = spans.pop_front() {
                    self.in_flight = self.in_flight.saturating_sub(s.records);
                    next = Some(s.last + 1);
                }
            }
            if let Some(n) = next {
                out.push((p, n));
            }
        }
        out
    }

    /// The partitions are no longer this consumer's: their records will be read again by
    /// their new owner, from the last offset committed.
    pub fn forget(&mut self, gone: &[Partition]) {
        for p in gone {
            if let Some(spans) = self.partitions.remove(p) {
                for s in spans {
                    self.in_flight = self.in_flight.saturating_sub(s.records);
                    if let Some(parts) = self.batches.get_mut(&s.batch) {
                        parts.retain(|q| q != p);
                    }
                }
            }
        }
        self.batches.retain(|_, parts| !parts.is_empty());
    }

    /// Records read and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn p(n: i32) -> Partition {
        (Arc::from("t"), n)
    }

    fn batch(records: &[(i32, i64)]) -> BatchRecords {
        let mut b = BatchRecords::default();
        for (part, off) in records {
            b.add(&p(*part), *off);
        }
        b
    }

    #[test]
    fn an_offset_moves_only_past_acknowledged_predecessors() {
        let mut t = OffsetTracker::default();
        t.open(1, batch(&[(0, 10), (0, 11), (1, 5)]));
        t.open(2, batch(&[(0, 12), (1, 6)]));
        t.open(3, batch(&[(0, 13)]));
        assert_eq!(t.in_flight(), 6);
        // The second batch first: nothing moves, its predecessors are not done.
        assert!(t.ack(2).is_empty());
        let mut moved = t.ack(1);
        moved.sort();
        // Both batches 1 and 2 are done now: partition 0 up to 12, partition 1 up to 6.
        assert_eq!(moved, vec![(p(0), 13), (p(1), 7)]);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.ack(3), vec![(p(0), 14)]);
        assert_eq!(t.in_flight(), 0);
        // An unknown or repeated acknowledgement changes nothing.
        assert!(t.ack(3).is_empty());
        assert!(t.ack(99).is_empty());
    }

    #[test]
    fn a_revoked_partition_is_forgotten() {
        let mut t = OffsetTracker::default();
        t.open(1, batch(&[(0, 1), (1, 1)]));
        t.open(2, batch(&[(1, 2)]));
        t.forget(&[p(1)]);
        assert_eq!(t.in_flight(), 1);
        assert!(t.ack(2).is_empty());
        assert_eq!(t.ack(1), vec![(p(0), 2)]);
        assert_eq!(t.in_flight(), 0);
    }
}
