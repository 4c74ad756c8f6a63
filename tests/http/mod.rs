//! The HTTP server of a running service: tokens, TLS, connection limits, the alert page and the
//! alert log lines.

mod alert_history;
mod limits;
mod pages;
mod security;
