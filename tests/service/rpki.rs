//! `bgpsentry run` with RPKI data: the file is loaded before the feed's routes are judged,
//! reloaded when it changes, and stale data is reported in metrics and on alerts.

use crate::util::{Service, http_get, poll_until, shared_data, write_config};
use serde_json::Value;

fn metric(addr: &str, name: &str) -> Option<f64> {
    let (_, _, body) = http_get(addr, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn vrps(generated: i64, extra: &str) -> String {
    format!(
        "{{\"metadata\":{{\"generated\":{generated}}},\"roas\":[{{\"asn\":\"AS18196\",\"prefix\":\"202.134.144.0/20\",\"maxLength\":24,\"ta\":\"apnic\"}}{extra}]}}"
    )
}

#[test]
fn rpki_data_is_loaded_reloaded_and_reported_stale() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vrps.json");
    // Generated in 2016: far older than stale_after_seconds.
    std::fs::write(&file, vrps(1470931200, "")).unwrap();
    let mrt = shared_data("mrt/ris-updates.20160811.1600.gz");
    let (_cfg_dir, cfg) = write_config(&format!(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    visibility_min_vantage_points: 0\nrpki:\n  files: ['{}']\n  check_interval_seconds: 1\n  stale_after_seconds: 3600\nfeeds:\n  - kind: mrt\n    files: ['{}']\n",
        file.display(),
        mrt.display()
    ));
    let svc = Service::start(&cfg);
    let addr = svc.addr.clone();

    assert_eq!(metric(&addr, "bgpsentry_rpki_vrps"), Some(1.0));
    assert_eq!(metric(&addr, "bgpsentry_rpki_stale"), Some(1.0));
    assert!(metric(&addr, "bgpsentry_rpki_data_age_seconds").unwrap() > 3600.0);

    // The hijack of 2016 is RPKI-invalid, and the alerts say the data was stale.
    let resolved = poll_until("the resolved rpki_invalid alert", 60, || {
        let (_, _, body) = http_get(&addr, "/alerts?state=resolved&rule=rpki_invalid")?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["alerts"].as_array()?.first().cloned()
    });
    assert_eq!(resolved["origin"], 58678);
    assert_eq!(resolved["rpki"], "invalid");
    assert_eq!(resolved["rpki_stale"], true);
    // Per-prefix gauge: after the file, every VP has AS18196's valid route again.
    let labelled = |state: &str| {
        let (_, _, body) = http_get(&addr, "/metrics")?;
        let key = format!(
            "bgpsentry_prefix_rpki_vantage_points{{prefix=\"202.134.148.0/24\",state=\"{state}\"}} "
        );
        body.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.parse::<f64>().ok())
    };
    poll_until("valid routes only in the RPKI gauge", 30, || {
        (labelled("invalid")? == 0.0 && labelled("valid")? >= 10.0).then_some(())
    });
    assert_eq!(labelled("not_found"), Some(0.0));
    let (_, _, body) = http_get(&addr, "/alerts?state=resolved&rule=origin_hijack").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["alerts"][0]["rpki"], "invalid");

    // Fresh data with one more VRP: reloaded, and no longer stale.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let extra =
        ",{\"asn\":\"AS58678\",\"prefix\":\"202.134.148.0/24\",\"maxLength\":24,\"ta\":\"apnic\"}";
    std::fs::write(&file, vrps(now, extra)).unwrap();
    poll_until("the reload", 30, || {
        (metric(&addr, "bgpsentry_rpki_vrps")? == 2.0).then_some(())
    });
    poll_until("fresh data", 30, || {
        (metric(&addr, "bgpsentry_rpki_stale")? == 0.0).then_some(())
    });
    assert!(metric(&addr, "bgpsentry_rpki_loads_total").unwrap() >= 2.0);

    // A broken file is reported and the data loaded before is kept.
    std::fs::write(&file, "{\"roas\": [").unwrap();
    poll_until("the failed load", 30, || {
        let (_, _, body) = http_get(&addr, "/metrics")?;
        body.contains("bgpsentry_rpki_loads_total{result=\"error\"} 1")
            .then_some(())
    });
    assert_eq!(metric(&addr, "bgpsentry_rpki_vrps"), Some(2.0));
    let logged = poll_until("the log line", 10, || {
        svc.proc
            .lines()
            .into_iter()
            .find(|l| l.contains("cannot load RPKI data"))
    });
    assert!(logged.contains("line 1"), "{logged}");
}
