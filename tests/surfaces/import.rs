//! `bgpsentry import-bgpalerter`: realistic BGPalerter prefixes files in, configs that
//! `bgpsentry check` accepts out, and a report of what did not carry over.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::bin;

/// A prefixes.yml as BGPalerter's generator and its users write them: a single and a list
/// `asn`, strings for ASNs, groups as a string and a list, a path rule as a mapping and as a
/// list, an ignored delegated more-specific, monitors excluded and included, monitored ASNs.
const PREFIXES_YML: &str = r#"165.254.255.0/24:
  description: Rome peering
  asn: 2914
  ignoreMorespecifics: false
  ignore: false
  group: noc
  excludeMonitors:
    - withdrawal-detection
  path:
    match: ".*2194,1234$"
    notMatch: ".*5054.*"
    matchDescription: detected scrubbing center
    maxLength: 128
    minLength: 2
192.147.168.0/24:
  description: "Customer \"A\" <b>block</b>"
  asn:
    - 2914
    - "AS15562"
  ignoreMorespecifics: true
192.147.168.0/25:
  description: delegated to a customer
  asn: 64511
  ignoreMorespecifics: false
  ignore: true
2a00:5884::/32:
  description: IPv6 aggregate
  asn: 204092
  ignoreMorespecifics: false
  group:
    - noc
    - ops
  includeMonitors:
    - basic-hijack-detection
    - path-matching
  path:
    - match: "^174,(\\d+,){1,3}204092$"
      matchDescription: via a transit we do not buy
    - minLength: 3
    - match: "(?!.*666).*"
      matchDescription: JS-only look-ahead
10.1.0.0/16:
  description: lab
  asn: 65551
  ignoreMorespecifics: false
  excludeMonitors:
    - rpki-monitor
  alertOnlyOnce: true
options:
  monitorASns:
    2914:
      group: noc
      upstreams:
        - 174
        - 3356
      downstreams: []
    15562:
      group: default
"#;

fn import(input: &str, extra: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefixes.yml");
    std::fs::write(&path, input).unwrap();
    let out = Command::new(bin())
        .arg("import-bgpalerter")
        .arg(&path)
        .args(extra)
        .current_dir(dir.path())
        .output()
        .unwrap();
    (dir, out)
}

fn check(path: &Path) -> String {
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "bgpsentry check rejected it:\n{text}");
    text
}

