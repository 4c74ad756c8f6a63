//! The `asns:` section (monitored ASNs) and `communities:` (labels shown in alerts).

use std::collections::HashMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::asn::resolve_asns;
use super::errors::at_least_one;
use super::{AsnValue, Located, PrefixDefaults};

/// An `asns:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAsn {
    asn: Spanned<AsnValue>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    upstreams: Option<Vec<Spanned<AsnValue>>>,
    #[serde(default)]
    downstreams: Option<Vec<Spanned<AsnValue>>>,
    #[serde(default)]
    unexpected_prefix: Option<bool>,
    #[serde(default)]
    min_vantage_points: Option<Spanned<u32>>,
    #[serde(default)]
    learning_window_seconds: Option<u64>,
    #[serde(default)]
    neighbor_hold_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

/// A monitored ASN with every setting resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredAsn {
    /// The ASN.
    pub asn: u32,
    /// Free text shown in alerts.
    pub description: String,
    /// Known upstreams (the AS before it in paths); `None` = learn them.
    pub upstreams: Option<Vec<u32>>,
    /// Known downstreams (the AS after it in paths); `None` = learn them.
    pub downstreams: Option<Vec<u32>>,
    /// Raise `unexpected_prefix` when it originates a prefix outside the watch list.
    pub unexpected_prefix: bool,
    /// Distinct VPs that must show a condition before its alert fires.
    pub min_vantage_points: u32,
    /// When learning neighbours: those seen within this many seconds of the first path (or in
    /// a start-up RIB) are known.
    pub learning_window_seconds: u64,
    /// A `new_neighbor` alert resolves after no VP showed the neighbour for this long.
    pub neighbor_hold_seconds: u64,
    /// Notification groups.
    pub groups: Vec<String>,
}

/// Validates `asns:`.
pub(super) fn validate_asns(
    defaults: &PrefixDefaults,
    raw: Vec<RawAsn>,
    errors: &mut Vec<Located>,
) -> Vec<MonitoredAsn> {
    let mut seen: HashMap<u32, u64> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let asn = match entry.asn.value.resolve() {
            Ok(a) => a,
            Err(msg) => {
                errors.push(Located::at(&entry.asn.referenced, msg.to_string()));
                continue;
            }
        };
        if let Some(line) = seen.get(&asn) {
            errors.push(Located::at(
                &entry.asn.referenced,
                format!("AS{asn} is already monitored (line {line}); merge the two entries"),
            ));
            continue;
        }
        seen.insert(asn, entry.asn.referenced.line());
        let min_vantage_points = at_least_one(
            "min_vantage_points",
            entry.min_vantage_points.as_ref(),
            defaults.min_vantage_points.max(1),
            errors,
        );
        let neighbor_hold_seconds = at_least_one(
            "neighbor_hold_seconds",
            entry.neighbor_hold_seconds.as_ref(),
            3600,
            errors,
        );
        out.push(MonitoredAsn {
            asn,
            description: entry.description.unwrap_or_default(),
            upstreams: entry.upstreams.as_deref().map(|l| resolve_asns(l, errors)),
            downstreams: entry
                .downstreams
                .as_deref()
                .map(|l| resolve_asns(l, errors)),
            unexpected_prefix: entry.unexpected_prefix.unwrap_or(true),
            min_vantage_points,
            learning_window_seconds: entry
                .learning_window_seconds
                .or(defaults.learning_window_seconds)
                .unwrap_or(0),
            neighbor_hold_seconds,
            groups: entry.groups.unwrap_or_else(|| defaults.groups.clone()),
        });
    }
    out
}

/// A community pattern: `65535:666`, `3356:*`, `64496:1:*` (a `*` matches any value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommunityPattern {
    /// Two parts for a standard community, three for a large one; `None` = any.
    pub parts: [Option<u32>; 3],
    /// Large (three parts) or standard.
    pub large: bool,
}

impl CommunityPattern {
    /// Parses `A:B` or `A:B:C`, each part a number or `*`.
    pub fn parse(s: &str) -> Option<Self> {
        let fields: Vec<&str> = s.trim().split(':').collect();
        let large = match fields.len() {
            2 => false,
            3 => true,
            _ => return None,
        };
        let mut parts = [None; 3];
        for (i, f) in fields.iter().enumerate() {
            if *f == "*" {
                continue;
            }
            let v: u32 = f.parse().ok()?;
            if !large && v > u32::from(u16::MAX) {
                return None;
            }
            parts[i] = Some(v);
        }
        Some(CommunityPattern { parts, large })
    }

    /// True when the community matches.
    pub fn matches(&self, c: &crate::event::Community) -> bool {
        use crate::event::Community;
        let values: [u32; 3] = match (c, self.large) {
            (Community::Standard(a, b), false) => [u32::from(*a), u32::from(*b), 0],
            (Community::Large(a, b, d), true) => [*a, *b, *d],
            _ => return false,
        };
        self.parts
            .iter()
            .zip(values)
            .all(|(p, v)| p.is_none_or(|p| p == v))
    }
}

/// A labelled community pattern (`communities:` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityLabel {
    /// What to match.
    pub pattern: CommunityPattern,
    /// What it means, shown in alerts.
    pub label: String,
}

/// Well-known communities labelled in alerts unless the config relabels them.
pub const WELL_KNOWN_COMMUNITIES: [(&str, &str); 5] = [
    ("65535:0", "graceful-shutdown"),
    ("65535:666", "blackhole"),
    ("65535:65281", "no-export"),
    ("65535:65282", "no-advertise"),
    ("65535:65283", "no-export-subconfed"),
];

/// A `communities:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommunity {
    community: Spanned<String>,
    label: String,
}

/// Validates `communities:` (pattern and label) and adds the well-known ones.
pub(super) fn validate_communities(
    raw: Vec<RawCommunity>,
    errors: &mut Vec<Located>,
) -> Vec<CommunityLabel> {
    let mut out: Vec<CommunityLabel> = Vec::new();
    for RawCommunity {
        community: pattern,
        label,
    } in raw
    {
        match CommunityPattern::parse(&pattern.value) {
            Some(p) => out.push(CommunityLabel { pattern: p, label }),
            None => errors.push(Located::at(
                &pattern.referenced,
                format!(
                    "`{}` is not a community pattern; write `ASN:VALUE` (standard, 16-bit parts) or `A:B:C` (large), with `*` for any value",
                    pattern.value
                ),
            )),
        }
    }
    for (p, label) in WELL_KNOWN_COMMUNITIES {
        if let Some(pattern) = CommunityPattern::parse(p)
            && !out.iter().any(|c| c.pattern == pattern)
        {
            out.push(CommunityLabel {
                pattern,
                label: label.into(),
            });
        }
    }
    out
}
