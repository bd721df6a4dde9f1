//! klaxon: scrape Prometheus targets, keep an in-memory time-series head,
//! evaluate rules and route alerts, in one process.
//!
//! The modules follow the way data travels (see `docs/architecture.md`):
//! [`config`] → [`scrape`] → [`tsdb`] → `promql` → `rules` → `notify`,
//! with [`api`] serving HTTP beside them and [`model`] holding the few types
//! every stage shares.

// No unwrap/expect outside tests: Cargo.toml's [lints] and clippy.toml.

pub mod anomaly;
pub mod api;
pub mod app;
pub mod config;
pub mod discovery;
pub mod events;
pub mod exporters;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod net;
pub mod notifier;
pub mod notify;
pub mod ops;
pub mod otlp;
pub mod probe;
pub mod promql;
pub mod remote;
pub mod rules;
pub mod scrape;
pub mod settings;
pub mod slo;
pub mod store;
pub mod template;
pub mod tsdb;
