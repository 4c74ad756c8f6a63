//! The watch list (`prefixes:`) and its defaults (`defaults:`).

use std::collections::HashMap;

use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::asn::resolve_asns;
use super::errors::at_least_one;
use super::{AsnValue, Located};
use super::{Rule, Severity};

/// What to do with a more-specific announced by an allowed origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MoreSpecifics {
    /// Raise a `more_specific` warning.
    #[default]
    Alert,
    /// Accept it silently (hijacks of more-specifics are still detected).
    Ignore,
}

/// Default `learning_window_seconds` of watched prefixes, measured on real background traffic
/// (see "Learning mode" in docs/src/detectors.md): long enough that path exploration after the first
/// route has shown the upstreams a prefix normally uses.
pub const DEFAULT_LEARNING_WINDOW_SECONDS: u64 = 300;

/// Default `learning_min_share_percent`: an origin that most VPs do not show is not learned.
pub const DEFAULT_LEARNING_MIN_SHARE_PERCENT: u32 = 50;

/// Settings every prefix inherits unless it sets its own (`defaults:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrefixDefaults {
    /// See [`WatchedPrefix::more_specifics`].
    pub more_specifics: MoreSpecifics,
    /// See [`WatchedPrefix::min_vantage_points`].
    pub min_vantage_points: u32,
    /// See [`WatchedPrefix::visibility_min_vantage_points`].
    pub visibility_min_vantage_points: u32,
    /// See [`WatchedPrefix::visibility_severity`].
    pub visibility_severity: Severity,
    /// See [`WatchedPrefix::learning_window_seconds`] (also the default of monitored ASNs,
    /// whose own default is 0); `None`: `DEFAULT_LEARNING_WINDOW_SECONDS` (300) for prefixes.
    pub learning_window_seconds: Option<u64>,
    /// See [`WatchedPrefix::learning_min_share_percent`].
    pub learning_min_share_percent: u32,
    /// See [`WatchedPrefix::groups`].
    pub groups: Vec<String>,
    /// Hold-downs per rule over the built-in ones; see [`WatchedPrefix::hold_downs`].
    pub hold_downs: RawHoldDowns,
}

impl Default for PrefixDefaults {
    fn default() -> Self {
        PrefixDefaults {
            more_specifics: MoreSpecifics::Alert,
            min_vantage_points: 2,
            visibility_min_vantage_points: 10,
            visibility_severity: Severity::Critical,
            learning_window_seconds: None,
            learning_min_share_percent: DEFAULT_LEARNING_MIN_SHARE_PERCENT,
            groups: Vec::new(),
            hold_downs: RawHoldDowns::default(),
        }
    }
}

/// A `prefixes:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrefix {
    prefix: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    origins: Option<Vec<Spanned<AsnValue>>>,
    #[serde(default)]
    upstreams: Option<Vec<Spanned<AsnValue>>>,
    #[serde(default)]
    more_specifics: Option<MoreSpecifics>,
    #[serde(default)]
    min_vantage_points: Option<Spanned<u32>>,
    #[serde(default)]
    visibility_min_vantage_points: Option<u32>,
    #[serde(default)]
    visibility_severity: Option<Severity>,
    #[serde(default)]
    learning_window_seconds: Option<u64>,
    #[serde(default)]
    learning_min_share_percent: Option<Spanned<u32>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    squat: Option<bool>,
    #[serde(default)]
    suppress_rpki_valid_hijacks: Option<bool>,
    #[serde(default)]
    paths: Option<Vec<Spanned<RawPathRule>>>,
    #[serde(default)]
    hold_downs: RawHoldDowns,
}

/// One rule's hold-downs as written: either key may be left out.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHoldDown {
    #[serde(rename = "for_seconds", default)]
    for_: Option<u64>,
    #[serde(default)]
    keep_firing_for_seconds: Option<u64>,
}

/// Generates the per-rule `hold_downs:` block: one optional entry per rule of a watched
/// prefix, so a misspelt rule name is an error with a suggestion, not a setting ignored.
macro_rules! hold_down_rules {
    ($($field:ident => $rule:ident),* $(,)?) => {
        /// `hold_downs:` as written (in `defaults:` or in a prefix): per rule, what to change.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct RawHoldDowns {
            $($field: Option<RawHoldDown>,)*
        }

        impl RawHoldDowns {
            fn entries(&self) -> Vec<(Rule, Option<RawHoldDown>)> {
                vec![$((Rule::$rule, self.$field)),*]
            }
        }
    };
}

