//! The command line: `run`, `check`, `replay`, `stream`, `import-bgpalerter`, `generate`,
//! `notify`, `baseline`, `ack`, `silence`, `healthcheck`, `relay`.

mod baseline;
mod check;
mod generate;
mod healthcheck;
mod import_bgpalerter;
mod notify;
mod relay;
mod replay;
mod run;
mod stream;
mod triage;

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::filter::{LevelFilter, Targets};

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigErrors};

/// BGP hijack and route-change monitor.
#[derive(Debug, Parser)]
#[command(name = "bgpsentry", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: consume the configured feeds, raise alerts, serve HTTP.
    Run(run::RunArgs),
    /// Validate a config file; exit 1 and print every error as FILE:LINE:COLUMN: message.
    Check(check::CheckArgs),
    /// Replay MRT update files through the rules and print every alert transition.
    Replay(replay::ReplayArgs),
    /// Print a live feed's messages for some prefixes (bgproutes or RIS Live), in the
    /// reference client's pipe format or as JSON lines.
    Stream(stream::StreamArgs),
    /// Convert a BGPalerter prefixes.yml into a bgpsentry config, reporting what has no
    /// equivalent.
    ImportBgpalerter(import_bgpalerter::ImportArgs),
    /// List the prefixes some ASNs originate in an MRT table dump, with their upstreams, as a
    /// ready config.
    Generate(generate::GenerateArgs),
    /// Notification tools: `notify test --channel NAME` sends a sample alert.
    Notify(notify::NotifyArgs),
    /// Baselines of a running service: `baseline list`, `baseline accept PREFIX --origin ASN
    /// | --upstream ASN` (through its HTTP API).
    Baseline(baseline::BaselineArgs),
    /// Acknowledge a firing alert of a running service (no more reminders for it):
    /// `ack ID --by NAME --comment TEXT`, or `ack ID --remove` (through its HTTP API).
    Ack(triage::AckArgs),
    /// Silences of a running service: `silence add --rule R --prefix P ... --duration 2h`,
    /// `silence list`, `silence rm ID` (through its HTTP API).
    Silence(triage::SilenceArgs),
    /// Scale-out: read the configured feeds and write the routes of the watched prefixes to the
    /// internal Kafka topic (`relay:`), partitioned by watched prefix, for `run` instances.
    Relay(relay::RelayArgs),
    /// Probe a running service's /healthz (or /readyz with --ready): exit 0 when it answers
    /// 200, else 1. For container health checks.
    Healthcheck(healthcheck::HealthcheckArgs),
}

/// Where the config comes from, shared by the subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Config file (YAML). Without it, `bgpsentry.yml` in the current directory is used if it
    /// exists, else the built-in default (RIS Live, watching the RIPE RIS beacons).
    #[arg(short, long, env = "BGPSENTRY_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The built-in config, identical to `deploy/bgpsentry.example.yml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/bgpsentry.example.yml");

impl ConfigArg {
    /// Loads the chosen config.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        match &self.config {
            Some(path) => Config::load(path),
            None => {
                let local = PathBuf::from("bgpsentry.yml");
                if local.exists() {
                    Config::load(&local)
                } else {
                    Config::parse(DEFAULT_CONFIG, &PathBuf::from("<built-in default config>"))
                }
            }
        }
    }
}

impl ConfigArg {
    /// Loads the chosen config for `run` and `check`: a file (not the built-in default) must
    /// watch something.
    pub fn load_watched(&self) -> Result<Config, ConfigErrors> {
        match &self.config {
            Some(path) => Config::load_watched(path),
            None => {
                let local = PathBuf::from("bgpsentry.yml");
                if local.exists() {
                    Config::load_watched(&local)
                } else {
                    self.load()
                }
            }
        }
    }
}

/// A single-threaded async runtime for the short-lived commands, or the error to exit with.
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// Writes generated text to `output` (refusing to overwrite an existing file unless `force`),
/// or to stdout.
fn write_output(output: Option<&std::path::Path>, force: bool, text: &str) -> ExitCode {
    match output {
        Some(out) => {
            if out.exists() && !force {
                eprintln!(
                    "error: {} exists; pass --force to overwrite it",
                    out.display()
                );
                return ExitCode::FAILURE;
            }
            if let Err(e) = std::fs::write(out, text) {
                eprintln!("error: cannot write {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Replay(args) => replay::replay(args),
        Command::Stream(args) => stream::stream(args),
        Command::ImportBgpalerter(args) => import_bgpalerter::import(args),
        Command::Generate(args) => generate::run(args),
        Command::Notify(args) => notify::notify(args),
        Command::Baseline(args) => baseline::baseline(args),
        Command::Ack(args) => triage::ack(args),
        Command::Silence(args) => triage::silence(args),
        Command::Healthcheck(args) => healthcheck::healthcheck(args),
        Command::Relay(args) => relay::relay(args),
    }
}

/// A filter every log subscriber adds on top of the user's (`RUST_LOG`, `-vvv`): the WebSocket
/// library logs each handshake request at trace level, and for bgproutes.io that request line
/// carries the API key in its query. No log level may show a secret, so those targets stop at
/// debug whatever the user asks for.
pub fn secret_safe_targets() -> Targets {
    secret_safe_targets_up_to(LevelFilter::TRACE)
}

/// [`secret_safe_targets`] passing nothing more verbose than `cap` (the user's filter's most
/// verbose level), which drops nothing the user's filter would keep. The subscriber's level
/// hint is the most verbose level of its layers, and the `log` records of dependencies
/// (tungstenite logs every frame it reads) are built and offered to the subscriber whenever
/// that hint lets them through; with this layer at `TRACE` that was every one.
pub fn secret_safe_targets_up_to(cap: LevelFilter) -> Targets {
    Targets::new()
        .with_default(cap)
        .with_target("tungstenite", LevelFilter::DEBUG.min(cap))
        .with_target("tokio_tungstenite", LevelFilter::DEBUG.min(cap))
}
