//! Rules: rule files as Prometheus writes them (`check rules`), the
//! Go-template subset their labels and annotations use, group evaluation and
//! alert state, the manager that runs groups in `klaxon run`, and promtool's
//! unit-test format (`test rules`).

pub mod alert;
pub mod backfill;
pub mod cli;
pub mod datasource;
pub mod embedded;
pub mod file;
pub mod group;
pub mod manager;
pub mod metrics;
pub mod querier;
pub mod template;
pub mod unittest;
