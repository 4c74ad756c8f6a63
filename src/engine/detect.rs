//! The detectors: what one route, seen by one VP, says about one watched prefix.

use std::sync::Arc;

use ipnet::IpNet;
use regex::Regex;

use super::vps::VpId;
use super::watched::Watched;
use crate::alerts::{AlertDetail, AlertKey, Rule, Severity, VpSample};
use crate::config::{CommunityLabel, MoreSpecifics, PathRule};
use crate::event::{AsPath, PathElem, RouteAttrs};
use crate::rpki::{AspaState, RovState, RpkiSnapshot};

/// One condition shown by a route: a rule and the offending ASN (origin, upstream, or for
/// `route_leak` the suspected leaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The detector.
    pub rule: Rule,
    /// Offending origin or upstream.
    pub asn: u32,
}

/// Findings of one route; almost always zero or one, rarely more (AS_SET origins).
pub type Findings = smallvec::SmallVec<[Finding; 2]>;

/// What the detectors share across watched prefixes: the RPKI data and community labels.
#[derive(Debug, Default, Clone)]
pub struct Context {
    /// The current RPKI snapshot.
    pub rpki: RpkiSnapshot,
    /// Labelled community patterns.
    pub communities: Vec<CommunityLabel>,
}

impl Context {
    /// ROV state of a route when RPKI data is loaded.
    pub fn rov(&self, prefix: &IpNet, path: &AsPath) -> Option<RovState> {
        self.rpki.data.as_ref().map(|d| d.rov_of_path(prefix, path))
    }
}

/// A path rule with its regular expressions compiled.
#[derive(Debug, Clone)]
pub struct CompiledPathRule {
    name: String,
    is_match: Option<Regex>,
    not_match: Option<Regex>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    severity: Severity,
}

/// Compiles a prefix's path rules (validated by the config already; one that still fails to
/// compile is left out rather than matching everything).
pub fn compile_paths(rules: &[PathRule]) -> Vec<CompiledPathRule> {
    let build = |s: &Option<String>| -> Result<Option<Regex>, regex::Error> {
        s.as_deref()
            .map(|s| regex::RegexBuilder::new(s).size_limit(1 << 20).build())
            .transpose()
    };
    rules
        .iter()
        .filter_map(|r| {
            Some(CompiledPathRule {
                name: r.name.clone(),
                is_match: build(&r.match_).ok()?,
                not_match: build(&r.not_match).ok()?,
                min_length: r.min_length,
                max_length: r.max_length,
                severity: r.severity,
            })
        })
        .collect()
}

/// Number of ASes on a path with prepends collapsed; an AS_SET counts one.
pub fn path_length(path: &AsPath) -> usize {
    let mut n = 0;
    let mut prev: Option<&PathElem> = None;
    for elem in path.iter() {
        if prev != Some(elem) {
            n += 1;
        }
        prev = Some(elem);
    }
    n
}

impl CompiledPathRule {
    /// True when the path meets every condition the rule has. A rule with only lengths is a
    /// length check alone; a rule with only a regex ignores lengths.
    fn matches(&self, text: &str, length: usize) -> bool {
        if let Some(re) = &self.is_match
            && !re.is_match(text)
        {
            return false;
        }
        if let Some(re) = &self.not_match
            && re.is_match(text)
        {
            return false;
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let short = self.min_length.is_some_and(|m| length < m);
            let long = self.max_length.is_some_and(|m| length > m);
            if !short && !long {
                return false;
            }
        }
        true
    }
}

/// The path rules of `w` that this path meets.
fn matching_path_rules<'a>(
    w: &'a Watched,
    path: &AsPath,
) -> impl Iterator<Item = &'a CompiledPathRule> {
    let text = if w.paths.is_empty() {
        String::new()
    } else {
        path.to_string()
    };
    let length = path_length(path);
    w.paths.iter().filter(move |r| r.matches(&text, length))
}

fn push(out: &mut Findings, f: Finding) {
    if !out.contains(&f) {
        out.push(f);
    }
}

