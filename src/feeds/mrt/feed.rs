//! The `mrt` feed: replays MRT files once at start-up into the running service.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::reader::MrtReader;
use crate::feeds::{Batch, FeedContext};

/// Events per batch sent to the engine.
const BATCH: usize = 1024;

/// Reads the files on a blocking thread and sends their events to the engine.
pub fn spawn(name: String, files: Vec<PathBuf>, ctx: FeedContext) -> JoinHandle<()> {
    ctx.health.register(&name, "mrt");
    tokio::task::spawn_blocking(move || {
        let feed: Arc<str> = name.as_str().into();
        for file in &files {
            let mut reader = match MrtReader::open(file, &name, None) {
                Ok(r) => r,
                Err(e) => {
                    let msg = format!("cannot open MRT file {}: {e}", file.display());
                    warn!(feed = %name, "{msg}");
                    ctx.health.update(&name, |h| h.last_error = Some(msg));
                    continue;
                }
            };
            let mut events = Vec::with_capacity(BATCH);
            while let Some(result) = reader.next_record(&mut events) {
                if *ctx.shutdown.borrow() {
                    return;
                }
                if let Err(bad) = result {
                    warn!(feed = %name, "{bad}");
                    ctx.metrics
                        .invalid_input
                        .with_label_values(&[&name, bad.reason.as_str()])
                        .inc();
                }
                if events.len() >= BATCH {
                    let batch = Batch {
                        feed: feed.clone(),
                        events: std::mem::replace(&mut events, Vec::with_capacity(BATCH)),
                        received: Instant::now(),
                        checkpoint: None,
                    };
                    if ctx.events.blocking_send(batch).is_err() {
                        return;
                    }
                }
            }
            if !events.is_empty() {
                let batch = Batch {
                    feed: feed.clone(),
                    events,
                    received: Instant::now(),
                    checkpoint: None,
                };
                if ctx.events.blocking_send(batch).is_err() {
                    return;
                }
            }
            let stats = reader.stats();
            info!(feed = %name, file = %file.display(), records = stats.records,
                announcements = stats.announcements, withdrawals = stats.withdrawals, "MRT file replayed");
        }
        ctx.health.update(&name, |h| {
            h.connected = true;
            h.last_message = Some(crate::event::Timestamp::now());
        });
    })
}
