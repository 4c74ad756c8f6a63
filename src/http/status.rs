//! The status page at `/`: server-rendered HTML that refreshes itself, for a browser or a
//! phone. Everything shown is escaped by the template engine (AS paths, descriptions and
//! errors are data from the network or from users).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use tracing::error;

use super::AppState;
use crate::alerts::{Alert, AlertFilter, AlertState, Rule, Severity, VpSample};
use crate::event::Timestamp;

/// Seconds between automatic reloads of the page.
pub const REFRESH_SECONDS: u32 = 15;

/// Firing alerts listed on the page (most severe first, then newest); the rest are counted and
/// left to `/alerts`.
pub const FIRING_SHOWN: usize = 200;

/// Resolved alerts listed on the page.
pub const RESOLVED_SHOWN: usize = 20;

/// The page runs no script and loads nothing: a policy that says so stops anything injected
/// from running even if escaping were ever missed. Its forms (acknowledge, silence) post to
/// this server only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The templates of the HTML pages, built once.
fn environment() -> &'static Result<Environment<'static>, minijinja::Error> {
    static ENV: OnceLock<Result<Environment<'static>, minijinja::Error>> = OnceLock::new();
    ENV.get_or_init(|| {
        // The `.html` names turn on HTML auto-escaping for every value.
        let mut env = Environment::new();
        env.add_template("status.html", include_str!("templates/status.html"))?;
        env.add_template("alert.html", include_str!("templates/alert.html"))?;
        Ok(env)
    })
}

/// Renders the page template `name` (`status.html`, `alert.html`) with `ctx`.
pub(super) fn render_template(
    name: &str,
    ctx: &impl Serialize,
) -> Result<String, minijinja::Error> {
    match environment() {
        Ok(env) => env
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(ctx))),
        Err(e) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            e.to_string(),
        )),
    }
}

/// A rendered page with the headers every HTML page gets: no script, no caching, no sniffing.
pub(super) fn html_response(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

#[derive(Serialize)]
struct FeedRow {
    name: String,
    kind: String,
    status: &'static str,
    last_message: Option<String>,
    reconnects: u64,
    last_error: Option<String>,
    routers: Vec<crate::health::RouterHealth>,
    warm_start: Option<String>,
}

/// One line on a feed's warm start: its state, what the last success loaded, the last failure.
fn warm_start_text(w: &crate::health::WarmStartHealth) -> String {
    let mut text = format!("warm start {}", w.state);
    if let Some(t) = w.last_success {
        text.push_str(&format!(
            ": {} routes from {} vantage points at {}",
            w.routes,
            w.vantage_points,
            time(t)
        ));
    }
    if w.failures > 0
        && let Some(e) = &w.last_error
    {
        text.push_str(&format!("; {} failures, last: {e}", w.failures));
    }
    text
}

#[derive(Serialize)]
struct AlertRow<'a> {
    id: &'a str,
    severity: &'a str,
    rule: &'a str,
    headline: String,
    description: &'a str,
    /// The watched prefix, or `None` when the alert is about space that is not watched (a
    /// monitored ASN's announcements).
    watched_prefix: Option<String>,
    /// The monitored ASN behind an alert about unwatched space.
    monitored_asn: Option<u32>,
    prefix_href: String,
    rule_href: String,
    vantage_points: u32,
    peak_vantage_points: u32,
    fired_at: String,
    last_seen: String,
    resolved_at: Option<String>,
    sample: Vec<SampleRow<'a>>,
    /// Who acknowledged it, and the silences that hold it.
    triage: TriageBlock,
}

/// An acknowledgement as the pages show it.
#[derive(Debug, Serialize)]
pub(super) struct AckRow {
    by: String,
    comment: String,
    at: String,
}

/// A silence as the pages show it.
#[derive(Debug, Serialize)]
pub(super) struct SilenceRow {
    id: String,
    matchers: String,
    comment: String,
    created_by: String,
    until: String,
}

impl SilenceRow {
    fn new(s: &crate::triage::Silence) -> Self {
        SilenceRow {
            id: s.id.clone(),
            matchers: s.matchers.describe(),
            comment: s.comment.clone(),
            created_by: s.created_by.clone(),
            until: time(s.expires_at),
        }
    }
}

/// What the pages show of an alert's triage: its acknowledgement and the silences holding it.
#[derive(Debug, Default, Serialize)]
pub(super) struct TriageBlock {
    acknowledged: Option<AckRow>,
    silenced_by: Vec<SilenceRow>,
}

/// The triage of one alert, for the pages.
pub(super) fn triage_block(a: &Alert, state: &AppState) -> TriageBlock {
    let now = Timestamp::now();
    TriageBlock {
        acknowledged: state.triage.ack_of(&a.id).map(|ack| AckRow {
            by: ack.by,
            comment: ack.comment,
            at: time(ack.at),
        }),
        silenced_by: state
            .triage
            .silenced_by(a, now)
            .iter()
            .filter_map(|id| state.triage.silence(id))
            .map(|s| SilenceRow::new(&s))
            .collect(),
    }
}

