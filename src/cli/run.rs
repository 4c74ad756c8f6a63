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
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// An MRT table dump (RIB) to load at start: its routes become the route state, and
    /// prefixes in learning mode learn their origins and upstreams from it.
    #[arg(long)]
    rib: Option<std::path::PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

/// Starts logging and the service; exit 1 on config or start-up errors.
pub fn run(args: RunArgs) -> ExitCode {
    init_logging(args.log_json);
    let cfg = match args.config.load() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
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

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let safe = super::secret_safe_targets();
    if json {
        let _ = builder.json().finish().with(safe).try_init();
    } else {
        let _ = builder.finish().with(safe).try_init();
    }
}
