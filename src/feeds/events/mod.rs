//! The internal topic of a scale-out deployment: normalised route events that `bgpsentry relay`
//! writes, partitioned by watched prefix, and that `run` instances read with a `kafka` feed of
//! `format: events`. [`codec`] is the record encoding, [`partition`] the partitioning key,
//! [`consumer`] a run instance's feed (partition ownership, rebuilds, hand-overs), [`merge`]
//! the event-time order across its partitions, [`metrics`]
//! the `bgpsentry_scale_out_*` families.

pub mod codec;
pub mod consumer;
pub mod merge;
pub mod metrics;
pub mod partition;
