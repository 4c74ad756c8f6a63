//! AS path verification with ASPA records, after the procedures of the IETF SIDROPS draft
//! "BGP AS_PATH Verification Based on ASPA Objects" (draft-ietf-sidrops-aspa-verification).
//!
//! The draft indexes the path from the origin: AS(1) is the origin, AS(N) the neighbour that
//! sent the route. `hop(A, B)` asks A's ASPA whether B is one of A's providers.

use super::AspaState;
pub use crate::config::AspaProcedure;
use crate::event::{AsPath, PathElem};

/// The outcome, and for an invalid path the suspected leaker: for the upstream procedure the
/// first AS past the up-ramp (it heard the route from a non-customer), for the downstream
/// procedure the AS that handed the route into the down-ramp (it sent the route up or
/// sideways after hearing it from above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AspaVerdict {
    /// Valid, invalid, unknown or unverifiable.
    pub state: AspaState,
    /// For `Invalid`: the suspected leaker.
    pub leaker: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    NoAttestation,
    ProviderPlus,
    NotProviderPlus,
}

/// Verifies `path` (first hop first, as received) with `providers(customer)` giving the sorted
/// providers of an ASPA, or `None` when the customer has none.
///
/// An AS_SET anywhere makes the path unverifiable: the current draft rejects such routes as
/// invalid for route selection, but an aggregate is no evidence of a leak, so a monitor reports
/// it separately and raises no `route_leak` for it.
pub fn verify_path<'a>(
    path: &AsPath,
    procedure: AspaProcedure,
    providers: impl Fn(u32) -> Option<&'a [u32]>,
) -> AspaVerdict {
    let unverifiable = AspaVerdict {
        state: AspaState::Unverifiable,
        leaker: None,
    };
    // Origin first, prepends collapsed.
    let mut asns: Vec<u32> = Vec::with_capacity(path.len());
    for elem in path.iter().rev() {
        match elem {
            PathElem::Asn(a) => {
                if asns.last() != Some(a) {
                    asns.push(*a);
                }
            }
            PathElem::Set(_) => return unverifiable,
        }
    }
    let n = asns.len();
    if n == 0 {
        return unverifiable;
    }
    let hop = |i: usize, j: usize| -> Hop {
        // 1-based indices as in the draft.
        match providers(asns[i - 1]) {
            None => Hop::NoAttestation,
            Some(p) if p.binary_search(&asns[j - 1]).is_ok() => Hop::ProviderPlus,
            Some(_) => Hop::NotProviderPlus,
        }
    };
    // Up-ramp: from the origin, each next AS is a provider of the previous one.
    let mut max_up = n;
    let mut min_up = n;
    for i in 1..n {
        let h = hop(i, i + 1);
        if h != Hop::ProviderPlus && min_up == n {
            min_up = i;
        }
        if h == Hop::NotProviderPlus {
            max_up = i;
            break;
        }
    }
    // Upstream: the first AS past the up-ramp heard the route from a non-customer.
    match procedure {
        AspaProcedure::Upstream => verdict(max_up < n, min_up < n, || asns.get(max_up).copied()),
        AspaProcedure::Downstream => {
            // Down-ramp: from the receiving end, each previous AS is a provider of the next.
            let mut max_down = n;
            let mut min_down = n;
            for j in (2..=n).rev() {
                let h = hop(j, j - 1);
                if h != Hop::ProviderPlus && min_down == n {
                    min_down = n - j + 1;
                }
                if h == Hop::NotProviderPlus {
                    max_down = n - j + 1;
                    break;
                }
            }
            // For Invalid: the AS that handed the route into the down-ramp sent it up or
            // sideways after hearing it from above.
            verdict(max_up + max_down < n, min_up + min_down < n, || {
                asns.get(n - max_down - 1).copied()
            })
        }
    }
}

/// The verdict both procedures reach from their ramps: `Invalid` (naming the leaker, asked
/// only then) when the ramps cannot cover the path even at their longest, `Unknown` when
/// they cover it only counting hops without ASPA data, else `Valid`.
fn verdict(invalid: bool, unknown: bool, leaker: impl FnOnce() -> Option<u32>) -> AspaVerdict {
    if invalid {
        AspaVerdict {
            state: AspaState::Invalid,
            leaker: leaker(),
        }
    } else if unknown {
        AspaVerdict {
            state: AspaState::Unknown,
            leaker: None,
        }
    } else {
        AspaVerdict {
            state: AspaState::Valid,
            leaker: None,
        }
    }
}
