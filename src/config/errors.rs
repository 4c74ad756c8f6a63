//! Config errors that point at the file, line and column of the offending value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

/// One problem, with its position in the file (line 0 when the problem is not at one place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line, 0 if unknown.
    pub line: u64,
    /// 1-based column, 0 if unknown.
    pub column: u64,
    /// What is wrong and what to do.
    pub message: String,
}

impl Located {
    /// A problem at a YAML location.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        Located {
            line: location.line(),
            column: location.column(),
            message: message.into(),
        }
    }

    /// A problem with the file as a whole.
    pub fn nowhere(message: impl Into<String>) -> Self {
        Located {
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// A YAML syntax or shape error from the parser.
    pub fn from_yaml(err: &serde_saphyr::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let rendered = err.to_string();
        // The parser appends its own position; ours is already in front of the message.
        let message = rendered
            .split(" at line ")
            .next()
            .unwrap_or(&rendered)
            .trim()
            .to_string();
        Located {
            line,
            column,
            message: with_suggestion(explained(message)),
        }
    }
}

/// The parser's terse messages for a value of the wrong shape, with what to write instead.
fn explained(message: String) -> String {
    let hint = match message.as_str() {
        "invalid u8" => "expected a whole number from 0 to 255, without quotes or units",
        "invalid u16" => "expected a whole number from 0 to 65535, without quotes or units",
        "invalid u32" => "expected a whole number from 0 to 4294967295, without quotes or units",
        "invalid u64" | "invalid usize" => {
            "expected a whole number of 0 or more, without quotes or units"
        }
        "invalid i32" | "invalid i64" => "expected a whole number, without quotes or units",
        "invalid floating point" | "invalid f32" | "invalid f64" => {
            "expected a number, without quotes or units"
        }
        "invalid boolean" => "expected true or false",
        "expected sequence start" => "expected a list: one `- item` per line, or `[a, b]`",
        "expected mapping start" => "expected `key: value` lines (or `{key: value}`)",
        "expected string scalar" => "expected a single value, not a list or a mapping",
        _ => return message,
    };
    format!("{message}: {hint}")
}

/// A count or a duration written as `key` that must be at least 1: its value, the fallback
/// when it is not written, or 1 (with an error at its line) when it is 0, so that validation
/// goes on and reports every other problem too.
pub(super) fn at_least_one<T>(
    key: &str,
    written: Option<&Spanned<T>>,
    fallback: T,
    errors: &mut Vec<Located>,
) -> T
where
    T: Copy + PartialEq + From<u8>,
{
    match written {
        Some(v) if v.value == T::from(0) => {
            errors.push(Located::at(
                &v.referenced,
                format!("{key} must be at least 1"),
            ));
            T::from(1)
        }
        Some(v) => v.value,
        None => fallback,
    }
}

impl Located {
    /// Points an unknown-key error at the key itself. The parser reports a key it refuses
    /// inside a channel (read through a tagged enum, which buffers) at the start of the
    /// channel's mapping; the key is then found in `text` among that mapping's lines, at the
    /// mapping's column. Left as it is when the key is not found there (flow style).
    pub fn at_unknown_key(mut self, text: &str) -> Self {
        let Some(key) = self
            .message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        else {
            return self;
        };
        if self.line == 0 || self.column == 0 {
            return self;
        }
        let indent = (self.column - 1) as usize;
        for (i, line) in text.lines().enumerate().skip((self.line - 1) as usize) {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (Some(head), Some(rest)) = (line.get(..indent), line.get(indent..)) else {
                break;
            };
            // The mapping's lines: the first may start with `- `, the others are indented to
            // its column; anything else ends it.
            let first = i as u64 + 1 == self.line;
            if !head.chars().all(|c| c == ' ' || (first && c == '-')) {
                break;
            }
            let after = rest
                .strip_prefix(key)
                .or_else(|| rest.strip_prefix(&format!("\"{key}\"")));
            if after.is_some_and(|r| r.trim_start().starts_with(':')) {
                self.line = i as u64 + 1;
                return self;
            }
        }
        self
    }
}

/// Adds "did you mean" to an unknown-key or unknown-value message when one expected name is
/// close to what was written.
fn with_suggestion(message: String) -> String {
    let Some((head, expected)) = message.split_once(", expected one of ") else {
        return message;
    };
    let Some(written) = head.split('`').nth(1) else {
        return message;
    };
    let best = expected
        .split(", ")
        .map(|name| (strsim::damerau_levenshtein(written, name), name))
        .min();
    match best {
        Some((distance, name)) if distance <= 2 => format!("{message}; did you mean `{name}`?"),
        _ => message,
    }
}

/// One problem in one file: `FILE:LINE:COLUMN: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// Where in it, and what.
    pub problem: Located,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problem.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.problem.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.problem.line,
                self.problem.column,
                self.problem.message
            )
        }
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Errors of one file, sorted by position.
    pub fn new(file: &Path, mut problems: Vec<Located>) -> Self {
        problems.sort_by_key(|p| (p.line, p.column));
        ConfigErrors(
            problems
                .into_iter()
                .map(|problem| ConfigError {
                    file: file.to_path_buf(),
                    problem,
                })
                .collect(),
        )
    }

    /// A single error.
    pub fn single(file: &Path, problem: Located) -> Self {
        ConfigErrors::new(file, vec![problem])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A config value that cannot be used, found outside the file's parsing: an ASN written as
/// text, a secret that cannot be read, a store location that cannot be written. The text says
/// what is wrong and what to do, and never holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl From<String> for ValueError {
    fn from(message: String) -> Self {
        ValueError(message)
    }
}

impl From<&str> for ValueError {
    fn from(message: &str) -> Self {
        ValueError(message.to_string())
    }
}
