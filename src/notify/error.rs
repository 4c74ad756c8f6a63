//! The notifier's errors, one type per failure a caller handles differently: a channel that
//! cannot be built from its configuration ([`ChannelError`]), one delivery attempt that
//! failed ([`SendError`]), and the outbox's storage ([`super::outbox::OutboxError`]). None of
//! their texts holds a secret: URLs are redacted and secrets are named by where they live.

use std::fmt;

/// Why one delivery attempt failed; the text is free of secrets. The worker retries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub String);

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SendError {}

/// Why a channel cannot be built: a secret that cannot be read, a URL or address that does
/// not parse, a template that does not compile. Says which channel (once known) and what to
/// fix, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelError {
    /// `FILE:LINE:COLUMN` of the channel's entry, once known.
    at: Option<String>,
    channel: Option<String>,
    reason: String,
}

impl ChannelError {
    /// A problem with the channel being built.
    pub fn new(reason: impl Into<String>) -> Self {
        ChannelError {
            at: None,
            channel: None,
            reason: reason.into(),
        }
    }

    /// The same problem, located at the channel's entry in the config file.
    pub fn at(mut self, file: &std::path::Path, entry: &serde_saphyr::Location) -> Self {
        self.at = Some(format!(
            "{}:{}:{}",
            file.display(),
            entry.line(),
            entry.column()
        ));
        self
    }

    /// The same problem, naming the channel.
    pub fn in_channel(mut self, name: &str) -> Self {
        self.channel = Some(name.to_string());
        self
    }

    /// The channel it is about, if known.
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        match &self.channel {
            Some(name) => write!(f, "channel `{name}`: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for ChannelError {}

impl From<String> for ChannelError {
    fn from(reason: String) -> Self {
        ChannelError::new(reason)
    }
}

impl From<&str> for ChannelError {
    fn from(reason: &str) -> Self {
        ChannelError::new(reason)
    }
}
