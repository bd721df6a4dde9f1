//! Prometheus remote write: the wire codec shared by the receiver (klaxon as
//! a sidecar, fed by a Prometheus) and the sender.

pub mod proto;
// Remote write out (wt/rwout): config, queues, shards, HTTP client, metrics.
pub mod client;
pub mod config;
pub mod metrics;
pub mod queue;
pub mod shards;
pub use queue::RemoteWrite;