/// Every condition that this route to `prefix` shows for the watched prefix.
pub(super) fn findings(ctx: &Context, w: &Watched, prefix: IpNet, attrs: &RouteAttrs) -> Findings {
    let mut out = Findings::new();
    let origins = attrs.path.origins();
    if origins.is_empty() {
        return out;
    }
    if w.cfg.squat {
        for &origin in origins {
            push(
                &mut out,
                Finding {
                    rule: Rule::Squatting,
                    asn: origin,
                },
            );
        }
        return out;
    }
    let rov = ctx.rov(&prefix, &attrs.path);
    let single_origin = match attrs.path.last() {
        Some(PathElem::Asn(a)) => *a,
        _ => 0,
    };
    if rov == Some(RovState::Invalid) {
        push(
            &mut out,
            Finding {
                rule: Rule::RpkiInvalid,
                asn: single_origin,
            },
        );
    }
    if let Some(data) = &ctx.rpki.data
        && data.aspa_count() > 0
    {
        let verdict = data.verify(&attrs.path, ctx.rpki.procedure);
        if verdict.state == AspaState::Invalid {
            push(
                &mut out,
                Finding {
                    rule: Rule::RouteLeak,
                    asn: verdict.leaker.unwrap_or(0),
                },
            );
        }
    }
    if !w.paths.is_empty() && matching_path_rules(w, &attrs.path).next().is_some() {
        push(
            &mut out,
            Finding {
                rule: Rule::PathMatch,
                asn: single_origin,
            },
        );
    }
    let exact = prefix == w.cfg.prefix;
    // A valid origin can be forged, so this is only done when the operator asked for it.
    let hijacks_suppressed = w.cfg.suppress_rpki_valid_hijacks && rov == Some(RovState::Valid);
    let mut all_allowed = true;
    for &origin in origins {
        // During a learning window any origin of the prefix itself may still join the
        // baseline; under it only one that most VPs show so far is trusted.
        let allowed = if exact {
            w.origins.contains(origin)
        } else {
            w.origins.contains_leading(origin)
        };
        if allowed {
            continue;
        }
        all_allowed = false;
        let rule = match (exact, w.origins.is_learning()) {
            (true, false) => Rule::OriginHijack,
            (true, true) => Rule::OriginChange,
            (false, _) => Rule::SubprefixHijack,
        };
        if !hijacks_suppressed {
            push(&mut out, Finding { rule, asn: origin });
        }
    }
    if !all_allowed {
        return out;
    }
    if !exact && w.cfg.more_specifics == MoreSpecifics::Alert {
        for &origin in origins {
            push(
                &mut out,
                Finding {
                    rule: Rule::MoreSpecific,
                    asn: origin,
                },
            );
        }
    }
    if let Some(upstreams) = &w.upstreams
        && let Some(up) = attrs.path.origin_neighbor()
        && !upstreams.contains(up)
    {
        push(
            &mut out,
            Finding {
                rule: Rule::NewUpstream,
                asn: up,
            },
        );
    }
    out
}

/// Labelled communities on these routes, as `COMMUNITY (label)`, in first-seen order.
pub fn labelled_communities<'a>(
    ctx: &Context,
    routes: impl IntoIterator<Item = &'a RouteAttrs>,
) -> Vec<String> {
    let mut out = Vec::new();
    if ctx.communities.is_empty() {
        return out;
    }
    for r in routes {
        for c in r.communities.iter() {
            if let Some(l) = ctx.communities.iter().find(|l| l.pattern.matches(c)) {
                let s = format!("{c} ({})", l.label);
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The facts an alert of key `k` carries, from the routes its sample shows (`sample[i]` shows
/// `routes[i]`), and the severity of a `path_match` alert.
pub(super) fn detail(
    ctx: &Context,
    w: &Watched,
    k: &AlertKey,
    routes: &[(VpId, Arc<RouteAttrs>)],
    sample: &[VpSample],
) -> (AlertDetail, Option<Severity>) {
    let mut d = AlertDetail {
        rpki_stale: ctx.rpki.stale,
        communities: labelled_communities(ctx, routes.iter().map(|(_, a)| &**a)),
        ..AlertDetail::default()
    };
    let mut severity = None;
    if let Some((_, first)) = routes.first() {
        d.rpki = ctx.rov(&k.prefix, &first.path);
        match k.rule {
            Rule::RouteLeak => {
                d.aspa = Some(AspaState::Invalid);
                d.leaker = Some(k.asn);
            }
            Rule::PathMatch => {
                // Every rule met by any of the sampled paths, in config order (their text is
                // the sample's).
                let paths: Vec<(&str, usize)> = routes
                    .iter()
                    .zip(sample)
                    .map(|((_, r), s)| (s.as_path.as_str(), path_length(&r.path)))
                    .collect();
                for rule in &w.paths {
                    if paths.iter().any(|(text, len)| rule.matches(text, *len)) {
                        d.path_rules.push(rule.name.clone());
                        severity = Some(
                            severity.map_or(rule.severity, |s: Severity| s.min(rule.severity)),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    (d, severity)
}
