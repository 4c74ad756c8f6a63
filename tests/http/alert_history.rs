//! The alert page's VP count over time, on the real service fed the MRT fixture with a known
//! hijack: kept with the alert (JSON), drawn without script (HTML), with links to look every
//! ASN up.

use serde_json::Value;

use crate::util::{Service, fixture, http_agent, http_get, poll_until};

const HIJACKED: &str = "202.134.148.0/24";

fn html(addr: &str, path: &str) -> String {
    let mut resp = http_agent()
        .get(&format!("http://{addr}{path}"))
        .header("accept", "text/html")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.body_mut().read_to_string().unwrap()
}

#[test]
fn the_alert_page_shows_the_vp_count_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let mrt = fixture("hijack-202.134.148.0_24.20160811.1600.mrt.gz");
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(
        &config,
        format!(
            "prefixes:\n  - prefix: {HIJACKED}\n    origins: [18196]\nfeeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
            mrt.display()
        ),
    )
    .unwrap();
    let svc = Service::start(&config);
    let alert: Value = poll_until("the origin hijack to fire and resolve", 60, || {
        let (_, _, body) = http_get(&svc.addr, "/alerts?state=resolved")?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "origin_hijack" && a["prefix"] == HIJACKED)
            .cloned()
    });
    // The series: from firing (at least min_vantage_points VPs) to resolution (none), each
    // point a change, in time order, its largest count the alert's peak.
    let history = alert["vp_history"]
        .as_array()
        .expect("vp_history in the JSON");
    let points: Vec<(String, u64)> = history
        .iter()
        .map(|p| {
            (
                p["at"].as_str().unwrap().to_string(),
                p["vantage_points"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(points.len() >= 2, "{alert}");
    assert_eq!(points[0].0, alert["fired_at"].as_str().unwrap());
    assert!(points[0].1 >= 2, "{alert}");
    let last = points.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1),
        (alert["resolved_at"].as_str().unwrap(), 0)
    );
    assert!(
        points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1),
        "{points:?}"
    );
    let max = points.iter().map(|p| p.1).max().unwrap();
    assert_eq!(max, alert["peak_vantage_points"].as_u64().unwrap());
    // The page: a step line in SVG (no script), and the same points as a table.
    let id = alert["id"].as_str().unwrap();
    let page = html(&svc.addr, &format!("/alerts/{id}"));
    let section = page
        .split("<section id=\"vp-history\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap_or_else(|| panic!("no VP history section: {page}"));
    assert!(section.contains("<svg class=\"spark\""), "{section}");
    let polyline = section
        .split("points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    // A step line: a start, two corners per change, an end.
    assert_eq!(polyline.split(' ').count(), 2 * points.len(), "{polyline}");
    let noun = if max == 1 { "VP" } else { "VPs" };
    assert!(
        section.contains(&format!("at most {max} {noun}")),
        "{section}"
    );
    let rows: Vec<&str> = section.split("<tr><th scope=\"row\">").skip(1).collect();
    assert_eq!(rows.len(), points.len(), "{section}");
    for (row, (_, count)) in rows.iter().zip(&points) {
        assert!(row.contains(&format!("<td>{count}</td>")), "{row}");
    }
    assert!(!page.contains("<script"), "{page}");
    // Every ASN named can be looked up on RIPEstat, bgp.tools and PeeringDB.
    for asn in [58678, 18196] {
        for site in [
            format!("https:&#x2f;&#x2f;stat.ripe.net&#x2f;AS{asn}"),
            format!("https:&#x2f;&#x2f;bgp.tools&#x2f;as&#x2f;{asn}"),
            format!("https:&#x2f;&#x2f;www.peeringdb.com&#x2f;asn&#x2f;{asn}"),
        ] {
            assert!(page.contains(&site), "{site} missing: {page}");
        }
    }
}
