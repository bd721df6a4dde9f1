//! The alert state machine of one alerting rule, as Prometheus'
//! `AlertingRule.Eval` runs it: inactive → pending → firing, `keep_firing_for`,
//! and resolved alerts kept for `RESOLVED_RETENTION_MS` so the resolution is
//! still sent to Alertmanager after the condition went away.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::model::{Labels, LabelsBuilder, Timestamp};

/// How long a resolved alert stays in the active set (Prometheus'
/// `resolvedRetention`), so that its resolution keeps being re-sent.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Metric name of the per-alert state series.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Metric name of the series that remembers `activeAt` (for restoring `for`).
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

pub use crate::model::rule_alert::{Alert, AlertState};

impl Alert {
    /// Prometheus' `needsSending`: never pending alerts; a resolution not
    /// yet sent; otherwise once per `resend_delay` (strictly after).
    fn needs_sending(&self, t: Timestamp, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if let Some(r) = self.resolved_at {
            if r > last {
                return true;
            }
        }
        self.last_sent_at
            .map_or(i64::MIN, |l| l.saturating_add(resend_delay_ms))
            < t
    }
}

/// An alert as handed to the notifier (Prometheus' `notifier.Alert`).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertToSend {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// `FiredAt` of the alert (Prometheus sends that, not `activeAt`).
    pub starts_at: Option<Timestamp>,
    /// `resolvedAt` for a resolved alert, else `t + 4 × max(resend_delay, interval)`.
    pub ends_at: Timestamp,
    pub generator_expr: String,
}

/// One alert candidate from the current evaluation, labels and annotations
/// already rendered.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
}

/// Why an alerting rule's evaluation failed after its query succeeded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AlertEvalError {
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabelset,
    #[error("exceeded limit of {limit} with {count} alerts")]
    Limit { limit: u64, count: usize },
}

/// The active alerts of one rule, keyed by the labels' hash (Prometheus'
/// fingerprint).
#[derive(Clone, Debug, Default)]
pub struct ActiveAlerts {
    pub(crate) active: HashMap<u64, Alert>,
}

impl ActiveAlerts {
    /// Alerts in label order (the map itself has none).
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Puts back an alert saved before a restart or carried over a reload,
    /// keyed by its labels like a fresh one.
    /// Puts back an alert saved before a restart. It is sent again at the
    /// first evaluation, as Prometheus does after a restart: the
    /// dispatcher's in-memory alerts are gone too, and its persisted
    /// notification log is what keeps the receiver from being paged twice.
    pub fn restore(&mut self, mut a: Alert) {
        a.last_sent_at = None;
        self.active.insert(a.labels.hash64(), a);
    }

    /// Applies one evaluation at `t` and returns the alerts that are pending
    /// or firing afterwards (the ones that get `ALERTS` samples).
    pub fn update(
        &mut self,
        candidates: Vec<Candidate>,
        t: Timestamp,
        hold_ms: i64,
        keep_firing_for_ms: i64,
        limit: u64,
    ) -> Result<Vec<Alert>, AlertEvalError> {
        let mut fresh: HashMap<u64, Alert> = HashMap::with_capacity(candidates.len());
        for c in candidates {
            let h = c.labels.hash64();
            if fresh.contains_key(&h) {
                return Err(AlertEvalError::DuplicateLabelset);
            }
            fresh.insert(
                h,
                Alert {
                    labels: c.labels,
                    annotations: c.annotations,
                    state: AlertState::Pending,
                    value: c.value,
                    active_at: t,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }
        let seen: HashSet<u64> = fresh.keys().copied().collect();
        for (h, a) in fresh {
            match self.active.get_mut(&h) {
                // A resolved alert that comes back starts over as pending.
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(h, a);
                }
            }
        }

        let mut out = Vec::new();
        let mut remove = Vec::new();
        for (h, a) in self.active.iter_mut() {
            if !seen.contains(h) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(t);
                    keep_firing = t - since < keep_firing_for_ms;
                }
                let expired = a.resolved_at.is_some_and(|r| t - r > RESOLVED_RETENTION_MS);
                if a.state == AlertState::Pending || expired {
                    remove.push(*h);
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(t);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            if a.state == AlertState::Pending && t - a.active_at >= hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(t);
            }
            out.push(a.clone());
        }
        for h in remove {
            self.active.remove(&h);
        }
        if limit > 0 && out.len() as u64 > limit {
            self.active.clear();
            return Err(AlertEvalError::Limit {
                limit,
                count: out.len(),
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Prometheus' `sendAlerts`: marks what is sent now and returns it.
    pub fn to_send(
        &mut self,
        t: Timestamp,
        resend_delay_ms: i64,
        interval_ms: i64,
        expr: &str,
    ) -> Vec<AlertToSend> {
        let delta = resend_delay_ms.max(interval_ms);
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(t, resend_delay_ms) {
                continue;
            }
            a.last_sent_at = Some(t);
            let valid_until = t.saturating_add(delta.saturating_mul(4));
            a.valid_until = Some(valid_until);
            out.push(AlertToSend {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.fired_at,
                ends_at: a.resolved_at.unwrap_or(valid_until),
                generator_expr: expr.to_string(),
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// The `ALERTS` and `ALERTS_FOR_STATE` series of an active alert. Like
/// Prometheus they start from the rule's *unexpanded* labels, overridden by
/// the alert's labels.
pub fn state_series(rule_labels: &Labels, name: &str, a: &Alert) -> [(Labels, f64); 2] {
    let mut b: LabelsBuilder = rule_labels.builder();
    for l in &a.labels {
        b.set(l.name.clone(), l.value.clone());
    }
    b.set("alertname", name);
    let mut alerts = b.clone();
    alerts.set("__name__", ALERTS_METRIC);
    alerts.set("alertstate", a.state.as_str());
    b.set("__name__", ALERTS_FOR_STATE_METRIC);
    [
        (alerts.build(), 1.0),
        (b.build(), a.active_at.div_euclid(1000) as f64),
    ]
}
