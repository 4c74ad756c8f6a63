//! Vantage points interned to small ids, so route state keys are cheap.

use std::sync::Arc;

use foldhash::HashMap;

use crate::event::VantagePoint;

/// Index of a VP in the [`VpTable`].
pub type VpId = u32;

/// Every VP seen, by id.
#[derive(Debug, Default)]
pub struct VpTable {
    /// foldhash: a VP is hashed once per route event (two strings, an ASN and an address).
    ids: HashMap<Arc<VantagePoint>, VpId>,
    vps: Vec<Arc<VantagePoint>>,
    /// Per VP: its name as alerts show it, made once.
    names: Vec<String>,
    /// Every VP, in VP order (the order samples list them in).
    order: Vec<VpId>,
    /// Per VP: its position in `order`, so that samples sort by comparing numbers.
    rank: Vec<u32>,
    /// The VP interned last: the events of one message share one `Arc`, so most events find
    /// their id by comparing a pointer instead of hashing the VP.
    last: Option<(Arc<VantagePoint>, VpId)>,
}

impl VpTable {
    /// The id of a VP, assigning one on first sight.
    pub fn intern(&mut self, vp: &Arc<VantagePoint>) -> VpId {
        if let Some((last, id)) = &self.last
            && Arc::ptr_eq(last, vp)
        {
            return *id;
        }
        if let Some(&id) = self.ids.get(vp) {
            self.last = Some((vp.clone(), id));
            return id;
        }
        let id = self.vps.len() as VpId;
        self.vps.push(vp.clone());
        self.names.push(vp.to_string());
        self.ids.insert(vp.clone(), id);
        // A new VP is rare (a few thousand at most): renumbering the ranks after it is cheap.
        let at = self
            .order
            .partition_point(|&o| *self.vps[o as usize] < **vp);
        self.order.insert(at, id);
        self.rank.push(0);
        for (r, &o) in self.order.iter().enumerate().skip(at) {
            self.rank[o as usize] = r as u32;
        }
        self.last = Some((vp.clone(), id));
        id
    }

    /// The name of a known VP as alerts show it (`feed/collector/ASpeer/peer-ip`).
    pub fn name(&self, id: VpId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    /// The position of a known VP in VP order: comparing ranks compares the VPs.
    pub fn rank(&self, id: VpId) -> u32 {
        self.rank.get(id as usize).copied().unwrap_or(u32::MAX)
    }

    /// The id of a known VP.
    pub fn get(&self, vp: &VantagePoint) -> Option<VpId> {
        self.ids.get(vp).copied()
    }

    /// The VP of an id.
    pub fn get_vp(&self, id: VpId) -> Option<&Arc<VantagePoint>> {
        self.vps.get(id as usize)
    }

    /// Number of VPs seen.
    pub fn len(&self) -> usize {
        self.vps.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn vp(asn: u32, collector: &str) -> Arc<VantagePoint> {
        Arc::new(VantagePoint {
            feed: "mrt".into(),
            collector: collector.into(),
            peer_asn: asn,
            peer_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (asn % 250) as u8)),
            exporter: None,
        })
    }

    #[test]
    fn ranks_follow_vp_order_whatever_the_order_of_first_sight() {
        let mut t = VpTable::default();
        let seen: Vec<Arc<VantagePoint>> = [(30, "b"), (10, "b"), (20, "a"), (5, "c"), (25, "b")]
            .into_iter()
            .map(|(a, c)| vp(a, c))
            .collect();
        for v in &seen {
            t.intern(v);
        }
        assert_eq!(t.intern(&seen[2]), 2, "a known VP keeps its id");
        let mut ids: Vec<VpId> = (0..seen.len() as VpId).collect();
        ids.sort_by_key(|&id| t.rank(id));
        let mut want: Vec<VpId> = (0..seen.len() as VpId).collect();
        want.sort_by(|a, b| t.get_vp(*a).cmp(&t.get_vp(*b)));
        assert_eq!(ids, want);
        assert_eq!(t.name(1), seen[1].to_string());
    }
}
