//! The command line without a running service: `bgpsentry check`.

mod check;
mod check_rpki;
