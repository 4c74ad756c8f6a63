//! The detectors of RPKI, ASPA, path rules, monitored ASNs, squatting and community labels on
//! the real MRT files in ../shared/data/mrt, through `bgpsentry replay --json`.
//!
//! The ROA and ASPA sets are hand-built (tests/fixtures/rpki/): no RPKI archive of 2016 or 2007
//! is in the data set, and ASPA did not exist then. Each is described where it is used.

use crate::util::{Line, fixture, replay, shared_data};
use bgpsentry::event::{AsPath, PathElem};
use bgpsentry::rpki::{AspaProcedure, AspaState, load_files};

const UPDATES_2016: &str = "mrt/ris-updates.20160811.1600.gz";
const LINX_2007: &str = "mrt/routeviews-linx-updates.20070211.0141.gz";

/// (event, rule, prefix, origin, time of the transition as HH:MM:SS)
fn brief(lines: &[Line]) -> Vec<(String, String, String, Option<u64>, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l.event.clone(),
                l.rule.clone(),
                l.prefix.clone(),
                l.origin,
                l.at()[11..19].to_string(),
            )
        })
        .collect()
}

fn row(
    event: &str,
    rule: &str,
    prefix: &str,
    origin: Option<u64>,
    at: &str,
) -> (String, String, String, Option<u64>, String) {
    (event.into(), rule.into(), prefix.into(), origin, at.into())
}

fn rpki_fixture(name: &str) -> String {
    fixture(&format!("rpki/{name}")).display().to_string()
}

