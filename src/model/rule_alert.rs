//! An alerting rule's alert as data: its state and times (the alert that
//! evaluator (`rules::alert`) runs the state machine over it; the store saves
//! and restores it across restarts, and the APIs and health checks read it.

use std::collections::BTreeMap;

use super::{Labels, Timestamp};

/// The state of one alert, as Prometheus' `AlertState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    /// The `alertstate` label value and the rules API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule: a label set the expression returned.
/// Times are milliseconds; `None` stands for Go's zero time.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    /// Rendered annotations, sorted by name (Prometheus keeps them as labels).
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// The sample value of the last evaluation that returned this label set.
    pub value: f64,
    pub active_at: Timestamp,
    pub fired_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub last_sent_at: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub keep_firing_since: Option<Timestamp>,
}
