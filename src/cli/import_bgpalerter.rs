//! `bgpsentry import-bgpalerter`: converts a BGPalerter `prefixes.yml` into a bgpsentry config,
//! and says what has no equivalent.
//!
//! Longer than most files here: it maps BGPalerter's options one by one, each with what it
//! becomes or why it has no equivalent, and reads best as one list.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

use crate::config::{Config, MAX_CONFIG_BYTES};

/// Which of the keys that came with the path-rule and monitored-ASN release this build's config
/// parser accepts. Keys it does not accept are written commented out, so that the output always
/// passes `bgpsentry check`, and needs only uncommenting after an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    /// `paths:` entries of a prefix (rule `path_match`).
    pub paths: bool,
    /// The `asns:` section (monitored ASNs).
    pub asns: bool,
}

impl Supported {
    /// Asks the config parser of this build.
    pub fn probe() -> Self {
        let accepts = |yaml: &str| Config::parse(yaml, Path::new("<probe>")).is_ok();
        Supported {
            paths: accepts(
                "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\n    paths:\n      - name: probe\n        match: \"^64496 \"\n        not_match: \"64511\"\n        min_length: 2\n        max_length: 8\n",
            ),
            asns: accepts(
                "asns:\n  - asn: 64496\n    groups: [probe]\n    upstreams: [64497]\n    downstreams: []\n",
            ),
        }
    }

    /// Neither: everything new is written commented out.
    pub const NONE: Supported = Supported {
        paths: false,
        asns: false,
    };
}

/// Arguments of `import-bgpalerter`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The BGPalerter prefixes file (usually prefixes.yml).
    input: PathBuf,
    /// Write the bgpsentry config here instead of to stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// A top-level YAML mapping with its keys in file order.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of prefixes to their settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Ordered, E> {
                Ok(Ordered(Vec::new()))
            }
        }
        d.deserialize_map(V)
    }
}

/// A converted config and what did not carry over.
#[derive(Debug, Default)]
pub struct Conversion {
    /// The bgpsentry config, YAML.
    pub yaml: String,
    /// Prefixes converted.
    pub prefixes: usize,
    /// Monitored ASNs found.
    pub asns: usize,
    /// What has no equivalent or needs a later release, one line each.
    pub notes: Vec<String>,
}

/// A YAML scalar, double-quoted (a JSON string is a valid YAML double-quoted scalar).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn asn_of(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => {
            let d = s.trim();
            let d = d
                .strip_prefix("AS")
                .or_else(|| d.strip_prefix("as"))
                .unwrap_or(d);
            d.parse().ok()
        }
        _ => None,
    }
    .filter(|&a| a != 0)
}

