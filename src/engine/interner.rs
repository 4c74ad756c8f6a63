//! Route attributes shared across routes and updates: every distinct AS path (after its first
//! hop), community list and attribute set is held once, however many prefixes, VPs and
//! UPDATEs carry it.
//!
//! A feed shares one attribute set among the prefixes of one UPDATE; a VP that announces the
//! same path for its next prefix in another UPDATE sends a new copy, and two VPs whose paths
//! differ only in the first hop (their own ASN) or the next hop (their own address) send
//! different sets with equal parts. So a route holds [`HeldAttrs`]: its first hop and IPv4
//! next hop inline, and a pointer to a [`Shared`] set (the rest of the path, the communities,
//! any other next hop) whose parts are interned on their own. Routes of different VPs that
//! reach a prefix through the same neighbour share one [`Shared`]; sets that differ only in
//! their communities share the path.
//!
//! An entry leaves its table when the last route holding it lets go; an entry still held
//! elsewhere at that moment (an export on its way to the store, an event in flight) is swept
//! once its table has doubled since its last sweep, so dead entries never outnumber live ones.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use foldhash::HashSet as FastSet;

use crate::event::{AsPath, Community, PathElem, RouteAttrs};

/// A sweep is never run below this many entries (sweeping a small table saves nothing).
const MIN_SWEEP: usize = 4096;

/// Values held once each, by content.
#[derive(Debug)]
struct Interned<T: ?Sized> {
    /// foldhash, seeded per process: values come from outside.
    held: FastSet<Arc<T>>,
    /// Entries after the last sweep.
    after_sweep: usize,
}

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Interned {
            held: FastSet::default(),
            after_sweep: 0,
        }
    }
}

impl<T: ?Sized + Hash + Eq> Interned<T> {
    /// The held value equal to `value`; `value` itself (now held) when none is.
    fn intern(&mut self, value: &Arc<T>) -> Arc<T> {
        if let Some(held) = self.held.get(&**value) {
            return held.clone();
        }
        self.insert(value.clone());
        value.clone()
    }

    fn insert(&mut self, value: Arc<T>) {
        if self.held.len() >= (2 * self.after_sweep).max(MIN_SWEEP) {
            self.sweep();
        }
        self.held.insert(value);
    }

    /// `value` was let go of by its last user but the caller: it leaves the table when nothing
    /// else holds it.
    fn release(&mut self, value: Arc<T>) {
        // Held by the table and by `value`, and by nothing else.
        if Arc::strong_count(&value) == 2 {
            self.held.remove(&*value);
        }
    }

    /// Drops every entry that only the table holds.
    fn sweep(&mut self) {
        self.held.retain(|a| Arc::strong_count(a) > 1);
        self.after_sweep = self.held.len();
    }

    fn len(&self) -> usize {
        self.held.len()
    }
}

impl<T: Hash + Eq> Interned<T> {
    /// The held value equal to `value`, or `value` now held.
    fn intern_value(&mut self, value: T) -> Arc<T> {
        if let Some(held) = self.held.get(&value) {
            return held.clone();
        }
        let value = Arc::new(value);
        self.insert(value.clone());
        value
    }
}

/// A next hop other than an IPv4 one (which the route holds inline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NextHop {
    None,
    /// In [`HeldAttrs::next_hop_v4`].
    V4,
    V6(Ipv6Addr),
}

/// The part of a route's attributes that routes of different VPs share: everything but the
/// first hop and an IPv4 next hop.
#[derive(Debug)]
pub(super) struct Shared {
    /// The path after the first hop (the whole path when `has_head` is false).
    rest: Arc<[PathElem]>,
    communities: Arc<[Community]>,
    /// The path starts with a single ASN, held in [`HeldAttrs::head`].
    has_head: bool,
    next_hop: NextHop,
}

// `rest` and `communities` are interned before a `Shared` is: equal parts are the same
// allocation, so comparing and hashing their addresses is comparing their values.
impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.rest, &other.rest)
            && Arc::ptr_eq(&self.communities, &other.communities)
            && self.has_head == other.has_head
            && self.next_hop == other.next_hop
    }
}

