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
}

impl VpTable {
    /// The id of a VP, assigning one on first sight.
    pub fn intern(&mut self, vp: &Arc<VantagePoint>) -> VpId {
        if let Some(id) = self.ids.get(vp) {
            return *id;
        }
        let id = self.vps.len() as VpId;
        self.vps.push(vp.clone());
        self.ids.insert(vp.clone(), id);
        id
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
