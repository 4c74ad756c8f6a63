//! The conditions of the watched prefixes, by key, with an index by watched prefix: when one
//! prefix's baseline changes, its conditions are found without looking at anyone else's, so
//! the cost of a baseline change does not grow with the watch list.

use std::collections::{BTreeSet, HashMap};

use ipnet::IpNet;

use super::FastMap;
use super::lifecycle::Condition;
use crate::alerts::AlertKey;
use crate::event::Timestamp;

/// Every condition held, by key, and the keys of each watched prefix in key order.
#[derive(Debug, Default)]
pub(super) struct Conditions {
    by_key: HashMap<AlertKey, Condition>,
    /// Keys by `watched_prefix`; a watched prefix without conditions has no entry.
    by_watched: FastMap<IpNet, BTreeSet<AlertKey>>,
}

impl Conditions {
    /// The condition of a key.
    pub fn get(&self, k: &AlertKey) -> Option<&Condition> {
        self.by_key.get(k)
    }

    /// The condition of a key, to change.
    pub fn get_mut(&mut self, k: &AlertKey) -> Option<&mut Condition> {
        self.by_key.get_mut(k)
    }

    /// The condition of a key, made (first seen at `first_seen`, shown by no VP) when missing.
    pub fn get_or_new(&mut self, k: AlertKey, first_seen: Timestamp) -> &mut Condition {
        self.by_key.entry(k).or_insert_with(|| {
            self.by_watched
                .entry(k.watched_prefix)
                .or_default()
                .insert(k);
            Condition::new(first_seen)
        })
    }

    /// Drops the condition of a key.
    pub fn remove(&mut self, k: &AlertKey) -> Option<Condition> {
        let cond = self.by_key.remove(k)?;
        if let Some(keys) = self.by_watched.get_mut(&k.watched_prefix) {
            keys.remove(k);
            if keys.is_empty() {
                self.by_watched.remove(&k.watched_prefix);
            }
        }
        Some(cond)
    }

    /// The keys of the conditions of one watched prefix, in key order.
    pub fn keys_of(&self, watched_prefix: &IpNet) -> impl Iterator<Item = &AlertKey> + '_ {
        self.by_watched
            .get(watched_prefix)
            .into_iter()
            .flat_map(|keys| keys.iter())
    }

    /// Every key, in no order.
    pub fn keys(&self) -> impl Iterator<Item = &AlertKey> + '_ {
        self.by_key.keys()
    }

    /// Every condition, in no order.
    pub fn values(&self) -> impl Iterator<Item = &Condition> + '_ {
        self.by_key.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Rule;

    fn k(watched: &str, prefix: &str, asn: u32) -> AlertKey {
        AlertKey {
            rule: Rule::OriginHijack,
            watched_prefix: watched.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
            asn,
        }
    }

    #[test]
    fn the_index_by_watched_prefix_follows_every_insert_and_removal() {
        let mut c = Conditions::default();
        let a = k("10.0.0.0/8", "10.0.0.0/8", 1);
        let b = k("10.0.0.0/8", "10.1.0.0/16", 2);
        let other = k("192.0.2.0/24", "192.0.2.0/24", 3);
        for key in [b, a, other, a] {
            c.get_or_new(key, Timestamp(0)).peak += 1;
        }
        assert_eq!(
            c.get(&a).map(|c| c.peak),
            Some(2),
            "an existing key is kept"
        );
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert_eq!(c.keys_of(&net).copied().collect::<Vec<_>>(), [a, b]);
        assert!(c.remove(&a).is_some());
        assert!(c.remove(&a).is_none());
        assert_eq!(c.keys_of(&net).copied().collect::<Vec<_>>(), [b]);
        c.remove(&b);
        assert_eq!(c.keys_of(&net).count(), 0);
        assert!(
            !c.by_watched.contains_key(&net),
            "empty index entries are freed"
        );
        assert_eq!(c.keys().count(), 1);
        assert_eq!(c.values().count(), 1);
    }
}
