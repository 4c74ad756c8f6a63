//! RIPE RIS Live: the [`parser`] of its frames (with the serde shapes of a frame in `frame`),
//! the service's feed ([`connection`]: subscribe, reconnect, resubscribe) and what
//! `bgpsentry stream` prints ([`stream`]).

pub mod connection;
mod frame;
pub mod parser;
pub mod stream;

pub use connection::{DEFAULT_CLIENT, DEFAULT_URL, spawn};
