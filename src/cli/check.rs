//! `bgpsentry check`: validate a config file.

use std::process::ExitCode;

use super::ConfigArg;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
}

/// Prints a one-line summary and exits 0, or prints every error and exits 1.
pub fn check(args: CheckArgs) -> ExitCode {
    match args.config.load() {
        Ok(cfg) => {
            println!(
                "{}: OK, {} watched prefixes, {} feeds",
                cfg.source.display(),
                cfg.prefixes.len(),
                cfg.feeds.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}