/// aspa-2016.json: a ROA for AS18196's 202.134.144.0/20 (maxLength 24), and ASPA records in
/// which AS9498 names 1299, 3356 and 6453 as providers but not 3257 -- as if its operator had
/// forgotten one -- while 174 and 3257 declare no providers. AS58678's route that reached
/// AS12779 over 174 and 3257 is then a proven leak.
#[test]
fn rpki_invalid_route_leak_and_the_rov_state_of_hijacks_on_real_data() {
    let r = replay(
        &format!(
            "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\nrpki:\n  files: ['{}']\n",
            rpki_fixture("aspa-2016.json")
        ),
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    let p = "202.134.148.0/24";
    assert_eq!(
        brief(&r.lines),
        vec![
            row("fired", "rpki_invalid", p, Some(58678), "16:00:03"),
            row("fired", "route_leak", p, None, "16:00:03"),
            row("fired", "origin_hijack", p, Some(58678), "16:00:03"),
            row("resolved", "route_leak", p, None, "16:00:33"),
            row("resolved", "rpki_invalid", p, Some(58678), "16:00:56"),
            row("resolved", "origin_hijack", p, Some(58678), "16:00:56"),
        ]
    );
    let leak = &r.lines[1].json["alert"];
    assert_eq!(leak["aspa"], "invalid");
    assert_eq!(leak["leaker"], 3257);
    assert_eq!(leak["severity"], "critical");
    assert_eq!(leak["sample"][0]["as_path"], "12779 174 3257 9498 58678");
    let hijack = &r.lines[2].json["alert"];
    assert_eq!(hijack["rpki"], "invalid");
    assert!(hijack.get("rpki_stale").is_none());
    assert_eq!(r.lines[0].json["alert"]["rpki"], "invalid");
}

/// The same file, read as Routinator `json`, `jsonext` and rpki-client `json`: the same ROA for
/// AS18196, so the same rpki_invalid alert.
#[test]
fn the_three_export_formats_give_the_same_rov_on_real_data() {
    let mut seen = Vec::new();
    for file in [
        "routinator.json",
        "routinator-jsonext.json",
        "rpki-client.json",
    ] {
        let r = replay(
            &format!(
                "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    visibility_min_vantage_points: 0\nrpki:\n  files: ['{}']\n",
                rpki_fixture(file)
            ),
            &[&shared_data(UPDATES_2016)],
            &[],
        );
        assert!(r.success, "{file}: {}", r.stderr);
        let rules: Vec<_> = brief(&r.lines)
            .into_iter()
            .filter(|l| l.1 == "rpki_invalid")
            .collect();
        assert_eq!(rules.len(), 2, "{file}");
        seen.push(rules);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
}

/// The 2007 LINX file has AS 27867's 208.96.128.0/20 announced with an AS_SET origin
/// (`... 20299 {27867}`, later `{100,27742,27773,27867}`), and AS100 announcing the /21 inside
/// it. With a ROA for 27867 (maxLength 20): an AS_SET origin matches no ROA, so the aggregate is
/// RPKI-invalid; the /21 is too long. ASPA cannot order an AS_SET, so no leak is claimed, though
/// the same hops without the set are a proven leak under this ASPA set (27867 names only 3356).
#[test]
fn as_set_paths_on_real_data_are_rov_invalid_and_aspa_unverifiable() {
    let r = replay(
        &format!(
            "prefixes:\n  - prefix: 208.96.128.0/20\n    origins: [27867]\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\nrpki:\n  files: ['{}']\n",
            rpki_fixture("aspa-2016.json")
        ),
        &[&shared_data(LINX_2007)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        brief(&r.lines),
        vec![
            row("fired", "rpki_invalid", "208.96.128.0/20", None, "01:45:56"),
            row(
                "fired",
                "rpki_invalid",
                "208.96.128.0/21",
                Some(100),
                "01:45:56"
            ),
            row(
                "fired",
                "subprefix_hijack",
                "208.96.128.0/21",
                Some(100),
                "01:45:56"
            ),
            row(
                "fired",
                "origin_hijack",
                "208.96.128.0/20",
                Some(100),
                "01:46:26"
            ),
            row(
                "fired",
                "origin_hijack",
                "208.96.128.0/20",
                Some(27742),
                "01:46:26"
            ),
            row(
                "fired",
                "origin_hijack",
                "208.96.128.0/20",
                Some(27773),
                "01:46:26"
            ),
        ]
    );
    assert_eq!(
        r.lines[0].json["alert"]["sample"][0]["as_path"],
        "13237 1299 1239 20299 {27867}"
    );
    let (data, _) = load_files(&[fixture("rpki/aspa-2016.json")]).unwrap();
    let seq = |last: PathElem| {
        AsPath::from(vec![
            PathElem::Asn(13237),
            PathElem::Asn(1299),
            PathElem::Asn(1239),
            PathElem::Asn(20299),
            last,
        ])
    };
    let proc_ = AspaProcedure::Downstream;
    assert_eq!(
        data.verify(&seq(PathElem::Set(vec![27867].into())), proc_)
            .state,
        AspaState::Unverifiable
    );
    assert_eq!(
        data.verify(&seq(PathElem::Asn(27867)), proc_).state,
        AspaState::Invalid
    );
}

/// AS12654 originates the RIS beacons. With its IPv4 beacons watched (84.205.64.0/20), every
/// IPv6 beacon it announces in the window is an unexpected prefix; with neighbours learned over
/// the whole window, no new neighbour.
#[test]
fn unexpected_prefix_of_a_monitored_asn_on_real_data() {
    let r = replay(
        "prefixes:\n  - prefix: 84.205.64.0/20\n    origins: [12654]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: 0\nasns:\n  - asn: 12654\n    description: RIS beacons\n    learning_window_seconds: 300\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.lines
            .iter()
            .all(|l| l.rule == "unexpected_prefix" && l.event == "fired")
    );
    let mut prefixes: Vec<&str> = r.lines.iter().map(|l| l.prefix.as_str()).collect();
    prefixes.sort_unstable();
    let mut expected: Vec<String> = [0, 1, 3, 4, 5, 6, 7, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10]
        .iter()
        .map(|n| format!("2001:7fb:fe{n:02x}::/48"))
        .chain(["2001:7fb:ff02::/48".into(), "2001:7fb:ff06::/48".into()])
        .collect();
    expected.sort_unstable();
    assert_eq!(prefixes, expected);
    let a = &r.lines[0].json["alert"];
    assert_eq!(a["origin"], 12654);
    assert_eq!(a["monitored_asn"], 12654);
    assert_eq!(a["description"], "RIS beacons");
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["vantage_points"], 2);
}

/// AS12654 with a configured upstream list: every other upstream in the window is new, seen in
/// any path (here all beacon routes, watched or not). Prepends are collapsed: AS12654 prepended
/// six times is never its own neighbour, and AS8387 is its upstream on that path.
#[test]
fn new_neighbor_with_configured_upstreams_on_real_data() {
    let known = [6939, 9002, 13193, 12859, 2914, 1299, 3356, 174, 6453];
    let r = replay(
        &format!(
            "asns:\n  - asn: 12654\n    upstreams: {known:?}\n    downstreams: []\n    unexpected_prefix: false\n"
        ),
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert!(!r.lines.is_empty());
    let mut neighbors = Vec::new();
    for l in &r.lines {
        let a = &l.json["alert"];
        assert_eq!(l.rule, "new_neighbor");
        assert_eq!(l.event, "fired", "the hold time outlasts the file");
        assert_eq!(a["monitored_asn"], 12654);
        assert_eq!(a["neighbor_side"], "upstream");
        let n = a["neighbor"].as_u64().unwrap();
        assert!(!known.contains(&n) && n != 12654, "{n}");
        for s in a["sample"].as_array().unwrap() {
            let path = s["as_path"].as_str().unwrap();
            assert!(
                path.contains(&format!("{n} 12654")),
                "{path} has no AS{n} before AS12654"
            );
        }
        neighbors.push(n);
    }
    assert!(neighbors.contains(&8387));
    assert!(neighbors.contains(&12779));
    let mut dedup = neighbors.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), neighbors.len(), "one alert per neighbour");
}

/// A rule with only `min_length` (or only `max_length`) is a length check on its own, not a
/// rule that never fires or always fires. Lengths count prepends once: the beacon path through AS13193
/// prepended eight times is 6 ASes long and does not break `max_length: 6`.
#[test]
fn path_rules_with_only_lengths_on_real_data() {
    let r = replay(
        "prefixes:\n  - prefix: 84.205.64.0/20\n    origins: [12654]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: 0\n    paths:\n      - name: short\n        min_length: 3\n      - name: long\n        max_length: 6\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        brief(&r.lines),
        vec![
            row(
                "fired",
                "path_match",
                "84.205.79.0/24",
                Some(12654),
                "16:00:18"
            ),
            row(
                "resolved",
                "path_match",
                "84.205.79.0/24",
                Some(12654),
                "16:00:25"
            ),
            row(
                "fired",
                "path_match",
                "84.205.73.0/24",
                Some(12654),
                "16:00:44"
            ),
            row(
                "resolved",
                "path_match",
                "84.205.73.0/24",
                Some(12654),
                "16:00:48"
            ),
            row(
                "fired",
                "path_match",
                "84.205.73.0/24",
                Some(12654),
                "16:01:22"
            ),
        ]
    );
    let rules = |i: usize| r.lines[i].json["alert"]["path_rules"].clone();
    assert_eq!(rules(0), serde_json::json!(["long"]));
    assert_eq!(rules(4), serde_json::json!(["short", "long"]));
    assert_eq!(
        r.lines[4].json["alert"]["sample"][0]["as_path"],
        "48526 12654"
    );
}

/// A beacon prefix declared squat space: its announcement is squatting, with no origin allowed.
#[test]
fn squatting_on_real_data() {
    let r = replay(
        "prefixes:\n  - prefix: 84.205.65.0/24\n    squat: true\n    visibility_min_vantage_points: 0\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        brief(&r.lines),
        vec![row(
            "fired",
            "squatting",
            "84.205.65.0/24",
            Some(12654),
            "16:00:20"
        )]
    );
    let a = &r.lines[0].json["alert"];
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["expected_origins"], serde_json::json!([]));
}

