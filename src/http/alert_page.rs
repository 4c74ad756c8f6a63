//! `GET /alerts/{id}` for people: the same alert the JSON API returns, as a page a notification's
//! link can open in a browser. Which one a request gets is decided by its `Accept` header (see
//! [`prefers_html`]). Everything from the wire (AS paths, communities) and from users
//! (descriptions) is escaped by the template engine, and the page runs no script.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::error;

use super::status::{
    SampleRow, TriageBlock, headline, html_response, render_template, sample_rows, time,
};
use crate::alerts::{Alert, AlertState};

/// Whether a request's `Accept` header prefers HTML to JSON: only when `text/html` is named
/// and ranks strictly above what JSON gets (`application/json`, `application/*` or `*/*`).
/// A browser (`text/html,...,*/*;q=0.8`) gets the page; curl's `*/*`, a missing header and
/// API clients asking for JSON keep getting JSON.
pub(super) fn prefers_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let (mut html, mut json) = (None::<f32>, None::<f32>);
    let (mut json_wild, mut any) = (None::<f32>, None::<f32>);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().ok())?
            })
            .next()
            .unwrap_or(1.0);
        let slot = match media.as_str() {
            "text/html" => &mut html,
            "application/json" => &mut json,
            "application/*" => &mut json_wild,
            "*/*" => &mut any,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let json_q = json.or(json_wild).or(any).unwrap_or(0.0);
    html.is_some_and(|h| h > 0.0 && h > json_q)
}

#[derive(Serialize)]
struct Link {
    label: String,
    href: String,
}

#[derive(Serialize)]
struct AsnLinks {
    role: &'static str,
    asn: u32,
    bgp_tools: String,
    peeringdb: String,
}

#[derive(Serialize)]
struct AlertView<'a> {
    id: &'a str,
    severity: &'a str,
    rule: &'a str,
    firing: bool,
    sentence: String,
    description: &'a str,
    prefix: String,
    watched_prefix: String,
    origin: Option<u32>,
    upstream: Option<u32>,
    expected_origins: &'a [u32],
    expected_upstreams: &'a [u32],
    vantage_points: u32,
    peak_vantage_points: u32,
    rpki: Option<&'static str>,
    rpki_stale: bool,
    aspa: Option<&'static str>,
    leaker: Option<u32>,
    path_rules: &'a [String],
    labelled_communities: &'a [String],
    groups: &'a [String],
    first_seen: String,
    fired_at: String,
    last_seen: String,
    resolved_at: Option<String>,
    sample: Vec<SampleRow<'a>>,
    prefix_links: Vec<Link>,
    asn_links: Vec<AsnLinks>,
}

/// One sentence: what happened, when, and whether it still does.
fn sentence(a: &Alert) -> String {
    let what = headline(a);
    match (a.state, a.resolved_at) {
        (AlertState::Resolved, Some(r)) => format!(
            "{what}; fired {} and resolved {}.",
            time(a.fired_at),
            time(r)
        ),
        _ => format!(
            "{what}; firing since {}, seen by {} vantage points now.",
            time(a.fired_at),
            a.vantage_points
        ),
    }
}

/// Links to look the prefix and every ASN the alert names up elsewhere. The URLs are built
/// from parsed prefixes and numbers only, never from text off the wire.
fn links(a: &Alert) -> (Vec<Link>, Vec<AsnLinks>) {
    let mut prefix_links = Vec::new();
    let mut prefixes = vec![a.prefix];
    if a.watched_prefix != a.prefix {
        prefixes.push(a.watched_prefix);
    }
    for p in prefixes {
        prefix_links.push(Link {
            label: format!("RIPEstat {p}"),
            href: format!("https://stat.ripe.net/{p}"),
        });
        prefix_links.push(Link {
            label: format!("bgp.tools {p}"),
            href: format!("https://bgp.tools/prefix/{p}"),
        });
    }
    let mut asns: Vec<(&'static str, u32)> = Vec::new();
    let mut add = |role, asn: Option<u32>| {
        if let Some(asn) = asn
            && asn != 0
            && !asns.iter().any(|(_, seen)| *seen == asn)
        {
            asns.push((role, asn));
        }
    };
    add("origin", a.origin);
    add("upstream", a.upstream);
    add("suspected leaker", a.detail.leaker);
    add("monitored", a.detail.monitored_asn);
    add("neighbour", a.detail.neighbor);
    for &o in &a.expected_origins {
        add("expected origin", Some(o));
    }
    for &u in &a.expected_upstreams {
        add("expected upstream", Some(u));
    }
    let asn_links = asns
        .into_iter()
        .map(|(role, asn)| AsnLinks {
            role,
            asn,
            bgp_tools: format!("https://bgp.tools/as/{asn}"),
            peeringdb: format!("https://www.peeringdb.com/asn/{asn}"),
        })
        .collect();
    (prefix_links, asn_links)
}

fn view(a: &Alert) -> AlertView<'_> {
    let (prefix_links, asn_links) = links(a);
    AlertView {
        id: &a.id,
        severity: a.severity.as_str(),
        rule: a.rule.as_str(),
        firing: a.state == AlertState::Firing,
        sentence: sentence(a),
        description: &a.description,
        prefix: a.prefix.to_string(),
        watched_prefix: a.watched_prefix.to_string(),
        origin: a.origin,
        upstream: a.upstream,
        expected_origins: &a.expected_origins,
        expected_upstreams: &a.expected_upstreams,
        vantage_points: a.vantage_points,
        peak_vantage_points: a.peak_vantage_points,
        rpki: a.detail.rpki.map(|r| r.as_str()),
        rpki_stale: a.detail.rpki_stale,
        aspa: a.detail.aspa.map(|s| s.as_str()),
        leaker: a.detail.leaker,
        path_rules: &a.detail.path_rules,
        labelled_communities: &a.detail.communities,
        groups: &a.groups,
        first_seen: time(a.first_seen),
        fired_at: time(a.fired_at),
        last_seen: time(a.last_seen),
        resolved_at: a.resolved_at.map(time),
        sample: sample_rows(&a.sample),
        prefix_links,
        asn_links,
    }
}

/// The page's values: the alert's view and its triage.
#[derive(Serialize)]
struct PageContext<'a> {
    #[serde(flatten)]
    alert: AlertView<'a>,
    triage: &'a TriageBlock,
}

/// Renders one alert as HTML.
pub(super) fn render(a: &Alert, triage: &TriageBlock) -> Result<String, minijinja::Error> {
    render_template(
        "alert.html",
        &PageContext {
            alert: view(a),
            triage,
        },
    )
}

/// The alert page response, with the status page's headers (no script, no caching).
pub(super) fn page(a: &Alert, triage: &TriageBlock) -> Response {
    match render(a, triage) {
        Ok(html) => html_response(html),
        Err(e) => {
            error!("cannot render the page of alert {}: {e:#}", a.id);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the alert page failed to render; its JSON is served to requests without Accept: text/html (curl http://.../alerts/{})\n",
                    a.id
                ),
            )
                .into_response()
        }
    }
}