hold_down_rules! {
    origin_hijack => OriginHijack,
    subprefix_hijack => SubprefixHijack,
    more_specific => MoreSpecific,
    origin_change => OriginChange,
    new_upstream => NewUpstream,
    visibility_loss => VisibilityLoss,
    rpki_invalid => RpkiInvalid,
    route_leak => RouteLeak,
    path_match => PathMatch,
    squatting => Squatting,
}

/// How long a rule's condition must hold before its alert fires, and how long it must be gone
/// before a firing alert resolves: Prometheus' `for` and `keep_firing_for`, on event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldDown {
    /// The condition must hold this many seconds before the alert fires (`for`).
    pub for_seconds: u64,
    /// A firing alert resolves only after its condition has been gone this many seconds
    /// (`keep_firing_for`); if it comes back meanwhile, the same alert goes on.
    pub keep_firing_for_seconds: u64,
}

/// The hold-downs of every rule of one watched prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldDowns([HoldDown; Rule::ALL.len()]);

impl HoldDowns {
    /// No hold-down for any rule: every alert fires and resolves at once.
    pub const NONE: HoldDowns = HoldDowns(
        [HoldDown {
            for_seconds: 0,
            keep_firing_for_seconds: 0,
        }; Rule::ALL.len()],
    );

    /// The built-in hold-downs, measured on real background traffic (docs/src/detectors.md, "Detection
    /// quality"): hijack, RPKI and squatting rules fire and resolve at once; the rules that
    /// path exploration trips wait it out.
    pub fn builtin() -> HoldDowns {
        let mut h = HoldDowns::NONE;
        h.set(Rule::VisibilityLoss, BUILTIN_VISIBILITY_LOSS);
        h.set(Rule::NewUpstream, BUILTIN_NEW_UPSTREAM);
        h.set(Rule::MoreSpecific, BUILTIN_MORE_SPECIFIC);
        h.set(Rule::PathMatch, BUILTIN_PATH_MATCH);
        h
    }

    /// The hold-downs of a rule.
    pub fn get(&self, rule: Rule) -> HoldDown {
        self.0[rule as usize]
    }

    /// Sets the hold-downs of a rule.
    pub fn set(&mut self, rule: Rule, hold: HoldDown) {
        self.0[rule as usize] = hold;
    }

    /// These hold-downs with what `raw` changes.
    fn with(mut self, raw: &RawHoldDowns) -> HoldDowns {
        for (rule, entry) in raw.entries() {
            if let Some(e) = entry {
                let h = &mut self.0[rule as usize];
                h.for_seconds = e.for_.unwrap_or(h.for_seconds);
                h.keep_firing_for_seconds = e
                    .keep_firing_for_seconds
                    .unwrap_or(h.keep_firing_for_seconds);
            }
        }
        self
    }
}

impl Default for HoldDowns {
    fn default() -> Self {
        HoldDowns::builtin()
    }
}

/// Built-in `visibility_loss` hold-downs.
pub const BUILTIN_VISIBILITY_LOSS: HoldDown = HoldDown {
    for_seconds: 60,
    keep_firing_for_seconds: 60,
};
/// Built-in `new_upstream` hold-downs.
pub const BUILTIN_NEW_UPSTREAM: HoldDown = HoldDown {
    for_seconds: 0,
    keep_firing_for_seconds: 0,
};
/// Built-in `more_specific` hold-downs.
pub const BUILTIN_MORE_SPECIFIC: HoldDown = HoldDown {
    for_seconds: 0,
    keep_firing_for_seconds: 0,
};
/// Built-in `path_match` hold-downs.
pub const BUILTIN_PATH_MATCH: HoldDown = HoldDown {
    for_seconds: 0,
    keep_firing_for_seconds: 0,
};

/// A `paths:` entry of a prefix as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPathRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "match", default)]
    match_: Option<Spanned<String>>,
    #[serde(default)]
    not_match: Option<Spanned<String>>,
    #[serde(default)]
    min_length: Option<usize>,
    #[serde(default)]
    max_length: Option<usize>,
    #[serde(default)]
    severity: Option<Severity>,
}

