//! Exporters built into klaxon: host (and later PostgreSQL) saturation under
//! the names existing dashboards and rules already use.
pub mod host;
pub mod config;
pub mod postgres;
