//! Allowed ASNs of a watched prefix: configured, or learned over a window, plus any an
//! operator accepted.
//!
//! Learning keeps a tally while its window is open: which VPs showed each candidate ASN. At
//! the end of the window only candidates that enough VPs showed become the baseline, so a
//! hijacker seen first, or by a few VPs, is not learned. While the window is open every
//! candidate counts as allowed: what may become the baseline raises nothing yet.

use std::collections::{BTreeMap, BTreeSet};

use super::vps::VpId;

/// The candidates a window would learn now: compared before and after each route to the prefix
/// during a window, so they sit inline (a prefix rarely has more than a few origins).
pub type Leading = smallvec::SmallVec<[u32; 4]>;

/// The learning tally of an open window.
#[derive(Debug, Clone, Default, PartialEq)]
struct Tally {
    /// Candidate ASN → the VPs that showed it.
    candidates: BTreeMap<u32, BTreeSet<VpId>>,
    /// Upstreams only: (upstream, origin behind it) → the VPs that showed the pair, so that
    /// only upstreams of learned origins are learned.
    behind: BTreeMap<(u32, u32), BTreeSet<VpId>>,
    /// Every VP that routed the watched prefix during the window (the share's denominator).
    vps: BTreeSet<VpId>,
    /// VPs a candidate needs.
    quorum: usize,
    /// Share of `vps` a candidate needs (0 to 1).
    min_share: f64,
}

impl Tally {
    /// VPs a candidate needs now.
    fn needed(&self) -> usize {
        let by_share = (self.min_share * self.vps.len() as f64 - 1e-9)
            .ceil()
            .max(0.0) as usize;
        self.quorum.max(by_share).max(1)
    }
}

/// A set of allowed ASNs, kept sorted (they are few).
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Configured or learned, and accepted: everything allowed outside a learning window.
    asns: Vec<u32>,
    /// The ones an operator accepted (also in `asns`).
    accepted: Vec<u32>,
    learning: bool,
    /// Open while the learning window is.
    tally: Option<Tally>,
}

/// A candidate that did not become part of the baseline when a window closed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The ASN.
    pub asn: u32,
    /// VPs that showed it during the window.
    pub vantage_points: usize,
    /// VPs it needed.
    pub needed: usize,
    /// True when RPKI data says it may not originate the prefix.
    pub rpki_invalid: bool,
}

