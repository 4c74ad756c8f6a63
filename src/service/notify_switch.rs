//! Applies the `notify:` section of a reloaded config to the running notifier: builds the
//! new channels first (a failure leaves the running ones in place and rejects the reload),
//! then switches the notifier over, or starts one when the first channels appear.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::config::Config;
use crate::notify::metrics::NotifyMetrics;
use crate::notify::{Notifier, NotifierSink, build_channels, open_outbox};

/// A reloaded config for the notifier; `verdict` answers once the channels are built (or
/// could not be), before the switch, so the reload is counted as accepted or rejected whole.
pub(super) struct NotifyUpdate {
    pub cfg: Arc<Config>,
    pub verdict: oneshot::Sender<Result<(), String>>,
}

/// Asks the sink task to start handing transitions to a notifier started by a reload; `done`
/// answers once it does.
pub(super) struct Install {
    pub sink: NotifierSink,
    pub done: oneshot::Sender<()>,
}

/// Owns the notifier while the service runs.
pub(super) struct Switch {
    pub notifier: Option<Notifier>,
    /// Registered once; every notifier of this process uses them.
    pub metrics: NotifyMetrics,
    pub install: mpsc::UnboundedSender<Install>,
    /// Tells the store thread that alert events now wait for the notifier's hand-over.
    pub notifier_running: Arc<AtomicBool>,
    /// Acknowledgements and silences, for a notifier started by a reload.
    pub triage: crate::triage::Triage,
}

impl Switch {
    /// Applies updates until their sender goes (at shutdown); returns the notifier, for the
    /// service to stop once the sinks are done.
    pub async fn run(
        mut self,
        mut updates: mpsc::UnboundedReceiver<NotifyUpdate>,
    ) -> Option<Notifier> {
        while let Some(u) = updates.recv().await {
            let channels = match build_channels(&u.cfg) {
                Ok(c) => c,
                Err(e) => {
                    let _ = u.verdict.send(Err(e.to_string()));
                    continue;
                }
            };
            match &mut self.notifier {
                Some(n) => {
                    let _ = u.verdict.send(Ok(()));
                    // With no channels left it keeps running: alert events are handed over at
                    // once, and it still knows the firing alerts if channels come back.
                    n.reconfigure(&u.cfg, channels).await;
                }
                None if channels.is_empty() => {
                    let _ = u.verdict.send(Ok(()));
                }
                None => {
                    let count = channels.len();
                    let started = open_outbox(&u.cfg).and_then(|outbox| {
                        Notifier::launch(
                            &u.cfg,
                            self.metrics.clone(),
                            channels,
                            outbox,
                            self.triage.clone(),
                        )
                    });
                    let n = match started {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = u
                                .verdict
                                .send(Err(format!("cannot start the notifier: {e}")));
                            continue;
                        }
                    };
                    let _ = u.verdict.send(Ok(()));
                    let (done, installed) = oneshot::channel();
                    if self
                        .install
                        .send(Install {
                            sink: n.sink(),
                            done,
                        })
                        .is_ok()
                    {
                        let _ = installed.await;
                    }
                    // Only now: an event saved as waiting before the sink was in place would
                    // wait for a hand-over nobody makes.
                    self.notifier_running.store(true, Ordering::Release);
                    info!("notifier started with {count} channels");
                    self.notifier = Some(n);
                }
            }
        }
        self.notifier
    }
}
