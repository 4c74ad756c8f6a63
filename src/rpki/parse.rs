//! Parsers of the JSON that RPKI relying-party software writes: Routinator `json` and `jsonext`,
//! rpki-client `json` (ROAs as `roas`, ASPA records as `aspas`).

use ipnet::IpNet;
use serde::Deserialize;

use super::Vrp;

/// Largest file accepted: a full global VRP set in `jsonext` is a few hundred megabytes.
pub const MAX_RPKI_FILE_BYTES: usize = 1 << 30;

/// Why a file could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Bigger than the limit.
    #[error("the file is {size} bytes, more than the limit of {limit}; is it really a VRP export?")]
    TooLarge {
        /// File size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON of the expected shape.
    #[error(
        "not valid VRP JSON at line {line}, column {column}: {message}; export it with `routinator vrps --format json` (or `jsonext`) or `rpki-client -j`"
    )]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// Valid JSON but neither `roas` nor `aspas` in it.
    #[error(
        "the file has neither a `roas` nor an `aspas` list; export it with `routinator vrps --format json` (or `jsonext`) or `rpki-client -j`"
    )]
    NoData,
}

/// The usable content of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Validated ROA payloads.
    pub vrps: Vec<Vrp>,
    /// ASPA records: customer and its providers.
    pub aspas: Vec<(u32, Vec<u32>)>,
    /// When the data was generated (seconds since the epoch), from the file's metadata.
    pub generated: Option<i64>,
    /// Entries skipped because a value was out of range.
    pub rejected: usize,
    /// Why the first skipped entry was skipped.
    pub first_rejection: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AsnJson {
    Number(i64),
    Text(String),
}

impl AsnJson {
    fn resolve(&self) -> Result<u32, String> {
        let n = match self {
            AsnJson::Number(n) => *n,
            AsnJson::Text(s) => {
                let digits = s
                    .strip_prefix("AS")
                    .or_else(|| s.strip_prefix("as"))
                    .unwrap_or(s);
                digits
                    .parse::<i64>()
                    .map_err(|_| format!("`{}` is not an ASN", truncate(s)))?
            }
        };
        u32::try_from(n).map_err(|_| format!("ASN {n} is out of range"))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ProviderJson {
    Asn(AsnJson),
    Object {
        #[serde(alias = "provider_asid", alias = "asn")]
        provider: AsnJson,
    },
}

#[derive(Deserialize)]
struct RoaJson {
    asn: AsnJson,
    prefix: String,
    #[serde(rename = "maxLength", alias = "max_length", default)]
    max_length: Option<i64>,
}

#[derive(Deserialize)]
struct AspaJson {
    #[serde(alias = "customer_asid")]
    customer: AsnJson,
    #[serde(alias = "provider_set", default)]
    providers: Vec<ProviderJson>,
}

#[derive(Deserialize, Default)]
struct MetadataJson {
    #[serde(default)]
    generated: Option<serde_json::Value>,
    #[serde(rename = "generatedTime", default)]
    generated_time: Option<String>,
    #[serde(default)]
    buildtime: Option<String>,
}

#[derive(Deserialize)]
struct FileJson {
    #[serde(default)]
    metadata: Option<MetadataJson>,
    #[serde(default)]
    roas: Option<Vec<RoaJson>>,
    #[serde(default)]
    aspas: Option<Vec<AspaJson>>,
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn rfc3339_secs(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp())
}

/// Parses one file's bytes; at most `limit` bytes are accepted.
pub fn parse_json(bytes: &[u8], limit: usize) -> Result<Parsed, ParseError> {
    if bytes.len() > limit {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let file: FileJson = serde_json::from_slice(bytes).map_err(|e| ParseError::Json {
        line: e.line(),
        column: e.column(),
        message: truncate(&e.to_string()),
    })?;
    if file.roas.is_none() && file.aspas.is_none() {
        return Err(ParseError::NoData);
    }
    let mut out = Parsed::default();
    let reject = |out: &mut Parsed, why: String| {
        out.rejected += 1;
        if out.first_rejection.is_none() {
            out.first_rejection = Some(why);
        }
    };
    if let Some(meta) = &file.metadata {
        out.generated = match &meta.generated {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => rfc3339_secs(s),
            _ => None,
        }
        .or_else(|| meta.generated_time.as_deref().and_then(rfc3339_secs))
        .or_else(|| meta.buildtime.as_deref().and_then(rfc3339_secs));
    }
    for roa in file.roas.unwrap_or_default() {
        match vrp(&roa) {
            Ok(v) => out.vrps.push(v),
            Err(why) => reject(&mut out, why),
        }
    }
    for aspa in file.aspas.unwrap_or_default() {
        let customer = match aspa.customer.resolve() {
            Ok(c) => c,
            Err(why) => {
                reject(&mut out, format!("ASPA customer: {why}"));
                continue;
            }
        };
        let mut providers = Vec::with_capacity(aspa.providers.len());
        let mut bad = None;
        for p in &aspa.providers {
            let asn = match p {
                ProviderJson::Asn(a) => a,
                ProviderJson::Object { provider } => provider,
            };
            match asn.resolve() {
                Ok(a) => providers.push(a),
                Err(why) => bad = Some(why),
            }
        }
        match bad {
            // A record with a broken provider list would make its customer's hops look like
            // leaks: drop the whole record rather than a part of it.
            Some(why) => reject(&mut out, format!("ASPA of AS{customer}: provider {why}")),
            None => out.aspas.push((customer, providers)),
        }
    }
    Ok(out)
}

fn vrp(roa: &RoaJson) -> Result<Vrp, String> {
    let asn = roa.asn.resolve()?;
    let text = roa.prefix.trim();
    let prefix: IpNet = text
        .parse()
        .map_err(|_| format!("`{}` is not a prefix", truncate(text)))?;
    if prefix.trunc() != prefix {
        return Err(format!("prefix {prefix} has host bits set"));
    }
    let max = roa.max_length.unwrap_or(i64::from(prefix.prefix_len()));
    if max < i64::from(prefix.prefix_len()) || max > i64::from(prefix.max_prefix_len()) {
        return Err(format!("maxLength {max} is out of range for {prefix}"));
    }
    Ok(Vrp {
        prefix,
        max_length: max as u8,
        asn,
    })
}
