//! The status page and the alert page served by the real router on loopback, from a book of
//! made-up alerts: triage order, counts, filters, VP names, content negotiation, escaping.

use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, HeaderValue, header};

use super::alert_page::prefers_html;
use super::status::{PageFilter, StatusQuery, vp_display};
use super::{AppState, Guard, router};
use crate::alerts::{Alert, AlertBook, AlertDetail, AlertState, Rule, Severity, VpSample};
use crate::engine::{PrefixState, SharedPrefixStates};
use crate::event::Timestamp;
use crate::health::Health;
use crate::metrics::Metrics;

const WATCHED: &str = "192.0.2.0/24";

fn alert(id: &str, rule: Rule, severity: Severity, fired_at: i64) -> Alert {
    let prefix = WATCHED.parse().unwrap();
    Alert {
        id: id.into(),
        rule,
        severity,
        state: AlertState::Firing,
        prefix,
        watched_prefix: prefix,
        description: "Office".into(),
        origin: Some(64511),
        upstream: None,
        expected_origins: vec![64500],
        expected_upstreams: vec![64501],
        vantage_points: 3,
        peak_vantage_points: 3,
        sample: vec![VpSample {
            vantage_point: "mrt//AS3333/193.0.0.56".into(),
            as_path: "3333 64511".into(),
            communities: vec!["3333:100".into()],
            seen_at: Timestamp::from_parts(fired_at, 0),
        }],
        groups: Vec::new(),
        first_seen: Timestamp::from_parts(fired_at, 0),
        fired_at: Timestamp::from_parts(fired_at, 0),
        last_seen: Timestamp::from_parts(fired_at, 0),
        resolved_at: None,
        vp_history: Vec::new(),
        detail: AlertDetail::default(),
    }
}

fn watched_state() -> PrefixState {
    PrefixState {
        prefix: WATCHED.parse().unwrap(),
        description: "Office".into(),
        expected_origins: vec![64500],
        origins_learned: false,
        expected_upstreams: None,
        upstreams_learned: false,
        accepted_origins: Vec::new(),
        accepted_upstreams: Vec::new(),
        learning_window_ends: None,
        vantage_points: 0,
        visibility_threshold: 0,
        origins: Vec::new(),
        upstreams: Vec::new(),
        more_specifics: Vec::new(),
        last_change: None,
    }
}

/// The real router on 127.0.0.1:0, serving `firing` and `resolved` (oldest first) until the
/// returned runtime is dropped.
fn serve(firing: &[Alert], resolved: &[Alert]) -> (tokio::runtime::Runtime, String) {
    let mut book = AlertBook::new(100);
    book.restore(resolved, firing);
    let prefixes = SharedPrefixStates::default();
    prefixes.set_all(vec![watched_state()]);
    let state = AppState {
        book: Arc::new(RwLock::new(book)),
        metrics: Metrics::new().unwrap(),
        health: Health::default(),
        prefixes,
        engine_commands: None,
        triage: crate::triage::Triage::in_memory(),
        external_url: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = router(state, Guard::default());
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, addr)
}

