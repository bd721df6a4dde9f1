//! [`HealthInputs`] over the stages of a running klaxon: rule groups,
//! scrape targets, alerts, the store, the notification outbox and the
//! PostgreSQL exporter when one is configured.

use crate::ops::heartbeat::HealthInputs;
use crate::rules::alert::AlertState;
use crate::rules::group::RuleHealth;
use crate::rules::manager::RuleManager;
use crate::scrape::manager::Manager;
use crate::scrape::target::Health;
use crate::store::Store;
use std::sync::Arc;

pub struct AppHealth {
    pub rules: Arc<RuleManager>,
    pub scrape: Arc<Manager>,
    pub store: Arc<Store>,
    pub outbox: Option<Arc<crate::notify::outbox::Outbox>>,
    pub postgres: Option<Arc<crate::exporters::postgres::PostgresExporter>>,
}

/// A notification due this long ago and still not sent means the outbox is
/// not keeping up (or a receiver keeps failing).
const QUEUE_STALL_MS: i64 = 60_000;

impl AppHealth {
    /// `klaxon_rule_groups_failing` / `klaxon_rule_groups` on /metrics, so
    /// `rules/klaxon.yml` can alert on rule evaluation failing (the rules
    /// stage exposes no failure counter of its own yet).
    pub fn register_metrics(self: &Arc<Self>, r: &crate::metrics::Registry) {
        let me = self.clone();
        r.collector(move |out| {
            if let Some((failing, total)) = me.rule_groups() {
                for (name, help, v) in [
                    (
                        "klaxon_rule_groups_failing",
                        "Rule groups with a rule whose last evaluation failed.",
                        failing,
                    ),
                    ("klaxon_rule_groups", "Loaded rule groups.", total),
                ] {
                    out.push(crate::metrics::FamilySnapshot {
                        name: name.into(),
                        help: help.into(),
                        kind: crate::metrics::Kind::Gauge,
                        samples: vec![(Vec::new(), v as f64)],
                    });
                }
            }
        });
    }
}

impl HealthInputs for AppHealth {
    fn rule_groups(&self) -> Option<(usize, usize)> {
        let groups = self.rules.groups();
        let failing = groups
            .iter()
            .filter(|g| g.lock().rules.iter().any(|r| r.health == RuleHealth::Err))
            .count();
        Some((failing, groups.len()))
    }

    fn notification_queue(&self) -> Option<crate::ops::heartbeat::QueueState> {
        let ob = self.outbox.as_ref()?;
        // The outbox's last count: the heartbeat never waits on the store.
        let (pending, due) = ob.queue_state()?;
        let draining = due.is_none_or(|t| t > crate::model::now_millis() - QUEUE_STALL_MS);
        Some(crate::ops::heartbeat::QueueState { pending, draining })
    }

    fn postgres(&self) -> Option<Result<(), String>> {
        self.postgres.as_ref()?.reachable()
    }

    /// As the store monitor last found it (see `store::health::monitor`):
    /// the heartbeat never waits on the store.
    fn store_writable(&self) -> Option<Result<(), String>> {
        Some(match self.store.health().failure() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    }

    fn targets(&self) -> Option<(usize, usize)> {
        let mut up = 0;
        let mut total = 0;
        for p in self.scrape.targets() {
            for t in &p.active {
                total += 1;
                if t.status().health == Health::Up {
                    up += 1;
                }
            }
        }
        Some((up, total))
    }

    fn alerts(&self) -> (usize, usize) {
        let mut active = 0;
        let mut firing = 0;
        for g in self.rules.groups() {
            for r in &g.lock().rules {
                for a in r.alerts.alerts() {
                    if a.state != AlertState::Inactive {
                        active += 1;
                    }
                    if a.state == AlertState::Firing {
                        firing += 1;
                    }
                }
            }
        }
        (active, firing)
    }
}
