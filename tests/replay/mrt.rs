//! Replays of the real MRT files in ../shared/data/mrt through `bgpsentry replay --json`.

use crate::util::{Line, replay, shared_data};

const UPDATES_2016: &str = "mrt/ris-updates.20160811.1600.gz";

/// The 12 prefixes that AS18196 (upstream AS4755) and AS58678 (upstream AS9498) both originate
/// in the 2016 file: AS18196 from 16:00:02, AS58678 from 16:00:03 until every VP that showed it
/// moved away at 16:00:56.
const MOVED: [&str; 12] = [
    "202.134.148.0/24",
    "202.134.152.0/24",
    "202.134.158.0/24",
    "202.134.159.0/24",
    "202.134.167.0/24",
    "202.134.173.0/24",
    "202.134.177.0/24",
    "202.134.179.0/24",
    "43.248.68.0/24",
    "43.248.69.0/24",
    "43.248.70.0/24",
    "43.248.71.0/24",
];

fn t(hms: &str) -> String {
    format!("2016-08-11T{hms}.000000Z")
}

/// (event, rule, prefix, origin, upstream, time of the transition)
type Transition = (String, String, String, Option<u64>, Option<u64>, String);

fn summary(lines: &[Line]) -> Vec<Transition> {
    lines
        .iter()
        .map(|l| {
            (
                l.event.clone(),
                l.rule.clone(),
                l.prefix.clone(),
                l.origin,
                l.upstream,
                l.at().to_string(),
            )
        })
        .collect()
}

#[test]
fn exact_prefix_with_the_right_origin_sees_the_other_origin_as_a_hijack() {
    let r = replay(
        "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n    upstreams: [4755]\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        summary(&r.lines),
        vec![
            (
                "fired".into(),
                "origin_hijack".into(),
                "202.134.148.0/24".into(),
                Some(58678),
                None,
                t("16:00:20")
            ),
            (
                "resolved".into(),
                "origin_hijack".into(),
                "202.134.148.0/24".into(),
                Some(58678),
                None,
                t("16:00:56")
            ),
        ]
    );
    let fired = &r.lines[0].json["alert"];
    assert_eq!(fired["first_seen"], t("16:00:03"));
    assert_eq!(fired["severity"], "critical");
    assert_eq!(fired["expected_origins"], serde_json::json!([18196]));
    assert_eq!(fired["watched_prefix"], "202.134.148.0/24");
    assert_eq!(fired["vantage_points"], 2);
    let sample = fired["sample"].as_array().unwrap();
    assert_eq!(sample.len(), 2);
    for s in sample {
        assert!(
            s["as_path"].as_str().unwrap().ends_with(" 9498 58678"),
            "{s}"
        );
    }
    // Same id on both transitions: one incident.
    assert_eq!(
        r.lines[0].json["alert"]["id"],
        r.lines[1].json["alert"]["id"]
    );
    assert_eq!(r.lines[1].json["alert"]["state"], "resolved");
}