/// Whether this build's `bgpsentry check` accepts a config: the converter writes the keys of the
/// path-rule and monitored-ASN release live where it does, commented out where it does not.
fn accepts(yaml: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.yml");
    std::fs::write(&path, yaml).unwrap();
    Command::new(bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap()
        .status
        .success()
}

/// `("", "")` when `paths:` and `asns:` are accepted, `"# "` for each that is not.
fn pending_prefixes() -> (&'static str, &'static str) {
    let paths = accepts(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\n    paths:\n      - name: x\n        match: \"^64496 \"\n        not_match: \"64511\"\n        min_length: 2\n        max_length: 8\n",
    );
    let asns = accepts(
        "asns:\n  - asn: 64496\n    groups: [x]\n    upstreams: [64497]\n    downstreams: []\n",
    );
    (if paths { "" } else { "# " }, if asns { "" } else { "# " })
}

/// The lines of one `- prefix:` entry of the output.
fn entry<'a>(yaml: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut lines = yaml
        .lines()
        .skip_while(|l| *l != format!("  - prefix: {prefix}"));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("{prefix} missing in:\n{yaml}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.trim().is_empty() && !l.starts_with("  - ")))
        .collect()
}

#[test]
fn realistic_prefixes_file_converts_and_checks() {
    let (pp, ap) = pending_prefixes();
    let (dir, out) = import(PREFIXES_YML, &["-o", "bgpsentry.yml"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "with -o nothing goes to stdout");
    let written = dir.path().join("bgpsentry.yml");
    let yaml = std::fs::read_to_string(&written).unwrap();
    assert!(
        check(&written).contains("OK, 4 watched prefixes, 1 feed"),
        "{yaml}"
    );
    assert!(
        stderr.contains("imported 4 prefixes and 2 monitored ASNs"),
        "{stderr}"
    );

    // Plain settings map one to one.
    let rome = entry(&yaml, "165.254.255.0/24");
    assert!(
        rome.contains(&"    description: \"Rome peering\""),
        "{rome:?}"
    );
    assert!(rome.contains(&"    origins: [2914]"), "{rome:?}");
    assert!(rome.contains(&"    groups: [\"noc\"]"), "{rome:?}");
    // Upstreams of the monitored origin pin the prefix's upstreams.
    assert!(
        rome.iter()
            .any(|l| l.starts_with("    upstreams: [174, 3356]")),
        "{rome:?}"
    );
    // The visibility monitor was excluded.
    assert!(
        rome.iter()
            .any(|l| l.starts_with("    visibility_min_vantage_points: 0")),
        "{rome:?}"
    );
    // The path rule (commented out where this build has no path rules), its regex rewritten
    // for space-separated paths.
    let rule: Vec<String> = rome
        .iter()
        .skip_while(|l| !l.contains("paths:"))
        .map(|l| l.to_string())
        .collect();
    assert_eq!(
        rule,
        [
            format!("    {pp}paths:"),
            format!("    {pp}  - name: \"detected scrubbing center\""),
            format!("    {pp}    match: \".*2194 1234$\""),
            format!("    {pp}    not_match: \".*5054.*\""),
            format!("    {pp}    min_length: 2"),
            format!("    {pp}    max_length: 128"),
        ]
    );

    // A list of ASNs with a string; hostile-looking text stays a quoted string.
    let cust = entry(&yaml, "192.147.168.0/24");
    assert!(cust.contains(&"    origins: [2914, 15562]"), "{cust:?}");
    assert!(
        cust.contains(&"    description: \"Customer \\\"A\\\" <b>block</b>\""),
        "{cust:?}"
    );
    assert!(cust.contains(&"    more_specifics: ignore"), "{cust:?}");
    // Both origins are monitored but only 2914 has upstreams: nothing pinned.
    assert!(!cust.iter().any(|l| l.contains("upstreams")), "{cust:?}");

    // `ignore: true` is left out and reported.
    assert!(!yaml.contains("  - prefix: 192.147.168.0/25"), "{yaml}");
    assert!(
        stderr.contains(
            "192.147.168.0/25: `ignore: true` (excluded from monitoring) has no equivalent"
        ),
        "{stderr}"
    );

    // includeMonitors without visibility and newprefix: both off; groups as a list.
    let v6 = entry(&yaml, "2a00:5884::/32");
    assert!(v6.contains(&"    more_specifics: ignore"), "{v6:?}");
    assert!(
        v6.iter()
            .any(|l| l.starts_with("    visibility_min_vantage_points: 0")),
        "{v6:?}"
    );
    assert!(v6.contains(&"    groups: [\"noc\", \"ops\"]"), "{v6:?}");
    let has = |line: String| v6.contains(&line.as_str());
    assert!(
        has(format!(
            "    {pp}    match: \"^174 (\\\\d+ ){{1,3}}204092$\""
        )),
        "{v6:?}"
    );
    assert!(has(format!("    {pp}    min_length: 3")), "{v6:?}");
    // A rule bgpsentry cannot run stays commented out in any case.
    assert!(
        has("    #   - name: \"JS-only look-ahead\"".into()),
        "{v6:?}"
    );
    assert!(
        stderr.contains("uses look-around, which bgpsentry's regular expressions do not support"),
        "{stderr}"
    );

    // Unknown keys and monitors without an equivalent are reported, not dropped silently.
    assert!(
        stderr.contains("10.1.0.0/16: `alertOnlyOnce` is not a BGPalerter key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("10.1.0.0/16: excludeMonitors `rpki-monitor` has no bgpsentry equivalent"),
        "{stderr}"
    );

    // Monitored ASNs: the asns: section, commented out, in ASN order; reported as pending.
    let asns: Vec<&str> = yaml
        .lines()
        .skip_while(|l| *l != format!("{ap}asns:"))
        .collect();
    assert_eq!(
        asns,
        [
            format!("{ap}asns:"),
            format!("{ap}  - asn: 2914"),
            format!("{ap}    groups: [\"noc\"]"),
            format!("{ap}    upstreams: [174, 3356]"),
            format!("{ap}    downstreams: []"),
            format!("{ap}  - asn: 15562"),
            format!("{ap}    groups: [\"default\"]"),
        ]
    );
    assert_eq!(
        stderr.contains("2 monitored ASN(s) written as `asns:`, commented out"),
        !ap.is_empty(),
        "{stderr}"
    );
    assert_eq!(
        stderr.contains("path rule(s) written as `paths:`, commented out"),
        !pp.is_empty(),
        "{stderr}"
    );

    // Uncommenting the pending blocks gives exactly the keys of the path-rule and
    // monitored-ASN release: check that they are well-formed YAML with those keys.
    let uncommented: String = yaml
        .lines()
        .map(|l| {
            l.strip_prefix("# asns:")
                .map(|_| "asns:".to_string())
                .or_else(|| l.strip_prefix("#   ").map(|r| format!("  {r}")))
                .or_else(|| l.strip_prefix("    # ").map(|r| format!("    {r}")))
                .unwrap_or_else(|| l.to_string())
        })
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let v: serde_json::Value = serde_saphyr::from_str(&uncommented).unwrap();
    assert_eq!(v["asns"][0]["asn"], 2914);
    assert_eq!(v["prefixes"][0]["paths"][0]["not_match"], ".*5054.*");
    // All three rules, the JavaScript-only one included, once uncommented.
    assert_eq!(v["prefixes"][2]["paths"].as_array().unwrap().len(), 3);
}

#[test]
fn stdout_output_and_overwrite_protection() {
    let (dir, out) = import(
        "192.0.2.0/24:\n  description: x\n  asn: 64496\n  ignoreMorespecifics: false\n",
        &[],
    );
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("  - prefix: 192.0.2.0/24\n"), "{yaml}");
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("everything has an equivalent")
    );
    let target = dir.path().join("taken.yml");
    std::fs::write(&target, "keep me").unwrap();
    let again = Command::new(bin())
        .arg("import-bgpalerter")
        .arg(dir.path().join("prefixes.yml"))
        .arg("-o")
        .arg(&target)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8(again.stderr)
            .unwrap()
            .contains("pass --force")
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}

#[test]
fn malformed_truncated_oversized_and_hostile_input() {
    // Not YAML, truncated mid-entry, the wrong shape: an error that says what it expected.
    for (input, needle) in [
        (
            "165.254.255.0/24:\n  description: \"unterminated\n",
            "is not a BGPalerter prefixes file",
        ),
        (
            "- 165.254.255.0/24\n- 192.0.2.0/24\n",
            "is not a BGPalerter prefixes file",
        ),
        ("just a string", "is not a BGPalerter prefixes file"),
    ] {
        let (_dir, out) = import(input, &[]);
        assert!(!out.status.success(), "{input}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{input}: {err}");
    }
    // Truncated at a key: what is there converts, nothing is invented.
    let (_dir, out) = import("192.0.2.0/24:\n  asn: 64496\n198.51.100.0/24:", &[]);
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("192.0.2.0/24"));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("198.51.100.0/24: has no settings, skipped")
    );

    // Bad prefixes, bad ASNs, host bits, duplicates: converted where possible, reported.
    let (dir, out) = import(
        "banana:\n  asn: 1\n192.0.2.1/24:\n  asn: [64496, -5, AS23456x, 0]\n192.0.2.0/24:\n  asn: 64497\n198.51.100.0/24:\n  asn: [\"nope\"]\n",
        &["-o", "c.yml"],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    for needle in [
        "`banana`: not a prefix, skipped",
        "192.0.2.1/24: host bits set, converted as 192.0.2.0/24",
        "192.0.2.0/24: asn `-5` is not an ASN, dropped",
        "192.0.2.0/24: asn `\"AS23456x\"` is not an ASN, dropped",
        "192.0.2.0/24: listed twice",
        "198.51.100.0/24: no valid `asn`; bgpsentry will learn its origins",
    ] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
    check(&dir.path().join("c.yml"));

    // Markup and YAML syntax in descriptions and groups stay data.
    let (dir, out) = import(
        "192.0.2.0/24:\n  asn: 64496\n  description: \"x\\\"\\n  - prefix: 10.0.0.0/8 #\"\n  group: \"a]: b\"\n",
        &["-o", "c.yml"],
    );
    assert!(out.status.success());
    assert!(check(&dir.path().join("c.yml")).contains("OK, 1 watched prefix,"));

    // Oversized: refused before parsing.
    let big = format!("# {}\n", "x".repeat(9 * 1024 * 1024));
    let (_dir, out) = import(&big, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("the limit is")
    );

    // A billion-laughs alias bomb must not expand without bound.
    let mut bomb = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        bomb.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    let (_dir, out) = import(&bomb, &[]);
    assert!(!out.status.success(), "an alias bomb was accepted");
    assert!(
        String::from_utf8(out.stderr).unwrap().contains("budget"),
        "refused for another reason"
    );

    // Not UTF-8.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefixes.yml");
    std::fs::write(&path, b"192.0.2.0/24:\n  description: \xff\xfe\n").unwrap();
    let out = Command::new(bin())
        .arg("import-bgpalerter")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("not UTF-8"));
}
