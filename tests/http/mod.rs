//! The HTTP server of a running service: tokens, TLS, connection limits, the alert page, the
//! alert log lines, acknowledging and silencing.

mod alert_history;
mod limits;
mod pages;
mod security;
mod triage;
