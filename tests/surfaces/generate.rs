//! `bgpsentry generate`: a config from the real 2002 RIS table dump, checked by `bgpsentry
//! check` and replayed against the same dump.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::util::{bin, replay, shared_data};

const BVIEW: &str = "mrt/ris-bview.20020722.2337.gz";

fn generate(args: &[&str]) -> (String, String, bool) {
    let out = Command::new(bin())
        .arg("generate")
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.success(),
    )
}

#[test]
fn ripe_ncc_prefixes_from_the_2002_dump() {
    let rib = shared_data(BVIEW);
    let (yaml, stderr, ok) = generate(&["--asn", "AS3333", "--rib", rib.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("listed 2 prefixes"), "{stderr}");
    // The RIPE NCC's own /21, reached through AS1103 (SURFnet) from the collector.
    assert!(
        yaml.contains("  - prefix: 193.0.0.0/21\n    description: \"AS3333 (seen by 1 of 36 VPs)\"\n    origins: [3333]\n    upstreams: [1103]   # AS1103 1 VP\n"),
        "{yaml}"
    );
    assert!(yaml.contains("  - prefix: 192.16.202.0/24\n"), "{yaml}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bgpsentry.yml");
    std::fs::write(&cfg, &yaml).unwrap();
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("OK, 2 watched prefixes, 1 feed")
    );
}

/// A large origin: the generated config, replayed against the dump it came from, raises only
/// what the generator warned about: origin hijacks for the MOAS prefixes it named, subprefix
/// hijacks under the prefixes it said have more-specifics by other ASes; no new upstream and no
/// more-specific of the ASN's own.
#[test]
fn generated_config_replayed_against_its_dump_raises_only_what_was_noted() {
    let rib = shared_data(BVIEW);
    let (yaml, stderr, ok) = generate(&[
        "--asn",
        "701",
        "--asn",
        "3333",
        "--rib",
        rib.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let listed = yaml.matches("\n  - prefix: ").count();
    assert!(listed > 1000, "{listed}");
    assert!(
        stderr.contains(&format!("listed {listed} prefixes")),
        "{stderr}"
    );

    // What the generator noted, read back from its report.
    let mut moas: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut foreign: BTreeSet<String> = BTreeSet::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("  - ") else {
            continue;
        };
        let (prefix, what) = rest.split_once(": ").unwrap();
        if let Some(list) = what.strip_prefix("also originated by ") {
            let asns = list.split(" (MOAS)").next().unwrap();
            moas.insert(
                prefix.to_string(),
                asns.split(", ").map(|a| a[2..].parse().unwrap()).collect(),
            );
        } else if what.contains("more-specific(s) originated by other ASes") {
            foreign.insert(prefix.to_string());
        }
    }
    assert!(!moas.is_empty() && !foreign.is_empty(), "{stderr}");

    // One VP per prefix in this dump: fire on one.
    let config = format!("defaults:\n  min_vantage_points: 1\n{yaml}");
    let r = replay(&config, &[&rib], &[]);
    assert!(r.success, "{}", r.stderr);
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    for l in &r.lines {
        *rules.entry(l.rule.clone()).or_default() += 1;
        match l.rule.as_str() {
            "origin_hijack" => {
                let expected = moas
                    .get(&l.prefix)
                    .unwrap_or_else(|| panic!("{} was not noted as MOAS", l.prefix));
                assert!(expected.contains(&l.origin.unwrap()), "{:?}", l.json);
            }
            "subprefix_hijack" => assert!(
                foreign.contains(&l.watched_prefix),
                "{} was not noted as having foreign more-specifics",
                l.watched_prefix
            ),
            other => panic!("unexpected {other}: {:?}", l.json),
        }
    }
    assert!(
        rules.contains_key("origin_hijack") && rules.contains_key("subprefix_hijack"),
        "{rules:?}"
    );
}

#[test]
fn bad_arguments_and_input() {
    let rib = shared_data(BVIEW);
    let rib = rib.to_str().unwrap();
    // An ASN that originates nothing: an empty, valid config and a note.
    let (yaml, stderr, ok) = generate(&["--asn", "64496", "--rib", rib]);
    assert!(ok, "{stderr}");
    assert!(yaml.contains("prefixes: []"), "{yaml}");
    assert!(
        stderr.contains("no prefix in the dump is originated by AS64496"),
        "{stderr}"
    );
    // Invalid ASNs are refused by the argument parser.
    for bad in ["0", "banana", "23456", "4294967296"] {
        let (_, stderr, ok) = generate(&["--asn", bad, "--rib", rib]);
        assert!(!ok, "{bad}");
        assert!(stderr.contains("--asn"), "{bad}: {stderr}");
    }
    // A file that is not MRT, an empty file, a missing file.
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("not-mrt.txt");
    std::fs::write(&text, "this is not a table dump\n".repeat(100)).unwrap();
    let empty = dir.path().join("empty.mrt");
    std::fs::write(&empty, b"").unwrap();
    for f in [&text, &empty] {
        let (_, stderr, ok) = generate(&["--asn", "3333", "--rib", f.to_str().unwrap()]);
        assert!(!ok, "{}", f.display());
        assert!(stderr.contains("holds no routes"), "{stderr}");
    }
    let (_, stderr, ok) = generate(&["--asn", "3333", "--rib", "/nonexistent/rib.gz"]);
    assert!(!ok);
    assert!(stderr.contains("cannot open the table dump"), "{stderr}");
    // A dump cut short mid-record: what was read is used, the cut is reported.
    let full = std::fs::read(shared_data(BVIEW)).unwrap();
    let mut dec = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&full[..]), &mut dec).unwrap();
    let cut = dir.path().join("cut.mrt");
    std::fs::write(&cut, &dec[..dec.len() / 2 + 7]).unwrap();
    let (yaml, stderr, ok) = generate(&["--asn", "701", "--rib", cut.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("records of the dump could not be read"),
        "{stderr}"
    );
    assert!(yaml.contains("origins: [701]"));
}