/// One sampled VP as shown: its name without empty segments, its route.
#[derive(Serialize)]
pub(super) struct SampleRow<'a> {
    /// See [`vp_display`].
    pub vantage_point: String,
    /// As received (escaped by the template).
    pub as_path: &'a str,
    /// As received (escaped by the template).
    pub communities: &'a [String],
}

/// An alert's sample as the pages show it.
pub(super) fn sample_rows(sample: &[VpSample]) -> Vec<SampleRow<'_>> {
    sample
        .iter()
        .map(|s| SampleRow {
            vantage_point: vp_display(&s.vantage_point),
            as_path: &s.as_path,
            communities: &s.communities,
        })
        .collect()
}

/// A VP name for people: feeds without collectors (an MRT file) leave an empty collector
/// segment in the stored name (`mrt//AS3333/192.0.2.1`); shown as `mrt/AS3333/192.0.2.1`. The
/// stored name, in the API and ids, is left as it is.
pub(super) fn vp_display(name: &str) -> String {
    name.split('/')
        .filter(|segment| !segment.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[derive(Serialize)]
struct AsnCell {
    asn: u32,
    vantage_points: usize,
    unexpected: bool,
}

#[derive(Serialize)]
struct MoreCell {
    prefix: String,
    vantage_points: usize,
    origins: Vec<AsnCell>,
}

#[derive(Serialize)]
struct PrefixRow {
    prefix: String,
    description: String,
    vantage_points: usize,
    visibility_threshold: u32,
    bar_percent: u32,
    threshold_percent: u32,
    low: bool,
    origins: Vec<AsnCell>,
    upstreams: Vec<AsnCell>,
    more_specifics: Vec<MoreCell>,
    firing: usize,
    last_change: Option<String>,
}

#[derive(Serialize)]
struct SeverityCount {
    severity: &'static str,
    count: usize,
    href: String,
}

#[derive(Serialize)]
struct RuleLink {
    rule: &'static str,
    count: usize,
    href: String,
}

#[derive(Serialize)]
struct Page<'a> {
    refresh_seconds: u32,
    generated_at: String,
    vantage_points_seen: usize,
    feeds: Vec<FeedRow>,
    /// Firing alerts per severity, whatever the filter.
    severity_counts: Vec<SeverityCount>,
    /// Rules that have firing alerts, as filter links.
    rule_links: Vec<RuleLink>,
    /// The filter in words, empty when none.
    filter_text: String,
    firing: Vec<AlertRow<'a>>,
    /// Firing alerts in total, whatever the filter.
    firing_total: usize,
    /// Firing alerts that match the filter.
    firing_matching: usize,
    firing_hidden: usize,
    resolved: Vec<AlertRow<'a>>,
    prefixes: Vec<PrefixRow>,
    /// The triage view: forms to acknowledge and silence, and no automatic reload (it would
    /// lose what is being typed).
    triage_mode: bool,
    /// The same page in the other view.
    triage_toggle_href: String,
    /// The page without filters, in the same view.
    show_all_href: String,
    /// Silences in force.
    silences: Vec<SilenceRow>,
    /// Rule names, for the silence form.
    rules: Vec<&'static str>,
    /// The name the forms offer as who acts: the Basic user name, if any.
    operator: String,
}

/// A time as the pages show it: `2016-08-11 16:00:06 UTC`.
pub(super) fn time(t: Timestamp) -> String {
    // Seconds are enough on a status page; the API has the microseconds.
    let s = t.to_rfc3339();
    match s.split_once('.') {
        Some((head, _)) => format!("{} UTC", head.replace('T', " ")),
        None => s,
    }
}

/// The summary without its `[severity] rule: ` head, which the page shows on its own.
pub(super) fn headline(a: &Alert) -> String {
    let summary = a.summary();
    summary
        .split_once(": ")
        .map_or(summary.clone(), |(_, what)| what.to_string())
}

fn alert_row<'a>(
    a: &'a Alert,
    watched: &HashSet<IpNet>,
    filter: &PageFilter,
    state: &AppState,
) -> AlertRow<'a> {
    let is_watched = watched.contains(&a.watched_prefix);
    AlertRow {
        id: &a.id,
        severity: a.severity.as_str(),
        rule: a.rule.as_str(),
        headline: headline(a),
        description: &a.description,
        watched_prefix: is_watched.then(|| a.watched_prefix.to_string()),
        monitored_asn: a.detail.monitored_asn.filter(|_| !is_watched),
        prefix_href: filter.with_prefix(a.prefix).href(),
        rule_href: filter.with_rule(a.rule).href(),
        vantage_points: a.vantage_points,
        peak_vantage_points: a.peak_vantage_points,
        fired_at: time(a.fired_at),
        last_seen: time(a.last_seen),
        resolved_at: a.resolved_at.map(time),
        sample: sample_rows(&a.sample),
        triage: triage_block(a, state),
    }
}