/// A path rule of a watched prefix: a route whose AS path meets every condition given raises
/// `path_match`. The regular expressions see the path as written, space-separated (prepends
/// kept, an AS_SET as `{a,b}`); lengths count ASes with prepends collapsed (an AS_SET counts
/// one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// Shown in alerts; defaults to `paths[N]`.
    pub name: String,
    /// The path must match this.
    pub match_: Option<String>,
    /// The path must not match this.
    pub not_match: Option<String>,
    /// The path is shorter than this.
    pub min_length: Option<usize>,
    /// The path is longer than this.
    pub max_length: Option<usize>,
    /// Severity of its alerts.
    pub severity: Severity,
}

/// A watched prefix with every setting resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedPrefix {
    /// The prefix (host bits are rejected, never silently cleared).
    pub prefix: IpNet,
    /// Free text shown in alerts.
    pub description: String,
    /// Allowed origin ASNs; empty = learn them (rule `origin_change`).
    pub origins: Vec<u32>,
    /// Allowed neighbours of the origin: `None` = learn them; `Some([])` = do not check.
    pub upstreams: Option<Vec<u32>>,
    /// Whether a more-specific by an allowed origin raises `more_specific`.
    pub more_specifics: MoreSpecifics,
    /// Distinct VPs that must show a condition before its alert fires.
    pub min_vantage_points: u32,
    /// Fewer VPs than this with a route (after this many had one) is a visibility loss;
    /// 0 turns the check off.
    pub visibility_min_vantage_points: u32,
    /// Severity of `visibility_loss` alerts.
    pub visibility_severity: Severity,
    /// In learning mode, the baseline is learned from the routes seen within this many seconds
    /// (event time) of the first route to the prefix itself, or from a start-up table dump.
    pub learning_window_seconds: u64,
    /// In learning mode, an origin is learned only when at least this share of the VPs that
    /// routed the prefix during the window (and at least `min_vantage_points` of them) showed
    /// it, in percent; a minority origin, such as a hijacker's, is not.
    pub learning_min_share_percent: u32,
    /// Notification groups.
    pub groups: Vec<String>,
    /// Nobody should announce this space: any announcement of it or a more-specific raises
    /// `squatting`.
    pub squat: bool,
    /// Raise no hijack for a route whose origin is RPKI-valid (off by default: a forged origin
    /// is "valid", and so is a hijacker's more-specific under a loose maxLength).
    pub suppress_rpki_valid_hijacks: bool,
    /// Path rules (`path_match`).
    pub paths: Vec<PathRule>,
    /// Per rule: how long a condition must hold before it fires, and be gone before it
    /// resolves (built-in values, then `defaults: hold_downs:`, then the prefix's own).
    pub hold_downs: HoldDowns,
}

fn parse_prefix(text: &Spanned<String>, errors: &mut Vec<Located>) -> Option<IpNet> {
    let s = text.value.trim();
    match s.parse::<IpNet>() {
        Ok(net) if net.trunc() != net => {
            errors.push(Located::at(
                &text.referenced,
                format!(
                    "prefix `{s}` has host bits set; did you mean `{}`?",
                    net.trunc()
                ),
            ));
            None
        }
        Ok(net) => Some(net),
        Err(_) => {
            errors.push(Located::at(
                &text.referenced,
                format!(
                    "`{s}` is not a prefix; write an IPv4 or IPv6 prefix with its length, like 192.0.2.0/24 or 2001:db8::/32"
                ),
            ));
            None
        }
    }
}

