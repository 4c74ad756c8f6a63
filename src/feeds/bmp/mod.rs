//! The `bmp` feed: the operator's own routers as vantage points, over BMP (RFC 7854, with the
//! Adj-RIB-Out of RFC 8671 and the Loc-RIB of RFC 9069).
//!
//! Routers connect to a [`listener`]; each connection's bytes are cut into messages by the
//! [`frame`] reader, a [`session`] per router keeps its peers and routes, and [`convert`] turns
//! a Route Monitoring message into route events (on its own, for any other BMP source).
//! A vantage point is router + peer + RIB kind. [`stream`] is what `bgpsentry stream --feed
//! bmp` reads; [`metrics`] are the per-router series.

pub mod convert;
pub mod frame;
pub mod listener;
pub mod metrics;
pub mod session;
pub mod stream;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::FeedConfig;
use crate::feeds::FeedContext;
use crate::feeds::handle::FeedHandle;

/// Starts the listener of a `bmp` feed.
pub fn spawn(name: String, cfg: &FeedConfig, ctx: FeedContext) -> JoinHandle<()> {
    let feed: Arc<str> = name.as_str().into();
    let handle = FeedHandle::new(ctx, &name, feed, "bmp");
    let settings = cfg.bmp_settings();
    tokio::spawn(async move {
        match settings {
            Some(s) => listener::run(handle, s).await,
            // Validation refuses such a config; this is only reached if it did not.
            None => warn!(feed = %name, "the bmp feed has no valid `listen:`; it does not start"),
        }
    })
}

#[cfg(test)]
mod tests;