fn insert_sorted(v: &mut Vec<u32>, asn: u32) -> bool {
    match v.binary_search(&asn) {
        Ok(_) => false,
        Err(pos) => {
            v.insert(pos, asn);
            true
        }
    }
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
            accepted: Vec::new(),
            tally: None,
        }
    }

    /// An empty set that learns.
    pub fn learning() -> Self {
        Baseline::new(&[])
    }

    /// A learned set saved earlier.
    pub fn restored(asns: &[u32]) -> Self {
        let mut b = Baseline::new(asns);
        b.learning = true;
        b
    }

    /// True when the set is learned rather than configured.
    pub fn is_learning(&self) -> bool {
        self.learning
    }

    /// The allowed ASNs, sorted (learned candidates of an open window not included).
    pub fn asns(&self) -> &[u32] {
        &self.asns
    }

    /// The ASNs an operator accepted, sorted.
    pub fn accepted(&self) -> &[u32] {
        &self.accepted
    }

    /// True when the ASN is allowed: in the set, or a candidate of an open learning window.
    pub fn contains(&self, asn: u32) -> bool {
        self.asns.binary_search(&asn).is_ok()
            || self
                .tally
                .as_ref()
                .is_some_and(|t| t.candidates.contains_key(&asn))
    }

    /// Adds a learned ASN at once, without a window (the monitored-ASN neighbours); true when
    /// it was new.
    pub fn learn(&mut self, asn: u32) -> bool {
        insert_sorted(&mut self.asns, asn)
    }

    /// Adds ASNs an operator accepted; returns those that were not allowed before.
    pub fn accept(&mut self, asns: &[u32]) -> Vec<u32> {
        let mut added = Vec::new();
        for &a in asns {
            insert_sorted(&mut self.accepted, a);
            if insert_sorted(&mut self.asns, a) {
                added.push(a);
            }
        }
        added
    }

    /// Restores accepted ASNs saved earlier.
    pub fn restore_accepted(&mut self, asns: &[u32]) {
        self.accept(asns);
    }

    /// True while a learning window is open.
    pub fn window_open(&self) -> bool {
        self.tally.is_some()
    }

    /// True when the ASN is allowed on a more-specific: in the set, or a candidate that would
    /// be learned if the window closed now. A minority origin of the prefix itself (a hijacker
    /// that announces both) stays a hijacker under it.
    pub fn contains_leading(&self, asn: u32) -> bool {
        if self.asns.binary_search(&asn).is_ok() {
            return true;
        }
        self.tally.as_ref().is_some_and(|t| {
            t.candidates
                .get(&asn)
                .is_some_and(|vps| vps.len() >= t.needed())
        })
    }

    /// The candidates that would be learned if the window closed now.
    pub fn leading(&self) -> Leading {
        match &self.tally {
            Some(t) => {
                let needed = t.needed();
                t.candidates
                    .iter()
                    .filter(|(_, vps)| vps.len() >= needed)
                    .map(|(a, _)| *a)
                    .collect()
            }
            None => Leading::new(),
        }
    }

    /// Opens the learning window (a no-op for a configured set or an open window): a candidate
    /// will need `quorum` VPs and `min_share` (0 to 1) of the VPs that routed the prefix.
    pub fn open_window(&mut self, quorum: usize, min_share: f64) {
        if self.learning && self.tally.is_none() {
            self.tally = Some(Tally {
                quorum,
                min_share,
                ..Tally::default()
            });
        }
    }

    /// Counts a VP that routes the watched prefix (the share's denominator).
    pub fn count_vp(&mut self, vp: VpId) {
        if let Some(t) = self.tally.as_mut() {
            t.vps.insert(vp);
        }
    }

    /// Counts a VP showing a candidate ASN; true when the ASN was not allowed before.
    pub fn count(&mut self, asn: u32, vp: VpId) -> bool {
        let known = self.asns.binary_search(&asn).is_ok();
        let Some(t) = self.tally.as_mut() else {
            return false;
        };
        let vps = t.candidates.entry(asn).or_default();
        let new = vps.is_empty() && !known;
        vps.insert(vp);
        new
    }

    /// Counts a VP showing upstream `upstream` in front of `origin`; true when the upstream
    /// was not allowed before.
    pub fn count_behind(&mut self, upstream: u32, origin: u32, vp: VpId) -> bool {
        let new = self.count(upstream, vp);
        if let Some(t) = self.tally.as_mut() {
            t.behind.entry((upstream, origin)).or_default().insert(vp);
        }
        new
    }

    /// Closes the window: every candidate that enough VPs showed (see
    /// [`Baseline::open_window`]) is learned, unless `invalid` says RPKI forbids it; for
    /// upstreams, only what VPs showed in front of an origin that `origin_ok` accepts counts.
    /// Returns the candidates left out.
    pub fn close_window(
        &mut self,
        invalid: impl Fn(u32) -> bool,
        origin_ok: impl Fn(u32) -> bool,
    ) -> Vec<Rejected> {
        let Some(mut t) = self.tally.take() else {
            return Vec::new();
        };
        let needed = t.needed();
        if !t.behind.is_empty() {
            t.candidates.clear();
            for ((up, origin), vps) in &t.behind {
                if origin_ok(*origin) {
                    t.candidates.entry(*up).or_default().extend(vps);
                }
            }
        }
        let mut rejected = Vec::new();
        for (asn, vps) in t.candidates {
            if self.asns.binary_search(&asn).is_ok() {
                continue;
            }
            let rpki_invalid = invalid(asn);
            if vps.len() >= needed && !rpki_invalid {
                insert_sorted(&mut self.asns, asn);
            } else {
                rejected.push(Rejected {
                    asn,
                    vantage_points: vps.len(),
                    needed,
                    rpki_invalid,
                });
            }
        }
        rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_learns_what_a_quorum_and_share_of_vps_showed() {
        let mut b = Baseline::learning();
        assert!(!b.contains(1));
        b.open_window(2, 0.25);
        for vp in 0..10 {
            b.count_vp(vp);
        }
        // AS 1 on 7 VPs, AS 2 on 3, AS 3 on 1 (and RPKI-invalid AS 4 on 9).
        for vp in 0..7 {
            b.count(1, vp);
        }
        for vp in 7..10 {
            b.count(2, vp);
        }
        assert!(b.count(3, 0));
        assert!(!b.count(3, 1), "a candidate already counted is not new");
        for vp in 0..9 {
            b.count(4, vp);
        }
        // While open, every candidate is allowed on the prefix, and those that lead on its
        // more-specifics.
        assert!(b.contains(2) && b.contains(3) && b.contains(4));
        assert_eq!(b.leading().as_slice(), [1, 2, 4]);
        assert!(!b.contains_leading(3));
        let rejected = b.close_window(|asn| asn == 4, |_| true);
        assert_eq!(b.asns(), [1, 2]);
        let left: Vec<(u32, usize, usize, bool)> = rejected
            .iter()
            .map(|r| (r.asn, r.vantage_points, r.needed, r.rpki_invalid))
            .collect();
        assert_eq!(left, [(3, 2, 3, false), (4, 9, 3, true)]);
        assert!(!b.window_open());
        assert!(!b.contains(3));
    }

    #[test]
    fn accepted_asns_are_allowed_and_listed_apart() {
        let mut b = Baseline::new(&[65001]);
        assert!(!b.is_learning());
        assert_eq!(b.accept(&[65002, 65001]), [65002]);
        assert_eq!(b.asns(), [65001, 65002]);
        assert_eq!(b.accepted(), [65001, 65002]);
        // A configured set has no window.
        b.open_window(1, 0.0);
        assert!(!b.window_open());
    }

    #[test]
    fn upstreams_are_learned_only_in_front_of_learned_origins() {
        let mut b = Baseline::learning();
        b.open_window(2, 0.0);
        for vp in 0..3 {
            b.count_behind(200, 100, vp);
            b.count_behind(17, 666, vp);
        }
        assert!(b.contains(17));
        b.close_window(|_| false, |origin| origin == 100);
        assert_eq!(b.asns(), [200]);
    }
}
