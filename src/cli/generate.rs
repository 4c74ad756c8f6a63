//! `bgpsentry generate`: a ready config from a table dump, listing the prefixes some ASNs
//! originate and the upstreams they were seen through.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ipnet::IpNet;
use prefix_trie::joint::map::JointPrefixMap;
use smallvec::SmallVec;

use crate::config::{AsnValue, Config};
use crate::event::{FeedEvent, RouteChange, Timestamp, VantagePoint};
use crate::feeds::mrt::MrtReader;

/// Arguments of `generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// An ASN whose prefixes to list (repeat for several: `--asn 64496 --asn 64497`).
    #[arg(long = "asn", required = true, value_parser = parse_asn)]
    asns: Vec<u32>,
    /// An MRT table dump (TABLE_DUMP or TABLE_DUMP_V2; plain, gzip or bzip2), e.g. a RIS
    /// bview or a RouteViews rib file.
    #[arg(long)]
    rib: PathBuf,
    /// Write the config here instead of to stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
}

fn parse_asn(s: &str) -> Result<u32, crate::config::ValueError> {
    AsnValue::Text(s.to_string()).resolve()
}

/// What the dump shows of one prefix originated by a requested ASN.
#[derive(Debug, Default)]
struct Seen {
    vps: HashSet<Arc<VantagePoint>>,
    origins: BTreeMap<u32, usize>,
    upstreams: BTreeMap<u32, usize>,
}

/// The result of reading a dump.
#[derive(Debug, Default)]
pub struct Generated {
    /// The config, YAML.
    pub yaml: String,
    /// Prefixes listed.
    pub prefixes: usize,
    /// Things to review, one line each.
    pub notes: Vec<String>,
}

type Origins = SmallVec<[u32; 1]>;

