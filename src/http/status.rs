//! The status page at `/`: server-rendered HTML that refreshes itself, for a browser or a
//! phone. Everything shown is escaped by the template engine (AS paths, descriptions and
//! errors are data from the network or from users).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use minijinja::Environment;
use serde::Serialize;
use tracing::error;

use super::AppState;
use crate::alerts::{Alert, AlertFilter, AlertState, VpSample};
use crate::event::Timestamp;

/// Seconds between automatic reloads of the page.
pub const REFRESH_SECONDS: u32 = 15;

/// Firing alerts listed on the page (newest first); the rest are counted and left to `/alerts`.
pub const FIRING_SHOWN: usize = 200;

/// Resolved alerts listed on the page.
pub const RESOLVED_SHOWN: usize = 20;

const TEMPLATE: &str = include_str!("templates/status.html");

/// The page runs no script and loads nothing: a policy that says so stops anything injected
/// from running even if escaping were ever missed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn environment() -> &'static Result<Environment<'static>, minijinja::Error> {
    static ENV: OnceLock<Result<Environment<'static>, minijinja::Error>> = OnceLock::new();
    ENV.get_or_init(|| {
        // The `.html` name turns on HTML auto-escaping for every value.
        let mut env = Environment::new();
        env.add_template("status.html", TEMPLATE)?;
        Ok(env)
    })
}

#[derive(Serialize)]
struct FeedRow {
    name: String,
    kind: String,
    status: &'static str,
    last_message: Option<String>,
    reconnects: u64,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct AlertRow<'a> {
    severity: &'a str,
    rule: &'a str,
    headline: String,
    description: &'a str,
    watched_prefix: String,
    vantage_points: u32,
    peak_vantage_points: u32,
    fired_at: String,
    last_seen: String,
    resolved_at: Option<String>,
    sample: &'a [VpSample],
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
struct Page<'a> {
    refresh_seconds: u32,
    generated_at: String,
    vantage_points_seen: usize,
    feeds: Vec<FeedRow>,
    firing: Vec<AlertRow<'a>>,
    firing_total: usize,
    firing_hidden: usize,
    resolved: Vec<AlertRow<'a>>,
    prefixes: Vec<PrefixRow>,
}

fn time(t: Timestamp) -> String {
    // Seconds are enough on a status page; the API has the microseconds.
    let s = t.to_rfc3339();
    match s.split_once('.') {
        Some((head, _)) => format!("{} UTC", head.replace('T', " ")),
        None => s,
    }
}

fn alert_row(a: &Alert) -> AlertRow<'_> {
    let summary = a.summary();
    let headline = summary
        .split_once(": ")
        .map_or(summary.clone(), |(_, what)| what.to_string());
    AlertRow {
        severity: a.severity.as_str(),
        rule: a.rule.as_str(),
        headline,
        description: &a.description,
        watched_prefix: a.watched_prefix.to_string(),
        vantage_points: a.vantage_points,
        peak_vantage_points: a.peak_vantage_points,
        fired_at: time(a.fired_at),
        last_seen: time(a.last_seen),
        resolved_at: a.resolved_at.map(time),
        sample: &a.sample,
    }
}

fn percent(part: usize, whole: usize) -> u32 {
    if whole == 0 {
        return 0;
    }
    ((part.min(whole) * 100) / whole) as u32
}

pub(super) async fn status_page(State(state): State<AppState>) -> Response {
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
        })
        .collect();
    let seen = state.prefixes.vantage_points();
    let states = state.prefixes.all();
    let book = state.book.read().unwrap_or_else(|p| p.into_inner());
    let firing_alerts = book.list(&AlertFilter {
        state: Some(AlertState::Firing),
        ..AlertFilter::default()
    });
    let mut firing_per: HashMap<IpNet, usize> = HashMap::new();
    for a in &firing_alerts {
        *firing_per.entry(a.watched_prefix).or_default() += 1;
    }
    let resolved: Vec<AlertRow> = book
        .list(&AlertFilter {
            state: Some(AlertState::Resolved),
            ..AlertFilter::default()
        })
        .into_iter()
        .take(RESOLVED_SHOWN)
        .map(alert_row)
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
    let firing_total = firing_alerts.len();
    let page = Page {
        refresh_seconds: REFRESH_SECONDS,
        generated_at: time(Timestamp::now()),
        vantage_points_seen: seen,
        feeds,
        firing: firing_alerts
            .into_iter()
            .take(FIRING_SHOWN)
            .map(alert_row)
            .collect(),
        firing_total,
        firing_hidden: firing_total.saturating_sub(FIRING_SHOWN),
        resolved,
        prefixes,
    };
    let rendered = match environment() {
        Ok(env) => env
            .get_template("status.html")
            .and_then(|t| t.render(minijinja::value::Serde(&page))),
        Err(e) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            e.to_string(),
        )),
    };
    match rendered {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            html,
        )
            .into_response(),
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
