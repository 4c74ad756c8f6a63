//! The names of detectors ([`Rule`]) and how urgent their alerts are ([`Severity`]): the
//! vocabulary the config routes and tunes by, and that every alert carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A detector, by its stable name (used in alerts, metrics, config and docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The watched prefix itself announced by an origin not in `origins`.
    OriginHijack,
    /// A more-specific of a watched prefix announced by an origin not in `origins`.
    SubprefixHijack,
    /// A more-specific announced by an allowed origin (`more_specifics: alert`).
    MoreSpecific,
    /// Learning mode: an origin that is not among the learned ones.
    OriginChange,
    /// The origin's neighbour is not an allowed (or learned) upstream.
    NewUpstream,
    /// Fewer VPs than the threshold carry a route, after at least that many did.
    VisibilityLoss,
    /// A route to a watched prefix, or announced by a monitored ASN, is RPKI-invalid.
    RpkiInvalid,
    /// ASPA records prove the AS path of a route to a watched prefix has a leak.
    RouteLeak,
    /// An AS path meets a path rule of the watched prefix.
    PathMatch,
    /// A monitored ASN originates a prefix that is not watched.
    UnexpectedPrefix,
    /// A monitored ASN has an upstream or downstream that is not known.
    NewNeighbor,
    /// Space that nobody should announce (`squat: true`) is announced.
    Squatting,
}

impl Rule {
    /// Every rule, in documentation order.
    pub const ALL: [Rule; 12] = [
        Rule::OriginHijack,
        Rule::SubprefixHijack,
        Rule::MoreSpecific,
        Rule::OriginChange,
        Rule::NewUpstream,
        Rule::VisibilityLoss,
        Rule::RpkiInvalid,
        Rule::RouteLeak,
        Rule::PathMatch,
        Rule::UnexpectedPrefix,
        Rule::NewNeighbor,
        Rule::Squatting,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OriginHijack => "origin_hijack",
            Rule::SubprefixHijack => "subprefix_hijack",
            Rule::MoreSpecific => "more_specific",
            Rule::OriginChange => "origin_change",
            Rule::NewUpstream => "new_upstream",
            Rule::VisibilityLoss => "visibility_loss",
            Rule::RpkiInvalid => "rpki_invalid",
            Rule::RouteLeak => "route_leak",
            Rule::PathMatch => "path_match",
            Rule::UnexpectedPrefix => "unexpected_prefix",
            Rule::NewNeighbor => "new_neighbor",
            Rule::Squatting => "squatting",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Someone else routes your space, or it is gone: act now.
    Critical,
    /// A change that may be legitimate: look at it.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
