use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("test.yml"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn full_entry_and_defaults() {
    let cfg = parse(
        "defaults:\n  min_vantage_points: 3\n  groups: [noc]\nprefixes:\n  - prefix: 202.134.148.0/22\n    description: \"Customer block\"\n    origins: [18196, \"AS4755\"]\n    upstreams: [4755]\n    more_specifics: ignore\n    visibility_min_vantage_points: 20\n  - prefix: 2001:db8::/32\n",
    )
    .unwrap();
    let a = &cfg.prefixes[0];
    assert_eq!(a.prefix.to_string(), "202.134.148.0/22");
    assert_eq!(a.description, "Customer block");
    assert_eq!(a.origins, vec![18196, 4755]);
    assert_eq!(a.upstreams, Some(vec![4755]));
    assert_eq!(a.more_specifics, MoreSpecifics::Ignore);
    assert_eq!(a.min_vantage_points, 3);
    assert_eq!(a.visibility_min_vantage_points, 20);
    assert_eq!(a.groups, vec!["noc".to_string()]);
    let b = &cfg.prefixes[1];
    assert!(b.origins.is_empty());
    assert_eq!(b.upstreams, None);
    assert_eq!(b.more_specifics, MoreSpecifics::Alert);
    assert_eq!(b.visibility_min_vantage_points, 10);
    assert_eq!(cfg.http.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn empty_file_is_an_empty_config() {
    let cfg = parse("").unwrap();
    assert!(cfg.prefixes.is_empty());
    assert!(cfg.feeds.is_empty());
}

#[test]
fn every_semantic_error_is_reported_with_its_position() {
    let errs = errors(
        "prefixes:\n  - prefix: 202.134.148.1/22\n    origins: [18196, 4294967296, 0]\n  - prefix: 10.0.0.0/8\n  - prefix: 10.0.0.0/8\n  - prefix: banana\n    min_vantage_points: 0\n",
    );
    assert_eq!(
        errs,
        vec![
            "test.yml:2:13: prefix `202.134.148.1/22` has host bits set; did you mean `202.134.148.0/22`?",
            "test.yml:3:22: ASN 4294967296 is out of range; ASNs are 1 to 4294967295 (0 is reserved)",
            "test.yml:3:34: ASN 0 is out of range; ASNs are 1 to 4294967295 (0 is reserved)",
            "test.yml:5:13: prefix 10.0.0.0/8 is already watched (line 4); merge the two entries",
            "test.yml:6:13: `banana` is not a prefix; write an IPv4 or IPv6 prefix with its length, like 192.0.2.0/24 or 2001:db8::/32",
            "test.yml:7:25: min_vantage_points must be at least 1",
        ]
    );
}

#[test]
fn duplicate_asn_and_as_trans_are_errors() {
    let errs = errors("prefixes:\n  - prefix: 10.0.0.0/8\n    origins: [1, AS1, 23456]\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("test.yml:3:18: AS1 is listed twice"),
        "{}",
        errs[0]
    );
    assert!(errs[1].contains("AS_TRANS"));
}

#[test]
fn unknown_key_names_the_key_and_suggests() {
    let errs = errors("prefixes:\n  - prefix: 10.0.0.0/8\n    orgins: [1]\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("test.yml:3:5: unknown field `orgins`"),
        "{}",
        errs[0]
    );
    assert!(errs[0].ends_with("did you mean `origins`?"), "{}", errs[0]);
    let errs = errors("prefix:\n  - 1\n");
    assert!(
        errs[0].starts_with("test.yml:1:1: unknown field `prefix`"),
        "{}",
        errs[0]
    );
}

#[test]
fn wrong_types_are_located() {
    let errs = errors("prefixes:\n  - prefix: 10.0.0.0/8\n    more_specifics: maybe\n");
    assert!(
        errs[0].starts_with("test.yml:3:21: unknown variant `maybe`"),
        "{}",
        errs[0]
    );
    let errs = errors("prefixes:\n  - prefix: 10.0.0.0/8\n    min_vantage_points: -3\n");
    assert!(errs[0].starts_with("test.yml:3:25:"), "{}", errs[0]);
    let errs = errors("prefixes: 7\n");
    assert!(errs[0].starts_with("test.yml:1:"), "{}", errs[0]);
}

#[test]
fn syntax_errors_and_hostile_yaml_do_not_panic() {
    for text in [
        "prefixes:\n  - prefix: [10.0.0.0/8\n",
        "\"unterminated",
        "prefixes:\n\t- prefix: 10.0.0.0/8\n",
        "a: &a [*a]\n",
        "---\nprefixes: []\n---\nprefixes: []\n",
        "prefixes:\n  - prefix: 10.0.0.0/8\n    origins: !!binary aGVsbG8=\n",
        "\u{0}\u{1}\u{2}",
    ] {
        assert!(parse(text).is_err(), "accepted: {text:?}");
    }
    // A billion-laughs document is stopped by the parser's budget, not by memory.
    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        laughs.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert!(parse(&laughs).is_err());
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yml");
    let mut text = String::from("prefixes:\n");
    while text.len() <= MAX_CONFIG_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    let errs = Config::load(&path).unwrap_err();
    assert!(
        errs.to_string().contains("over the limit of 8388608 bytes"),
        "{errs}"
    );
}

#[test]
fn oversized_file_is_refused_by_its_size_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yml");
    // Sparse: a terabyte on paper, nothing on disk; reading it would not fit in memory.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    let errs = Config::load(&path).unwrap_err().to_string();
    assert_eq!(
        errs,
        format!(
            "{}: the config file is 1099511627776 bytes, over the limit of 8388608 bytes (8 MiB); \
             it was not read. Check that the path names the config file",
            path.display()
        )
    );
}

/// A file whose size says nothing (a device, a file still growing) is read only up to the limit.
#[cfg(unix)]
#[test]
fn endless_file_is_read_only_up_to_the_limit() {
    let errs = Config::load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(
        errs.starts_with("/dev/zero: the config file grew past the limit of 8388608 bytes"),
        "{errs}"
    );
}

#[test]
fn mrt_feed_needs_files() {
    let errs = errors("feeds:\n  - kind: mrt\n");
    assert_eq!(
        errs,
        vec!["test.yml:2:11: an `mrt` feed needs `files:`, a list of MRT update files to replay"]
    );
}

#[test]
fn learning_keys_have_defaults_and_are_checked() {
    let cfg = parse(
        "defaults:\n  learning_min_share_percent: 30\nprefixes:\n  - prefix: 10.0.0.0/8\n  - prefix: 10.1.0.0/16\n    learning_window_seconds: 60\n    learning_min_share_percent: 80\n",
    )
    .unwrap();
    let (a, b) = (&cfg.prefixes[0], &cfg.prefixes[1]);
    assert_eq!(
        (a.learning_window_seconds, a.learning_min_share_percent),
        (super::watch::DEFAULT_LEARNING_WINDOW_SECONDS, 30)
    );
    assert_eq!(
        (b.learning_window_seconds, b.learning_min_share_percent),
        (60, 80)
    );
    assert_eq!(
        errors("prefixes:\n  - prefix: 10.0.0.0/8\n    learning_min_share_percent: 150\n"),
        [
            "test.yml:3:33: learning_min_share_percent must be between 0 and 100 (a percentage of the VPs); got 150"
        ]
    );
}

#[test]
fn hold_downs_merge_builtin_defaults_and_the_prefix_per_key() {
    use crate::config::Rule;
    let cfg = parse(
        "defaults:\n  hold_downs:\n    visibility_loss: {for_seconds: 120}\n    new_upstream: {for_seconds: 30, keep_firing_for_seconds: 10}\nprefixes:\n  - prefix: 192.0.2.0/24\n    hold_downs:\n      new_upstream: {keep_firing_for_seconds: 0}\n  - prefix: 198.51.100.0/24\n",
    )
    .unwrap();
    let a = &cfg.prefixes[0].hold_downs;
    let hold = |f, k| HoldDown {
        for_seconds: f,
        keep_firing_for_seconds: k,
    };
    // for_seconds from defaults:, keep_firing_for_seconds still the built-in one.
    assert_eq!(a.get(Rule::VisibilityLoss), hold(120, 60));
    assert_eq!(a.get(Rule::NewUpstream), hold(30, 0));
    assert_eq!(a.get(Rule::OriginHijack), hold(0, 0));
    let b = &cfg.prefixes[1].hold_downs;
    assert_eq!(b.get(Rule::NewUpstream), hold(30, 10));
    assert_eq!(parse("prefixes: []\n").unwrap().prefixes.len(), 0);
    assert_eq!(HoldDowns::default().get(Rule::VisibilityLoss), hold(60, 60));
}

#[test]
fn a_misspelt_hold_down_rule_is_an_error_at_its_line() {
    let errs = errors(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    hold_downs:\n      visibility_los: {for_seconds: 10}\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("test.yml:4:"), "{errs:?}");
    assert!(errs[0].contains("visibility_loss"), "{errs:?}");
}
