//! Secrets of a channel (a URL, a signing secret, an SMTP password) read from where the
//! config says they live: an environment variable or a file.

use std::path::Path;

use super::error::ChannelError;

/// Reads a secret from an environment variable or a file (trailing newline removed); `None`
/// when neither is configured. The error names the variable or file, never the value.
pub fn read_secret(
    env: Option<&str>,
    file: Option<&Path>,
    what: &str,
) -> Result<Option<String>, ChannelError> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(ChannelError::new(format!(
                "the {what} is to come from environment variable {var}, which is not set; export it or use a file"
            ))),
        };
    }
    if let Some(path) = file {
        return match std::fs::read_to_string(path) {
            Ok(v) => {
                let v = v.trim_end_matches(['\r', '\n']).to_string();
                if v.is_empty() {
                    Err(ChannelError::new(format!(
                        "the {what} file {} is empty",
                        path.display()
                    )))
                } else {
                    Ok(Some(v))
                }
            }
            Err(e) => Err(ChannelError::new(format!(
                "cannot read the {what} file {}: {e}",
                path.display()
            ))),
        };
    }
    Ok(None)
}