/// Reads the dump and builds the config.
pub fn generate(asns: &[u32], rib: &Path) -> Result<Generated, String> {
    let mut reader = MrtReader::open(rib, "rib", None)
        .map_err(|e| format!("cannot open the table dump {}: {e}", rib.display()))?;
    let wanted: HashSet<u32> = asns.iter().copied().collect();
    let mut seen: BTreeMap<IpNet, Seen> = BTreeMap::new();
    // Every other prefix's origins, to find more-specifics that others originate inside ours.
    let mut others: HashMap<IpNet, Origins> = HashMap::new();
    let mut all_vps: HashSet<Arc<VantagePoint>> = HashSet::new();
    let mut latest = Timestamp::default();
    let mut bad = 0u64;
    let mut events = Vec::new();
    while let Some(result) = reader.next_record(&mut events) {
        if result.is_err() {
            bad += 1;
        }
        for ev in events.drain(..) {
            let FeedEvent::Route(r) = ev else { continue };
            let RouteChange::Announce(attrs) = &r.change else {
                continue;
            };
            latest = latest.max(r.timestamp);
            if !all_vps.contains(&r.vp) {
                all_vps.insert(r.vp.clone());
            }
            let origins = attrs.path.origins();
            if origins.iter().any(|o| wanted.contains(o)) {
                let s = seen.entry(r.prefix).or_default();
                s.vps.insert(r.vp.clone());
                for o in origins {
                    *s.origins.entry(*o).or_default() += 1;
                }
                if let Some(u) = attrs.path.origin_neighbor() {
                    *s.upstreams.entry(u).or_default() += 1;
                }
            } else {
                let entry = others.entry(r.prefix).or_default();
                for o in origins {
                    if !entry.contains(o) {
                        entry.push(*o);
                    }
                }
            }
        }
    }
    let stats = reader.stats();
    if stats.announcements == 0 {
        return Err(format!(
            "{} holds no routes ({} records read); is it an MRT table dump?",
            rib.display(),
            stats.records
        ));
    }
    let mut notes = Vec::new();
    if bad > 0 {
        notes.push(format!(
            "{bad} records of the dump could not be read and were skipped"
        ));
    }

    // Which listed prefixes lie inside another listed one, and which other origins announce
    // space inside ours.
    let mut listed: JointPrefixMap<IpNet, ()> = JointPrefixMap::new();
    for p in seen.keys() {
        listed.insert(*p, ());
    }
    let mut covers_own: HashSet<IpNet> = HashSet::new();
    for p in seen.keys() {
        for (net, _) in listed.cover(p) {
            if net != *p {
                covers_own.insert(net);
            }
        }
    }
    let mut foreign: BTreeMap<IpNet, Vec<(IpNet, Origins)>> = BTreeMap::new();
    for (p, origins) in &others {
        for (net, _) in listed.cover(p).filter(|(n, _)| n != p) {
            foreign.entry(net).or_default().push((*p, origins.clone()));
        }
    }
    drop(others);
    for inside in foreign.values_mut() {
        inside.sort_unstable();
    }

    let asn_text: Vec<String> = asns.iter().map(|a| format!("AS{a}")).collect();
    let flags: Vec<String> = asns.iter().map(|a| format!("--asn {a}")).collect();
    let file = rib.file_name().map_or_else(
        || rib.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let when = latest.to_rfc3339();
    let when = when.split_once('.').map_or(when.as_str(), |(h, _)| h);
    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# bgpsentry config generated by `bgpsentry generate {}` from the table dump\n# {file} ({when} UTC, {} vantage points): {} prefixes originated by {}.\n# Origins and upstreams are what the dump showed: review them, then run\n# `bgpsentry check --config FILE`. Every key is described in\n# docs/src/configuration.md.",
        flags.join(" "),
        all_vps.len(),
        seen.len(),
        asn_text.join(", ")
    );
    let _ = writeln!(yaml, "\nfeeds:\n  - kind: ris_live\n");
    if seen.is_empty() {
        let _ = writeln!(yaml, "prefixes: []");
        notes.push(format!(
            "no prefix in the dump is originated by {}",
            asn_text.join(", ")
        ));
    } else {
        let _ = writeln!(yaml, "prefixes:");
    }
    for (prefix, s) in &seen {
        let origins: Vec<u32> = s
            .origins
            .keys()
            .copied()
            .filter(|o| wanted.contains(o))
            .collect();
        let extra: Vec<String> = s
            .origins
            .keys()
            .filter(|o| !wanted.contains(o))
            .map(|o| format!("AS{o}"))
            .collect();
        let mut ups: Vec<(u32, usize)> = s.upstreams.iter().map(|(a, n)| (*a, *n)).collect();
        ups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let desc = format!(
            "{} (seen by {} of {} VPs)",
            origins
                .iter()
                .map(|o| format!("AS{o}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.vps.len(),
            all_vps.len()
        );
        let _ = writeln!(yaml, "  - prefix: {prefix}");
        let _ = writeln!(
            yaml,
            "    description: {}",
            serde_json::to_string(&desc).unwrap_or_default()
        );
        let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let _ = writeln!(yaml, "    origins: [{}]", list(&origins));
        if !extra.is_empty() {
            let _ = writeln!(
                yaml,
                "    # also originated by {} in the dump (MOAS): add them to origins if they are legitimate",
                extra.join(", ")
            );
            notes.push(format!(
                "{prefix}: also originated by {} (MOAS); it is not listed as an origin",
                extra.join(", ")
            ));
        }
        if ups.is_empty() {
            // The origin was the first hop everywhere: nothing to pin, so learn.
            let _ = writeln!(
                yaml,
                "    # no upstream seen (the origin peers with the collector directly): learned from the feeds"
            );
        } else {
            let counts: Vec<String> = ups
                .iter()
                .map(|(a, n)| format!("AS{a} {n} VP{}", if *n == 1 { "" } else { "s" }))
                .collect();
            let ids: Vec<u32> = ups.iter().map(|u| u.0).collect();
            let _ = writeln!(
                yaml,
                "    upstreams: [{}]   # {}",
                list(&ids),
                counts.join(", ")
            );
        }
        if covers_own.contains(prefix) {
            let _ = writeln!(
                yaml,
                "    more_specifics: ignore   # its own more-specifics are listed on their own"
            );
        }
        if let Some(inside) = foreign.get(prefix) {
            let shown: Vec<String> = inside
                .iter()
                .take(5)
                .map(|(p, o)| {
                    let o: Vec<String> = o.iter().map(|a| format!("AS{a}")).collect();
                    format!("{p} by {}", o.join(", "))
                })
                .collect();
            let more = if inside.len() > 5 {
                format!(" and {} more", inside.len() - 5)
            } else {
                String::new()
            };
            let _ = writeln!(
                yaml,
                "    # more-specifics originated by others in the dump (delegated space?): {}{more}",
                shown.join("; ")
            );
            notes.push(format!(
                "{prefix}: {} more-specific(s) originated by other ASes ({}{more}); they will raise subprefix_hijack unless you add those origins or watch them separately",
                inside.len(),
                shown.join("; ")
            ));
        }
        let _ = writeln!(yaml);
    }
    Ok(Generated {
        yaml,
        prefixes: seen.len(),
        notes,
    })
}

/// Runs `generate`.
pub fn run(args: GenerateArgs) -> ExitCode {
    let g = match generate(&args.asns, &args.rib) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(errors) = Config::parse(&g.yaml, Path::new("<generated config>")) {
        eprintln!(
            "error: the generated config does not validate (please report this with the dump):\n{errors}"
        );
        return ExitCode::FAILURE;
    }
    let code = super::write_output(args.output.as_deref(), args.force, &g.yaml);
    if code != ExitCode::SUCCESS {
        return code;
    }
    eprintln!("listed {} prefixes from {}", g.prefixes, args.rib.display());
    for n in &g.notes {
        eprintln!("  - {n}");
    }
    ExitCode::SUCCESS
}
