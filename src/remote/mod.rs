//! Prometheus remote write: the wire codec shared by the receiver (klaxon as
//! a sidecar, fed by a Prometheus) and the sender.

pub mod proto;
pub mod proto_hist;
// Remote write out: config, queues, shards, HTTP client, metrics; in: receive.
pub mod client;
pub mod config;
pub mod metrics;
pub mod queue;
pub mod shards;
pub(crate) mod watcher;
pub use queue::RemoteWrite;
pub mod receive;
