//! The publish stage: alert transitions the store has committed reach the alert book (and so
//! `/alerts` and the status page), the alert metrics and the notifier, in commit order.

use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::alerts::{Alert, AlertBook, AlertFilter, AlertSink, AlertState, AlertTransition};
use crate::alerts::{Severity, TransitionKind};
use crate::metrics::Metrics;
use crate::notify::NotifierSink;
use crate::store::PendingEvent;

use super::latency::{self, Stamps};
use super::notify_switch::Install;
use super::store_thread::Committed;

/// Keeps the alert book and the alert metrics current.
struct BookSink {
    book: Arc<RwLock<AlertBook>>,
    metrics: Metrics,
}

impl AlertSink for BookSink {
    fn deliver(&mut self, t: &AlertTransition) {
        let mut book = self.book.write().unwrap_or_else(|p| p.into_inner());
        let was_critical = book
            .get(&t.alert.id)
            .is_some_and(|a| a.severity == Severity::Critical);
        book.apply(t);
        drop(book);
        log_transition(t, was_critical);
        match t.event {
            TransitionKind::Fired => self.metrics.alert_fired(&t.alert, false),
            TransitionKind::Resolved => self.metrics.alert_resolved(&t.alert),
            TransitionKind::HandedOver => self.metrics.alert_handed_over(&t.alert),
            TransitionKind::Updated => {}
        }
    }
}

/// One log line per fired, resolved or newly critical alert, so that the log alone tells what
/// happened: warn for critical alerts, info otherwise. Other updates (more VPs, a new sample)
/// are not logged: during an incident they come every second.
fn log_transition(t: &AlertTransition, was_critical: bool) {
    let a = &t.alert;
    let verb = match t.event {
        TransitionKind::Fired => "fired",
        TransitionKind::Resolved => "resolved",
        TransitionKind::HandedOver => "handed over",
        TransitionKind::Updated if a.severity == Severity::Critical && !was_critical => {
            "now critical"
        }
        TransitionKind::Updated => return,
    };
    let origin = a.origin.map(|o| format!("AS{o}"));
    let upstream = a.upstream.map(|u| format!("AS{u}"));
    let origin = origin.as_deref().unwrap_or("-");
    let upstream = upstream.as_deref().unwrap_or("-");
    // The sample is bounded, so the line is too.
    let seen_by = a
        .sample
        .iter()
        .map(|s| s.vantage_point.as_str())
        .collect::<Vec<_>>()
        .join(",");
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                alert_id = %a.id,
                rule = %a.rule,
                severity = %a.severity,
                prefix = %a.prefix,
                watched_prefix = %a.watched_prefix,
                origin,
                upstream,
                vantage_points = a.vantage_points,
                seen_by,
                "alert {verb}: {} {} (origin {origin}, upstream {upstream}, {} vantage points)",
                a.rule,
                a.prefix,
                a.vantage_points,
            )
        };
    }
    if a.severity == Severity::Critical && t.event != TransitionKind::Resolved {
        line!(warn);
    } else {
        line!(info);
    }
}

/// Where committed transitions go.
pub(super) struct Publisher {
    book: BookSink,
    notifier: Option<NotifierSink>,
}

impl Publisher {
    /// A publisher writing to `book` and the metrics, and to the notifier when one runs.
    pub fn new(
        book: Arc<RwLock<AlertBook>>,
        metrics: Metrics,
        notifier: Option<NotifierSink>,
    ) -> Self {
        Self {
            book: BookSink { book, metrics },
            notifier,
        }
    }

    /// Before anything new: the channels learn which alerts were firing at the restart (they
    /// were told before it, so reminders, re-pushes and resolutions carry on), alert events
    /// that never reached the outbox go out in their order, then what the restore decided.
    pub fn start_from(
        &mut self,
        was_firing: &[Alert],
        pending: &[PendingEvent],
        initial: &[AlertTransition],
    ) {
        if let Some(sink) = &mut self.notifier {
            sink.already_firing(was_firing.to_vec(), false);
            for p in pending {
                sink.deliver(&p.transition);
            }
        }
        for t in initial {
            self.deliver(t);
        }
    }

    fn deliver(&mut self, t: &AlertTransition) {
        self.deliver_timed(t, None);
    }

    /// Delivers a transition; `stamps`, when given, time its way to the alert book.
    fn deliver_timed(&mut self, t: &AlertTransition, stamps: Option<&Stamps>) {
        self.book.deliver(t);
        if let Some(s) = stamps {
            latency::visible(&self.book.metrics, t, s);
        }
        if let Some(sink) = &mut self.notifier {
            sink.deliver(t);
        }
    }

    /// Hands a notifier started by a reload the alerts firing now. Between two transitions the
    /// book holds exactly the alerts firing so far, so the new notifier starts from them.
    fn install(&mut self, install: Install) {
        let firing: Vec<_> = self
            .book
            .book
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .list(&AlertFilter {
                state: Some(AlertState::Firing),
                ..AlertFilter::default()
            })
            .into_iter()
            .cloned()
            .collect();
        let sink = install.sink;
        sink.already_firing(firing, true);
        self.notifier = Some(sink);
        let _ = install.done.send(());
    }

    /// Publishes until the store thread drops its sender (at the end of a stop).
    pub fn spawn(
        mut self,
        mut committed: mpsc::UnboundedReceiver<Committed>,
        mut installs: mpsc::UnboundedReceiver<Install>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    c = committed.recv() => match c {
                        None => break,
                        Some(Committed::Transition(t, stamps)) => self.deliver_timed(&t, stamps.as_ref()),
                        Some(Committed::Barrier(done)) => {
                            let _ = done.send(());
                        }
                        // Published: the commits' room in the queue is free.
                        Some(Committed::Release(rooms)) => drop(rooms),
                    },
                    Some(install) = installs.recv() => self.install(install),
                }
            }
        })
    }
}
