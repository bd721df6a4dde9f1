//! Auto-healing decisions: which firing alert runs which remediation, and
//! when a run is held back (cooldown per rule and target, a maximum number
//! of runs per window, maintenance mode, dry-run); plus the circuit breaker
//! that puts a receiver endpoint that keeps failing into cooldown.
//!
//! Both are pure state machines over an injected clock (milliseconds), so
//! the callers (the alert sink, the outbox) keep their own locking and the
//! rules are testable at their exact edges.

pub mod action;
pub mod config;
pub mod engine;

/// The receiver circuit breaker lives with the outbox that uses it.
pub use crate::notify::breaker::{Breaker, Transition};

use crate::model::{Labels, Matcher};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// One remediation rule (`autoheal.rules[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Every matcher must match the alert's labels.
    pub matchers: Vec<Matcher>,
    /// When not empty, the alert's `severity` label must be one of these.
    pub severity: Vec<String>,
    /// Run only once the alert has been firing this long.
    pub firing_for: Duration,
    /// Held back this long after a run for the same target (label set).
    pub cooldown: Duration,
    /// At most this many runs of the rule (all targets) per `window`.
    pub max_runs: u32,
    pub window: Duration,
    /// Decide and audit, never call the action.
    pub dry_run: bool,
    /// The labels that name the target; empty: all the alert's labels.
    pub target_labels: Vec<String>,
    pub action: action::HttpAction,
    /// From the config file (read-only through the API) or created by an
    /// admin through the API (kept in the store).
    pub from_config: bool,
}

impl Rule {
    pub fn matches(&self, labels: &Labels) -> bool {
        (self.severity.is_empty()
            || labels
                .get("severity")
                .is_some_and(|s| self.severity.iter().any(|x| x == s)))
            && self
                .matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    /// The target an alert stands for: its values of `target_labels` (or all
    /// labels), as `name="value"` pairs.
    pub fn target(&self, labels: &Labels) -> String {
        let mut out = String::new();
        for l in labels.iter() {
            if self.target_labels.is_empty() || self.target_labels.contains(&l.name) {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(&format!("{}={:?}", l.name, l.value));
            }
        }
        out
    }
}

/// What happens to one firing alert for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not firing long enough yet; nothing is audited.
    NotYet,
    /// Run the action (`dry_run`: only audit that it would have run).
    Run { dry_run: bool },
    /// The same target ran less than the cooldown ago; runs again from `until`.
    SkippedCooldown { until: i64 },
    /// The rule ran `max_runs` times within its window.
    SkippedRateLimit,
    /// Maintenance mode pauses every action.
    SkippedMaintenance,
}

impl Decision {
    /// The `outcome` label of `klaxon_autoheal_decisions_total` and the audit
    /// event's action.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::NotYet => "not_yet",
            Decision::Run { dry_run: false } => "triggered",
            Decision::Run { dry_run: true } => "dry_run",
            Decision::SkippedCooldown { .. } => "skipped_cooldown",
            Decision::SkippedRateLimit => "skipped_rate_limit",
            Decision::SkippedMaintenance => "skipped_maintenance",
        }
    }
}

/// Per-rule memory of past runs.
#[derive(Debug, Default)]
pub struct Ledger {
    /// (rule, target) -> time of the last run.
    last_run: BTreeMap<(String, String), i64>,
    /// rule -> times of the runs within the window.
    runs: BTreeMap<String, VecDeque<i64>>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Ledger {
    /// Decides for an alert firing since `fired_at` at `now`, and records
    /// the run when it is one. A run that is a dry run counts for the
    /// cooldown too, so a dry run shows exactly what a real one would do.
    pub fn decide(
        &mut self,
        rule: &Rule,
        labels: &Labels,
        fired_at: i64,
        now: i64,
        maintenance: bool,
    ) -> Decision {
        if now.saturating_sub(fired_at) < ms(rule.firing_for) {
            return Decision::NotYet;
        }
        if maintenance {
            return Decision::SkippedMaintenance;
        }
        let key = (rule.name.clone(), rule.target(labels));
        if let Some(last) = self.last_run.get(&key) {
            let until = last.saturating_add(ms(rule.cooldown));
            if now < until {
                return Decision::SkippedCooldown { until };
            }
        }
        let runs = self.runs.entry(rule.name.clone()).or_default();
        let window_start = now.saturating_sub(ms(rule.window));
        while runs.front().is_some_and(|t| *t <= window_start) {
            runs.pop_front();
        }
        if rule.max_runs > 0 && runs.len() >= rule.max_runs as usize {
            return Decision::SkippedRateLimit;
        }
        runs.push_back(now);
        self.last_run.insert(key, now);
        Decision::Run {
            dry_run: rule.dry_run,
        }
    }
}

impl Ledger {
    /// A run restored from the history (at start).
    pub fn record_run(&mut self, rule: &str, target: &str, at: i64) {
        let key = (rule.to_string(), target.to_string());
        let last = self.last_run.entry(key).or_insert(at);
        *last = (*last).max(at);
        let runs = self.runs.entry(rule.to_string()).or_default();
        runs.push_back(at);
        runs.make_contiguous().sort_unstable();
    }

