//! The book of alerts: every firing alert and a bounded history of resolved ones.

use std::collections::{HashMap, VecDeque};

use ipnet::IpNet;

use super::{Alert, AlertState, AlertTransition, Rule, Severity, TransitionKind};

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `Some(Firing)`, `Some(Resolved)`, or `None` for all.
    pub state: Option<AlertState>,
    /// Only alerts whose affected or watched prefix is this one.
    pub prefix: Option<IpNet>,
    /// Only this rule.
    pub rule: Option<Rule>,
    /// Only this severity.
    pub severity: Option<Severity>,
}

impl AlertFilter {
    fn matches(&self, a: &Alert) -> bool {
        self.state.is_none_or(|s| s == a.state)
            && self
                .prefix
                .is_none_or(|p| p == a.prefix || p == a.watched_prefix)
            && self.rule.is_none_or(|r| r == a.rule)
            && self.severity.is_none_or(|s| s == a.severity)
    }
}

/// Firing alerts by id, and the most recent resolved ones.
#[derive(Debug)]
pub struct AlertBook {
    firing: HashMap<String, Alert>,
    resolved: VecDeque<Alert>,
    resolved_capacity: usize,
}

impl AlertBook {
    /// A book that keeps at most `resolved_capacity` resolved alerts (oldest dropped first).
    pub fn new(resolved_capacity: usize) -> Self {
        AlertBook {
            firing: HashMap::new(),
            resolved: VecDeque::new(),
            resolved_capacity,
        }
    }

    /// Fills the book with what the store held at start-up (resolved oldest first).
    pub fn restore(&mut self, resolved: &[Alert], firing: &[Alert]) {
        for a in resolved {
            self.apply(&AlertTransition {
                event: TransitionKind::Resolved,
                alert: a.clone(),
            });
        }
        for a in firing {
            self.firing.insert(a.id.clone(), a.clone());
        }
    }

    /// Records a transition from the engine.
    pub fn apply(&mut self, t: &AlertTransition) {
        match t.event {
            TransitionKind::Fired | TransitionKind::Updated => {
                self.firing.insert(t.alert.id.clone(), t.alert.clone());
            }
            TransitionKind::HandedOver => {
                self.firing.remove(&t.alert.id);
            }
            TransitionKind::Resolved => {
                self.firing.remove(&t.alert.id);
                if self.resolved_capacity > 0 {
                    if self.resolved.len() == self.resolved_capacity {
                        self.resolved.pop_front();
                    }
                    self.resolved.push_back(t.alert.clone());
                }
            }
        }
    }

    /// The alerts that match, firing first (newest first), then resolved (newest first).
    pub fn list(&self, filter: &AlertFilter) -> Vec<&Alert> {
        let mut firing: Vec<&Alert> = self.firing.values().filter(|a| filter.matches(a)).collect();
        firing.sort_by(|a, b| b.fired_at.cmp(&a.fired_at).then_with(|| a.id.cmp(&b.id)));
        let resolved = self.resolved.iter().rev().filter(|a| filter.matches(a));
        firing.into_iter().chain(resolved).collect()
    }

    /// One alert by id, firing or resolved.
    pub fn get(&self, id: &str) -> Option<&Alert> {
        self.firing
            .get(id)
            .or_else(|| self.resolved.iter().rev().find(|a| a.id == id))
    }

    /// Number of firing alerts.
    pub fn firing_count(&self) -> usize {
        self.firing.len()
    }
}
