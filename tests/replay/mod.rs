//! `bgpsentry replay` on real MRT files, good and damaged.

mod bad_input;
mod mrt;
mod progress;
