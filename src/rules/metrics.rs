//! Per-group rule metrics, Prometheus' `prometheus_rule_*` families under
//! `klaxon_`, labeled `rule_group="<file>;<group>"` like upstream so the
//! same dashboards and meta-alerts (e.g. on missed iterations) work.

use crate::metrics::{CounterVec, GaugeVec, Registry};
use crate::rules::group::EvalReport;
use std::sync::Arc;
use std::time::Duration;

/// The families, registered once; children are per group.
pub struct RuleMetrics {
    last_duration: Arc<GaugeVec>,
    last_evaluation: Arc<GaugeVec>,
    interval: Arc<GaugeVec>,
    iterations: Arc<CounterVec>,
    missed: Arc<CounterVec>,
    rules: Arc<GaugeVec>,
    evaluations: Arc<CounterVec>,
    failures: Arc<CounterVec>,
    samples: Arc<GaugeVec>,
}

const L: &[&str] = &["rule_group"];

impl RuleMetrics {
    pub fn register(r: &Registry) -> RuleMetrics {
        RuleMetrics {
            last_duration: r.gauge_vec(
                "klaxon_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
                L,
            ),
            last_evaluation: r.gauge_vec(
                "klaxon_rule_group_last_evaluation_timestamp_seconds",
                "The timestamp of the last rule group evaluation in seconds.",
                L,
            ),
            interval: r.gauge_vec(
                "klaxon_rule_group_interval_seconds",
                "The interval of a rule group.",
                L,
            ),
            iterations: r.counter_vec(
                "klaxon_rule_group_iterations",
                "The number of scheduled evaluations of a rule group, run or missed.",
                L,
            ),
            missed: r.counter_vec(
                "klaxon_rule_group_iterations_missed",
                "The number of rule group evaluations missed due to slow rule group evaluation.",
                L,
            ),
            rules: r.gauge_vec("klaxon_rule_group_rules", "The number of rules.", L),
            evaluations: r.counter_vec(
                "klaxon_rule_evaluations",
                "The total number of rule evaluations.",
                L,
            ),
            failures: r.counter_vec(
                "klaxon_rule_evaluation_failures",
                "The total number of rule evaluation failures.",
                L,
            ),
            samples: r.gauge_vec(
                "klaxon_rule_group_last_evaluation_samples",
                "The number of samples returned during the last rule group evaluation.",
                L,
            ),
        }
    }

    /// A group starts (at load or reload): its static values and zeroed
    /// counters exist before the first evaluation, as upstream.
    pub fn group_added(&self, key: &str, interval: Duration, rules: usize) {
        let k = [key];
        self.interval.with(&k).set(interval.as_secs_f64());
        self.rules.with(&k).set(rules as f64);
        let _ = self.iterations.with(&k);
        let _ = self.missed.with(&k);
        let _ = self.evaluations.with(&k);
        let _ = self.failures.with(&k);
    }

    /// A reload removed the group: its series disappear.
    pub fn group_removed(&self, key: &str) {
        let k = [key];
        self.last_duration.remove(&k);
        self.last_evaluation.remove(&k);
        self.interval.remove(&k);
        self.iterations.remove(&k);
        self.missed.remove(&k);
        self.rules.remove(&k);
        self.evaluations.remove(&k);
        self.failures.remove(&k);
        self.samples.remove(&k);
    }

    /// One evaluation of a group with `rules` rules.
    pub fn evaluated(&self, key: &str, rules: usize, report: &EvalReport) {
        let k = [key];
        self.iterations.with(&k).inc();
        self.evaluations.with(&k).inc_by(rules as f64);
        self.failures.with(&k).inc_by(report.errors.len() as f64);
        self.last_duration
            .with(&k)
            .set(report.duration.as_secs_f64());
        self.last_evaluation.with(&k).set(report.t as f64 / 1000.0);
        self.samples.with(&k).set(report.samples as f64);
    }

    /// Slots skipped because an evaluation overran the interval; upstream
    /// counts them in the iterations total too.
    pub fn missed(&self, key: &str, n: u64) {
        if n > 0 {
            let k = [key];
            self.missed.with(&k).inc_by(n as f64);
            self.iterations.with(&k).inc_by(n as f64);
        }
    }
}

/// How many whole slots were skipped: upstream's
/// `time.Since(evalTimestamp) / interval - 1`, floored at zero.
pub fn missed_slots(slot_ns: i64, now_ns: i64, interval_ns: i64) -> u64 {
    if interval_ns <= 0 {
        return 0;
    }
    let n = (now_ns - slot_ns) / interval_ns - 1;
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_slots_like_upstream() {
        let s = 1_000_000_000;
        assert_eq!(missed_slots(0, s / 2, s), 0);
        assert_eq!(missed_slots(0, s, s), 0);
        assert_eq!(missed_slots(0, 2 * s + 1, s), 1);
        assert_eq!(missed_slots(0, 5 * s, s), 4);
        assert_eq!(missed_slots(10, 0, s), 0);
    }

    #[test]
    fn group_metrics_are_labeled_by_group_key() {
        let r = Registry::new();
        let m = RuleMetrics::register(&r);
        m.group_added("f.yml;g", Duration::from_secs(15), 3);
        let rep = EvalReport {
            t: 15_000,
            duration: Duration::from_millis(2),
            samples: 7,
            errors: vec![(1, "x".into(), crate::rules::group::RuleError::NotVector)],
        };
        m.evaluated("f.yml;g", 3, &rep);
        m.missed("f.yml;g", 2);
        let text = r.encode(false);
        for want in [
            "klaxon_rule_group_interval_seconds{rule_group=\"f.yml;g\"} 15",
            "klaxon_rule_group_rules{rule_group=\"f.yml;g\"} 3",
            "klaxon_rule_evaluations_total{rule_group=\"f.yml;g\"} 3",
            "klaxon_rule_evaluation_failures_total{rule_group=\"f.yml;g\"} 1",
            "klaxon_rule_group_iterations_total{rule_group=\"f.yml;g\"} 3",
            "klaxon_rule_group_iterations_missed_total{rule_group=\"f.yml;g\"} 2",
            "klaxon_rule_group_last_evaluation_samples{rule_group=\"f.yml;g\"} 7",
            "klaxon_rule_group_last_evaluation_timestamp_seconds{rule_group=\"f.yml;g\"} 15",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        m.group_removed("f.yml;g");
        assert!(!r.encode(false).contains("f.yml;g"));
    }
}
