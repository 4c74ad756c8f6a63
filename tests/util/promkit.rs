//! Shared by the Prometheus-kit tests: finding the Prometheus tools, writing MRT update
//! records, reading the metric catalogue of docs/src/metrics.md and the metric names in PromQL.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use super::{Proc, root};

/// An external program the tests need; CI installs it (tests/run-all.sh), so a missing one is
/// a failure, never a skip.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed: install the Debian package `{package}` (tests/run-all.sh does)"
    );
}

/// Runs a program, returning (success, stdout + stderr).
pub fn run_tool(program: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A free loopback port for programs that cannot bind port 0 and report it: the OS picks it,
/// and callers retry on the rare clash.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// GET over HTTP/1.1 on loopback, blocking: the status and the body; None if it cannot
/// connect.
pub fn http_get(url: &str) -> Option<(u16, String)> {
    http_get_query(url, &[])
}

/// [`http_get`] with query parameters (encoded by the client).
pub fn http_get_query(url: &str, query: &[(&str, &str)]) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .query_pairs(query.iter().copied())
        .call()
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.body_mut().read_to_string().ok()?))
}

// ---------------------------------------------------------------------------------------------
// MRT update records (RFC 6396 BGP4MP_MESSAGE_AS4 carrying RFC 4271 UPDATEs), IPv4 only.

/// One vantage point: a BGP peer of the collector.
#[derive(Clone, Copy)]
pub struct Peer {
    pub asn: u32,
    pub ip: Ipv4Addr,
}

fn nlri(prefix: (Ipv4Addr, u8)) -> Vec<u8> {
    let (addr, len) = prefix;
    let mut out = vec![len];
    out.extend_from_slice(&addr.octets()[..usize::from(len).div_ceil(8)]);
    out
}

fn bgp4mp(time: u32, peer: Peer, update: &[u8]) -> Vec<u8> {
    let mut msg = vec![0xff; 16];
    msg.extend_from_slice(&((19 + update.len()) as u16).to_be_bytes());
    msg.push(2); // UPDATE
    msg.extend_from_slice(update);
    let mut body = Vec::new();
    body.extend_from_slice(&peer.asn.to_be_bytes());
    body.extend_from_slice(&12654u32.to_be_bytes()); // the collector's ASN
    body.extend_from_slice(&0u16.to_be_bytes()); // interface index
    body.extend_from_slice(&1u16.to_be_bytes()); // AFI IPv4
    body.extend_from_slice(&peer.ip.octets());
    body.extend_from_slice(&Ipv4Addr::new(193, 0, 4, 28).octets());
    body.extend_from_slice(&msg);
    let mut rec = Vec::new();
    rec.extend_from_slice(&time.to_be_bytes());
    rec.extend_from_slice(&16u16.to_be_bytes()); // BGP4MP
    rec.extend_from_slice(&4u16.to_be_bytes()); // BGP4MP_MESSAGE_AS4
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes());
    rec.extend_from_slice(&body);
    rec
}

/// An MRT record: `peer` announces `prefixes` with `path` (peer first, origin last).
pub fn announce(time: u32, peer: Peer, path: &[u32], prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
    attrs.extend_from_slice(&[0x40, 2, (2 + 4 * path.len()) as u8, 2, path.len() as u8]);
    for asn in path {
        attrs.extend_from_slice(&asn.to_be_bytes());
    }
    attrs.extend_from_slice(&[0x40, 3, 4]);
    attrs.extend_from_slice(&peer.ip.octets()); // NEXT_HOP
    let mut update = 0u16.to_be_bytes().to_vec(); // no withdrawn routes
    update.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    update.extend_from_slice(&attrs);
    for p in prefixes {
        update.extend_from_slice(&nlri(*p));
    }
    bgp4mp(time, peer, &update)
}

/// An MRT record: `peer` withdraws `prefixes`.
pub fn withdraw(time: u32, peer: Peer, prefixes: &[(Ipv4Addr, u8)]) -> Vec<u8> {
    let routes: Vec<u8> = prefixes.iter().flat_map(|p| nlri(*p)).collect();
    let mut update = (routes.len() as u16).to_be_bytes().to_vec();
    update.extend_from_slice(&routes);
    update.extend_from_slice(&0u16.to_be_bytes()); // no path attributes
    bgp4mp(time, peer, &update)
}

