//! The command line: `bgpsentry check`, and what `bgpsentry run` says when it starts.

mod check;
mod check_errors;
mod check_rpki;
mod first_run;
