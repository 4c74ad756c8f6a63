//! `bgpsentry notify test --channel NAME`: sends a sample alert through one channel, now,
//! bypassing routing and the outbox, and says whether it arrived.

use std::process::ExitCode;

use super::ConfigArg;
use crate::notify::channel::Channel;
use crate::notify::{EventKind, NotifyEvent, base_url, new_delivery_id, sample_alert};

/// Arguments of `notify`.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// What to do.
    #[command(subcommand)]
    action: NotifyAction,
}

/// The `notify` subcommands.
#[derive(Debug, clap::Subcommand)]
enum NotifyAction {
    /// Send a sample alert through a channel to check its setup.
    Test {
        #[command(flatten)]
        config: ConfigArg,
        /// The channel's `name` in `notify.channels`.
        #[arg(long)]
        channel: String,
    },
}

/// Runs `notify`; exit 1 when the sample cannot be delivered.
pub fn notify(args: NotifyArgs) -> ExitCode {
    let NotifyAction::Test { config, channel } = args.action;
    let cfg = match config.load() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let Some(ch_cfg) = cfg.notify.channel(&channel) else {
        let names: Vec<&str> = cfg.notify.channels.iter().map(|c| c.name()).collect();
        eprintln!(
            "error: no channel named `{channel}` in {}; configured channels: {}",
            cfg.source.display(),
            if names.is_empty() {
                "none (add them under notify.channels)".to_string()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::FAILURE;
    };
    let runtime = match super::current_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let ch = Channel::build(ch_cfg, &cfg.notify, &base_url(&cfg)).map_err(|e| e.to_string())?;
        let id = new_delivery_id();
        let events = [NotifyEvent::new(EventKind::Fired, sample_alert(&cfg))];
        ch.send(&id, &events)
            .await
            .map(|()| id)
            .map_err(|e| format!("channel `{channel}`: {e}"))
    });
    match result {
        Ok(id) => {
            println!(
                "sent a sample alert through channel `{channel}` ({}), delivery id {id}",
                ch_cfg.kind().as_str()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}; check the channel's settings and that its server is reachable");
            ExitCode::FAILURE
        }
    }
}