/// A BGP4MP record whose body is cut short inside the peer header: framed, but does not parse.
pub fn truncated_record(time: u32) -> Vec<u8> {
    let mut rec = Vec::new();
    rec.extend_from_slice(&time.to_be_bytes());
    rec.extend_from_slice(&16u16.to_be_bytes());
    rec.extend_from_slice(&4u16.to_be_bytes());
    rec.extend_from_slice(&3u32.to_be_bytes());
    rec.extend_from_slice(&[0, 0, 0xfd]);
    rec
}

/// The scenario every Prometheus-kit test replays: a watched prefix, its legitimate routes,
/// a hijack seen by two vantage points, and its end.
pub mod scenario {
    use super::*;

    /// The watched prefix.
    pub const PREFIX: &str = "203.0.113.0/24";
    /// Its only allowed origin.
    pub const ORIGIN: u32 = 64500;
    /// Its only allowed upstream.
    pub const UPSTREAM: u32 = 64510;
    /// The hijacker.
    pub const HIJACKER: u32 = 64666;

    pub fn prefix() -> (Ipv4Addr, u8) {
        (Ipv4Addr::new(203, 0, 113, 0), 24)
    }

    pub fn peers() -> [Peer; 3] {
        [
            Peer {
                asn: 65001,
                ip: Ipv4Addr::new(10, 0, 0, 1),
            },
            Peer {
                asn: 65002,
                ip: Ipv4Addr::new(10, 0, 0, 2),
            },
            Peer {
                asn: 65003,
                ip: Ipv4Addr::new(10, 0, 0, 3),
            },
        ]
    }

    /// The config: one watched prefix, a feed `mrt` reading `files`.
    pub fn config(files: &[&Path]) -> String {
        let files: Vec<String> = files
            .iter()
            .map(|f| format!("{:?}", f.display().to_string()))
            .collect();
        format!(
            "prefixes:\n  - prefix: {PREFIX}\n    description: test prefix\n    origins: [{ORIGIN}]\n    upstreams: [{UPSTREAM}]\n    min_vantage_points: 2\n    visibility_min_vantage_points: 0\nfeeds:\n  - kind: mrt\n    name: replay\n    files: [{}]\n",
            files.join(", ")
        )
    }

    /// Every VP carries the legitimate route.
    pub fn steady(t: u32) -> Vec<u8> {
        peers()
            .iter()
            .flat_map(|p| announce(t, *p, &[p.asn, UPSTREAM, ORIGIN], &[prefix()]))
            .collect()
    }

    /// Two VPs (the threshold) switch to the hijacker's route.
    pub fn hijack(t: u32) -> Vec<u8> {
        peers()[..2]
            .iter()
            .flat_map(|p| announce(t, *p, &[p.asn, HIJACKER], &[prefix()]))
            .collect()
    }

    /// The hijacker withdraws: the two VPs go back to the legitimate route.
    pub fn hijack_withdrawn(t: u32) -> Vec<u8> {
        peers()[..2]
            .iter()
            .flat_map(|p| announce(t, *p, &[p.asn, UPSTREAM, ORIGIN], &[prefix()]))
            .collect()
    }

    /// Withdrawals of 1200 unrelated prefixes: enough events to fill one engine batch of the
    /// MRT feed, so that the records before them reach the engine while the stream stays open.
    pub fn batch_filler(t: u32) -> Vec<u8> {
        let peer = peers()[2];
        (0..2u8)
            .flat_map(|hi| {
                let prefixes: Vec<(Ipv4Addr, u8)> = (0..600u16)
                    .map(|i| {
                        (
                            Ipv4Addr::new(100, 64 + hi, (i / 256) as u8 + 4 * hi, i as u8),
                            32,
                        )
                    })
                    .collect();
                withdraw(t, peer, &prefixes)
            })
            .collect()
    }

