//! `bgpsentry run`: the service.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::ConfigArg;
use crate::service::{RunOptions, run as run_service};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Listen on this address instead of the configured `http.listen` (port 0 picks a free
    /// port; the address is logged).
    #[arg(long, value_parser = crate::config::parse_listen)]
    listen: Option<SocketAddr>,
    /// An MRT table dump (RIB) to load at start: its routes become the route state, and
    /// prefixes in learning mode learn their origins and upstreams from it.
    #[arg(long)]
    rib: Option<std::path::PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// More log detail: `-v` debug, `-vv` trace (of bgpsentry itself). `RUST_LOG` wins if set.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Less log: warnings and errors only. `RUST_LOG` wins if set.
    #[arg(short, long)]
    quiet: bool,
}

/// The log filter `-v`/`-q` ask for, used when `RUST_LOG` is not set.
fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "info,bgpsentry=debug",
        (false, _) => "info,bgpsentry=trace",
    }
}

/// Starts logging and the service; exit 1 on config or start-up errors.
pub fn run(args: RunArgs) -> ExitCode {
    init_logging_with(args.log_json, default_filter(args.verbose, args.quiet));
    let cfg = match args.config.load_watched() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    log_first_lines(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        listen: args.listen,
        rib: args.rib,
    };
    match runtime.block_on(run_service(cfg, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Says which config runs and what it watches, so that a first run explains itself.
fn log_first_lines(cfg: &crate::config::Config) {
    let feeds: Vec<String> = cfg.feeds.iter().map(|f| f.name()).collect();
    if cfg.source.exists() {
        tracing::info!(
            config = %cfg.source.display(),
            "config {}: {} watched prefixes, {} monitored ASNs, feeds: {}",
            cfg.source.display(),
            cfg.prefixes.len(),
            cfg.asns.len(),
            feeds.join(", ")
        );
    } else {
        tracing::info!(
            "no config file given and no bgpsentry.yml here: running the built-in default \
             ({} watched prefixes, the RIPE RIS routing beacons; feeds: {}). To watch your own \
             prefixes, write them to bgpsentry.yml (see deploy/bgpsentry.example.yml) or pass \
             --config FILE",
            cfg.prefixes.len(),
            feeds.join(", ")
        );
    }
}

/// Logs to stderr; `RUST_LOG` filters, else `default`.
pub(super) fn init_logging_with(json: bool, default: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let cap = filter
        .max_level_hint()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let safe = super::secret_safe_targets_up_to(cap);
    if json {
        let _ = builder.json().finish().with(safe).try_init();
    } else {
        let _ = builder.finish().with(safe).try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::default_filter;

    #[test]
    fn verbosity_flags_pick_the_filter() {
        assert_eq!(default_filter(0, false), "info");
        assert_eq!(default_filter(1, false), "info,bgpsentry=debug");
        assert_eq!(default_filter(3, false), "info,bgpsentry=trace");
        assert_eq!(default_filter(0, true), "warn");
    }
}
