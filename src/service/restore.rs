//! The service's start from the store: route state, baselines and firing alerts as they were,
//! a table dump on top, and what the restore itself decided saved before anything runs.

use std::path::Path;

use tracing::info;

use crate::alerts::{Alert, AlertTransition};
use crate::config::Config;
use crate::engine::Engine;
use crate::event::Timestamp;
use crate::metrics::Metrics;
use crate::rpki::RpkiSnapshot;
use crate::store::{PendingEvent, Store};

use super::RESOLVED_HISTORY;

/// What the service starts from.
pub(super) struct Restored {
    /// The open store, handed to the store thread.
    pub store: Store,
    /// The engine with the restored state (and the table dump, if one was given).
    pub engine: Engine,
    /// Alerts that were firing when the store was last written: the channels were told.
    pub was_firing: Vec<Alert>,
    /// Resolved alerts for the book's history.
    pub resolved: Vec<Alert>,
    /// Alert events stored but never queued for notification (a crash inside a grouping
    /// window): they go to the notifier first, in their order.
    pub pending: Vec<PendingEvent>,
    /// What the restore itself decided (alerts that ended with a config change, conditions now
    /// over a threshold), already saved; it goes to the sinks first.
    pub initial: Vec<AlertTransition>,
}

/// Opens the store and rebuilds the engine from it. `rpki` is the data loaded so far, judged
/// with the restored routes; `notifying` says whether a notifier runs (without one, alert
/// events are not kept for it).
pub(super) fn restore(
    cfg: &Config,
    rib: Option<&Path>,
    rpki: Option<RpkiSnapshot>,
    notifying: bool,
    metrics: &Metrics,
) -> anyhow::Result<Restored> {
    let store_path = cfg.store_file();
    crate::config::check_store_writable(&store_path).map_err(anyhow::Error::msg)?;
    let mut store = Store::open(&store_path)?;
    let shown = std::path::absolute(&store_path).unwrap_or_else(|_| store_path.clone());
    info!(store = %shown.display(), "state is kept in the store {}", shown.display());
    let loaded = store.load(RESOLVED_HISTORY)?;
    let mut engine = Engine::from_config(cfg);
    if let Some(snapshot) = rpki {
        engine.set_rpki(snapshot, Timestamp::now());
    }
    let restored_routes: usize = loaded.state.routes.iter().map(|r| r.routes.len()).sum();
    let was_firing = loaded.state.firing.clone();
    let mut engine = engine.restored(loaded.state);
    if let Some(saved) = loaded.saved_at.filter(|_| restored_routes > 0) {
        let age = (Timestamp::now().0 - saved.0).max(0) as f64 / 1e6;
        metrics.restored_state_age.set(age);
        info!(
            store = %store_path.display(),
            "restored {restored_routes} routes and {} firing alerts saved {age:.0} s ago",
            engine.firing_count()
        );
    }
    if let Some(rib) = rib {
        let stats = crate::replay::load_rib(&mut engine, rib)?;
        info!(rib = %rib.display(), "loaded {} routes from the table dump", stats.announcements);
    }
    // Read before the restore's own transitions are saved: those are delivered as `initial`.
    let pending = pending_events(&mut store, notifying)?;
    let initial: Vec<AlertTransition> = engine.drain_transitions().collect();
    // The restored engine may differ from the store (config changed, RIB loaded): save what
    // differs, or everything when the file had rows it could not use.
    if loaded.rewrite {
        store.replace_state(&initial, &engine.export_state())?;
    } else {
        let meta = engine.meta_changed();
        store.save_restored(&initial, engine.take_changes(), meta)?;
    }
    Ok(Restored {
        store,
        engine,
        was_firing,
        resolved: loaded.resolved,
        pending,
        initial,
    })
}

/// Alert events stored but never queued for notification. Without a notifier they are marked
/// as handled.
fn pending_events(store: &mut Store, notifier_running: bool) -> anyhow::Result<Vec<PendingEvent>> {
    let pending = if notifier_running {
        store.pending_events()?
    } else {
        store.no_notifier()?;
        Vec::new()
    };
    if !pending.is_empty() {
        info!(
            "{} alert events were not yet queued for notification; queueing them",
            pending.len()
        );
    }
    Ok(pending)
}