/// The hijacking routes of 202.134.148.0/24 carry AS174's communities; labelled ones show on
/// the alert, and every sample entry lists its route's communities.
#[test]
fn community_labels_on_real_data() {
    let r = replay(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    visibility_min_vantage_points: 0\ncommunities:\n  - community: '174:*'\n    label: tagged by AS174\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    let a = &r.lines[0].json["alert"];
    assert_eq!(a["rule"], "origin_hijack");
    assert_eq!(
        a["communities"],
        serde_json::json!(["174:21100 (tagged by AS174)", "174:22009 (tagged by AS174)"])
    );
    // The alert fires once AS8426 (no communities) joins AS12779 at 16:00:20; VPs are listed
    // in VP order.
    assert_eq!(a["sample"][0]["vantage_point"], "mrt//AS8426/37.49.236.61");
    assert!(a["sample"][0].get("communities").is_none());
    assert_eq!(
        a["sample"][1]["communities"],
        serde_json::json!(["174:21100", "174:22009", "12779:174", "12779:65098"])
    );
}

#[test]
fn a_broken_rpki_file_stops_a_replay_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("vrps.json");
    std::fs::write(&bad, "{\"roas\": [{\"asn\": \"AS1\", ").unwrap();
    let r = replay(
        &format!(
            "prefixes:\n  - prefix: 202.134.148.0/24\nrpki:\n  files: ['{}']\n",
            bad.display()
        ),
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(!r.success);
    assert!(r.stderr.contains("cannot load RPKI data"), "{}", r.stderr);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
}