/// Query of the status page: each filter is optional, and empty means none (so a plain link
/// can clear one).
#[derive(Debug, Default, Deserialize)]
pub(super) struct StatusQuery {
    pub(super) severity: Option<String>,
    pub(super) rule: Option<String>,
    pub(super) prefix: Option<String>,
    /// `1` for the triage view.
    pub(super) triage: Option<String>,
}

/// What the status page lists: alerts of one severity, rule or prefix (watched or affected).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PageFilter {
    severity: Option<Severity>,
    rule: Option<Rule>,
    prefix: Option<IpNet>,
    /// The triage view (forms, no reload); kept by every link.
    triage: bool,
}

impl PageFilter {
    /// Parses the query; the error says which value is wrong and what is accepted.
    pub(super) fn parse(q: StatusQuery) -> Result<PageFilter, String> {
        let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let triage = match given(q.triage).as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => return Err(format!("triage `{other}` is not 1 or 0")),
        };
        let parsed = super::parse_filter(super::AlertQuery {
            state: Some("all".into()),
            prefix: given(q.prefix),
            rule: given(q.rule),
            severity: given(q.severity),
        })?;
        Ok(PageFilter {
            severity: parsed.severity,
            rule: parsed.rule,
            prefix: parsed.prefix,
            triage,
        })
    }

    fn alerts(&self, state: AlertState) -> AlertFilter {
        AlertFilter {
            state: Some(state),
            prefix: self.prefix,
            rule: self.rule,
            severity: self.severity,
        }
    }

    fn with_severity(self, severity: Severity) -> PageFilter {
        PageFilter {
            severity: Some(severity),
            ..self
        }
    }

    fn with_rule(self, rule: Rule) -> PageFilter {
        PageFilter {
            rule: Some(rule),
            ..self
        }
    }

    fn with_prefix(self, prefix: IpNet) -> PageFilter {
        PageFilter {
            prefix: Some(prefix),
            ..self
        }
    }

    /// A link to the page with this filter. Prefixes are written with `%2F` so the query
    /// reads back as one value whatever the browser does with slashes.
    pub(super) fn href(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.severity {
            parts.push(format!("severity={s}"));
        }
        if let Some(r) = self.rule {
            parts.push(format!("rule={r}"));
        }
        if let Some(p) = self.prefix {
            parts.push(format!("prefix={}", p.to_string().replace('/', "%2F")));
        }
        if self.triage {
            parts.push("triage=1".into());
        }
        if parts.is_empty() {
            "/".into()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }

    /// The filter in words, for the page.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.severity {
            parts.push(format!("severity {s}"));
        }
        if let Some(r) = self.rule {
            parts.push(format!("rule {r}"));
        }
        if let Some(p) = self.prefix {
            parts.push(format!("prefix {p}"));
        }
        parts.join(", ")
    }
}

/// Triage order: critical first, then warning, then info; newest first within each (ties by
/// id, so the order is stable between refreshes).
pub(super) fn triage_order(alerts: &mut [&Alert]) {
    alerts.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| b.fired_at.cmp(&a.fired_at))
            .then_with(|| a.id.cmp(&b.id))
    });
}

fn percent(part: usize, whole: usize) -> u32 {
    if whole == 0 {
        return 0;
    }
    ((part.min(whole) * 100) / whole) as u32
}

