//! The HTTP server of a running service: tokens, TLS, connection limits, the alert page, the
//! alert log lines, acknowledging and silencing.

mod limits;
mod pages;
mod security;
mod triage;
