//! `bgpsentry run` as a whole: HTTP API, baselines, RPKI, reload, stop, memory and the soak.

mod baselines;
mod http;
mod memory;
mod reload;
mod rpki;
mod soak;
mod stop;
