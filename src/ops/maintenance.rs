//! Maintenance mode, switched by the signed kill-switch command.
//!
//! Rules keep evaluating and alerts keep their state; what stops is what
//! reaches the outside world. Stages read [`Maintenance::is_on`] (an atomic
//! load, cheap on hot paths): the outbox holds notifications while it is on,
//! scheduled probes skip their runs, `/-/ready` answers 503.

use parking_lot::RwLock;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

/// Who switched maintenance on, why and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MaintenanceState {
    pub reason: String,
    pub operator: String,
    pub since_ms: i64,
    pub correlation_id: String,
}

/// Shared maintenance flag; share it as `Arc<Maintenance>`.
#[derive(Debug, Default)]
pub struct Maintenance {
    on: AtomicBool,
    state: RwLock<Option<MaintenanceState>>,
}

impl Maintenance {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Details while on.
    pub fn state(&self) -> Option<MaintenanceState> {
        self.state.read().clone()
    }

    /// Switches on (again: the newest reason wins).
    pub fn enable(&self, st: MaintenanceState) {
        let mut g = self.state.write();
        *g = Some(st);
        self.on.store(true, Ordering::Release);
    }

    /// Switches off; returns the state that was in force.
    pub fn disable(&self) -> Option<MaintenanceState> {
        let mut g = self.state.write();
        self.on.store(false, Ordering::Release);
        g.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_and_off() {
        let m = Maintenance::new();
        assert!(!m.is_on() && m.state().is_none());
        m.enable(MaintenanceState {
            reason: "db migration".into(),
            operator: "ana".into(),
            since_ms: 5,
            correlation_id: "c1".into(),
        });
        assert!(m.is_on());
        assert_eq!(m.state().unwrap().reason, "db migration");
        assert_eq!(m.disable().unwrap().operator, "ana");
        assert!(!m.is_on() && m.state().is_none());
    }
}
