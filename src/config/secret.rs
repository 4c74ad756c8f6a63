//! Secrets named in the config by where they live (an environment variable or a file), never
//! written into it, and never shown in logs, errors or `Debug` output.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

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
    pub fn read(&self) -> Result<Secret, String> {
        if let Some(msg) = self.shape_error() {
            return Err(msg.to_string());
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
            return Err(match (&self.env, &self.file) {
                (Some(var), _) => format!("the environment variable {var} is empty"),
                (_, Some(path)) => format!("the secret file {} is empty", path.display()),
                _ => "the secret is empty".to_string(),
            });
        }
        Ok(Secret(value))
    }
}

/// Replaces the value of every `api_key=` query parameter, so that a URL can be logged.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(pos) = rest.find("api_key=") {
        let (head, tail) = rest.split_at(pos + "api_key=".len());
        out.push_str(head);
        out.push_str("REDACTED");
        rest = tail.find('&').map(|i| &tail[i..]).unwrap_or("");
    }
    out.push_str(rest);
    out
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
        assert!(src.read().unwrap_err().contains("is empty"));
        let both = SecretSource {
            env: Some("X".into()),
            file: Some(path),
        };
        assert!(both.read().is_err());
        let missing = SecretSource {
            env: Some("BGPSENTRY_TEST_SURELY_UNSET_VARIABLE".into()),
            file: None,
        };
        let err = missing.read().unwrap_err();
        assert!(
            err.contains("BGPSENTRY_TEST_SURELY_UNSET_VARIABLE is not set"),
            "{err}"
        );
    }
}
