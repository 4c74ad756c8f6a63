//! RPKI data for the detectors: validated ROA payloads (route origin validation, RFC 6811) and
//! ASPA records (AS path verification), loaded from the JSON that relying-party software writes.
//!
//! The tables are immutable once loaded; a reload builds new ones and hands the engine a new
//! [`RpkiSnapshot`], so the engine never waits on a file.

mod aspa;
mod load;
mod parse;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ipnet::IpNet;
use prefix_trie::joint::map::JointPrefixMap;
use serde::{Deserialize, Serialize};

use crate::event::{AsPath, PathElem};

pub use aspa::{AspaProcedure, AspaVerdict, verify_path};
pub use load::{LoadError, LoadedFile, RpkiLoader, load_files};
pub use parse::{MAX_RPKI_FILE_BYTES, ParseError, Parsed, parse_json};

/// Route origin validation state of a route (RFC 6811).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RovState {
    /// A VRP covers the prefix, names the origin, and allows the prefix length.
    Valid,
    /// VRPs cover the prefix but none matches origin and length.
    Invalid,
    /// No VRP covers the prefix.
    NotFound,
}

impl RovState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RovState::Valid => "valid",
            RovState::Invalid => "invalid",
            RovState::NotFound => "not_found",
        }
    }
}

impl fmt::Display for RovState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of ASPA path verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AspaState {
    /// Every hop is attested as valley-free.
    Valid,
    /// ASPA records prove a hop that the procedure does not allow: a leak.
    Invalid,
    /// Not enough ASPA records to decide.
    Unknown,
    /// The path has an AS_SET (or is empty), so no hop order can be checked.
    Unverifiable,
}

impl AspaState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AspaState::Valid => "valid",
            AspaState::Invalid => "invalid",
            AspaState::Unknown => "unknown",
            AspaState::Unverifiable => "unverifiable",
        }
    }
}

impl fmt::Display for AspaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated ROA payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vrp {
    /// The prefix of the ROA entry.
    pub prefix: IpNet,
    /// The longest prefix length that the ROA allows.
    pub max_length: u8,
    /// The authorised origin (0 = AS0: nobody may originate).
    pub asn: u32,
}

/// The ROA and ASPA tables, built once per load.
#[derive(Debug, Default)]
pub struct RpkiData {
    vrps: JointPrefixMap<IpNet, Vec<(u32, u8)>>,
    vrp_count: usize,
    aspas: HashMap<u32, Box<[u32]>>,
    /// When the relying-party software produced the data (seconds since the epoch), when the
    /// files say; otherwise the oldest file modification time.
    pub generated: Option<i64>,
}

impl RpkiData {
    /// Builds the tables from VRPs and ASPA records (customer, providers). Duplicates are merged.
    pub fn new(
        vrps: impl IntoIterator<Item = Vrp>,
        aspas: impl IntoIterator<Item = (u32, Vec<u32>)>,
    ) -> Self {
        let mut data = RpkiData::default();
        for v in vrps {
            let entry = (v.asn, v.max_length);
            match data.vrps.get_mut(&v.prefix) {
                Some(list) if list.contains(&entry) => {}
                Some(list) => {
                    list.push(entry);
                    data.vrp_count += 1;
                }
                None => {
                    data.vrps.insert(v.prefix, vec![entry]);
                    data.vrp_count += 1;
                }
            }
        }
        let mut merged: HashMap<u32, Vec<u32>> = HashMap::new();
        for (customer, providers) in aspas {
            merged.entry(customer).or_default().extend(providers);
        }
        data.aspas = merged
            .into_iter()
            .map(|(c, mut p)| {
                p.sort_unstable();
                p.dedup();
                (c, p.into_boxed_slice())
            })
            .collect();
        data
    }

    /// Number of distinct VRPs.
    pub fn vrp_count(&self) -> usize {
        self.vrp_count
    }

    /// Number of customer ASes with an ASPA record.
    pub fn aspa_count(&self) -> usize {
        self.aspas.len()
    }

    /// RFC 6811 origin validation of `prefix` originated by `origin` (`None` when the path ends
    /// in an AS_SET or is empty: such a route can match no VRP).
    pub fn rov(&self, prefix: &IpNet, origin: Option<u32>) -> RovState {
        let mut covered = false;
        for (_, list) in self.vrps.cover(prefix) {
            covered = true;
            if let Some(origin) = origin
                && list
                    .iter()
                    .any(|&(asn, max)| asn == origin && asn != 0 && prefix.prefix_len() <= max)
            {
                return RovState::Valid;
            }
        }
        if covered {
            RovState::Invalid
        } else {
            RovState::NotFound
        }
    }

    /// ROV state of a route: its prefix and the origin of its AS path.
    pub fn rov_of_path(&self, prefix: &IpNet, path: &AsPath) -> RovState {
        let origin = match path.last() {
            Some(PathElem::Asn(a)) => Some(*a),
            _ => None,
        };
        self.rov(prefix, origin)
    }

    /// The providers attested by `customer`'s ASPA, sorted; `None` without an ASPA.
    pub fn providers(&self, customer: u32) -> Option<&[u32]> {
        self.aspas.get(&customer).map(|p| &p[..])
    }

    /// ASPA verification of a path with the given procedure.
    pub fn verify(&self, path: &AsPath, procedure: AspaProcedure) -> AspaVerdict {
        verify_path(path, procedure, |c| self.providers(c))
    }
}

/// What the engine sees of the RPKI: the tables and whether they are out of date.
#[derive(Debug, Clone, Default)]
pub struct RpkiSnapshot {
    /// The tables; `None` until RPKI data is configured and loaded once.
    pub data: Option<Arc<RpkiData>>,
    /// The data is older than allowed (or the files could not be read since).
    pub stale: bool,
    /// Which ASPA procedure the `route_leak` rule uses.
    pub procedure: AspaProcedure,
}

#[cfg(test)]
mod tests;
