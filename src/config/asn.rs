//! ASNs as written in a config: `18196`, `"18196"` or `"AS18196"`.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Located;

/// An ASN as written; checked by [`AsnValue::resolve`].
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AsnValue {
    /// A number.
    Number(i64),
    /// A string such as `AS18196`.
    Text(String),
}

impl AsnValue {
    /// The ASN, or a message saying why it is not one.
    pub fn resolve(&self) -> Result<u32, String> {
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
            return Err(format!(
                "ASN {n} is out of range; ASNs are 1 to 4294967295 (0 is reserved)"
            ));
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
            Err(msg) => errors.push(Located::at(&value.referenced, msg)),
        }
    }
    out
}
