//! Every integration test, in one test binary (one link step instead of one per file), with a
//! module per area. Shared helpers live in `util`: the fixture paths, polling, and `Service`,
//! the one way to start the real `bgpsentry` binary.
//!
//! Run one area with `cargo test --test tests feeds::`, one test by its name.

mod util;

mod cli;
mod detect;
mod feeds;
mod http;
mod notify;
mod promkit;
mod replay;
mod scale_out;
mod service;
mod store;
mod surfaces;