/// Validates the watch list, appending every problem found to `errors`.
pub(super) fn validate_prefixes(
    defaults: &PrefixDefaults,
    raw: Vec<RawPrefix>,
    errors: &mut Vec<Located>,
) -> Vec<WatchedPrefix> {
    if defaults.learning_min_share_percent > 100 {
        errors.push(Located::nowhere(format!(
            "defaults.learning_min_share_percent must be between 0 and 100 (a percentage of the VPs); got {}",
            defaults.learning_min_share_percent
        )));
    }
    let mut seen: HashMap<IpNet, u64> = HashMap::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let prefix = parse_prefix(&entry.prefix, errors);
        let origins = resolve_asns(entry.origins.as_deref().unwrap_or(&[]), errors);
        let upstreams = entry.upstreams.as_deref().map(|u| resolve_asns(u, errors));
        let min_vantage_points = at_least_one(
            "min_vantage_points",
            entry.min_vantage_points.as_ref(),
            defaults.min_vantage_points.max(1),
            errors,
        );
        let learning_min_share_percent = match &entry.learning_min_share_percent {
            Some(v) if v.value > 100 => {
                errors.push(Located::at(
                    &v.referenced,
                    format!(
                        "learning_min_share_percent must be between 0 and 100 (a percentage of the VPs); got {}",
                        v.value
                    ),
                ));
                defaults.learning_min_share_percent
            }
            Some(v) => v.value,
            None => defaults.learning_min_share_percent,
        };
        let squat = entry.squat.unwrap_or(false);
        if squat && !origins.is_empty() {
            errors.push(Located::at(
                &entry.prefix.referenced,
                "a prefix with `squat: true` has no allowed origins; remove `origins` (or `squat`)",
            ));
        }
        let paths = validate_paths(entry.paths.unwrap_or_default(), errors);
        let Some(prefix) = prefix else { continue };
        if let Some(first_line) = seen.get(&prefix) {
            errors.push(Located::at(
                &entry.prefix.referenced,
                format!(
                    "prefix {prefix} is already watched (line {first_line}); merge the two entries"
                ),
            ));
            continue;
        }
        seen.insert(prefix, entry.prefix.referenced.line());
        out.push(WatchedPrefix {
            prefix,
            description: entry.description.unwrap_or_default(),
            origins,
            upstreams,
            more_specifics: entry.more_specifics.unwrap_or(defaults.more_specifics),
            min_vantage_points,
            visibility_min_vantage_points: entry
                .visibility_min_vantage_points
                .unwrap_or(defaults.visibility_min_vantage_points),
            visibility_severity: entry
                .visibility_severity
                .unwrap_or(defaults.visibility_severity),
            learning_window_seconds: entry
                .learning_window_seconds
                .or(defaults.learning_window_seconds)
                .unwrap_or(DEFAULT_LEARNING_WINDOW_SECONDS),
            learning_min_share_percent,
            groups: entry.groups.unwrap_or_else(|| defaults.groups.clone()),
            squat,
            suppress_rpki_valid_hijacks: entry.suppress_rpki_valid_hijacks.unwrap_or(false),
            paths,
            hold_downs: HoldDowns::builtin()
                .with(&defaults.hold_downs)
                .with(&entry.hold_downs),
        });
    }
    out
}

fn check_regex(
    text: &Option<Spanned<String>>,
    key: &str,
    errors: &mut Vec<Located>,
) -> Option<String> {
    let text = text.as_ref()?;
    match regex::RegexBuilder::new(&text.value)
        .size_limit(1 << 20)
        .build()
    {
        Ok(_) => Some(text.value.clone()),
        Err(e) => {
            errors.push(Located::at(
                &text.referenced,
                format!("`{key}` is not a valid regular expression: {e}"),
            ));
            None
        }
    }
}

fn validate_paths(raw: Vec<Spanned<RawPathRule>>, errors: &mut Vec<Located>) -> Vec<PathRule> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let at = spanned.referenced;
        let r = spanned.value;
        let name = r.name.unwrap_or_else(|| format!("paths[{i}]"));
        if r.match_.is_none()
            && r.not_match.is_none()
            && r.min_length.is_none()
            && r.max_length.is_none()
        {
            errors.push(Located::at(
                &at,
                format!(
                    "path rule `{name}` has no condition; give it `match`, `not_match`, `min_length` or `max_length`"
                ),
            ));
            continue;
        }
        let match_ = check_regex(&r.match_, "match", errors);
        let not_match = check_regex(&r.not_match, "not_match", errors);
        if let (Some(min), Some(max)) = (r.min_length, r.max_length)
            && min > max
        {
            errors.push(Located::at(
                &at,
                format!("path rule `{name}`: min_length {min} is greater than max_length {max}"),
            ));
        }
        out.push(PathRule {
            name,
            match_,
            not_match,
            min_length: r.min_length,
            max_length: r.max_length,
            severity: r.severity.unwrap_or(Severity::Warning),
        });
    }
    out
}
