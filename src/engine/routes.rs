//! The routes of one prefix, by VP id.
//!
//! VP ids are dense (0, 1, 2, … in order of first sight) and a watched prefix is usually
//! routed by most VPs, so routes sit in slots indexed by VP id rather than in a hash map: a
//! lookup is an index, a route costs its 24 bytes, and the storage grows one small chunk at a
//! time instead of doubling a table (which keeps the old and the new table alive at once).
//! Chunks are allocated only where some VP in their id range routes the prefix, so a
//! prefix seen by a few VPs stays small.

use ipnet::IpNet;

use super::vps::VpId;
use super::{FastMap, Route};

/// VP slots per chunk.
const CHUNK: usize = 16;

type Chunk = [Option<Route>; CHUNK];

/// The routes of one prefix, by VP id; iterates in VP id order.
#[derive(Debug, Default, Clone)]
pub(super) struct VpRoutes {
    /// (chunk number = VP id / [`CHUNK`], its slots), sorted by chunk number. When every
    /// chunk up to some number is present, chunk `k` is at position `k` (the common case).
    chunks: Vec<(u32, Box<Chunk>)>,
    len: u32,
}

fn split(vp: VpId) -> (u32, usize) {
    (vp / CHUNK as u32, vp as usize % CHUNK)
}

impl VpRoutes {
    /// Position of chunk `n` in `chunks`: `Ok` when present, else where it would go.
    #[inline]
    fn find(&self, n: u32) -> Result<usize, usize> {
        if let Some((k, _)) = self.chunks.get(n as usize)
            && *k == n
        {
            return Ok(n as usize);
        }
        self.chunks.binary_search_by_key(&n, |(k, _)| *k)
    }

    /// Number of VPs with a route.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no VP has a route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The route of a VP.
    #[inline]
    pub fn get(&self, vp: &VpId) -> Option<&Route> {
        let (n, slot) = split(*vp);
        let i = self.find(n).ok()?;
        self.chunks[i].1[slot].as_ref()
    }

    /// True when the VP has a route.
    pub fn contains_key(&self, vp: &VpId) -> bool {
        self.get(vp).is_some()
    }

    /// Sets the route of a VP; returns the one it replaces.
    #[inline]
    pub fn insert(&mut self, vp: VpId, route: Route) -> Option<Route> {
        let (n, slot) = split(vp);
        let i = match self.find(n) {
            Ok(i) => i,
            Err(i) => {
                self.chunks.insert(i, (n, Box::default()));
                i
            }
        };
        let old = self.chunks[i].1[slot].replace(route);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes the route of a VP. A chunk left empty is freed.
    #[inline]
    pub fn remove(&mut self, vp: &VpId) -> Option<Route> {
        let (n, slot) = split(*vp);
        let i = self.find(n).ok()?;
        let old = self.chunks[i].1[slot].take()?;
        self.len -= 1;
        if self.chunks[i].1.iter().all(Option::is_none) {
            self.chunks.remove(i);
        }
        Some(old)
    }

    /// (VP id, route) in VP id order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            chunks: self.chunks.iter(),
            cur: None,
            slot: 0,
            left: self.len as usize,
        }
    }

    /// The routes, in VP id order.
    pub fn values(&self) -> impl Iterator<Item = &Route> + '_ {
        self.iter().map(|(_, r)| r)
    }
}

/// The prefixes `vp` has a route to, in order (map order is random per process; a replay must
/// give the same output every time).
pub(super) fn routed_by(routes: &FastMap<IpNet, VpRoutes>, vp: VpId) -> Vec<IpNet> {
    let mut prefixes: Vec<IpNet> = routes
        .iter()
        .filter(|(_, by_vp)| by_vp.contains_key(&vp))
        .map(|(p, _)| *p)
        .collect();
    prefixes.sort_unstable();
    prefixes
}

/// Iterator over the routes of a [`VpRoutes`]; knows its length, so a `collect` allocates
/// once, exactly.
pub(super) struct Iter<'a> {
    chunks: std::slice::Iter<'a, (u32, Box<Chunk>)>,
    cur: Option<(u32, &'a Chunk)>,
    slot: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (VpId, &'a Route);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((n, chunk)) = self.cur {
                while self.slot < CHUNK {
                    let s = self.slot;
                    self.slot += 1;
                    if let Some(r) = &chunk[s] {
                        self.left -= 1;
                        return Some((n * CHUNK as u32 + s as u32, r));
                    }
                }
            }
            let (n, chunk) = self.chunks.next()?;
            self.cur = Some((*n, &**chunk));
            self.slot = 0;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{AsPath, RouteAttrs, Timestamp};

    fn route(t: i64) -> Route {
        let mut table = super::super::interner::AttrTable::default();
        Route {
            attrs: table.intern(&Arc::new(RouteAttrs {
                path: AsPath::from_asns([64500]),
                communities: Vec::new().into(),
                next_hop: None,
            })),
            since: Timestamp(t),
        }
    }

    #[test]
    fn behaves_like_a_map_in_id_order() {
        let mut m = VpRoutes::default();
        let mut reference = std::collections::BTreeMap::new();
        // Sparse and dense ids, out of order, with replacements and removals.
        let ops: Vec<(u32, bool)> = (0..2000u32)
            .map(|i| ((i * 7919) % 611, i % 5 != 3))
            .chain([(100_000, true), (3, false), (100_000, false), (17, true)])
            .collect();
        for (t, (vp, add)) in ops.into_iter().enumerate() {
            if add {
                let a = m.insert(vp, route(t as i64)).map(|r| r.since);
                let b = reference.insert(vp, t as i64).map(Timestamp);
                assert_eq!(a, b);
            } else {
                let a = m.remove(&vp).map(|r| r.since);
                let b = reference.remove(&vp).map(Timestamp);
                assert_eq!(a, b);
            }
            assert_eq!(m.len(), reference.len());
        }
        let got: Vec<(u32, i64)> = m.iter().map(|(vp, r)| (vp, r.since.0)).collect();
        let want: Vec<(u32, i64)> = reference.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
        assert_eq!(m.iter().count(), m.values().count());
        assert_eq!(m.iter().len(), m.len());
        for vp in 0..700 {
            assert_eq!(m.contains_key(&vp), reference.contains_key(&vp));
        }
        for vp in reference.keys().copied().collect::<Vec<_>>() {
            m.remove(&vp);
        }
        assert!(m.is_empty());
        assert!(m.chunks.is_empty(), "empty chunks are freed");
    }
}
