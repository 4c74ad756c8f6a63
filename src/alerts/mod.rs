//! Alerts: what the engine raises, and the book of firing and resolved alerts that the HTTP
//! API and the notifier read.

mod book;
mod history;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::event::Timestamp;

pub use book::{AlertBook, AlertFilter};
pub use history::{VP_HISTORY_POINTS, VpCount};
// Defined with the config, which names them in routing and tuning; alerts carry them.
pub use crate::config::{Rule, Severity};

/// Whether an alert is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition is over.
    Resolved,
}

/// One vantage point that shows an alert's condition, with the route it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpSample {
    /// The VP, as `feed/collector/ASpeer/peer-ip`.
    pub vantage_point: String,
    /// Its AS path (empty for a VP that lost the route).
    pub as_path: String,
    /// The route's communities (standard and large), as written on the wire.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    /// When it announced this route.
    pub seen_at: Timestamp,
}

/// What makes two observations the same incident: rule, watched prefix, affected prefix and the
/// offending origin or upstream (0 where the rule has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    /// The detector.
    pub rule: Rule,
    /// The watched prefix whose rules were broken.
    pub watched_prefix: IpNet,
    /// The prefix the routes are for (the watched prefix or a more-specific).
    pub prefix: IpNet,
    /// The offending origin or upstream ASN, 0 for visibility.
    pub asn: u32,
}

/// An alert, firing or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique and stable: the same incident in the same input always gets the same id.
    pub id: String,
    /// The detector.
    pub rule: Rule,
    /// How urgent.
    pub severity: Severity,
    /// Firing or resolved.
    pub state: AlertState,
    /// The affected prefix (the watched one or a more-specific of it).
    pub prefix: IpNet,
    /// The watched prefix whose rules were broken.
    pub watched_prefix: IpNet,
    /// The watched prefix's description.
    pub description: String,
    /// The offending origin (hijacks, origin change, more-specific).
    pub origin: Option<u32>,
    /// The offending upstream (new upstream).
    pub upstream: Option<u32>,
    /// Origins that are allowed (configured or learned).
    pub expected_origins: Vec<u32>,
    /// Upstreams that are allowed (configured or learned); empty when not checked.
    pub expected_upstreams: Vec<u32>,
    /// For most rules: distinct VPs showing the condition now. For `visibility_loss`: VPs that
    /// still carry a route.
    pub vantage_points: u32,
    /// The most VPs that showed the condition at once (for visibility: the threshold).
    pub peak_vantage_points: u32,
    /// A few VPs with their AS paths.
    pub sample: Vec<VpSample>,
    /// Notification groups of the watched prefix.
    pub groups: Vec<String>,
    /// When the condition was first observed.
    pub first_seen: Timestamp,
    /// When the alert fired (the threshold was reached).
    pub fired_at: Timestamp,
    /// The latest observation that changed it.
    pub last_seen: Timestamp,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
    /// Its VP count over time, from firing on (bounded, see [`VP_HISTORY_POINTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vp_history: Vec<VpCount>,
    /// Rule-specific facts (RPKI state, path rule, neighbour, communities); flattened into the
    /// alert's JSON, absent fields left out.
    #[serde(flatten)]
    pub detail: AlertDetail,
}

/// Which side of a monitored ASN a neighbour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighborSide {
    /// The AS before it in paths (towards the VPs): it hears the monitored ASN's routes.
    Upstream,
    /// The AS after it in paths (towards the origin): the monitored ASN hears its routes.
    Downstream,
}

/// Optional facts of an alert, by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDetail {
    /// RPKI origin validation state of the offending route (`valid`, `invalid`, `not_found`),
    /// when RPKI data is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpki: Option<crate::rpki::RovState>,
    /// The RPKI data was stale when the alert was raised.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rpki_stale: bool,
    /// ASPA verification of the offending path (`route_leak`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspa: Option<crate::rpki::AspaState>,
    /// `route_leak`: the suspected leaker (the first AS to take the route from a non-customer
    /// and pass it on where the ASPA records do not allow it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaker: Option<u32>,
    /// `path_match`: the names of the path rules the offending path meets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_rules: Vec<String>,
    /// `unexpected_prefix`, `new_neighbor`, `rpki_invalid` of a monitored ASN: that ASN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitored_asn: Option<u32>,
    /// `new_neighbor`: the neighbour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbor: Option<u32>,
    /// `new_neighbor`: on which side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbor_side: Option<NeighborSide>,
    /// Labelled communities found on the offending routes, as `COMMUNITY (label)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

