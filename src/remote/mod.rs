//! Prometheus remote write: the wire codec shared by the receiver (klaxon as
//! a sidecar, fed by a Prometheus) and the sender.

pub mod proto;
pub mod receive;
