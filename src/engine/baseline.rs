//! Allowed ASNs of a watched prefix: configured, or learned from what the feeds show first.

/// A set of allowed ASNs, kept sorted (they are few).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    asns: Vec<u32>,
    learning: bool,
}

impl Baseline {
    /// A configured set; an empty one means "learn".
    pub fn new(configured: &[u32]) -> Self {
        let mut asns = configured.to_vec();
        asns.sort_unstable();
        asns.dedup();
        Baseline {
            learning: asns.is_empty(),
            asns,
        }
    }

    /// An empty set that learns.
    pub fn learning() -> Self {
        Baseline {
            asns: Vec::new(),
            learning: true,
        }
    }

    /// A learned set saved earlier; it goes on learning.
    pub fn restored(asns: &[u32]) -> Self {
        let mut b = Baseline::new(asns);
        b.learning = true;
        b
    }

    /// True when the set is learned rather than configured.
    pub fn is_learning(&self) -> bool {
        self.learning
    }

    /// The allowed ASNs, sorted.
    pub fn asns(&self) -> &[u32] {
        &self.asns
    }

    /// True when the ASN is allowed.
    pub fn contains(&self, asn: u32) -> bool {
        self.asns.binary_search(&asn).is_ok()
    }

    /// Adds a learned ASN; true when it was new.
    pub fn learn(&mut self, asn: u32) -> bool {
        match self.asns.binary_search(&asn) {
            Ok(_) => false,
            Err(pos) => {
                self.asns.insert(pos, asn);
                true
            }
        }
    }
}