impl Alert {
    /// The id of one incident of `key`: the condition first seen at `first_seen`, fired at
    /// `fired_at`, the `incident`-th alert of that key (0, 1, 2, ...), so fire/resolve cycles
    /// within one second still get distinct ids. See [`stable_id`].
    pub fn make_id(
        key: &AlertKey,
        first_seen: Timestamp,
        fired_at: Timestamp,
        incident: u32,
    ) -> String {
        stable_id(&[
            key.rule.as_str(),
            &key.watched_prefix.to_string(),
            &key.prefix.to_string(),
            &key.asn.to_string(),
            &first_seen.0.to_string(),
            &fired_at.0.to_string(),
            &incident.to_string(),
        ])
    }

    /// The key this alert belongs to.
    pub fn key(&self) -> AlertKey {
        AlertKey {
            rule: self.rule,
            watched_prefix: self.watched_prefix,
            prefix: self.prefix,
            asn: match self.rule {
                Rule::RouteLeak => self.detail.leaker,
                Rule::NewNeighbor => self.detail.neighbor,
                _ => self.origin.or(self.upstream),
            }
            .unwrap_or(0),
        }
    }

    /// One line for humans: what, where, who.
    pub fn summary(&self) -> String {
        let what = match self.rule {
            Rule::OriginHijack => format!(
                "{} announced by AS{} (expected {})",
                self.prefix,
                self.origin.unwrap_or(0),
                asn_list(&self.expected_origins)
            ),
            Rule::SubprefixHijack => format!(
                "more-specific {} of {} announced by AS{} (expected {})",
                self.prefix,
                self.watched_prefix,
                self.origin.unwrap_or(0),
                asn_list(&self.expected_origins)
            ),
            Rule::MoreSpecific => format!(
                "more-specific {} of {} announced by AS{}",
                self.prefix,
                self.watched_prefix,
                self.origin.unwrap_or(0)
            ),
            Rule::OriginChange => format!(
                "{} announced by new origin AS{} (learned {})",
                self.prefix,
                self.origin.unwrap_or(0),
                asn_list(&self.expected_origins)
            ),
            Rule::NewUpstream => format!(
                "{} reached through new upstream AS{} (expected {})",
                self.prefix,
                self.upstream.unwrap_or(0),
                asn_list(&self.expected_upstreams)
            ),
            Rule::VisibilityLoss => format!(
                "{} seen by {} vantage points, fewer than {}",
                self.prefix, self.vantage_points, self.peak_vantage_points
            ),
            Rule::RpkiInvalid => format!(
                "{} announced by AS{} is RPKI-invalid",
                self.prefix,
                self.origin.unwrap_or(0)
            ),
            Rule::RouteLeak => format!(
                "{} reached over a path that ASPA proves leaked (suspected leaker AS{})",
                self.prefix,
                self.detail.leaker.unwrap_or(0)
            ),
            Rule::PathMatch => format!(
                "{} reached over a path that meets rule {}",
                self.prefix,
                self.detail.path_rules.join(", ")
            ),
            Rule::UnexpectedPrefix => format!(
                "monitored AS{} originates {}, which is not watched",
                self.origin.unwrap_or(0),
                self.prefix
            ),
            Rule::NewNeighbor => format!(
                "monitored AS{} has new {} AS{} (seen on {})",
                self.detail.monitored_asn.unwrap_or(0),
                match self.detail.neighbor_side {
                    Some(NeighborSide::Downstream) => "downstream",
                    _ => "upstream",
                },
                self.detail.neighbor.unwrap_or(0),
                self.prefix
            ),
            Rule::Squatting => format!(
                "{} (nobody should announce it) announced by AS{}",
                self.prefix,
                self.origin.unwrap_or(0)
            ),
        };
        format!("[{}] {}: {}", self.severity, self.rule, what)
    }
}

/// An alert id from the fields that identify an incident: the first 16 hex digits of the
/// SHA-256 of a versioned, newline-separated encoding of them. Unlike `std`'s hashers, the
/// output is specified, so the same incident gets the same id on any machine, build and Rust
/// release. Ids are opaque strings: ids made by earlier versions stay valid wherever stored.
pub fn stable_id(fields: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"bgpsentry-alert-id/2");
    for f in fields {
        h.update(b"\n");
        h.update(f.as_bytes());
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn asn_list(asns: &[u32]) -> String {
    if asns.is_empty() {
        return "none".into();
    }
    asns.iter()
        .map(|a| format!("AS{a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Receives every alert transition, in order (the alert book, metrics, the notifier).
pub trait AlertSink: Send {
    /// Called for each transition.
    fn deliver(&mut self, t: &AlertTransition);
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// The alert started.
    Fired,
    /// The alert's VPs or samples changed while firing (not notified).
    Updated,
    /// The alert ended.
    Resolved,
    /// Another instance of a scale-out deployment took its watched prefix over: this one
    /// forgets the alert without resolving it (no notification; the new owner raises it with
    /// the same labels while the condition holds).
    HandedOver,
}

/// An alert after a change, and what the change was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// `fired`, `updated` or `resolved`.
    pub event: TransitionKind,
    /// The alert as it is after the change.
    pub alert: Alert,
}
