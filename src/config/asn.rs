//! ASNs as written in a config: `18196`, `"18196"` or `"AS18196"`.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Located, ValueError};

/// An ASN as written; checked by [`AsnValue::resolve`].
#[derive(Debug, Clone)]
pub enum AsnValue {
    /// A number.
    Number(i64),
    /// A string such as `AS18196`.
    Text(String),
}

// By hand rather than `#[serde(untagged)]`, which buffers every value and tries each variant
// in turn: a watch list has one or more ASNs per prefix, so that cost shows at start-up.
impl<'de> Deserialize<'de> for AsnValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AsnValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an ASN, a number like 64496 or a string like \"AS64496\"")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AsnValue, E> {
                Ok(AsnValue::Number(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AsnValue, E> {
                i64::try_from(v).map(AsnValue::Number).map_err(|_| {
                    E::custom(format!(
                        "ASN {v} is out of range; ASNs are 1 to 4294967295 (0 is reserved)"
                    ))
                })
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AsnValue, E> {
                Ok(AsnValue::Text(v.to_string()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<AsnValue, E> {
                Ok(AsnValue::Text(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl AsnValue {
    /// The ASN, or a message saying why it is not one.
    pub fn resolve(&self) -> Result<u32, ValueError> {
        let n: i64 = match self {
            AsnValue::Number(n) => *n,
            AsnValue::Text(s) => {
                let digits = s
                    .strip_prefix("AS")
                    .or_else(|| s.strip_prefix("as"))
                    .unwrap_or(s);
                digits
                    .parse()
                    .map_err(|_| format!("`{s}` is not an ASN; write it as a number like 64496"))?
            }
        };
        if n <= 0 || n > u32::MAX as i64 {
            return Err(ValueError(format!(
                "ASN {n} is out of range; ASNs are 1 to 4294967295 (0 is reserved)"
            )));
        }
        if n == 23456 {
            return Err(
                "ASN 23456 is AS_TRANS, a placeholder for 4-byte ASNs; write the real ASN".into(),
            );
        }
        Ok(n as u32)
    }
}

/// Resolves a list of ASNs, reporting each bad or repeated one at its position.
pub(super) fn resolve_asns(list: &[Spanned<AsnValue>], errors: &mut Vec<Located>) -> Vec<u32> {
    let mut out = Vec::with_capacity(list.len());
    for value in list {
        match value.value.resolve() {
            Ok(asn) if out.contains(&asn) => errors.push(Located::at(
                &value.referenced,
                format!("AS{asn} is listed twice"),
            )),
            Ok(asn) => out.push(asn),
            Err(msg) => errors.push(Located::at(&value.referenced, msg.to_string())),
        }
    }
    out
}
