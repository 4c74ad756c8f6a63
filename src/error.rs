//! The error story: what fails where, and how each layer tells it.
//!
//! Every layer has its own documented error types (below), built with `thiserror`, so that a
//! caller can match on what went wrong; no layer hands another a bare `String`. Only the top
//! of the process (the CLI and the service's start-up in [`crate::service`]) gathers them into
//! `anyhow::Error`, adds what was being done, and prints the chain once. Every message says
//! what went wrong and what to do, and never holds a secret: URLs are passed through
//! [`crate::config::redact_url`] and keys are scrubbed before a message is built.
//!
//! | layer | type | what happens to it |
//! |---|---|---|
//! | config | [`ConfigErrors`] (each a [`ConfigError`] with `FILE:LINE:COLUMN`); [`ValueError`] for one value read outside a file (an ASN on the command line, a secret's source) | `check` prints all of them; a start fails; a reload is refused and the old config stays |
//! | feeds, input | [`Invalid`] with its [`InvalidReason`] | the message is dropped, counted in `bgpsentry_invalid_input_total{reason}`, logged at debug; the feed goes on |
//! | feeds, connection | [`FeedErrorReason`] | counted in `bgpsentry_feed_errors_total{reason}`, logged, retried with backoff |
//! | feeds, library clients | [`ClientError`] (bgproutes.io), [`RisLiveError`] | returned to the caller (`bgpsentry stream`) |
//! | engine | [`AcceptError`] | answered to the operator who asked (HTTP 4xx, `baseline accept`) |
//! | RPKI | [`LoadError`] | logged and counted; the data loaded before stays in use |
//! | store | [`StoreError`] | at start: the start fails with what to do; while running: counted in `bgpsentry_store_errors_total`, retried, and the service stops if the store thread dies |
//! | notify, set-up | [`ChannelError`] (a channel that cannot be built, with its position) | a start fails; a reload is refused and the running channels stay |
//! | notify, delivery | [`SendError`] | retried with backoff from the durable outbox, counted by result; never dropped silently |
//!
//! A panic is a bug: worker threads are watched, and a thread that ends early stops the
//! service with an error so that its manager restarts it.

pub use crate::config::{ConfigError, ConfigErrors, ValueError};
pub use crate::engine::AcceptError;
pub use crate::feeds::bgproutes::ClientError;
pub use crate::feeds::error::{FeedErrorReason, Invalid, InvalidReason};
pub use crate::feeds::ris_live::stream::RisLiveError;
pub use crate::notify::{ChannelError, SendError};
pub use crate::rpki::LoadError;
pub use crate::store::StoreError;
