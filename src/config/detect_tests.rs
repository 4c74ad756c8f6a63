//! Config of the detectors: `rpki:`, `asns:`, `communities:` and the per-prefix `squat`,
//! `suppress_rpki_valid_hijacks` and `paths` keys.

use std::path::Path;

use super::*;
use crate::config::AspaProcedure;
use crate::config::Severity;
use crate::event::Community;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("test.yml"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rpki")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn full_detector_config() {
    let cfg = parse(&format!(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    squat: true\n  - prefix: 198.51.100.0/24\n    origins: [64496]\n    suppress_rpki_valid_hijacks: true\n    paths:\n      - name: via-transit\n        match: ' 64511 64496$'\n        max_length: 4\n        severity: critical\n      - min_length: 2\nasns:\n  - asn: AS64496\n    description: us\n    upstreams: [64511]\n    neighbor_hold_seconds: 60\n  - asn: 64497\n    unexpected_prefix: false\n    downstreams: []\nrpki:\n  files: ['{}']\n  stale_after_seconds: 600\n  aspa_procedure: upstream\ncommunities:\n  - community: '64496:*'\n    label: ours\n  - community: '65535:666'\n    label: RTBH\n",
        fixture("routinator.json")
    ))
    .unwrap();
    assert!(cfg.prefixes[0].squat);
    assert!(!cfg.prefixes[0].suppress_rpki_valid_hijacks);
    let p = &cfg.prefixes[1];
    assert!(p.suppress_rpki_valid_hijacks);
    assert_eq!(p.paths.len(), 2);
    assert_eq!(p.paths[0].name, "via-transit");
    assert_eq!(p.paths[0].match_.as_deref(), Some(" 64511 64496$"));
    assert_eq!(p.paths[0].max_length, Some(4));
    assert_eq!(p.paths[0].severity, Severity::Critical);
    assert_eq!(p.paths[1].name, "paths[1]");
    assert_eq!(p.paths[1].min_length, Some(2));
    assert_eq!(p.paths[1].severity, Severity::Warning);
    assert_eq!(cfg.asns.len(), 2);
    let a = &cfg.asns[0];
    assert_eq!(a.asn, 64496);
    assert_eq!(a.upstreams, Some(vec![64511]));
    assert_eq!(a.downstreams, None);
    assert!(a.unexpected_prefix);
    assert_eq!(a.neighbor_hold_seconds, 60);
    assert_eq!(a.min_vantage_points, 2);
    assert_eq!(cfg.asns[1].downstreams, Some(vec![]));
    assert!(!cfg.asns[1].unexpected_prefix);
    let r = cfg.rpki.unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.stale_after_seconds, 600);
    assert_eq!(r.reload_interval_seconds, 3600);
    assert_eq!(r.aspa_procedure, AspaProcedure::Upstream);
    // Configured labels first; the well-known ones follow unless relabelled.
    let label = |c: Community| {
        cfg.communities
            .iter()
            .find(|l| l.pattern.matches(&c))
            .map(|l| l.label.as_str())
    };
    assert_eq!(label(Community::Standard(64496, 1)), Some("ours"));
    assert_eq!(label(Community::Standard(65535, 666)), Some("RTBH"));
    assert_eq!(label(Community::Standard(65535, 65281)), Some("no-export"));
    assert_eq!(label(Community::Large(64496, 1, 1)), None);
    assert_eq!(label(Community::Standard(1, 1)), None);
}

#[test]
fn detector_defaults() {
    let cfg = parse("prefixes:\n  - prefix: 192.0.2.0/24\n").unwrap();
    assert!(cfg.rpki.is_none());
    assert!(cfg.asns.is_empty());
    assert!(cfg.prefixes[0].paths.is_empty());
    assert!(!cfg.prefixes[0].squat);
    assert_eq!(cfg.communities.len(), WELL_KNOWN_COMMUNITIES.len());
}

#[test]
fn detector_errors_are_located() {
    let errs = errors(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    squat: true\n    origins: [1]\n  - prefix: 198.51.100.0/24\n    paths:\n      - match: '(unclosed'\n      - name: nothing\n      - min_length: 5\n        max_length: 2\nasns:\n  - asn: 0\n  - asn: 64496\n    upstreams: [1, 1]\n    min_vantage_points: 0\n  - asn: AS64496\nrpki:\n  files: [no-such-file.json]\n  reload_interval_seconds: 0\ncommunities:\n  - community: '65536:1'\n    label: too big\n  - community: 'a:b'\n    label: words\n",
    );
    let want = [
        "test.yml:2:13: a prefix with `squat: true` has no allowed origins",
        "test.yml:7:16: `match` is not a valid regular expression",
        "test.yml:8:9: path rule `nothing` has no condition",
        "test.yml:9:9: path rule `paths[2]`: min_length 5 is greater than max_length 2",
        "test.yml:12:10: ASN 0 is out of range",
        "test.yml:14:20: AS1 is listed twice",
        "test.yml:15:25: min_vantage_points must be at least 1",
        "test.yml:16:10: AS64496 is already monitored (line 13)",
        "test.yml:18:11: RPKI file `no-such-file.json` does not exist",
        "test.yml:19:28: rpki.reload_interval_seconds must be at least 1",
        "test.yml:21:16: `65536:1` is not a community pattern",
        "test.yml:23:16: `a:b` is not a community pattern",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing `{w}` in:\n{}",
            errs.join("\n")
        );
    }
    assert_eq!(errs.len(), want.len(), "{}", errs.join("\n"));
}

#[test]
fn an_empty_rpki_file_list_and_unknown_keys_are_errors() {
    let errs = errors("rpki:\n  files: []\n");
    assert!(
        errs[0].starts_with("test.yml:2:10: rpki.files is empty"),
        "{errs:?}"
    );
    let errs = errors(&format!(
        "rpki:\n  files: ['{}']\n  stale_after: 5\n",
        fixture("routinator.json")
    ));
    assert!(errs[0].contains("stale_after_seconds"), "{errs:?}");
    let errs = errors("asns:\n  - asn: 1\n    upstream: [2]\n");
    assert!(errs[0].contains("did you mean `upstreams`"), "{errs:?}");
    let errs = errors("prefixes:\n  - prefix: 192.0.2.0/24\n    paths:\n      - regex: x\n");
    assert!(errs[0].starts_with("test.yml:4:9"), "{errs:?}");
}

#[test]
fn hostile_path_regexes_are_refused_not_compiled_forever() {
    let big = "prefixes:\n  - prefix: 192.0.2.0/24\n    paths:\n      - match: '(a{1000}){1000}'\n";
    let errs = errors(big);
    assert!(
        errs[0].contains("not a valid regular expression"),
        "{errs:?}"
    );
}
