//! The HTTP server of a running service: tokens, TLS and connection limits.

mod limits;
mod security;
