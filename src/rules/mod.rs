//! Rules: rule files as Prometheus writes them, for `check rules` and the rule engine.
pub mod file;