    /// A whole replay: steady, hijack, its end, and one record that does not parse.
    pub fn full_replay() -> Vec<u8> {
        let mut out = steady(1_700_000_000);
        out.extend(hijack(1_700_000_060));
        out.extend(hijack_withdrawn(1_700_000_120));
        out.extend(truncated_record(1_700_000_130));
        out
    }
}

/// Core families without series while nothing is there to count, as docs/src/metrics.md says: a firing
/// alert's series goes away when it resolves (and the family with the last one); a feed's
/// last-message time comes with its first message; and families labelled by values only the
/// input brings (an origin or upstream ASN seen) come with them.
pub const ABSENT_WHEN_NONE: &[&str] = &[
    "bgpsentry_alerts_firing",
    "bgpsentry_feed_last_message_timestamp_seconds",
    "bgpsentry_prefix_origin_vantage_points",
    "bgpsentry_prefix_upstream_vantage_points",
];

/// Starts bgpsentry on [`scenario::full_replay`] and returns its `/metrics` once the replay
/// is processed: every core metric family then has samples.
pub fn live_metrics() -> String {
    let dir = tempfile::tempdir().unwrap();
    let mrt = dir.path().join("updates.mrt");
    std::fs::write(&mrt, scenario::full_replay()).unwrap();
    let config = dir.path().join("bgpsentry.yml");
    std::fs::write(&config, scenario::config(&[&mrt])).unwrap();
    let mut svc = super::Service::start(&config);
    let url = format!("http://{}/metrics", svc.addr);
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Some((200, body)) = http_get(&url) {
            // Per-prefix gauges follow the engine within a refresh interval: wait for every
            // core family of the catalogue, not only for the alerts.
            if body.contains(
                "bgpsentry_alerts_resolved_total{rule=\"origin_hijack\",severity=\"critical\"} 1",
            ) && body.lines().any(|l| {
                // Every reason exists at 0 from the start: wait for the bad record's count.
                l.starts_with(
                    "bgpsentry_invalid_input_total{feed=\"replay\",reason=\"mrt_record\"}",
                ) && !l.ends_with(" 0")
            }) && body.contains("bgpsentry_feed_connected{feed=\"replay\"} 1")
                && catalogue()
                    .values()
                    .filter(|e| {
                        e.exported_by == "core" && !ABSENT_WHEN_NONE.contains(&e.name.as_str())
                    })
                    .all(|e| body.contains(&format!("# TYPE {} ", e.name)))
            {
                break body;
            }
            last = body;
        }
        assert!(
            Instant::now() < deadline,
            "the replay was not processed within 30 s; last /metrics:\n{last}\nlog:\n{}",
            svc.proc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    svc.proc.terminate();
    text
}

// ---------------------------------------------------------------------------------------------
// Exposition format

/// A metric family in a `/metrics` text: its type and the label names of its samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub kind: String,
    pub labels: BTreeSet<String>,
}