impl Eq for Shared {}

impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(Arc::as_ptr(&self.rest) as *const PathElem as usize);
        state.write_usize(Arc::as_ptr(&self.communities) as *const Community as usize);
        self.has_head.hash(state);
        self.next_hop.hash(state);
    }
}

/// A route's attributes as the engine holds them: 16 bytes, the shared part behind a pointer.
#[derive(Debug, Clone)]
pub(super) struct HeldAttrs {
    shared: Arc<Shared>,
    /// The first hop, when [`Shared::has_head`].
    head: u32,
    /// The next hop, when it is IPv4 (see [`Shared::next_hop`]).
    next_hop_v4: u32,
}

impl PartialEq for HeldAttrs {
    /// Equal attributes: the shared part is interned, so equal ones are the same allocation.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
            && self.head == other.head
            && self.next_hop_v4 == other.next_hop_v4
    }
}

impl Eq for HeldAttrs {}

impl HeldAttrs {
    /// The AS path (shares the held rest of the path; does not copy it).
    pub fn path(&self) -> AsPath {
        AsPath::from_parts(
            self.shared.has_head.then_some(self.head),
            self.shared.rest.clone(),
        )
    }

    /// The possible origins (see [`AsPath::origins`]), without building the path.
    pub fn origins(&self) -> &[u32] {
        match self.shared.rest.last() {
            Some(PathElem::Asn(a)) => std::slice::from_ref(a),
            Some(PathElem::Set(s)) => s,
            None if self.shared.has_head => std::slice::from_ref(&self.head),
            None => &[],
        }
    }

    /// The communities.
    pub fn communities(&self) -> &Arc<[Community]> {
        &self.shared.communities
    }

    /// The next hop.
    pub fn next_hop(&self) -> Option<IpAddr> {
        match self.shared.next_hop {
            NextHop::None => None,
            NextHop::V4 => Some(IpAddr::V4(Ipv4Addr::from(self.next_hop_v4))),
            NextHop::V6(ip) => Some(IpAddr::V6(ip)),
        }
    }

    /// The attributes as the feeds hand them over (shares the held parts; allocates nothing).
    pub fn to_attrs(&self) -> RouteAttrs {
        RouteAttrs {
            path: self.path(),
            communities: self.shared.communities.clone(),
            next_hop: self.next_hop(),
        }
    }

    /// True when `attrs` are these attributes.
    pub fn is(&self, attrs: &RouteAttrs) -> bool {
        attrs.path.head_asn() == self.shared.has_head.then_some(self.head)
            && (Arc::ptr_eq(attrs.path.rest(), &self.shared.rest)
                || **attrs.path.rest() == *self.shared.rest)
            && (Arc::ptr_eq(&attrs.communities, &self.shared.communities)
                || *attrs.communities == *self.shared.communities)
            && attrs.next_hop == self.next_hop()
    }

    /// An address that is the same for equal attributes while both are held (a cache key).
    pub fn key(&self) -> (usize, u32, u32) {
        (
            Arc::as_ptr(&self.shared) as usize,
            self.head,
            self.next_hop_v4,
        )
    }
}

/// The attribute parts held by routes, by value.
#[derive(Debug, Default)]
pub(super) struct AttrTable {
    paths: Interned<[PathElem]>,
    communities: Interned<[Community]>,
    shared: Interned<Shared>,
    /// The last set interned, as given and as held: the prefixes of one UPDATE share one
    /// `Arc`, so most look-ups end here without hashing the path.
    last: Option<(Arc<RouteAttrs>, HeldAttrs)>,
}

impl AttrTable {
    /// `attrs` as held: equal parts are the ones already held; parts not held yet are taken
    /// from `attrs` (not copied).
    pub fn intern(&mut self, attrs: &Arc<RouteAttrs>) -> HeldAttrs {
        if let Some((given, held)) = &self.last
            && Arc::ptr_eq(given, attrs)
        {
            return held.clone();
        }
        let held = self.intern_new(attrs);
        self.last = Some((attrs.clone(), held.clone()));
        held
    }

