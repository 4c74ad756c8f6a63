//! The watched prefixes as the engine holds them: each with its learned baselines, named by a
//! [`WatchId`] (its position in the config), and per-prefix tables indexed by it.

use std::ops::{Index, IndexMut};

use super::baseline::Baseline;
use super::detect;
use crate::config::WatchedPrefix;
use crate::event::Timestamp;

/// A watched prefix, by its position in the config's `prefixes` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct WatchId(u32);

/// A watched prefix with its learned baselines.
#[derive(Debug)]
pub(super) struct Watched {
    pub cfg: WatchedPrefix,
    pub origins: Baseline,
    pub upstreams: Option<Baseline>,
    /// End of the learning window, set by the first route to the prefix itself; `None`
    /// while learning has not started (see `learning`).
    pub learn_until: Option<Timestamp>,
    /// Path rules, compiled.
    pub paths: Vec<detect::CompiledPathRule>,
}

impl Watched {
    /// A watched prefix as configured, with nothing learned yet.
    pub fn new(cfg: &WatchedPrefix) -> Self {
        Watched {
            origins: Baseline::new(&cfg.origins),
            upstreams: cfg
                .upstreams
                .as_ref()
                .map_or(Some(Baseline::learning()), |u| {
                    (!u.is_empty()).then(|| Baseline::new(u))
                }),
            learn_until: None,
            paths: detect::compile_paths(&cfg.paths),
            cfg: cfg.clone(),
        }
    }
}

/// One `T` per watched prefix, indexed by [`WatchId`].
#[derive(Debug, Clone, Default)]
pub(super) struct PerWatch<T>(Vec<T>);

impl<T> PerWatch<T> {
    /// One value per watched prefix, in config order.
    pub fn new(values: Vec<T>) -> Self {
        assert!(
            u32::try_from(values.len()).is_ok(),
            "more watched prefixes than a WatchId can name"
        );
        PerWatch(values)
    }

    /// Every id, in config order.
    pub fn ids(&self) -> impl Iterator<Item = WatchId> + use<T> {
        (0..self.0.len() as u32).map(WatchId)
    }

    /// Every value, in config order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// (id, value) in config order.
    pub fn enumerate(&self) -> impl Iterator<Item = (WatchId, &T)> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, v)| (WatchId(i as u32), v))
    }

    /// The value of `w`, if it names a watched prefix.
    pub fn get(&self, w: WatchId) -> Option<&T> {
        self.0.get(w.0 as usize)
    }
}

impl<T> Index<WatchId> for PerWatch<T> {
    type Output = T;

    fn index(&self, w: WatchId) -> &T {
        &self.0[w.0 as usize]
    }
}

impl<T> IndexMut<WatchId> for PerWatch<T> {
    fn index_mut(&mut self, w: WatchId) -> &mut T {
        &mut self.0[w.0 as usize]
    }
}
