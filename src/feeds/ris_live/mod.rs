//! RIPE RIS Live: its parser, the service's feed and its `stream` output.
//!
//! The [`parser`] reads its frames (with the serde shapes of a frame in `frame`),
//! [`connection`] is the service's feed (subscribe, reconnect, resubscribe), and [`stream`] is
//! what `bgpsentry stream` prints.

pub mod connection;
mod frame;
pub mod parser;
pub mod stream;

pub use connection::{DEFAULT_CLIENT, DEFAULT_URL, spawn};