    fn intern_new(&mut self, attrs: &RouteAttrs) -> HeldAttrs {
        let rest = self.paths.intern(attrs.path.rest());
        let communities = self.communities.intern(&attrs.communities);
        let (next_hop, next_hop_v4) = match attrs.next_hop {
            None => (NextHop::None, 0),
            Some(IpAddr::V4(ip)) => (NextHop::V4, u32::from(ip)),
            Some(IpAddr::V6(ip)) => (NextHop::V6(ip), 0),
        };
        let head = attrs.path.head_asn();
        let shared = self.shared.intern_value(Shared {
            rest,
            communities,
            has_head: head.is_some(),
            next_hop,
        });
        HeldAttrs {
            shared,
            head: head.unwrap_or(0),
            next_hop_v4,
        }
    }

    /// A route let go of `attrs`: their parts leave the tables when nothing else holds them.
    pub fn release(&mut self, attrs: HeldAttrs) {
        let shared = attrs.shared;
        let in_last = self
            .last
            .as_ref()
            .is_some_and(|(_, held)| Arc::ptr_eq(&held.shared, &shared));
        // Held by the table, by `attrs` and by `last`, and by nothing else.
        if Arc::strong_count(&shared) != 2 + usize::from(in_last) {
            return;
        }
        if in_last {
            self.last = None;
        }
        self.shared.held.remove(&*shared);
        if let Ok(Shared {
            rest, communities, ..
        }) = Arc::try_unwrap(shared)
        {
            self.paths.release(rest);
            self.communities.release(communities);
        }
    }

