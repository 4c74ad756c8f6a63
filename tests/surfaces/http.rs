//! The prefix state API and the status page on a live service fed by a real MRT file, and the
//! page as headless Chromium renders it.

use std::path::Path;
use std::process::Command;

use crate::util::browser::run_chromium;
use crate::util::{Service, http_get, poll_until, shared_data, write_config};
use serde_json::Value;

const UPDATES_2016: &str = "mrt/ris-updates.20160811.1600.gz";

/// In the 2016 file AS18196 and AS58678 both originate 202.134.148.0/24; AS18196 holds it at the
/// end. Watching the /24 as AS58678's leaves an origin hijack firing; the covering /22, as
/// AS18196's, lists the /24 among its more-specifics but does not judge it (the /24's own entry
/// does). 43.248.68.0/24, as AS18196's, gives an origin hijack by AS58678 that resolves at
/// 16:00:56. The description carries markup that must come out as text.
fn config() -> String {
    format!(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    description: \"Ops <script>alert('x')</script> & co\"\n    origins: [58678]\n    upstreams: []\n  - prefix: 202.134.148.0/22\n    description: Customer block\n    origins: [18196]\n    upstreams: [4755]\n  - prefix: 84.205.64.0/24\n    description: RIS beacon rrc00\n    origins: [12654]\n    upstreams: [50304]\n  - prefix: 2001:db8::/32\n    description: never announced\n    origins: [64496]\n  - prefix: 43.248.68.0/24\n    origins: [18196]\n    upstreams: []\nfeeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
        shared_data(UPDATES_2016).display()
    )
}

fn json(addr: &str, path: &str) -> (u16, Value) {
    let (status, ctype, body) = http_get(addr, path).unwrap();
    assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
    (status, serde_json::from_str(&body).unwrap())
}

