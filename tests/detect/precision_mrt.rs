//! Alert precision on real traffic: what counts towards a threshold, what visibility is, how
//! nested watched prefixes combine, and what identifies an incident; replays of the real MRT
//! files in ../shared/data/mrt through `bgpsentry replay --json`.

use std::collections::BTreeMap;

use crate::util::{replay, shared_data};
use sha2::{Digest, Sha256};

const UPDATES_2016: &str = "mrt/ris-updates.20160811.1600.gz";

/// At 16:00:06 AS34019's route to 202.134.148.0/24 goes to AS58678 and back to AS18196 within
/// the same second: at the end of that second only AS12779 shows the hijack. The second VP is
/// AS8426 at 16:00:20, so that is when the alert fires, and AS34019 is not among its VPs.
#[test]
fn a_route_replaced_within_its_second_does_not_count_towards_a_threshold() {
    let r = replay(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    min_vantage_points: 2\n    visibility_min_vantage_points: 0\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    let fired: Vec<_> = r.lines.iter().filter(|l| l.event == "fired").collect();
    assert_eq!(fired.len(), 1, "{:#?}", r.lines);
    let a = &fired[0].json["alert"];
    assert_eq!(a["rule"], "origin_hijack");
    assert_eq!(a["origin"], 58678);
    assert_eq!(a["fired_at"], "2016-08-11T16:00:20.000000Z");
    assert_eq!(a["first_seen"], "2016-08-11T16:00:03.000000Z");
    assert_eq!(a["vantage_points"], 2);
    for s in a["sample"].as_array().unwrap() {
        assert!(
            !s["vantage_point"].as_str().unwrap().contains("/AS34019/"),
            "{s}"
        );
    }
    let resolved: Vec<_> = r.lines.iter().filter(|l| l.event == "resolved").collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0].resolved_at.as_deref(),
        Some("2016-08-11T16:00:56.000000Z")
    );
}

/// AS36867 announces four /23s of AS36958's 196.1.120.0/21 on 18 VPs, then withdraws them
/// from all but one. Those routes are subprefix hijacks, not the owner's visibility: their
/// withdrawal is no visibility loss (before, a critical `visibility_loss` fired on each /23 and
/// never resolved).
#[test]
fn visibility_counts_only_routes_with_an_allowed_origin() {
    let r = replay(
        "prefixes:\n  - prefix: 196.1.120.0/21\n    origins: [36958]\n    visibility_min_vantage_points: 10\n    hold_downs:\n      visibility_loss: {for_seconds: 0, keep_firing_for_seconds: 0}\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    let hijacked: std::collections::BTreeSet<&str> = r
        .lines
        .iter()
        .filter(|l| l.event == "fired" && l.rule == "subprefix_hijack")
        .map(|l| l.prefix.as_str())
        .collect();
    for p in [
        "196.1.120.0/23",
        "196.1.122.0/23",
        "196.1.124.0/23",
        "196.1.126.0/23",
    ] {
        assert!(hijacked.contains(p), "{p}: {hijacked:?}");
    }
    let lost: Vec<_> = r
        .lines
        .iter()
        .filter(|l| l.rule == "visibility_loss" && l.prefix != "196.1.120.0/21")
        .collect();
    assert!(lost.is_empty(), "{lost:#?}");
}

/// The id of an alert as documented: the first 16 hex digits of the SHA-256 of
/// `bgpsentry-alert-id/2` and the fields, each after a newline.
fn documented_id(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"bgpsentry-alert-id/2");
    for f in fields {
        h.update(b"\n");
        h.update(f.as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An RFC 3339 time as microseconds since the epoch, in decimal.
fn micros(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_micros()
        .to_string()
}

/// The beacon 84.205.73.0/24 meets a path rule twice in the 2016 file: two incidents of one
/// key. Each has its own id, fired and resolved under it, and the id is the documented
/// SHA-256 of the incident, so it is the same on any machine and Rust release (the ids were
/// `std`'s `DefaultHasher` output before, which promises neither, and fire/resolve cycles
/// within one second shared one).
#[test]
fn alert_ids_are_unique_per_incident_and_specified() {
    let r = replay(
        "prefixes:\n  - prefix: 84.205.64.0/20\n    origins: [12654]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: 0\n    paths:\n      - name: short\n        min_length: 3\n      - name: long\n        max_length: 6\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    let mut by_id: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for l in &r.lines {
        by_id
            .entry(l.json["alert"]["id"].as_str().unwrap().to_string())
            .or_default()
            .push(l.event.as_str());
    }
    let fired = r.lines.iter().filter(|l| l.event == "fired").count();
    let same_key = r
        .lines
        .iter()
        .filter(|l| l.event == "fired" && l.prefix == "84.205.73.0/24")
        .count();
    assert_eq!(same_key, 2, "{:#?}", r.lines);
    assert_eq!(by_id.len(), fired, "{by_id:#?}");
    for (id, events) in &by_id {
        assert!(
            events == &["fired"] || events == &["fired", "resolved"],
            "{id}: {events:?}"
        );
    }
    // The first incident of its key, and the next incidents, from their fields.
    let mut incidents: BTreeMap<String, u32> = BTreeMap::new();
    for l in r.lines.iter().filter(|l| l.event == "fired") {
        let a = &l.json["alert"];
        let key = format!("{}|{}|{}", l.rule, l.watched_prefix, l.prefix);
        let n = incidents.entry(key).or_insert(0);
        let asn = a["origin"].as_u64().or(a["upstream"].as_u64()).unwrap_or(0);
        let expected = documented_id(&[
            &l.rule,
            &l.watched_prefix,
            &l.prefix,
            &asn.to_string(),
            &micros(&l.first_seen),
            &micros(&l.fired_at),
            &n.to_string(),
        ]);
        assert_eq!(a["id"], expected.as_str(), "{}", a);
        *n += 1;
    }
}
