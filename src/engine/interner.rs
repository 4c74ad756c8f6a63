//! Route attributes shared across routes and updates: equal attribute sets (AS path,
//! communities, next hop) are held once, however many prefixes, VPs and UPDATEs carry them.
//!
//! A feed shares one attribute set among the prefixes of one UPDATE; a VP that announces the
//! same path for its next prefix in another UPDATE sends a new copy. The table turns every copy
//! into the one already held, so the routes held cost one pointer each plus one attribute set
//! per distinct value. An entry leaves the table when the last route holding it lets go; an
//! entry still held elsewhere at that moment (an export on its way to the store) is swept once
//! the table has doubled since its last sweep, so dead entries never outnumber live ones.

use std::sync::Arc;

use foldhash::HashSet as FastSet;

use crate::event::RouteAttrs;

/// A sweep is never run below this many entries (sweeping a small table saves nothing).
const MIN_SWEEP: usize = 4096;

/// The attribute sets held by routes, by value.
#[derive(Debug, Default)]
pub(super) struct AttrTable {
    /// foldhash, seeded per process: attribute values come from outside.
    held: FastSet<Arc<RouteAttrs>>,
    /// The last set interned, as given and as held: the prefixes of one UPDATE share one
    /// `Arc`, so most look-ups end here without hashing the path.
    last: Option<(Arc<RouteAttrs>, Arc<RouteAttrs>)>,
    /// Entries after the last sweep.
    after_sweep: usize,
}

impl AttrTable {
    /// The held set equal to `attrs`; `attrs` itself (now held) when none is.
    pub fn intern(&mut self, attrs: &Arc<RouteAttrs>) -> Arc<RouteAttrs> {
        if let Some((given, held)) = &self.last
            && Arc::ptr_eq(given, attrs)
        {
            return held.clone();
        }
        let held = match self.held.get(&**attrs) {
            Some(held) => held.clone(),
            None => {
                if self.held.len() >= (2 * self.after_sweep).max(MIN_SWEEP) {
                    self.sweep();
                }
                self.held.insert(attrs.clone());
                attrs.clone()
            }
        };
        self.last = Some((attrs.clone(), held.clone()));
        held
    }

    /// A route let go of `attrs`: they leave the table when nothing else holds them.
    pub fn release(&mut self, attrs: Arc<RouteAttrs>) {
        let in_last = self.last.as_ref().map_or(0, |(given, held)| {
            usize::from(Arc::ptr_eq(given, &attrs)) + usize::from(Arc::ptr_eq(held, &attrs))
        });
        // Held by the table, by `attrs` and by `last`, and by nothing else.
        if Arc::strong_count(&attrs) == 2 + in_last {
            if in_last > 0 {
                self.last = None;
            }
            self.held.remove(&*attrs);
        }
    }

    /// Drops every entry that only the table holds.
    fn sweep(&mut self) {
        self.last = None;
        self.held.retain(|a| Arc::strong_count(a) > 1);
        self.after_sweep = self.held.len();
    }

    /// Number of distinct attribute sets held.
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AsPath, Community};

    fn attrs(path: &[u32]) -> Arc<RouteAttrs> {
        Arc::new(RouteAttrs {
            path: AsPath::from_asns(path.iter().copied()),
            communities: vec![Community::Standard(1, 2)],
            next_hop: None,
        })
    }

    #[test]
    fn equal_sets_from_different_updates_are_held_once() {
        let mut t = AttrTable::default();
        let a = t.intern(&attrs(&[1, 2, 3]));
        let b = t.intern(&attrs(&[1, 2, 3]));
        let c = t.intern(&attrs(&[1, 2, 4]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, *attrs(&[1, 2, 4]));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_set_leaves_when_its_last_route_lets_go() {
        let mut t = AttrTable::default();
        let given = attrs(&[1, 2, 3]);
        let a = t.intern(&given);
        let b = t.intern(&attrs(&[1, 2, 3]));
        drop(given);
        t.release(a);
        assert_eq!(t.len(), 1, "still held by a route");
        t.release(b);
        assert_eq!(t.len(), 0);
        // Held elsewhere when the last route let go: swept once the table has grown.
        let outside = t.intern(&attrs(&[9]));
        let route = outside.clone();
        t.release(route);
        assert_eq!(t.len(), 1);
        drop(outside);
        let kept: Vec<_> = (0..MIN_SWEEP as u32 + 1)
            .map(|i| t.intern(&attrs(&[i + 10])))
            .collect();
        assert_eq!(t.len(), kept.len(), "the dead entry was swept");
    }
}