/// GET with an optional Accept header: (status, content type, body).
fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(&format!("http://{addr}{path}"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let mut resp = req.call().unwrap();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let status = resp.status().as_u16();
    (status, ctype, resp.body_mut().read_to_string().unwrap())
}

/// The ids of the firing alerts on a status page, in page order.
fn listed_ids(html: &str) -> Vec<String> {
    let firing = &html[html.find("<section id=\"firing\">").unwrap()..];
    let firing = &firing[..firing.find("</section>").unwrap()];
    firing
        .split("href=\"/alerts/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn status_page_lists_critical_first_then_newest_and_counts_each_severity() {
    let (_rt, addr) = serve(
        &[
            alert("info-new", Rule::MoreSpecific, Severity::Info, 500),
            alert("warn-old", Rule::NewUpstream, Severity::Warning, 100),
            alert("crit-old", Rule::OriginHijack, Severity::Critical, 50),
            alert("warn-new", Rule::NewUpstream, Severity::Warning, 400),
            alert("crit-new", Rule::SubprefixHijack, Severity::Critical, 200),
        ],
        &[],
    );
    let (status, _, html) = get(&addr, "/", None);
    assert_eq!(status, 200);
    assert_eq!(
        listed_ids(&html),
        ["crit-new", "crit-old", "warn-new", "warn-old", "info-new"]
    );
    for count in ["2 critical", "2 warning", "1 info"] {
        assert!(html.contains(&format!("\">{count}</a>")), "{count}: {html}");
    }
    // The VP name loses its empty collector segment on the page only (`/` comes out as
    // `&#x2f;`).
    assert!(html.contains(">mrt&#x2f;AS3333&#x2f;193.0.0.56<"), "{html}");
    assert!(!html.contains("mrt&#x2f;&#x2f;"), "{html}");
    assert!(html.contains("watched 192.0.2.0&#x2f;24"), "{html}");
}

#[test]
fn status_page_filters_by_severity_rule_and_prefix_from_plain_links() {
    let mut other = alert("other-prefix", Rule::OriginHijack, Severity::Critical, 300);
    other.prefix = "192.0.2.128/25".parse().unwrap();
    let (_rt, addr) = serve(
        &[
            alert("crit", Rule::OriginHijack, Severity::Critical, 200),
            alert("warn", Rule::NewUpstream, Severity::Warning, 400),
            other,
        ],
        &[],
    );
    let ids = |q: &str| {
        let (status, _, html) = get(&addr, q, None);
        assert_eq!(status, 200, "{q}: {html}");
        listed_ids(&html)
    };
    assert_eq!(ids("/?severity=warning"), ["warn"]);
    assert_eq!(ids("/?rule=origin_hijack"), ["other-prefix", "crit"]);
    assert_eq!(ids("/?prefix=192.0.2.128%2F25"), ["other-prefix"]);
    // The watched prefix matches every alert under it, like /alerts?prefix=.
    assert_eq!(ids("/?prefix=192.0.2.0/24&severity=critical").len(), 2);
    // Empty values (a cleared filter) mean no filter.
    assert_eq!(ids("/?severity=&rule=&prefix=").len(), 3);
    // The links the page offers lead to those filters.
    let (_, _, html) = get(&addr, "/?severity=critical", None);
    assert!(html.contains("Firing alerts (2 of 3)"), "{html}");
    assert!(
        html.contains("href=\"&#x2f;?severity=critical&amp;rule=origin_hijack\""),
        "{html}"
    );
    assert!(html.contains("href=\"&#x2f;\">show all</a>"), "{html}");
    let (status, ctype, body) = get(&addr, "/?severity=urgent", None);
    assert_eq!(status, 400);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert!(
        body.contains("severity `urgent` is not one of critical, warning, info"),
        "{body}"
    );
}

#[test]
fn status_page_never_calls_unwatched_space_watched() {
    // A monitored ASN's announcement of space outside the watch list.
    let mut a = alert("unwatched", Rule::UnexpectedPrefix, Severity::Warning, 100);
    a.prefix = "198.51.100.0/24".parse().unwrap();
    a.watched_prefix = a.prefix;
    a.detail.monitored_asn = Some(64511);
    let (_rt, addr) = serve(&[a], &[]);
    let (_, _, html) = get(&addr, "/", None);
    assert!(!html.contains("watched 198.51.100.0"), "{html}");
    assert!(html.contains("not watched (monitored AS64511)"), "{html}");
}

#[test]
fn filter_parsing_names_the_bad_value() {
    let q = |severity: &str, rule: &str, prefix: &str| StatusQuery {
        severity: Some(severity.into()),
        rule: Some(rule.into()),
        prefix: Some(prefix.into()),
        triage: None,
    };
    assert_eq!(PageFilter::parse(q("", "", "")), Ok(PageFilter::default()));
    let f = PageFilter::parse(q("info", "new_upstream", "192.0.2.7/24")).unwrap();
    // The prefix is truncated to its network, as in /alerts.
    assert_eq!(
        f.href(),
        "/?severity=info&rule=new_upstream&prefix=192.0.2.0%2F24"
    );
    let err = PageFilter::parse(q("", "hijack", "")).unwrap_err();
    assert!(
        err.starts_with("rule `hijack` is not one of origin_hijack"),
        "{err}"
    );
    let err = PageFilter::parse(q("", "", "192.0.2.300/24")).unwrap_err();
    assert!(err.contains("is not a prefix"), "{err}");
}

#[test]
fn vp_names_drop_only_empty_segments() {
    assert_eq!(
        vp_display("mrt//AS3333/193.0.0.56"),
        "mrt/AS3333/193.0.0.56"
    );
    assert_eq!(
        vp_display("ris/rrc00/AS3333/2001:db8::1"),
        "ris/rrc00/AS3333/2001:db8::1"
    );
}

#[test]
fn accept_header_picks_html_only_when_preferred() {
    let prefers = |accept: &[&str]| {
        let mut h = HeaderMap::new();
        for a in accept {
            h.append(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        prefers_html(&h)
    };
    // Firefox and Chromium navigations.
    assert!(prefers(&[
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    ]));
    assert!(prefers(&[
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
    ]));
    assert!(prefers(&["application/json;q=0.5", "TEXT/HTML"]));
    // curl, no header, API clients, ties and refusals stay JSON.
    assert!(!prefers(&["*/*"]));
    assert!(!prefers(&[]));
    assert!(!prefers(&["application/json"]));
    assert!(!prefers(&["text/html, application/json"]));
    assert!(!prefers(&["text/html;q=0.5, */*"]));
    assert!(!prefers(&["text/html;q=0"]));
    assert!(!prefers(&["text/*"]));
}

#[test]
fn alert_page_for_browsers_json_for_the_rest() {
    let mut a = alert(
        "c0ffee",
        Rule::OriginHijack,
        Severity::Critical,
        1_470_931_206,
    );
    a.state = AlertState::Resolved;
    a.resolved_at = Some(Timestamp::from_parts(1_470_931_256, 0));
    a.detail.rpki = Some(crate::rpki::RovState::Invalid);
    let (_rt, addr) = serve(&[], &[a]);
    let browser = Some("text/html,application/xhtml+xml,*/*;q=0.8");
    let (status, ctype, html) = get(&addr, "/alerts/c0ffee", browser);
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/html; charset=utf-8");
    for needle in [
        "192.0.2.0&#x2f;24 announced by AS64511 (expected AS64500); fired 2016-08-11 16:00:06 UTC and resolved 2016-08-11 16:00:56 UTC.",
        "<dt>RPKI</dt><dd>invalid</dd>",
        "<dt>expected upstreams</dt><dd>AS64501</dd>",
        "<dt>first seen</dt><dd>2016-08-11 16:00:06 UTC</dd>",
        "<td>mrt&#x2f;AS3333&#x2f;193.0.0.56</td><td><code>3333 64511</code></td><td><code>3333:100</code>",
        "https:&#x2f;&#x2f;stat.ripe.net&#x2f;192.0.2.0&#x2f;24",
        "https:&#x2f;&#x2f;bgp.tools&#x2f;prefix&#x2f;192.0.2.0&#x2f;24",
        "https:&#x2f;&#x2f;bgp.tools&#x2f;as&#x2f;64511",
        "https:&#x2f;&#x2f;www.peeringdb.com&#x2f;asn&#x2f;64500",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    for accept in [None, Some("*/*"), Some("application/json")] {
        let (status, ctype, body) = get(&addr, "/alerts/c0ffee", accept);
        assert_eq!(status, 200);
        assert_eq!(ctype, "application/json", "{accept:?}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "c0ffee");
        // The stored VP name is unchanged in the API.
        assert_eq!(v["sample"][0]["vantage_point"], "mrt//AS3333/193.0.0.56");
    }
    let (status, ctype, body) = get(&addr, "/alerts/nope", browser);
    assert_eq!((status, ctype.as_str()), (404, "text/plain; charset=utf-8"));
    assert!(body.starts_with("No alert with id nope"), "{body}");
    let (status, _, body) = get(&addr, "/alerts/nope", None);
    assert_eq!(status, 404);
    assert!(body.contains("no alert with id nope"), "{body}");
}

#[test]
fn alert_page_escapes_everything_from_the_wire() {
    let mut a = alert("hostile", Rule::OriginHijack, Severity::Critical, 100);
    a.description = "<script>alert(1)</script>".into();
    a.sample[0].as_path = "3333 <img src=x onerror=alert(2)>".into();
    a.sample[0].vantage_point = "mrt/\"><script>alert(3)</script>/AS3333/x".into();
    a.sample[0].communities = vec!["<b>65000:1</b>".into()];
    a.detail.communities = vec!["65000:666 (<i>blackhole</i>)".into()];
    let (_rt, addr) = serve(&[a], &[]);
    let (status, _, html) = get(&addr, "/alerts/hostile", Some("text/html"));
    assert_eq!(status, 200);
    for raw in ["<script", "<img", "<b>", "<i>"] {
        assert!(!html.contains(raw), "{raw} came through unescaped: {html}");
    }
    for escaped in [
        "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;",
        "3333 &lt;img src=x onerror=alert(2)&gt;",
        "&lt;b&gt;65000:1&lt;&#x2f;b&gt;",
        "(&lt;i&gt;blackhole&lt;&#x2f;i&gt;)",
    ] {
        assert!(html.contains(escaped), "{escaped} missing in {html}");
    }
    // And the status page, which shows the same sample.
    let (_, _, html) = get(&addr, "/", None);
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
}