/// An ASN or a list of ASNs; the values that are not ASNs are returned apart.
fn asn_list(v: &Value) -> (Vec<u32>, Vec<String>) {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for i in items {
        match asn_of(i) {
            Some(a) if !ok.contains(&a) => ok.push(a),
            Some(_) => {}
            None => bad.push(i.to_string()),
        }
    }
    (ok, bad)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn flow(list: &[u32]) -> String {
    let items: Vec<String> = list.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn flow_str(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

/// BGPalerter matches its regular expressions on the comma-joined path (`1,2,3`); bgpsentry on
/// the space-separated one. Commas that separate ASes become spaces; commas inside `{m,n}`
/// repetitions and `[...]` classes stay.
pub fn convert_path_regex(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let mut brace = 0usize;
    let mut class = false;
    let mut escaped = false;
    for c in re.chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !class => class = true,
            ']' if class => class = false,
            '{' if !class => brace += 1,
            '}' if !class && brace > 0 => brace -= 1,
            ',' if !class && brace == 0 => {
                out.push(' ');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// JavaScript regex features that the Rust `regex` crate does not have.
fn js_only_regex(re: &str) -> Option<&'static str> {
    if re.contains("(?=") || re.contains("(?!") || re.contains("(?<=") || re.contains("(?<!") {
        Some("look-around")
    } else if (1..=9).any(|d| re.contains(&format!("\\{d}"))) {
        Some("back-references")
    } else {
        None
    }
}

/// Which bgpsentry setting a BGPalerter monitor name corresponds to (its default names, and any
/// name that says what it is).
enum MonitorKind {
    Hijack,
    NewPrefix,
    Visibility,
    Path,
    Other,
}

fn monitor_kind(name: &str) -> MonitorKind {
    let n = name.to_ascii_lowercase();
    if n.contains("hijack") {
        MonitorKind::Hijack
    } else if n.contains("newprefix") || n == "prefix-detection" {
        MonitorKind::NewPrefix
    } else if n.contains("withdrawal") || n.contains("visibility") {
        MonitorKind::Visibility
    } else if n.contains("path-matching") || n == "path" {
        MonitorKind::Path
    } else {
        MonitorKind::Other
    }
}

const KNOWN_KEYS: [&str; 9] = [
    "asn",
    "description",
    "ignoreMorespecifics",
    "ignore",
    "group",
    "includeMonitors",
    "excludeMonitors",
    "path",
    "monitorASns",
];

/// Converts the text of a BGPalerter prefixes file.
pub fn convert(text: &str, source: &str, live: Supported) -> Result<Conversion, String> {
    let options = serde_saphyr::options! { with_snippet: false };
    let top: Ordered = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| format!("{source} is not a BGPalerter prefixes file: {e}"))?;
    let mut conv = Conversion::default();
    let mut body = String::new();
    let mut asns_block = String::new();
    let mut seen: BTreeSet<IpNet> = BTreeSet::new();
    let asn_pending = if live.asns { "" } else { "# " };
    let mut pending_used = BTreeSet::new();
    // Upstreams of monitored ASNs pin the upstreams of the prefixes they originate.
    let mut monitored_upstreams: std::collections::HashMap<u32, Vec<u32>> =
        std::collections::HashMap::new();
    if let Some((_, options)) = top.0.iter().find(|(k, _)| k == "options")
        && let Some(Value::Object(asns)) = options.get("monitorASns")
    {
        for (asn_text, settings) in asns {
            if let (Some(asn), Some(ups)) = (
                asn_of(&Value::String(asn_text.clone())),
                settings.get("upstreams"),
            ) {
                let (list, _) = asn_list(ups);
                if !list.is_empty() {
                    monitored_upstreams.insert(asn, list);
                }
            }
        }
    }

    for (key, value) in &top.0 {
        if key == "options" {
            let monitor = value.get("monitorASns");
            if let Some(other) = value.as_object() {
                for k in other.keys().filter(|k| *k != "monitorASns") {
                    conv.notes.push(format!(
                        "options.{k}: not converted (bgpsentry has no such option)"
                    ));
                }
            }
            let Some(Value::Object(asns)) = monitor else {
                continue;
            };
            let mut asns: Vec<(&String, &Value)> = asns.iter().collect();
            asns.sort_by_key(|(k, _)| (k.parse::<u64>().unwrap_or(u64::MAX), k.to_string()));
            for (asn_text, settings) in asns {
                let Some(asn) = asn_of(&Value::String(asn_text.clone())) else {
                    conv.notes.push(format!(
                        "options.monitorASns.{asn_text}: not an ASN, skipped"
                    ));
                    continue;
                };
                conv.asns += 1;
                pending_used.insert("asns");
                let _ = writeln!(asns_block, "{asn_pending}  - asn: {asn}");
                let groups = string_list(settings.get("group"));
                if !groups.is_empty() {
                    let _ = writeln!(asns_block, "{asn_pending}    groups: {}", flow_str(&groups));
                }
                for side in ["upstreams", "downstreams"] {
                    if let Some(v) = settings.get(side) {
                        let (list, bad) = asn_list(v);
                        let _ = writeln!(asns_block, "{asn_pending}    {side}: {}", flow(&list));
                        for b in bad {
                            conv.notes.push(format!(
                                "options.monitorASns.{asn}.{side}: `{b}` is not an ASN, dropped"
                            ));
                        }
                    }
                }
            }
            continue;
        }

        let prefix: IpNet = match key.trim().parse::<IpNet>() {
            Ok(p) => p,
            Err(_) => {
                conv.notes.push(format!(
                    "`{key}`: not a prefix, skipped (write it like 192.0.2.0/24)"
                ));
                continue;
            }
        };
        let prefix = if prefix.trunc() != prefix {
            conv.notes.push(format!(
                "{key}: host bits set, converted as {}",
                prefix.trunc()
            ));
            prefix.trunc()
        } else {
            prefix
        };
        if !seen.insert(prefix) {
            conv.notes.push(format!(
                "{prefix}: listed twice, the later entry is skipped"
            ));
            continue;
        }
        let Some(entry) = value.as_object() else {
            conv.notes
                .push(format!("{prefix}: has no settings, skipped"));
            continue;
        };
        if entry.get("ignore").and_then(Value::as_bool) == Some(true) {
            conv.notes.push(format!(
                "{prefix}: `ignore: true` (excluded from monitoring) has no equivalent; the prefix is left out, and a covering watched prefix still judges its routes"
            ));
            let _ = writeln!(
                body,
                "  # {prefix} was `ignore: true` in BGPalerter: not watched\n"
            );
            continue;
        }
        for k in entry.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            conv.notes
                .push(format!("{prefix}: `{k}` is not a BGPalerter key, ignored"));
        }
        conv.prefixes += 1;
        let _ = writeln!(body, "  - prefix: {prefix}");
        if let Some(d) = entry.get("description").and_then(Value::as_str)
            && !d.is_empty()
        {
            let _ = writeln!(body, "    description: {}", quote(d));
        }
        let (origins, bad) = asn_list(entry.get("asn").unwrap_or(&Value::Null));
        for b in bad {
            conv.notes
                .push(format!("{prefix}: asn `{b}` is not an ASN, dropped"));
        }
        if origins.is_empty() {
            conv.notes.push(format!(
                "{prefix}: no valid `asn`; bgpsentry will learn its origins from the feeds (rule origin_change)"
            ));
        } else {
            let _ = writeln!(body, "    origins: {}", flow(&origins));
            if origins.iter().all(|o| monitored_upstreams.contains_key(o)) {
                let mut ups: Vec<u32> = Vec::new();
                for o in &origins {
                    for u in &monitored_upstreams[o] {
                        if !ups.contains(u) {
                            ups.push(*u);
                        }
                    }
                }
                let _ = writeln!(
                    body,
                    "    upstreams: {}   # from options.monitorASns upstreams",
                    flow(&ups)
                );
            }
        }
        let mut more_specifics_ignored = false;
        if entry.get("ignoreMorespecifics").and_then(Value::as_bool) == Some(true) {
            more_specifics_ignored = true;
            conv.notes.push(format!(
                "{prefix}: `ignoreMorespecifics: true` became `more_specifics: ignore`; unlike BGPalerter, bgpsentry still raises subprefix_hijack for more-specifics from other origins"
            ));
        }
        let mut visibility_off = false;
        let include = string_list(entry.get("includeMonitors"));
        let exclude = string_list(entry.get("excludeMonitors"));
        let mut path_excluded = exclude
            .iter()
            .any(|m| matches!(monitor_kind(m), MonitorKind::Path));
        if !include.is_empty() {
            // An include list excludes every monitor it does not name.
            let named: Vec<MonitorKind> = include.iter().map(|m| monitor_kind(m)).collect();
            if !named.iter().any(|k| matches!(k, MonitorKind::Visibility)) {
                visibility_off = true;
            }
            if !named.iter().any(|k| matches!(k, MonitorKind::NewPrefix)) {
                more_specifics_ignored = true;
            }
            if !named.iter().any(|k| matches!(k, MonitorKind::Path)) {
                path_excluded = true;
            }
            conv.notes.push(format!(
                "{prefix}: includeMonitors {} converted to the matching bgpsentry settings; bgpsentry always runs its hijack detectors",
                flow_str(&include)
            ));
        }
        for m in &exclude {
            match monitor_kind(m) {
                MonitorKind::Visibility => visibility_off = true,
                MonitorKind::NewPrefix => more_specifics_ignored = true,
                MonitorKind::Hijack => conv.notes.push(format!(
                    "{prefix}: excludeMonitors `{m}`: bgpsentry cannot turn hijack detection off for a watched prefix"
                )),
                MonitorKind::Path => {}
                MonitorKind::Other => conv.notes.push(format!(
                    "{prefix}: excludeMonitors `{m}` has no bgpsentry equivalent, ignored"
                )),
            }
        }
        if more_specifics_ignored {
            let _ = writeln!(body, "    more_specifics: ignore");
        }
        if visibility_off {
            let _ = writeln!(
                body,
                "    visibility_min_vantage_points: 0   # the visibility monitor was off for it"
            );
        }
        let groups = string_list(entry.get("group"));
        if !groups.is_empty() {
            let _ = writeln!(body, "    groups: {}", flow_str(&groups));
        }
        let rules: Vec<&serde_json::Map<String, Value>> = match entry.get("path") {
            Some(Value::Object(o)) => vec![o],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
            _ => Vec::new(),
        };
        if path_excluded && !rules.is_empty() {
            conv.notes.push(format!(
                "{prefix}: path rules dropped, the path monitor is excluded for it"
            ));
        } else if !rules.is_empty() {
            pending_used.insert("paths");
            // Each rule as lines, and whether it can be used as it is.
            let mut converted_rules: Vec<(Vec<String>, bool)> = Vec::new();
            for (i, r) in rules.iter().enumerate() {
                let mut lines = Vec::new();
                let mut usable = true;
                let name = r
                    .get("matchDescription")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("bgpalerter path rule {}", i + 1));
                lines.push(format!("name: {}", quote(&name)));
                for (from, to) in [("match", "match"), ("notMatch", "not_match")] {
                    if let Some(re) = r.get(from).and_then(Value::as_str) {
                        let converted = convert_path_regex(re);
                        if converted != re {
                            conv.notes.push(format!(
                                "{prefix}: path.{from} `{re}` rewritten for space-separated paths as `{converted}`"
                            ));
                        }
                        if let Some(what) = js_only_regex(re) {
                            usable = false;
                            conv.notes.push(format!(
                                "{prefix}: path.{from} `{re}` uses {what}, which bgpsentry's regular expressions do not support; the rule is written commented out: rewrite it"
                            ));
                        }
                        lines.push(format!("{to}: {}", quote(&converted)));
                    }
                }
                for (from, to) in [("minLength", "min_length"), ("maxLength", "max_length")] {
                    if let Some(n) = r.get(from).and_then(Value::as_u64) {
                        lines.push(format!("{to}: {n}"));
                    }
                }
                converted_rules.push((lines, usable));
            }
            let any_live = live.paths && converted_rules.iter().any(|r| r.1);
            let header = if any_live { "" } else { "# " };
            let _ = writeln!(body, "    {header}paths:");
            for (lines, usable) in &converted_rules {
                let lead_comment = if live.paths && *usable { "" } else { "# " };
                for (n, line) in lines.iter().enumerate() {
                    let lead = if n == 0 { "- " } else { "  " };
                    let _ = writeln!(body, "    {lead_comment}  {lead}{line}");
                }
            }
            conv.notes.push(format!(
                "{prefix}: {} path rule(s) written as `paths:`{}",
                rules.len(),
                if live.paths {
                    ""
                } else {
                    ", commented out: they need the bgpsentry release with path rules (rule path_match)"
                }
            ));
        }
        let _ = writeln!(body);
    }

    let mut yaml = String::new();
    let _ = writeln!(
        yaml,
        "# bgpsentry config converted from the BGPalerter prefixes file {source}.\n# Check it with `bgpsentry check --config FILE`. What did not carry over is listed in the\n# import report (on stderr). Every key is described in the\n# configuration reference, docs/src/configuration.md."
    );
    let commented = (pending_used.contains("paths") && !live.paths)
        || (pending_used.contains("asns") && !live.asns);
    if commented {
        let _ = writeln!(
            yaml,
            "#\n# Lines starting with `# ` under `paths:` and `asns:` need the bgpsentry release with path\n# rules and monitored ASNs; uncomment them once `bgpsentry check` accepts those keys."
        );
    }
    let _ = writeln!(
        yaml,
        "\n# BGPalerter reads RIPE RIS Live; so does this config.\nfeeds:\n  - kind: ris_live\n"
    );
    if conv.prefixes > 0 || !body.is_empty() {
        let _ = writeln!(yaml, "prefixes:");
        yaml.push_str(&body);
    } else {
        let _ = writeln!(yaml, "prefixes: []\n");
    }
    if !asns_block.is_empty() {
        let _ = writeln!(
            yaml,
            "# Monitored ASNs (BGPalerter options.monitorASns): rules unexpected_prefix and new_neighbor."
        );
        let _ = writeln!(yaml, "{asn_pending}asns:");
        yaml.push_str(&asns_block);
        conv.notes.push(format!(
            "options.monitorASns: {} monitored ASN(s) written as `asns:`{}",
            conv.asns,
            if live.asns {
                ""
            } else {
                ", commented out: they need the bgpsentry release with monitored ASNs"
            }
        ));
    }
    conv.yaml = yaml;
    Ok(conv)
}

fn read_input(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_CONFIG_BYTES as u64 {
        return Err(format!(
            "{} is {} bytes; the limit is {MAX_CONFIG_BYTES}. Split the file and import the parts.",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| format!("{} is not UTF-8 text: {e}", path.display()))
}

/// Converts, checks the result with the config parser, writes it, and prints the report.
pub fn import(args: ImportArgs) -> ExitCode {
    let text = match read_input(&args.input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = args.input.file_name().map_or_else(
        || args.input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let live = Supported::probe();
    let mut conv = match convert(&text, &name, live) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let check = |c: &Conversion| Config::parse(&c.yaml, Path::new("<converted config>"));
    if live != Supported::NONE
        && let Err(errors) = check(&conv)
    {
        // Path rules and monitored ASNs are checked more strictly than BGPalerter checked them
        // (regular expressions, lengths): keep them, commented out, with the reason.
        match convert(&text, &name, Supported::NONE) {
            Ok(mut c) => {
                c.notes.push(format!(
                    "path rules and monitored ASNs are written commented out because they do not validate as they are; fix them and uncomment:\n{errors}"
                ));
                conv = c;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // What we write must load; anything else is a bug of the converter, not the user's.
    if let Err(errors) = check(&conv) {
        eprintln!(
            "error: the converted config does not validate (please report this with the input file):\n{errors}"
        );
        return ExitCode::FAILURE;
    }
    let code = super::write_output(args.output.as_deref(), args.force, &conv.yaml);
    if code != ExitCode::SUCCESS {
        return code;
    }
    eprintln!(
        "imported {} prefixes and {} monitored ASNs from {}{}",
        conv.prefixes,
        conv.asns,
        args.input.display(),
        args.output
            .as_ref()
            .map(|o| format!(" into {}", o.display()))
            .unwrap_or_default()
    );
    if conv.notes.is_empty() {
        eprintln!("everything has an equivalent");
    } else {
        eprintln!("not converted as is ({}):", conv.notes.len());
        for n in &conv.notes {
            eprintln!("  - {n}");
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_commas_become_spaces_outside_repetitions_and_classes() {
        assert_eq!(convert_path_regex(".*2194,1234$"), ".*2194 1234$");
        assert_eq!(
            convert_path_regex("^174,(\\d+,){1,3}3356$"),
            "^174 (\\d+ ){1,3}3356$"
        );
        assert_eq!(convert_path_regex("[0-9,]+"), "[0-9,]+");
        assert_eq!(convert_path_regex("a\\,b"), "a\\,b");
    }

    #[test]
    fn keys_the_parser_accepts_are_written_live() {
        let input = "192.0.2.0/24:\n  asn: 64496\n  path:\n    - match: \"^1,2$\"\n    - match: \"(?!6)\"\n      matchDescription: js\noptions:\n  monitorASns:\n    64496:\n      upstreams: [64497]\n";
        let live = convert(
            input,
            "p.yml",
            Supported {
                paths: true,
                asns: true,
            },
        )
        .unwrap();
        let v: Value = serde_saphyr::from_str(&live.yaml).unwrap();
        // The usable rule is live, the JavaScript-only one a comment.
        assert_eq!(v["prefixes"][0]["paths"][0]["match"], "^1 2$");
        assert_eq!(v["prefixes"][0]["paths"].as_array().unwrap().len(), 1);
        assert!(
            live.yaml.contains("    #   - name: \"js\""),
            "{}",
            live.yaml
        );
        assert_eq!(v["asns"][0]["upstreams"][0], 64497);
        assert!(!live.yaml.contains("uncomment them"), "{}", live.yaml);
        // Without them, the same input passes today's parser.
        let today = convert(input, "p.yml", Supported::NONE).unwrap();
        let parsed: Value = serde_saphyr::from_str(&today.yaml).unwrap();
        assert!(parsed.get("asns").is_none() && parsed["prefixes"][0].get("paths").is_none());
        assert!(today.yaml.contains("uncomment them"));
    }

    #[test]
    fn javascript_only_regex_features_are_reported() {
        assert_eq!(js_only_regex("(?!.*666)"), Some("look-around"));
        assert_eq!(js_only_regex("(\\d+),\\1"), Some("back-references"));
        assert_eq!(js_only_regex(".*2914$"), None);
    }
}