fn asn_counts(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["asn"].as_u64().unwrap(),
                c["vantage_points"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn prefix_api_and_status_page() {
    let (_dir, cfg) = write_config(&config());
    let svc = Service::start(&cfg);
    let addr = svc.addr.clone();
    poll_until("readiness", 60, || {
        (http_get(&addr, "/readyz")?.0 == 200).then_some(())
    });
    // The book fills from another task: wait for the resolved hijack to land there too.
    poll_until("the resolved origin hijack", 30, || {
        let (_, v) = json(&addr, "/alerts?state=resolved&rule=origin_hijack");
        v["alerts"].as_array()?.first().cloned()
    });

    // --- the list: every watched prefix in config order, with its state and alerts ---
    let (status, list) = json(&addr, "/api/prefixes");
    assert_eq!(status, 200);
    let prefixes = list["prefixes"].as_array().unwrap();
    let names: Vec<&str> = prefixes
        .iter()
        .map(|p| p["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "202.134.148.0/24",
            "202.134.148.0/22",
            "84.205.64.0/24",
            "2001:db8::/32",
            "43.248.68.0/24"
        ]
    );
    assert!(
        list["vantage_points_seen"].as_u64().unwrap() >= 19,
        "{list}"
    );

    // The /24 held by AS18196 through AS4755 at the end: an origin hijack for its AS58678 owner.
    let p24 = &prefixes[0];
    let vps = p24["vantage_points"].as_u64().unwrap();
    assert!(vps >= 2, "{p24}");
    assert_eq!(asn_counts(&p24["origins"]), vec![(18196, vps)], "{p24}");
    assert_eq!(asn_counts(&p24["upstreams"]), vec![(4755, vps)], "{p24}");
    assert_eq!(p24["expected_origins"], serde_json::json!([58678]));
    assert_eq!(p24["expected_upstreams"], Value::Null);
    assert_eq!(p24["last_change"], "2016-08-11T16:00:56.000000Z");
    let firing: Vec<&str> = p24["firing_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(firing, ["origin_hijack"], "{p24}");
    assert_eq!(p24["firing_alerts"][0]["origin"], 18196);

    // The /22 itself is not announced; its /24 is, and is listed among its more-specifics.
    let p22 = &prefixes[1];
    assert_eq!(p22["vantage_points"], 0);
    assert_eq!(p22["origins"], serde_json::json!([]));
    let more = p22["more_specifics"].as_array().unwrap();
    assert_eq!(more.len(), 1, "{p22}");
    assert_eq!(more[0]["prefix"], "202.134.148.0/24");
    assert_eq!(more[0]["vantage_points"].as_u64().unwrap(), vps);
    assert_eq!(asn_counts(&more[0]["origins"]), vec![(18196, vps)]);
    let rules: Vec<&str> = p22["firing_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    // The /24 is watched itself, so only its own entry judges it: no more-specific alert here.
    assert!(rules.is_empty(), "{p22}");

    // The beacon: one origin on every VP; the unannounced prefix: nothing, never changed.
    let beacon = &prefixes[2];
    let bvps = beacon["vantage_points"].as_u64().unwrap();
    assert!(bvps >= 10, "{beacon}");
    assert_eq!(asn_counts(&beacon["origins"]), vec![(12654, bvps)]);
    let up_total: u64 = asn_counts(&beacon["upstreams"]).iter().map(|c| c.1).sum();
    assert_eq!(up_total, bvps, "{beacon}");
    assert_eq!(beacon["expected_upstreams"], serde_json::json!([50304]));
    assert_eq!(
        beacon["firing_alerts"][0]["rule"], "new_upstream",
        "{beacon}"
    );
    assert_eq!(beacon["firing_alerts"][0]["upstream"], 29608, "{beacon}");
    assert_eq!(prefixes[3]["vantage_points"], 0);
    assert_eq!(prefixes[3]["last_change"], Value::Null);
    assert_eq!(prefixes[3]["origins_learned"], false);

    // --- one prefix: URL-encoded, as a plain path tail, IPv6; the same document ---
    let (status, one) = json(&addr, "/api/prefixes/202.134.148.0%2F24");
    assert_eq!(status, 200);
    assert_eq!(&one, p24);
    let (status, tail) = json(&addr, "/api/prefixes/202.134.148.0/24");
    assert_eq!(status, 200);
    assert_eq!(&tail, p24);
    let (status, v6) = json(&addr, "/api/prefixes/2001:db8::%2F32");
    assert_eq!(status, 200);
    assert_eq!(v6["description"], "never announced");

    // --- unwatched, malformed and hostile requests ---
    let (status, err) = json(&addr, "/api/prefixes/10.0.0.0%2F8");
    assert_eq!(status, 404);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("10.0.0.0/8 is not a watched prefix"),
        "{err}"
    );
    let (status, err) = json(&addr, "/api/prefixes/202.134.149.0/22");
    assert_eq!(status, 404);
    assert!(
        err["error"].as_str().unwrap().contains("host bits"),
        "{err}"
    );
    let long = "9".repeat(5000);
    for bad in [
        "banana",
        "202.134.148.0",
        "202.134.148.0%2F99",
        "%00%2F24",
        "%3Cscript%3E",
        long.as_str(),
    ] {
        let (status, err) = json(&addr, &format!("/api/prefixes/{bad}"));
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains("is not a prefix"),
            "{err}"
        );
    }

    // --- the page as served ---
    let (status, ctype, html) = http_get(&addr, "/").unwrap();
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/html; charset=utf-8");
    assert!(html.contains("<meta http-equiv=\"refresh\""), "{html}");
    let resp = ureq::get(&format!("http://{addr}/")).call().unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        header("content-security-policy")
            .starts_with("default-src 'none'; style-src 'unsafe-inline'"),
        "{:?}",
        resp.headers()
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-store");
    assert!(!html.contains("<script>"), "markup from the config leaked");
    assert!(
        html.contains("Ops &lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; co"),
        "{html}"
    );

    // --- the page as a browser renders it ---
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let dom = run_chromium(profile.path(), &["--dump-dom", &url]);
    let section = |id: &str| -> String {
        let start = dom
            .find(&format!("<section id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no section {id} in:\n{dom}"));
        let end = dom[start..].find("</section>").unwrap() + start;
        dom[start..end].to_string()
    };
    let firing = section("firing");
    // The /24 is judged by its own entry only: the /22 raises no more-specific for it.
    assert!(firing.contains("Firing alerts (2)"), "{firing}");
    assert!(firing.contains("<code>origin_hijack</code>"), "{firing}");
    assert!(firing.contains("<code>new_upstream</code>"), "{firing}");
    // Most severe first: the critical hijack above the newer new_upstream warning.
    let fired: Vec<&str> = firing
        .split(" · fired ")
        .skip(1)
        .map(|s| s.split(" · ").next().unwrap())
        .collect();
    assert_eq!(
        fired,
        ["2016-08-11 16:00:06 UTC", "2016-08-11 16:00:40 UTC"],
        "{firing}"
    );
    let critical = firing.find("<span class=\"pill critical\">critical</span>");
    let warning = firing.find("<span class=\"pill warning\">warning</span>");
    assert!(critical.is_some() && critical < warning, "{firing}");
    assert!(
        firing.contains("202.134.148.0/24 announced by AS18196 (expected AS58678)"),
        "{firing}"
    );
    assert!(firing.contains(&format!("{vps} VPs now")), "{firing}");
    assert!(firing.contains("4755 18196</code>"), "{firing}");
    assert!(
        firing.contains("Ops &lt;script&gt;alert('x')&lt;/script&gt; &amp; co"),
        "{firing}"
    );
    let resolved = section("resolved");
    assert!(resolved.contains("origin_hijack"), "{resolved}");
    assert!(resolved.contains("43.248.68.0/24"), "{resolved}");
    assert!(resolved.contains("by AS58678"), "{resolved}");
    let feeds = section("feeds");
    assert!(feeds.contains(">ok</span> <strong>mrt</strong>"), "{feeds}");
    let watched = section("prefixes");
    for p in [
        "202.134.148.0/24",
        "202.134.148.0/22",
        "84.205.64.0/24",
        "2001:db8::/32",
    ] {
        assert!(watched.contains(p), "{p} missing in {watched}");
    }
    assert!(watched.contains("class=\"bar\""), "{watched}");
    // AS18196 is not an allowed origin of the /24; the beacon's AS29608 is a new upstream.
    assert_eq!(
        watched.matches(">unexpected</span>").count(),
        1,
        "{watched}"
    );
    assert!(
        watched.contains("<code>AS29608</code> (14) <span class=\"pill warning\">new</span>"),
        "{watched}"
    );
    // No script ran or was injected: the only elements are the page's own.
    assert!(!dom.contains("<script"), "{dom}");

    // A screenshot for people to review, desktop and phone widths.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, size) in [
        ("status.png", "1280,1500"),
        ("status-phone.png", "390,1500"),
    ] {
        let shot = dir.join(name);
        let _ = std::fs::remove_file(&shot);
        let profile = tempfile::tempdir().unwrap();
        run_chromium(
            profile.path(),
            &[
                &format!("--screenshot={}", shot.display()),
                &format!("--window-size={size}"),
                &url,
            ],
        );
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
        assert!(
            png.len() > 20_000,
            "{name} looks blank: {} bytes",
            png.len()
        );
        eprintln!("screenshot: {}", shot.display());
    }
}

/// Thousands of firing alerts (AS701's prefixes from the 2002 table dump, with the space others
/// originate inside them): the page lists the newest ones, counts the rest, and stays a page.
#[test]
fn status_page_with_thousands_of_alerts() {
    let rib = shared_data("mrt/ris-bview.20020722.2337.gz");
    let out = Command::new(crate::util::bin())
        .args(["generate", "--asn", "701", "--rib"])
        .arg(&rib)
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let prefixes = generated.split("\nprefixes:\n").nth(1).unwrap();
    let yaml = format!(
        "defaults:\n  min_vantage_points: 1\nfeeds:\n  - kind: mrt\n    files: [\"{}\"]\nprefixes:\n{prefixes}",
        rib.display()
    );
    let (_dir, cfg) = write_config(&yaml);
    let svc = Service::start(&cfg);
    let addr = svc.addr.clone();
    poll_until("readiness", 120, || {
        (http_get(&addr, "/readyz")?.0 == 200).then_some(())
    });
    // The same config replayed offline says how many alerts end up firing; the service's book,
    // filled by another task, gets there.
    let offline = crate::util::replay(&yaml, &[&rib], &[]);
    assert!(offline.success, "{}", offline.stderr);
    let count = |e: &str| offline.lines.iter().filter(|l| l.event == e).count();
    let total = count("fired") - count("resolved");
    poll_until("every firing alert in the book", 60, || {
        let (_, v) = json(&addr, "/alerts");
        (v["alerts"].as_array()?.len() == total).then_some(())
    });
    assert!(total > 1000, "{total}");
    let (status, _, html) = http_get(&addr, "/").unwrap();
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("<h2>Firing alerts ({total})</h2>")),
        "count missing"
    );
    assert_eq!(html.matches("<div class=\"alert sev-").count(), 200);
    assert!(
        html.contains(&format!("and {} more firing alerts", total - 200)),
        "hidden count missing"
    );
    let (_, list) = json(&addr, "/api/prefixes");
    let listed = list["prefixes"].as_array().unwrap();
    let firing: usize = listed
        .iter()
        .map(|p| p["firing_alerts"].as_array().unwrap().len())
        .sum();
    assert_eq!(firing, total);
}
