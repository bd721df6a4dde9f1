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
#[derive(Debug)]
pub struct Maintenance {
    on: AtomicBool,
    state: RwLock<Option<MaintenanceState>>,
    /// For stages that park while on (the outbox) instead of polling.
    changes: tokio::sync::watch::Sender<bool>,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            on: AtomicBool::new(false),
            state: RwLock::new(None),
            changes: tokio::sync::watch::channel(false).0,
        }
    }
}

impl Maintenance {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves once maintenance is off (at once when it already is).
    pub async fn wait_until_off(&self) {
        let mut rx = self.changes.subscribe();
        // Err only if the sender is gone, which it cannot be while &self lives.
        let _ = rx.wait_for(|on| !*on).await;
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
        self.changes.send_replace(true);
    }

    /// Switches off; returns the state that was in force.
    pub fn disable(&self) -> Option<MaintenanceState> {
        let mut g = self.state.write();
        self.on.store(false, Ordering::Release);
        self.changes.send_replace(false);
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

    #[tokio::test]
    async fn waiters_are_released_on_resume() {
        let m = std::sync::Arc::new(Maintenance::new());
        m.wait_until_off().await; // off: immediate
        m.enable(MaintenanceState {
            reason: "r".into(),
            operator: "o".into(),
            since_ms: 0,
            correlation_id: "c".into(),
        });
        let m2 = m.clone();
        let waiter = tokio::spawn(async move { m2.wait_until_off().await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        m.disable();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
