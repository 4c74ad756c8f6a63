//! Scale-out on Kafka: `bgpsentry relay` and two `run` instances in one consumer group against a
//! real Kafka-compatible broker (tansu) and a real Alertmanager; and the compose file of that
//! deployment.

mod compose;
mod two_instances;