/// Families by name, from Prometheus text format.
pub fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            out.insert(
                name.to_string(),
                Family {
                    kind: kind.to_string(),
                    labels: BTreeSet::new(),
                },
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            let name_end = line.find(['{', ' ']).unwrap();
            let sample = &line[..name_end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| sample.strip_suffix(s))
                .find(|base| out.get(*base).is_some_and(|f| f.kind == "histogram"))
                .unwrap_or(sample)
                .to_string();
            let f = out
                .get_mut(&family)
                .unwrap_or_else(|| panic!("sample {sample} has no TYPE"));
            if let Some(labels) = line[name_end..].strip_prefix('{') {
                for pair in labels.split("\",") {
                    let name = pair
                        .split('=')
                        .next()
                        .unwrap()
                        .trim_start_matches([',', '{'])
                        .trim();
                    if !name.is_empty() && name != "le" && !name.starts_with('}') {
                        f.labels.insert(name.to_string());
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The metric catalogue of docs/src/metrics.md

/// One row of the catalogue.
#[derive(Debug, Clone)]
pub struct CatalogueEntry {
    pub name: String,
    pub kind: String,
    pub labels: BTreeSet<String>,
    /// `core`, `feeds` or `notifier`.
    pub exported_by: String,
}

/// The metric table of docs/src/metrics.md (between the `metric-catalogue` markers).
pub fn catalogue() -> BTreeMap<String, CatalogueEntry> {
    let readme = std::fs::read_to_string(root().join("docs/src/metrics.md")).unwrap();
    let start = readme
        .find("<!-- metric-catalogue:start -->")
        .expect("catalogue start marker");
    let end = readme
        .find("<!-- metric-catalogue:end -->")
        .expect("catalogue end marker");
    let mut out = BTreeMap::new();
    for line in readme[start..end].lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 || !cells[1].starts_with("`bgpsentry_") {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty() && l != "—")
            .collect();
        let entry = CatalogueEntry {
            name: name.clone(),
            kind: cells[2].to_string(),
            labels,
            exported_by: cells[4].to_string(),
        };
        assert!(
            out.insert(name.clone(), entry).is_none(),
            "{name} is listed twice"
        );
    }
    assert!(!out.is_empty(), "the metrics.md catalogue is empty");
    out
}

// ---------------------------------------------------------------------------------------------
// PromQL

/// The `bgpsentry_*` metric and `bgpsentry:*` recording-rule names an expression uses, with
/// histogram suffixes (`_bucket`, `_sum`, `_count`) left on.
pub fn names_in_expr(expr: &str) -> BTreeSet<String> {
    // Drop string literals and label matchers first: `{rule="x"}` holds no metric names.
    let mut cleaned = String::new();
    let (mut in_str, mut depth) = (false, 0);
    for c in expr.chars() {
        match (in_str, c) {
            (true, '"') => in_str = false,
            (true, _) => {}
            (false, '"') => in_str = true,
            (false, '{') => depth += 1,
            (false, '}') => depth -= 1,
            (false, c) if depth == 0 => cleaned.push(c),
            _ => {}
        }
    }
    cleaned
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("bgpsentry_") || w.starts_with("bgpsentry:"))
        .map(str::to_string)
        .collect()
}

/// The catalogue name a series name belongs to (strips histogram suffixes).
pub fn family_of<'a>(name: &'a str, catalogue: &BTreeMap<String, CatalogueEntry>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && catalogue.get(base).is_some_and(|e| e.kind == "histogram")
        {
            return base;
        }
    }
    name
}

/// Recording rules of rules/bgpsentry.rules.yml, by name, with their expressions.
pub fn recording_rules() -> BTreeMap<String, String> {
    rule_file()
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| Some((r.record?, r.expr)))
        .collect()
}

/// The shipped rule file.
#[derive(Debug, serde::Deserialize)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

/// A rule group.
#[derive(Debug, serde::Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<RuleDef>,
}

/// An alerting or recording rule.
#[derive(Debug, serde::Deserialize)]
pub struct RuleDef {
    pub alert: Option<String>,
    pub record: Option<String>,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Parses rules/bgpsentry.rules.yml.
pub fn rule_file() -> RuleFile {
    let text = std::fs::read_to_string(root().join("rules/bgpsentry.rules.yml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Writes `exprs` as recording rules into a file `promtool check rules` can check, with
/// Grafana's variables replaced by values of the right kind.
pub fn write_exprs_as_rules(exprs: &[(String, String)], path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(f, "groups:\n  - name: extracted\n    rules:").unwrap();
    for (i, (_, expr)) in exprs.iter().enumerate() {
        let expr = substitute_grafana_vars(expr);
        writeln!(
            f,
            "      - record: extracted:expr{i}\n        expr: {}",
            serde_json::to_string(&expr).unwrap()
        )
        .unwrap();
    }
}

/// Replaces Grafana's variables with values of the right kind, so PromQL tools can read it.
pub fn substitute_grafana_vars(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("${prefix:regex}", "203\\\\.0\\\\.113\\\\.0/24")
        .replace("${prefix}", "203.0.113.0/24")
        .replace("$prefix", "203.0.113.0/24")
        .replace("${job}", "bgpsentry")
        .replace("$job", "bgpsentry")
        .replace("${feed}", "replay")
        .replace("$feed", "replay")
}
