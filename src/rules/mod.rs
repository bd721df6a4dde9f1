//! Rules: rule files as Prometheus writes them (`check rules`), group
//! evaluation and alert state (labels and annotations expanded with
//! `crate::template`), the manager that runs groups in `klaxon run`, and
//! promtool's unit-test format (`test rules`).

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
pub mod unittest;
