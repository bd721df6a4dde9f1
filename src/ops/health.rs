//! [`HealthInputs`] over the stages in this build: rule groups, scrape
//! targets, alerts and the store. The outbox and PostgreSQL are added by
//! wrapping this (or overriding the trait's methods) when they are merged.

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
}

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

    fn store_writable(&self) -> Option<Result<(), String>> {
        Some(self.store.check_writable().map_err(|e| e.to_string()))
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
