//! How the service stops: on SIGINT or SIGTERM, or when a worker thread dies, the feeds stop,
//! the engine and the store drain, the publish stage empties and the notifier gets what is
//! left of a bounded stop; a watchdog ends the process if that bound is passed after all.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::feeds::Batch;
use crate::feeds::queue::EventSender;
use crate::metrics::Metrics;

use super::pipeline::Pipeline;
use super::{NOTIFIER_GRACE, NOTIFIER_GRACE_MARGIN, NOTIFIER_ROUTE, STOP_WITHIN, TICK};

impl Pipeline {
    /// Runs until a signal or a worker thread's death, then stops everything in order. An
    /// error means a thread died, so that the service manager restarts the service.
    pub async fn run_until_stopped(self, shutdown: watch::Sender<bool>) -> anyhow::Result<()> {
        let Pipeline {
            switch,
            feeds,
            tick,
            server,
            engine_thread,
            store_thread,
            publish,
            engine_ended,
            store_ended,
        } = self;
        let died = tokio::select! {
            _ = wait_for_signal() => None,
            _ = engine_ended => Some("engine"),
            _ = store_ended => Some("store"),
        };
        match died {
            Some(which) => error!(
                "the {which} thread stopped unexpectedly (see the error above); shutting down so \
                 that the service can be restarted"
            ),
            None => info!("shutting down"),
        }
        let stop_started = Instant::now();
        stop_deadline_watchdog();
        let _ = shutdown.send(true);
        // The reload watcher stops at once, so the switch ends and hands the notifier back; its
        // routing is bounded from now, while the engine and the store drain.
        let notifier = match switch.await {
            Ok(n) => n,
            Err(e) => {
                error!("the notifier switch failed: {e}");
                None
            }
        };
        if let Some(n) = &notifier {
            n.stop_routing_at(stop_started + NOTIFIER_ROUTE);
        }
        let _ = feeds.await;
        let _ = tick.await;
        match server.await {
            Ok(Err(e)) => error!("HTTP server failed: {e}"),
            Err(e) => error!("HTTP server task failed: {e}"),
            Ok(Ok(())) => {}
        }
        // The feeds have stopped and dropped their senders: the engine drains its queue, saves
        // the rest and ends; the store writes it; then every transition is published.
        if engine_thread.join().is_err() {
            error!("the engine thread panicked");
        }
        debug!("stopping: engine done after {:?}", stop_started.elapsed());
        if store_thread.join().is_err() {
            error!("the store thread panicked");
        }
        debug!("stopping: store written after {:?}", stop_started.elapsed());
        let _ = publish.await;
        if let Some(n) = notifier {
            let left = STOP_WITHIN
                .saturating_sub(stop_started.elapsed())
                .saturating_sub(NOTIFIER_GRACE_MARGIN)
                .min(NOTIFIER_GRACE);
            n.shutdown_within(left).await;
            debug!("stopping: notifier done after {:?}", stop_started.elapsed());
        }
        if let Some(which) = died {
            anyhow::bail!("the {which} thread stopped unexpectedly");
        }
        info!("stopped");
        Ok(())
    }
}

/// Ends the process if a stop takes longer than [`STOP_WITHIN`] after all (a store that
/// cannot be written, say): better exit than be killed by the service manager half-way. What
/// was committed is safe either way, and alert events not yet in the outbox are queued at the
/// next start.
fn stop_deadline_watchdog() {
    let spawned = std::thread::Builder::new()
        .name("stop-deadline".into())
        .spawn(|| {
            std::thread::sleep(STOP_WITHIN);
            error!(
                "the stop did not finish within {} s; exiting now. What was committed is in \
                 the store; the next start queues the alert events not yet notified",
                STOP_WITHIN.as_secs()
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        warn!("cannot bound the stop ({e}); it may take longer than {STOP_WITHIN:?}");
    }
}

/// Wakes the engine when nothing else does, until shutdown.
pub(super) async fn tick(
    events: EventSender,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let feed: Arc<str> = "tick".into();
    loop {
        // Read here too, not only when the engine takes a batch: an engine held up by the store
        // takes none, and the gauge must show the queue filling meanwhile.
        metrics.engine_queue_events.set(events.events() as i64);
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let batch = Batch {
            feed: feed.clone(),
            events: Vec::new(),
            received: std::time::Instant::now(),
            checkpoint: None,
        };
        // A full queue means the engine is busy anyway.
        let _ = events.try_send(batch);
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM ({e}); stop with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