    /// Number of distinct attribute sets held (first hop and IPv4 next hop aside).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Numbers of distinct (attribute sets, paths after the first hop, community lists) held.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.shared.len(), self.paths.len(), self.communities.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(path: &[u32], communities: &[Community], next_hop: &str) -> Arc<RouteAttrs> {
        Arc::new(RouteAttrs {
            path: AsPath::from_asns(path.iter().copied()),
            communities: communities.into(),
            next_hop: (!next_hop.is_empty()).then(|| next_hop.parse().unwrap()),
        })
    }

    const C1: Community = Community::Standard(1, 2);
    const C2: Community = Community::Large(1, 2, 3);

    #[test]
    fn equal_parts_from_different_updates_and_sets_are_held_once() {
        let mut t = AttrTable::default();
        let a = t.intern(&attrs(&[10, 2, 3], &[C1], "192.0.2.1"));
        // The same values in other allocations (another UPDATE).
        let b = t.intern(&attrs(&[10, 2, 3], &[C1], "192.0.2.1"));
        assert!(Arc::ptr_eq(&a.shared, &b.shared));
        assert_eq!(a, b);
        // Another VP: its own first hop and next hop, the same rest of the path.
        let c = t.intern(&attrs(&[11, 2, 3], &[C1], "192.0.2.2"));
        assert!(Arc::ptr_eq(&a.shared, &c.shared), "only the head differs");
        assert_ne!(a, c);
        // Other communities: another set, the same path.
        let d = t.intern(&attrs(&[10, 2, 3], &[C2], "192.0.2.1"));
        assert!(!Arc::ptr_eq(&a.shared, &d.shared));
        assert!(Arc::ptr_eq(&a.shared.rest, &d.shared.rest));
        // Another path, the same communities.
        let e = t.intern(&attrs(&[10, 2, 4], &[C1], "192.0.2.1"));
        assert!(!Arc::ptr_eq(&a.shared.rest, &e.shared.rest));
        assert!(Arc::ptr_eq(&a.shared.communities, &e.shared.communities));
        assert_eq!(t.counts(), (3, 2, 2));
    }

    #[test]
    fn held_attributes_read_back_as_given() {
        let mut t = AttrTable::default();
        let set = |p: Vec<PathElem>, nh: Option<IpAddr>| {
            Arc::new(RouteAttrs {
                path: AsPath::from(p),
                communities: vec![C1, C2].into(),
                next_hop: nh,
            })
        };
        let cases = [
            set(vec![PathElem::Asn(7), PathElem::Asn(8)], None),
            set(vec![PathElem::Asn(7)], Some("192.0.2.9".parse().unwrap())),
            set(vec![], Some("2001:db8::1".parse().unwrap())),
            set(
                vec![PathElem::Set(vec![1, 2].into()), PathElem::Asn(3)],
                None,
            ),
            set(
                vec![PathElem::Asn(4), PathElem::Set(vec![5, 6].into())],
                Some("0.0.0.0".parse().unwrap()),
            ),
        ];
        let held: Vec<HeldAttrs> = cases.iter().map(|a| t.intern(a)).collect();
        for (a, h) in cases.iter().zip(&held) {
            assert_eq!(h.to_attrs(), **a);
            assert_eq!(h.path(), a.path);
            assert_eq!(h.path().to_string(), a.path.to_string());
            assert_eq!(h.origins(), a.path.origins());
            assert_eq!(h.next_hop(), a.next_hop);
            assert!(h.is(a));
        }
        // Different sets are different, both ways.
        for (i, h) in held.iter().enumerate() {
            for (j, a) in cases.iter().enumerate() {
                assert_eq!(h.is(a), i == j, "{i} {j}");
                assert_eq!(*h == held[j], i == j, "{i} {j}");
            }
        }
    }

    #[test]
    fn parts_leave_when_their_last_route_lets_go() {
        let mut t = AttrTable::default();
        let given = attrs(&[10, 2, 3], &[C1], "192.0.2.1");
        let a = t.intern(&given);
        let b = t.intern(&attrs(&[11, 2, 3], &[C1], "192.0.2.2"));
        let c = t.intern(&attrs(&[10, 2, 3], &[C2], ""));
        drop(given);
        assert_eq!(t.counts(), (2, 1, 2));
        t.release(a);
        assert_eq!(t.counts(), (2, 1, 2), "still held by another VP's route");
        t.release(b);
        assert_eq!(t.counts(), (1, 1, 1), "the set and its communities left");
        t.release(c);
        assert_eq!(t.counts(), (0, 0, 0));
    }

    #[test]
    fn churn_does_not_grow_the_tables() {
        let mut t = AttrTable::default();
        let mut held: Vec<HeldAttrs> = Vec::new();
        for round in 0..20u32 {
            // 100 routes, each replaced by one with a new path and new communities per round.
            let fresh: Vec<HeldAttrs> = (0..100u32)
                .map(|i| {
                    let c = Community::Standard(round as u16, i as u16);
                    t.intern(&attrs(&[i, round, 1000 + i], &[c], ""))
                })
                .collect();
            for old in std::mem::replace(&mut held, fresh) {
                t.release(old);
            }
            assert_eq!(t.counts(), (100, 100, 100), "round {round}");
        }
    }

    #[test]
    fn parts_held_elsewhere_are_swept_once_the_table_has_grown() {
        let mut t = AttrTable::default();
        let outside = attrs(&[9, 8], &[], "");
        let route = t.intern(&outside);
        // An export holds the path and communities when the route goes.
        let export = route.to_attrs();
        t.last = None;
        t.release(route);
        assert_eq!(
            t.counts(),
            (0, 1, 1),
            "the set went, its parts are held elsewhere"
        );
        drop((export, outside));
        let kept: Vec<_> = (0..MIN_SWEEP as u32 + 1)
            .map(|i| {
                t.intern(&attrs(
                    &[5, i + 10],
                    &[Community::Standard(0, i as u16)],
                    "",
                ))
            })
            .collect();
        assert_eq!(
            t.counts(),
            (kept.len(), kept.len(), kept.len()),
            "the dead path and list were swept"
        );
    }
}
