//! Which partition of the internal topic an event goes to: every route of a watched prefix,
//! of its more-specifics and of the watched prefixes nested in it lands on one partition, so
//! one `run` instance holds all the vantage points' routes that judge it.
//!
//! The key of an event is its **root**: the least-specific watched prefix that covers its
//! prefix. The partition of a root is the FNV-1a hash of the root's text (`192.0.2.0/24`)
//! modulo the topic's partition count. The relay picks the partition itself rather than
//! leaving it to the client's partitioner, so that an instance can tell from its config alone
//! which watched prefixes a partition holds (what it rebuilds, and what it hands over).

use ipnet::IpNet;
use prefix_trie::joint::map::JointPrefixMap;

/// The roots of a watch list, and the partition of each.
#[derive(Debug, Clone, Default)]
pub struct Partitioner {
    watched: JointPrefixMap<IpNet, ()>,
}

impl Partitioner {
    /// A partitioner for these watched prefixes.
    pub fn new(prefixes: impl IntoIterator<Item = IpNet>) -> Self {
        let mut watched = JointPrefixMap::new();
        for p in prefixes {
            watched.insert(p.trunc(), ());
        }
        Partitioner { watched }
    }

    /// The least-specific watched prefix covering `prefix` (itself when it is a root), or
    /// `None` when no watched prefix covers it: the event concerns no one.
    pub fn root(&self, prefix: &IpNet) -> Option<IpNet> {
        self.watched.cover(prefix).next().map(|(p, _)| p)
    }

    /// The roots: the watched prefixes that no other watched prefix covers.
    pub fn roots(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.watched
            .iter()
            .map(|(p, _)| p)
            .filter(|p| self.root(p) == Some(*p))
    }

    /// The roots whose events go to `partition` of a topic of `partitions` partitions.
    pub fn roots_of(&self, partition: u32, partitions: u32) -> Vec<IpNet> {
        self.roots()
            .filter(|r| partition_of(r, partitions) == partition)
            .collect()
    }
}

/// The partition of a root, for a topic of `partitions` partitions (at least 1).
pub fn partition_of(root: &IpNet, partitions: u32) -> u32 {
    (fnv1a(root.to_string().as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike the standard library's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn partitioner() -> Partitioner {
        Partitioner::new(
            [
                "202.134.148.0/22",
                "202.134.148.0/24",
                "202.134.149.0/24",
                "192.0.2.0/24",
                "2001:db8::/32",
                "2001:db8:1::/48",
                "2001:db8:2::/48",
            ]
            .map(net),
        )
    }

    #[test]
    fn nested_watched_prefixes_and_their_more_specifics_share_the_root() {
        let p = partitioner();
        for prefix in [
            "202.134.148.0/22",
            "202.134.148.0/24",
            "202.134.148.0/25",
            "202.134.149.128/25",
            "202.134.151.0/24",
        ] {
            assert_eq!(
                p.root(&net(prefix)),
                Some(net("202.134.148.0/22")),
                "{prefix}"
            );
        }
        assert_eq!(p.root(&net("192.0.2.128/26")), Some(net("192.0.2.0/24")));
        // Less-specifics and neighbours of a watched prefix are no one's.
        assert_eq!(p.root(&net("202.134.0.0/16")), None);
        assert_eq!(p.root(&net("202.134.152.0/24")), None);
        assert_eq!(p.root(&net("192.0.3.0/24")), None);
    }

    #[test]
    fn ipv6_prefixes_have_roots_too_and_never_cross_families() {
        let p = partitioner();
        for prefix in [
            "2001:db8::/32",
            "2001:db8:1::/48",
            "2001:db8:1:2::/64",
            "2001:db8:ffff::/48",
        ] {
            assert_eq!(p.root(&net(prefix)), Some(net("2001:db8::/32")), "{prefix}");
        }
        assert_eq!(p.root(&net("2001:db9::/32")), None);
        assert_eq!(p.root(&net("::/0")), None);
        // An IPv4-mapped address range is not the IPv4 prefix.
        assert_eq!(p.root(&net("::ffff:202.134.148.0/120")), None);
    }

    #[test]
    fn the_roots_split_over_partitions_without_loss_or_overlap() {
        let p = partitioner();
        let roots: Vec<IpNet> = p.roots().collect();
        assert_eq!(
            roots.len(),
            3,
            "the /22, 192.0.2.0/24 and 2001:db8::/32: {roots:?}"
        );
        for partitions in [1u32, 2, 3, 7] {
            let mut all: Vec<IpNet> = (0..partitions)
                .flat_map(|i| p.roots_of(i, partitions))
                .collect();
            all.sort();
            let mut expected = roots.clone();
            expected.sort();
            assert_eq!(all, expected, "{partitions} partitions");
        }
    }

    #[test]
    fn the_partition_of_a_root_is_stable_and_spread() {
        // Fixed values: instances and relays of different builds must agree.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let root = net("202.134.148.0/22");
        assert_eq!(partition_of(&root, 1), 0);
        assert_eq!(partition_of(&root, 0), 0, "a count of 0 is read as 1");
        // 256 roots over 4 partitions: each gets some.
        let mut counts = [0u32; 4];
        for i in 0..=255u8 {
            counts[partition_of(&net(&format!("10.{i}.0.0/16")), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 32), "{counts:?}");
    }
}