    /// Drops what is known of a deleted rule.
    pub fn forget(&mut self, rule: &str) {
        self.last_run.retain(|(r, _), _| r != rule);
        self.runs.remove(rule);
    }

    /// The rule's targets with their last run, and its runs in the window
    /// ending now.
    pub fn state(&self, rule: &Rule) -> (Vec<(String, i64)>, usize) {
        let targets = self
            .last_run
            .iter()
            .filter(|((r, _), _)| *r == rule.name)
            .map(|((_, t), at)| (t.clone(), *at))
            .collect();
        let start = crate::model::now_millis().saturating_sub(ms(rule.window));
        let n = self
            .runs
            .get(&rule.name)
            .map_or(0, |r| r.iter().filter(|t| **t > start).count());
        (targets, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchType;

    fn rule() -> Rule {
        Rule {
            name: "restart".into(),
            matchers: vec![Matcher::new(MatchType::Equal, "alertname", "Down").expect("m")],
            severity: vec![],
            firing_for: Duration::from_secs(60),
            cooldown: Duration::from_secs(600),
            max_runs: 3,
            window: Duration::from_secs(3600),
            dry_run: false,
            target_labels: vec!["instance".into()],
            action: action::HttpAction::post("http://127.0.0.1:1/fix"),
            from_config: true,
        }
    }

    fn alert(instance: &str) -> Labels {
        Labels::from_pairs([
            ("alertname", "Down".to_string()),
            ("instance", instance.to_string()),
            ("severity", "page".to_string()),
        ])
    }

    #[test]
    fn waits_for_the_firing_duration_then_cools_down_per_target() {
        let r = rule();
        let mut l = Ledger::default();
        let a = alert("a:1");
        assert!(r.matches(&a));
        assert!(!r.matches(&Labels::from_pairs([("alertname", "Up".to_string())])));
        assert_eq!(l.decide(&r, &a, 0, 59_999, false), Decision::NotYet);
        assert_eq!(
            l.decide(&r, &a, 0, 60_000, false),
            Decision::Run { dry_run: false }
        );
        // The second firing of the same target within the cooldown is held
        // back until exactly 10 minutes after the run.
        assert_eq!(
            l.decide(&r, &a, 100_000, 600_000, false),
            Decision::SkippedCooldown { until: 660_000 }
        );
        // Another target is not held back by it.
        assert_eq!(
            l.decide(&r, &alert("b:1"), 0, 600_000, false),
            Decision::Run { dry_run: false }
        );
        assert_eq!(
            l.decide(&r, &a, 100_000, 660_000, false),
            Decision::Run { dry_run: false }
        );
    }

    #[test]
    fn max_runs_per_window_and_maintenance() {
        let mut r = rule();
        r.cooldown = Duration::ZERO;
        let mut l = Ledger::default();
        for (i, inst) in ["a", "b", "c"].iter().enumerate() {
            let t = 60_000 + i as i64;
            assert_eq!(
                l.decide(&r, &alert(inst), 0, t, false),
                Decision::Run { dry_run: false }
            );
        }
        assert_eq!(
            l.decide(&r, &alert("d"), 0, 60_010, false),
            Decision::SkippedRateLimit
        );
        // The first run leaves the window one hour after it.
        assert_eq!(
            l.decide(&r, &alert("d"), 0, 3_660_000, false),
            Decision::Run { dry_run: false }
        );
        assert_eq!(
            l.decide(&r, &alert("e"), 0, 3_660_000, true),
            Decision::SkippedMaintenance
        );
        r.dry_run = true;
        assert_eq!(
            l.decide(&r, &alert("f"), 0, 3_660_001, false).outcome(),
            "dry_run"
        );
    }

    #[test]
    fn a_restored_ledger_keeps_cooldowns_and_window_counts() {
        let r = rule();
        let mut l = Ledger::default();
        let now = crate::model::now_millis();
        l.record_run("restart", &r.target(&alert("a:1")), now - 1000);
        assert!(matches!(
            l.decide(&r, &alert("a:1"), 0, now, false),
            Decision::SkippedCooldown { .. }
        ));
        let (targets, runs) = l.state(&r);
        assert_eq!(targets, [(r.target(&alert("a:1")), now - 1000)]);
        assert_eq!(runs, 1);
        l.forget("restart");
        assert_eq!(l.state(&r), (vec![], 0));
    }
}
