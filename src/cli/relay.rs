//! `bgpsentry relay`: the relay of a scale-out deployment (docs/src/scale-out.md).

use std::net::SocketAddr;
use std::process::ExitCode;

use super::ConfigArg;

/// Arguments of `relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Serve `/metrics`, `/healthz` and `/readyz` on this address instead of the configured
    /// `relay.listen` (port 0 picks a free port; the address is logged).
    #[arg(long, value_parser = crate::config::parse_listen)]
    listen: Option<SocketAddr>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

/// Reads the config's feeds and writes the routes of its watched prefixes to `relay.topic`,
/// until a signal; exit 1 on config or start-up errors.
pub fn relay(args: RelayArgs) -> ExitCode {
    super::run::init_logging_with(args.log_json, "info");
    let cfg = match args.config.load_watched() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    if cfg.relay.is_none() {
        eprintln!(
            "error: {}: `bgpsentry relay` needs a `relay:` section naming the internal topic \
             (`relay: {{brokers: [host:9092], topic: bgpsentry-events}}`); see the book, \
             \"Scale-out on Kafka\"",
            cfg.source.display()
        );
        return ExitCode::FAILURE;
    }
    if cfg.feeds.is_empty() {
        eprintln!(
            "error: {}: `bgpsentry relay` has no feed to read; add the raw topics under `feeds:`",
            cfg.source.display()
        );
        return ExitCode::FAILURE;
    }
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
    match runtime.block_on(crate::relay::run(cfg, args.listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
