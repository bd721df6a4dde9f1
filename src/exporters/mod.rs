//! Exporters built into klaxon: host and PostgreSQL saturation under the
//! names existing dashboards and rules already use (node_exporter 1.5,
//! postgres_exporter 0.11), served on their own paths and fed to the head
//! as in-process scrape jobs.
pub mod config;
pub mod host;
pub mod inprocess;
pub mod postgres;

pub use inprocess::{Exporters, ExportersSection, HostSource};