pub(super) async fn status_page(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let filter = match query
        .map_err(|e| e.body_text())
        .and_then(|Query(q)| PageFilter::parse(q))
    {
        Ok(f) => f,
        Err(msg) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{msg}\nThe status page filters by severity, rule and prefix; / shows everything.\n"),
            )
                .into_response();
        }
    };
    let feeds: Vec<FeedRow> = state
        .health
        .snapshot()
        .into_iter()
        .map(|(name, h)| FeedRow {
            status: if !h.connected {
                "down"
            } else if h.stale {
                "stale"
            } else {
                "ok"
            },
            name,
            kind: h.kind,
            last_message: h.last_message.map(time),
            reconnects: h.reconnects,
            last_error: h.last_error,
            routers: h.routers,
            warm_start: h.warm_start.map(|w| warm_start_text(&w)),
        })
        .collect();
    let seen = state.prefixes.vantage_points();
    let states = state.prefixes.all();
    let watched: HashSet<IpNet> = states.iter().map(|s| s.prefix).collect();
    let book = state.book.read().unwrap_or_else(|p| p.into_inner());
    let all_firing = book.list(&AlertFilter {
        state: Some(AlertState::Firing),
        ..AlertFilter::default()
    });
    let mut firing_per: HashMap<IpNet, usize> = HashMap::new();
    let mut per_severity: HashMap<Severity, usize> = HashMap::new();
    let mut per_rule: HashMap<Rule, usize> = HashMap::new();
    for a in &all_firing {
        *firing_per.entry(a.watched_prefix).or_default() += 1;
        *per_severity.entry(a.severity).or_default() += 1;
        *per_rule.entry(a.rule).or_default() += 1;
    }
    let severity_counts = [Severity::Critical, Severity::Warning, Severity::Info]
        .into_iter()
        .map(|s| SeverityCount {
            severity: s.as_str(),
            count: per_severity.get(&s).copied().unwrap_or(0),
            href: filter.with_severity(s).href(),
        })
        .collect();
    let rule_links = Rule::ALL
        .into_iter()
        .filter_map(|r| {
            per_rule.get(&r).map(|&count| RuleLink {
                rule: r.as_str(),
                count,
                href: filter.with_rule(r).href(),
            })
        })
        .collect();
    let firing_total = all_firing.len();
    let mut firing_alerts = book.list(&filter.alerts(AlertState::Firing));
    triage_order(&mut firing_alerts);
    let resolved: Vec<AlertRow> = book
        .list(&filter.alerts(AlertState::Resolved))
        .into_iter()
        .take(RESOLVED_SHOWN)
        .map(|a| alert_row(a, &watched, &filter, &state))
        .collect();
    let prefixes = states
        .iter()
        .map(|s| {
            let cell = |asn: u32, vantage_points: usize, unexpected: bool| AsnCell {
                asn,
                vantage_points,
                unexpected,
            };
            let whole = seen.max(s.visibility_threshold as usize);
            PrefixRow {
                prefix: s.prefix.to_string(),
                description: s.description.clone(),
                vantage_points: s.vantage_points,
                visibility_threshold: s.visibility_threshold,
                bar_percent: percent(s.vantage_points, whole),
                threshold_percent: percent(s.visibility_threshold as usize, whole),
                low: s.visibility_threshold > 0
                    && s.vantage_points < s.visibility_threshold as usize,
                origins: s
                    .origins
                    .iter()
                    .map(|o| {
                        let unexpected = !s.expected_origins.contains(&o.asn);
                        cell(o.asn, o.vantage_points, unexpected)
                    })
                    .collect(),
                upstreams: s
                    .upstreams
                    .iter()
                    .map(|u| {
                        let unexpected = s
                            .expected_upstreams
                            .as_ref()
                            .is_some_and(|e| !e.contains(&u.asn));
                        cell(u.asn, u.vantage_points, unexpected)
                    })
                    .collect(),
                more_specifics: s
                    .more_specifics
                    .iter()
                    .map(|m| MoreCell {
                        prefix: m.prefix.to_string(),
                        vantage_points: m.vantage_points,
                        origins: m
                            .origins
                            .iter()
                            .map(|o| cell(o.asn, o.vantage_points, false))
                            .collect(),
                    })
                    .collect(),
                firing: firing_per.get(&s.prefix).copied().unwrap_or(0),
                last_change: s.last_change.map(time),
            }
        })
        .collect();
    let firing_matching = firing_alerts.len();
    let page = Page {
        refresh_seconds: REFRESH_SECONDS,
        generated_at: time(Timestamp::now()),
        vantage_points_seen: seen,
        feeds,
        severity_counts,
        rule_links,
        filter_text: filter.describe(),
        firing: firing_alerts
            .into_iter()
            .take(FIRING_SHOWN)
            .map(|a| alert_row(a, &watched, &filter, &state))
            .collect(),
        firing_total,
        firing_matching,
        firing_hidden: firing_matching.saturating_sub(FIRING_SHOWN),
        resolved,
        prefixes,
        triage_mode: filter.triage,
        triage_toggle_href: PageFilter {
            triage: !filter.triage,
            ..filter
        }
        .href(),
        show_all_href: PageFilter {
            triage: filter.triage,
            ..PageFilter::default()
        }
        .href(),
        silences: state
            .triage
            .silences(Timestamp::now())
            .iter()
            .filter(|s| s.active(Timestamp::now()))
            .map(SilenceRow::new)
            .collect(),
        rules: Rule::ALL.iter().map(|r| r.as_str()).collect(),
        operator: super::auth::basic_user(headers.get(header::AUTHORIZATION)).unwrap_or_default(),
    };
    match render_template("status.html", &page) {
        Ok(html) => html_response(html),
        Err(e) => {
            error!("cannot render the status page: {e:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the status page failed to render; the JSON endpoints still work (/api/prefixes, /alerts)\n",
            )
                .into_response()
        }
    }
}