#[test]
fn covering_prefix_sees_a_subprefix_hijack_and_the_owners_more_specific() {
    let r = replay(
        "prefixes:\n  - prefix: 202.134.148.0/22\n    origins: [18196]\n    upstreams: [4755]\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        summary(&r.lines),
        vec![
            (
                "fired".into(),
                "more_specific".into(),
                "202.134.148.0/24".into(),
                Some(18196),
                None,
                t("16:00:06")
            ),
            (
                "fired".into(),
                "subprefix_hijack".into(),
                "202.134.148.0/24".into(),
                Some(58678),
                None,
                t("16:00:20")
            ),
            (
                "resolved".into(),
                "subprefix_hijack".into(),
                "202.134.148.0/24".into(),
                Some(58678),
                None,
                t("16:00:56")
            ),
        ]
    );
    assert!(
        r.lines
            .iter()
            .all(|l| l.watched_prefix == "202.134.148.0/22")
    );
    // `more_specifics: ignore` silences the owner's more-specific but not the hijack.
    let r = replay(
        "prefixes:\n  - prefix: 202.134.148.0/22\n    origins: [18196]\n    more_specifics: ignore\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    let rules: Vec<&str> = r.lines.iter().map(|l| l.rule.as_str()).collect();
    assert_eq!(rules, vec!["subprefix_hijack", "subprefix_hijack"]);
}

#[test]
fn learning_mode_learns_the_first_origin_and_flags_the_second() {
    let mut yaml = String::from("prefixes:\n");
    for p in MOVED {
        // Learn from the first instant only, as the file is shorter than the default window.
        yaml.push_str(&format!(
            "  - prefix: {p}\n    learning_window_seconds: 0\n    min_vantage_points: 1\n"
        ));
    }
    let r = replay(&yaml, &[&shared_data(UPDATES_2016)], &[]);
    assert!(r.success, "{}", r.stderr);
    assert_eq!(r.lines.len(), 24, "{:#?}", summary(&r.lines));
    for p in MOVED {
        let mine: Vec<_> = r.lines.iter().filter(|l| l.prefix == p).collect();
        assert_eq!(mine.len(), 2, "{p}");
        assert_eq!(
            (
                mine[0].event.as_str(),
                mine[0].rule.as_str(),
                mine[0].origin
            ),
            ("fired", "origin_change", Some(58678))
        );
        assert_eq!(mine[0].first_seen, t("16:00:03"));
        // One VP is the threshold here, so the second origin fires as soon as it is seen.
        assert_eq!(mine[0].fired_at, t("16:00:03"));
        assert_eq!(
            mine[0].json["alert"]["expected_origins"],
            serde_json::json!([18196])
        );
        assert_eq!(mine[1].event, "resolved");
        assert_eq!(mine[1].resolved_at.as_deref(), Some(t("16:00:56").as_str()));
    }
}

#[test]
fn upstream_list_flags_the_other_upstream_when_both_origins_are_allowed() {
    let r = replay(
        "prefixes:\n  - prefix: 43.248.68.0/24\n    origins: [18196, 58678]\n    upstreams: [4755]\n",
        &[&shared_data(UPDATES_2016)],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert_eq!(
        summary(&r.lines),
        vec![
            (
                "fired".into(),
                "new_upstream".into(),
                "43.248.68.0/24".into(),
                Some(58678),
                Some(9498),
                t("16:00:20")
            ),
            (
                "resolved".into(),
                "new_upstream".into(),
                "43.248.68.0/24".into(),
                Some(58678),
                Some(9498),
                t("16:00:56")
            ),
        ]
    );
    assert_eq!(
        r.lines[0].json["alert"]["expected_upstreams"],
        serde_json::json!([4755])
    );
}

#[test]
fn beacons_with_their_true_origin_raise_no_hijack() {
    let mut yaml = String::from("prefixes:\n");
    for i in 64..=79 {
        yaml.push_str(&format!(
            "  - prefix: 84.205.{i}.0/24\n    origins: [12654]\n"
        ));
    }
    for i in 0..=15 {
        yaml.push_str(&format!(
            "  - prefix: 2001:7fb:fe{i:02x}::/48\n    origins: [12654]\n"
        ));
    }
    let r = replay(&yaml, &[&shared_data(UPDATES_2016)], &[]);
    assert!(r.success, "{}", r.stderr);
    let hijacks: Vec<_> = r
        .lines
        .iter()
        .filter(|l| l.rule.contains("hijack") || l.rule == "origin_change")
        .collect();
    assert!(hijacks.is_empty(), "{hijacks:#?}");
    // The beacons were seen: the summary counts events for watched prefixes.
    let matched: u64 = r
        .stderr
        .split("; ")
        .find_map(|s| s.strip_suffix(" events for watched prefixes"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(matched > 100, "{}", r.stderr);
    // A wrong origin list turns the same beacons into hijacks.
    let wrong = yaml.replace("[12654]", "[64496]");
    let r = replay(&wrong, &[&shared_data(UPDATES_2016)], &[]);
    assert!(
        r.lines
            .iter()
            .any(|l| l.rule == "origin_hijack" && l.origin == Some(12654))
    );
}

#[test]
fn replays_are_deterministic() {
    let mut yaml = String::from("prefixes:\n  - prefix: 0.0.0.0/0\n    origins: [1]\n");
    yaml.push_str("  - prefix: ::/0\n    origins: [1]\n");
    let a = replay(&yaml, &[&shared_data(UPDATES_2016)], &[]);
    let b = replay(&yaml, &[&shared_data(UPDATES_2016)], &[]);
    assert!(a.lines.len() > 100);
    assert_eq!(a.lines, b.lines);
}

/// Counts of announcements and withdrawals per file, as the data set's README gives them.
#[test]
fn counts_per_file_match_the_data_set() {
    let cases = [
        ("mrt/ris-updates.20160811.1600.gz", 39_256, 1_956),
        ("mrt/ris-updates.20100722.2015.gz", 5_067, 547),
        ("mrt/ris-updates.20020722.2238.gz", 825, 2_419),
        (
            "mrt/routeviews-linx-updates.20070211.0141.gz",
            51_329,
            2_328,
        ),
        ("mrt/ris-updates.long_withdrawal.gz", 0, 4_096),
        ("mrt/rrc00-updates.20190101.0000.gz", 159_948, 2_626),
        ("mrt/rrc15-updates.20100227.1600.gz", 52_468, 1_318),
        ("mrt/updates.2024-09-14.bz2", 159, 109),
    ];
    for (file, ann, wd) in cases {
        let r = replay("prefixes: []\n", &[&shared_data(file)], &[]);
        assert!(r.success, "{file}: {}", r.stderr);
        let expect = format!("{ann} announcements, {wd} withdrawals");
        assert!(r.stderr.contains(&expect), "{file}: {}", r.stderr);
        assert!(
            r.stderr.contains(" 0 bad records skipped"),
            "{file}: {}",
            r.stderr
        );
    }
}

#[test]
fn rib_dump_is_the_starting_state_and_the_learned_baseline() {
    // Learning mode on the prefixes the updates announce (origins are learned from a prefix
    // itself): without a RIB only the first instant is learned, so the other origins in the
    // updates look new; the 2002 RIB dump teaches the real origins.
    let mut reader = bgpsentry::feeds::mrt::MrtReader::open(
        &shared_data("mrt/ris-updates.20020722.2238.gz"),
        "mrt",
        None,
    )
    .unwrap();
    let mut seen: Vec<ipnet::IpNet> = Vec::new();
    let mut batch = Vec::new();
    while let Some(r) = reader.next_record(&mut batch) {
        r.unwrap();
        for ev in batch.drain(..) {
            if let bgpsentry::event::FeedEvent::Route(r) = ev
                && r.prefix.addr().is_ipv4()
                && !seen.contains(&r.prefix)
            {
                seen.push(r.prefix);
            }
        }
    }
    let mut yaml = String::from(
        "defaults:\n  visibility_min_vantage_points: 0\n  more_specifics: ignore\n  min_vantage_points: 1\n  learning_window_seconds: 0\nprefixes:\n",
    );
    for p in &seen {
        yaml += &format!("  - prefix: {p}\n    upstreams: []\n");
    }
    let yaml = yaml.as_str();
    let updates = shared_data("mrt/ris-updates.20020722.2238.gz");
    let rib = shared_data("mrt/ris-bview.20020722.2337.gz");
    let without = replay(yaml, &[&updates], &[]);
    let with = replay(yaml, &[&updates], &["--rib", rib.to_str().unwrap()]);
    assert!(with.success, "{}", with.stderr);
    assert!(with.stderr.contains("read 2 files"), "{}", with.stderr);
    assert!(
        with.stderr.contains("116346 announcements"),
        "{}",
        with.stderr
    );
    // Origins learned for the prefixes themselves: `origin_change`. (The full table also holds
    // customers' more-specifics with their own origins, which are sub-prefix hijacks of the
    // watched aggregates by these rules.)
    let fired = |r: &crate::util::Replay| {
        r.lines
            .iter()
            .filter(|l| l.event == "fired" && l.rule == "origin_change")
            .count()
    };
    // The quorum already keeps the updates alone from flagging their own origins; the RIB
    // does not add any.
    assert!(
        fired(&with) <= fired(&without),
        "with RIB: {}, without: {}",
        fired(&with),
        fired(&without)
    );
}
