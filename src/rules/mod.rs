//! Rules: rule files as Prometheus writes them (`check rules`, and the rule
//! engine to come) and the Go-template subset their labels and annotations use.

pub mod alert;
pub mod file;
pub mod group;
pub mod manager;
pub mod template;
pub mod unittest;
