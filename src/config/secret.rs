//! Secrets named in the config by where they live (an environment variable or a file), never
//! written into it, and never shown in logs, errors or `Debug` output.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::ValueError;

/// Where a secret comes from: exactly one of `env` or `file`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Name of an environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// Path of a file holding the secret (surrounding whitespace is trimmed).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// A secret value. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretSource {
    /// A message when the source is not exactly one of `env` or `file`.
    pub fn shape_error(&self) -> Option<&'static str> {
        match (&self.env, &self.file) {
            (Some(_), Some(_)) => Some("give either `env` or `file`, not both"),
            (None, None) => Some("give `env: VARIABLE` or `file: PATH`"),
            _ => None,
        }
    }

    /// Reads the secret. The error names the variable or file, never the value.
    pub fn read(&self) -> Result<Secret, ValueError> {
        if let Some(msg) = self.shape_error() {
            return Err(msg.into());
        }
        let value = match (&self.env, &self.file) {
            (Some(var), _) => std::env::var(var).map_err(|_| {
                format!(
                    "the environment variable {var} is not set (or not UTF-8); set it to the secret"
                )
            })?,
            (_, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?,
            (None, None) => unreachable!("checked by shape_error"),
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(ValueError(match (&self.env, &self.file) {
                (Some(var), _) => format!("the environment variable {var} is empty"),
                (_, Some(path)) => format!("the secret file {} is empty", path.display()),
                _ => "the secret is empty".to_string(),
            }));
        }
        Ok(Secret(value))
    }
}

/// Makes text fit for logs and errors: a URL, or a message quoting URLs, with the secrets
/// URLs carry taken out. Two kinds of URL carry secrets:
///
/// - feed APIs take their key as an `api_key=` query parameter: its value becomes
///   `REDACTED`, and the rest of the URL stays (its path says which call failed);
/// - chat and webhook URLs hold their key anywhere in the path or query: so any other URL
///   keeps only its scheme, host and port, and `/…` stands for the path and query it had.
///
/// User information (`user:password@`) is always dropped. Text around URLs is unchanged.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let scheme_start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let after = &rest[sep + 3..];
        let len = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .unwrap_or(after.len());
        out.push_str(&rest[..scheme_start]);
        redact_one(&rest[scheme_start..sep], &after[..len], &mut out);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Appends one redacted URL, given its scheme and what follows `://`.
fn redact_one(scheme: &str, tail: &str, out: &mut String) {
    let authority_len = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let (authority, path) = tail.split_at(authority_len);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(host);
    if path.contains("api_key=") {
        let mut rest = path;
        while let Some(pos) = rest.find("api_key=") {
            let (head, value) = rest.split_at(pos + "api_key=".len());
            out.push_str(head);
            out.push_str("REDACTED");
            rest = value.find('&').map_or("", |i| &value[i..]);
        }
        out.push_str(rest);
    } else if !path.is_empty() && path != "/" {
        out.push_str("/…");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn reading_from_file_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let src = SecretSource {
            env: None,
            file: Some(path.clone()),
        };
        assert_eq!(src.read().unwrap().expose(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(src.read().unwrap_err().to_string().contains("is empty"));
        let both = SecretSource {
            env: Some("X".into()),
            file: Some(path),
        };
        assert!(both.read().is_err());
        let missing = SecretSource {
            env: Some("BGPSENTRY_TEST_SURELY_UNSET_VARIABLE".into()),
            file: None,
        };
        let err = missing.read().unwrap_err().to_string();
        assert!(
            err.contains("BGPSENTRY_TEST_SURELY_UNSET_VARIABLE is not set"),
            "{err}"
        );
    }

    #[test]
    fn urls_lose_their_secrets() {
        // A chat webhook's key is in its path; the query may hold one too.
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/SECRET?x=1"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:9093"), "http://127.0.0.1:9093");
        assert_eq!(
            redact_url("http://127.0.0.1:9093/"),
            "http://127.0.0.1:9093"
        );
        assert_eq!(redact_url("https://h?token=SECRET"), "https://h/…");
        assert_eq!(redact_url("https://user:SECRET@h/"), "https://h");
        // A feed API's key is a query parameter; the path stays, to say which call failed.
        assert_eq!(
            redact_url("wss://h/?api_key=SECRET"),
            "wss://h/?api_key=REDACTED"
        );
        assert_eq!(
            redact_url("https://h/update_live_prefixes?api_key=SECRET&new_pfxs=1.0.0.0/8"),
            "https://h/update_live_prefixes?api_key=REDACTED&new_pfxs=1.0.0.0/8"
        );
        // URLs quoted in a message; the rest of the message stays.
        assert_eq!(
            redact_url(
                "error sending request (https://h/x/SECRET): refused; see wss://g/?api_key=K&a=1 now"
            ),
            "error sending request (https://h/…): refused; see wss://g/?api_key=REDACTED&a=1 now"
        );
        assert_eq!(redact_url("no url here"), "no url here");
        let out = redact_url("a https://h/SECRET b http://i/SECRET c");
        assert!(!out.contains("SECRET"), "{out}");
    }
}
