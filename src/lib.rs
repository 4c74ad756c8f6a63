//! bgpsentry: a BGP hijack and route-change monitor.
//!
//! The modules, in the order data flows through them. No module reaches back up this list,
//! except that every stage reads [`config`] and the [`event`] types and reports into
//! [`metrics`] and [`health`], the instruments `/metrics` and `/readyz` read.
//!
//! ```text
//!  collect            detect                   keep                tell
//!  feeds ──events──▶ engine ──transitions──▶ store (commit) ──▶ alert book ──▶ http
//!                      ▲ rpki                                  └──────────▶ notify
//! ```
//!
//! An alert is published (to the book, `/alerts`, `/metrics` and the notifier) only after the
//! store has committed it, so what anyone was told survives a crash.
//!
//! - **collect**: [`event`] the one normalised route event; [`feeds`] RIS Live, bgproutes.io
//!   and MRT files, each turned into events; [`replay`] MRT files through the engine.
//! - **detect**: [`engine`] route state per watched prefix and vantage point, and the
//!   detectors; [`rpki`] ROAs and ASPA records the detectors consult; [`alerts`] what the
//!   engine raises and the book of firing and resolved alerts.
//! - **keep**: [`store`] the embedded SQLite store (alerts, outbox, baselines, route state).
//! - **tell**: [`triage`] operators' acknowledgements and silences, which the next two read;
//!   [`http`] the API, `/metrics`, health and the status page; [`notify`] email,
//!   webhooks, chat and Alertmanager through a durable outbox.
//! - **beside the flow**: [`metrics`] and [`health`], which every stage writes and the HTTP
//!   server reads; [`proxy`], the HTTP proxy every outbound connection goes through.
//! - **run**: [`config`] the YAML file with `FILE:LINE:COLUMN` errors; [`service`] starts the
//!   flow, reloads the config and stops within a bound; [`relay`] the first stage of a
//!   scale-out deployment (feeds to the internal Kafka topic, instead of the engine); [`cli`]
//!   the command line; [`error`] the error types of every layer and what becomes of them;
//!   [`fuzzing`] entry points for hostile input.

// collect
pub mod event;
pub mod feeds;
pub mod replay;

// detect
pub mod alerts;
pub mod engine;
pub mod rpki;

// keep
pub mod store;

// tell
pub mod http;
pub mod notify;
pub mod triage;

// beside the flow
pub mod health;
pub mod metrics;
pub mod proxy;

// run
pub mod cli;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod relay;
pub mod service;
