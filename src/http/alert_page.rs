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
    ripestat: String,
    bgp_tools: String,
    peeringdb: String,
}

/// One point of the VP count over time, as the table shows it.
#[derive(Serialize)]
struct HistoryRow {
    at: String,
    vantage_points: u32,
}

/// The VP count over time as an SVG step line, drawn here so the page needs no script.
#[derive(Serialize)]
struct Sparkline {
    width: u32,
    height: u32,
    /// `x,y x,y …` for an SVG polyline.
    points: String,
    max: u32,
    from: String,
    to: String,
}

/// Size of the sparkline's drawing area (the SVG scales to the page's width).
const SPARK_WIDTH: u32 = 600;
const SPARK_HEIGHT: u32 = 60;

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
    history: Vec<HistoryRow>,
    sparkline: Option<Sparkline>,
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
            "{what}; firing since {}, seen by {} now.",
            time(a.fired_at),
            crate::replay::counted(a.vantage_points.into(), "vantage point")
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
            ripestat: format!("https://stat.ripe.net/AS{asn}"),
            bgp_tools: format!("https://bgp.tools/as/{asn}"),
            peeringdb: format!("https://www.peeringdb.com/asn/{asn}"),
        })
        .collect();
    (prefix_links, asn_links)
}

/// The step line of an alert's VP count from its first point to its resolution (or its last
/// change): each count holds until the next point.
fn sparkline(a: &Alert) -> Option<Sparkline> {
    let first = a.vp_history.first()?;
    let last = a.vp_history.last()?;
    let end = a.resolved_at.unwrap_or(a.last_seen).max(last.at);
    let span = (end.0 - first.at.0).max(1) as f64;
    let max = a
        .vp_history
        .iter()
        .map(|p| p.vantage_points)
        .max()
        .unwrap_or(0);
    let (w, h) = (f64::from(SPARK_WIDTH), f64::from(SPARK_HEIGHT));
    let x = |t: i64| (t - first.at.0) as f64 / span * w;
    // 2 units of margin so the line is not cut at the top and bottom edges.
    let y = |n: u32| h - 2.0 - f64::from(n) / f64::from(max.max(1)) * (h - 4.0);
    let mut points = vec![(x(first.at.0), y(first.vantage_points))];
    for pair in a.vp_history.windows(2) {
        let at = x(pair[1].at.0);
        points.push((at, y(pair[0].vantage_points)));
        points.push((at, y(pair[1].vantage_points)));
    }
    points.push((x(end.0), y(last.vantage_points)));
    let points = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    Some(Sparkline {
        width: SPARK_WIDTH,
        height: SPARK_HEIGHT,
        points,
        max,
        from: time(first.at),
        to: time(end),
    })
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
        history: a
            .vp_history
            .iter()
            .map(|p| HistoryRow {
                at: time(p.at),
                vantage_points: p.vantage_points,
            })
            .collect(),
        sparkline: sparkline(a),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::VpCount;
    use crate::event::Timestamp;

    #[test]
    fn the_sparkline_steps_through_every_change_to_the_end() {
        let cfg = crate::config::Config::parse("", std::path::Path::new("t.yml")).unwrap();
        let mut a = crate::notify::sample::sample_alert(&cfg);
        a.vp_history.clear();
        assert!(sparkline(&a).is_none(), "nothing recorded, nothing drawn");
        let at = |s| Timestamp::from_parts(s, 0);
        a.vp_history = vec![
            VpCount {
                at: at(100),
                vantage_points: 2,
            },
            VpCount {
                at: at(150),
                vantage_points: 4,
            },
        ];
        a.last_seen = at(200);
        a.resolved_at = None;
        let s = sparkline(&a).unwrap();
        // 2 of 4 VPs from 0 to the middle, then 4 to the end (the last change).
        assert_eq!(s.points, "0.0,30.0 300.0,30.0 300.0,2.0 600.0,2.0");
        assert_eq!(s.max, 4);
        // The sentence counts in words that agree.
        a.vantage_points = 1;
        assert!(
            sentence(&a).ends_with("seen by 1 vantage point now."),
            "{}",
            sentence(&a)
        );
        a.vantage_points = 2;
        assert!(
            sentence(&a).ends_with("seen by 2 vantage points now."),
            "{}",
            sentence(&a)
        );
        // One point: a flat line over the (empty) span.
        a.vp_history.truncate(1);
        a.last_seen = at(100);
        assert_eq!(sparkline(&a).unwrap().points, "0.0,2.0 0.0,2.0");
    }
}
