//! Requests to acknowledge and silence, as the API, the pages and the CLI send them, and their
//! checks: every error says which field is wrong and what is accepted.

use ipnet::IpNet;
use serde::Deserialize;

use super::{Ack, Matchers, Silence, new_silence_id};
use crate::alerts::Rule;
use crate::event::Timestamp;

/// Longest `by` / `created_by`, in characters.
pub const MAX_NAME: usize = 100;
/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 1000;
/// Longest group name, in characters.
const MAX_GROUP: usize = 200;
/// The furthest a silence may expire: a year; a longer one belongs in the config.
pub const MAX_SILENCE_SECONDS: u64 = 366 * 86_400;

/// A request that cannot be taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn bad(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Body of `POST /alerts/{id}/ack`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Who acknowledges.
    #[serde(default)]
    pub by: String,
    /// Why, or what is being done.
    #[serde(default)]
    pub comment: String,
}

impl AckRequest {
    /// The acknowledgement, made at `now`.
    pub fn validate(self, now: Timestamp) -> Result<Ack, InputError> {
        Ok(Ack {
            by: text("by", &self.by, MAX_NAME, true)?,
            comment: text("comment", &self.comment, MAX_COMMENT, false)?,
            at: now,
        })
    }
}

/// An ASN as JSON: a number, or a string like `"AS65001"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AsnInput {
    /// `65001`.
    Number(u64),
    /// `"AS65001"` or `"65001"`.
    Text(String),
}

/// Matchers as sent: strings, checked by [`SilenceRequest::validate`]; absent or empty means
/// "any".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherInput {
    /// A rule name.
    pub rule: Option<String>,
    /// A watched prefix.
    pub watched_prefix: Option<String>,
    /// An affected prefix (it and what is inside it).
    pub prefix: Option<String>,
    /// The offending origin.
    pub origin: Option<AsnInput>,
    /// A notification group.
    pub group: Option<String>,
}

/// Body of `POST /silences`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// What to silence.
    #[serde(default)]
    pub matchers: MatcherInput,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// Who adds it.
    #[serde(default)]
    pub created_by: String,
    /// Until when (RFC 3339); or give `duration`.
    pub expires_at: Option<String>,
    /// For how long from now (`90m`, `2h`, `7d`, `1h30m`); or give `expires_at`.
    pub duration: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn prefix(field: &str, v: &str) -> Result<IpNet, InputError> {
    v.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        bad(format!(
            "matcher `{field}`: `{v}` is not a prefix; write it like 192.0.2.0/24 or 2001:db8::/32"
        ))
    })
}

fn asn(v: &AsnInput) -> Result<u32, InputError> {
    let (shown, parsed) = match v {
        AsnInput::Number(n) => (n.to_string(), u32::try_from(*n).ok()),
        AsnInput::Text(t) => {
            let t = t.trim();
            let digits = t
                .strip_prefix("AS")
                .or_else(|| t.strip_prefix("as"))
                .unwrap_or(t);
            (t.to_string(), digits.parse::<u32>().ok())
        }
    };
    match parsed {
        Some(n) if n > 0 => Ok(n),
        _ => Err(bad(format!(
            "matcher `origin`: `{shown}` is not an ASN; give a number from 1 to 4294967295, like 65001 or AS65001"
        ))),
    }
}

impl MatcherInput {
    /// The checked matchers; at least one is needed.
    pub fn validate(&self) -> Result<Matchers, InputError> {
        let rule = given(&self.rule)
            .map(|r| {
                Rule::parse(r).ok_or_else(|| {
                    let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
                    bad(format!(
                        "matcher `rule`: `{r}` is not one of {}",
                        names.join(", ")
                    ))
                })
            })
            .transpose()?;
        let watched_prefix = given(&self.watched_prefix)
            .map(|p| prefix("watched_prefix", p))
            .transpose()?;
        let prefix = given(&self.prefix)
            .map(|p| prefix("prefix", p))
            .transpose()?;
        let origin = match &self.origin {
            Some(AsnInput::Text(t)) if t.trim().is_empty() => None,
            Some(v) => Some(asn(v)?),
            None => None,
        };
        let group = given(&self.group)
            .map(|g| text("group", g, MAX_GROUP, true))
            .transpose()?;
        let m = Matchers {
            rule,
            watched_prefix,
            prefix,
            origin,
            group,
        };
        if m.is_empty() {
            return Err(bad(
                "a silence needs at least one matcher: rule, watched_prefix, prefix, origin or group",
            ));
        }
        Ok(m)
    }
}

impl SilenceRequest {
    /// The silence, added at `now`, with a new id.
    pub fn validate(self, now: Timestamp) -> Result<Silence, InputError> {
        let matchers = self.matchers.validate()?;
        let expires_at = match (given(&self.expires_at), given(&self.duration)) {
            (Some(_), Some(_)) => {
                return Err(bad("give either `expires_at` or `duration`, not both"));
            }
            (None, None) => {
                return Err(bad(
                    "a silence needs an end: give `duration` (like 2h, 90m, 7d) or `expires_at` (RFC 3339, like 2026-12-01T18:00:00Z)",
                ));
            }
            (Some(at), None) => {
                let t = chrono::DateTime::parse_from_rfc3339(at)
                    .map(|t| Timestamp(t.timestamp_micros()))
                    .map_err(|_| {
                        bad(format!(
                            "`expires_at`: `{at}` is not an RFC 3339 time like 2026-12-01T18:00:00Z"
                        ))
                    })?;
                if t <= now {
                    return Err(bad(format!(
                        "`expires_at`: {at} is in the past (now is {now}); a silence must end in the future"
                    )));
                }
                t
            }
            (None, Some(d)) => now.plus_secs(parse_duration(d)?),
        };
        if expires_at > now.plus_secs(MAX_SILENCE_SECONDS) {
            return Err(bad(
                "a silence may last at most 366 days; for longer, change the config (rules, severities or channel routing)",
            ));
        }
        Ok(Silence {
            id: new_silence_id(),
            matchers,
            comment: text("comment", &self.comment, MAX_COMMENT, false)?,
            created_by: text("created_by", &self.created_by, MAX_NAME, true)?,
            created_at: now,
            expires_at,
        })
    }
}

/// A duration like `90s`, `15m`, `2h`, `7d` or `1h30m`, in seconds (more than 0).
pub fn parse_duration(s: &str) -> Result<u64, InputError> {
    let wrong = || {
        bad(format!(
            "`duration`: `{s}` is not a duration; write it like 90m, 2h, 7d or 1h30m"
        ))
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(wrong()),
        };
        let n: u64 = digits.parse().map_err(|_| wrong())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(wrong)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(wrong());
    }
    Ok(total)
}

/// A free-text field, trimmed: no control characters (they would garble logs and pages),
/// at most `max` characters, and not empty when `required`.
fn text(field: &str, v: &str, max: usize, required: bool) -> Result<String, InputError> {
    let t = v.trim();
    if required && t.is_empty() {
        return Err(bad(format!("`{field}` is required: say who you are")));
    }
    if t.chars().any(char::is_control) {
        return Err(bad(format!(
            "`{field}` has control characters (such as a newline); write it on one line"
        )));
    }
    if t.chars().count() > max {
        return Err(bad(format!("`{field}` is longer than {max} characters")));
    }
    Ok(t.to_string())
}
