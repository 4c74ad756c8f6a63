//! The detectors: what one route, seen by one VP, says about one watched prefix.

use ipnet::IpNet;

use super::Watched;
use crate::alerts::Rule;
use crate::config::MoreSpecifics;
use crate::event::RouteAttrs;

/// One condition shown by a route: a rule and the offending ASN (origin or upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The detector.
    pub rule: Rule,
    /// Offending origin or upstream.
    pub asn: u32,
}

/// Findings of one route; almost always zero or one, rarely more (AS_SET origins).
pub type Findings = smallvec::SmallVec<[Finding; 2]>;

/// Every condition that this route to `prefix` shows for the watched prefix.
pub(super) fn findings(w: &Watched, prefix: IpNet, attrs: &RouteAttrs) -> Findings {
    let mut out = Findings::new();
    let origins = attrs.path.origins();
    if origins.is_empty() {
        return out;
    }
    let exact = prefix == w.cfg.prefix;
    let mut all_allowed = true;
    for &origin in origins {
        if w.origins.contains(origin) {
            continue;
        }
        all_allowed = false;
        let rule = match (exact, w.origins.is_learning()) {
            (true, false) => Rule::OriginHijack,
            (true, true) => Rule::OriginChange,
            (false, _) => Rule::SubprefixHijack,
        };
        out.push(Finding { rule, asn: origin });
    }
    if !all_allowed {
        return out;
    }
    if !exact && w.cfg.more_specifics == MoreSpecifics::Alert {
        for &origin in origins {
            out.push(Finding {
                rule: Rule::MoreSpecific,
                asn: origin,
            });
        }
    }
    if let Some(upstreams) = &w.upstreams
        && let Some(up) = attrs.path.origin_neighbor()
        && !upstreams.contains(up)
    {
        out.push(Finding {
            rule: Rule::NewUpstream,
            asn: up,
        });
    }
    out
}
