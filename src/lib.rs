//! bgpsentry: a BGP hijack and route-change monitor.
//!
//! Data flows one way: [`feeds`] turn BGP data into [`event::FeedEvent`]s; the [`engine`] keeps
//! route state and raises [`alerts`]; the alert book feeds the [`http`] API and the notifier.

pub mod alerts;
pub mod cli;
pub mod config;
pub mod engine;
pub mod event;
pub mod feeds;
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod replay;
pub mod rpki;
pub mod service;
pub mod store;
