//! The command line: `run`, `check`, `replay`.

mod check;
mod notify;
mod replay;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Notification tools: `notify test --channel NAME` sends a sample alert.
    Notify(notify::NotifyArgs),
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

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Replay(args) => replay::replay(args),
        Command::Notify(args) => notify::notify(args),
    }
}
