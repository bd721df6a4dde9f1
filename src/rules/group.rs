//! Evaluation of one rule group at a timestamp, as Prometheus' `Group.Eval`
//! does it: rules in order, each rule's output appended to the head before
//! the next rule runs (so later rules see it), stale markers for series a
//! rule stopped producing, and per-rule health for the rules API.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::model::{Labels, Timestamp, STALE_NAN};
use crate::promql::engine::Engine;
use crate::promql::EvalError;
use crate::rules::alert::{
    state_series, ActiveAlerts, Alert, AlertEvalError, AlertToSend, Candidate,
};
use crate::rules::datasource::DatasourceError;
use crate::rules::file::{Rule, RuleGroup, RuleKind};
use crate::rules::querier::{LocalQuerier, Querier, RuleValue};
use crate::store::alerts::RuleAlerts;
use crate::template::{expand_error_text, QuerySample, Template, TemplateContext};
use crate::tsdb::{AppendError, CommitError, Head, HeadAppender, HistValue};

/// Why one rule's evaluation failed; the texts are Prometheus'.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    Query(#[from] EvalError),
    /// The remote datasource did not answer (datasource mode).
    #[error("{0}")]
    Datasource(#[from] DatasourceError),
    #[error("rule result is not a vector or scalar")]
    NotVector,
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateRecorded,
    #[error("exceeded limit of {limit} with {count} series")]
    SeriesLimit { limit: u64, count: usize },
    #[error(transparent)]
    Alert(#[from] AlertEvalError),
    /// Appending an output sample failed; the other samples were kept.
    #[error("{error} (series {series})")]
    Append { series: String, error: AppendError },
    /// The rule's output could not be stored (WAL write failed); none of
    /// it is in the head.
    #[error("storing the rule's output failed: {0}")]
    Storage(#[from] CommitError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleHealth {
    Unknown,
    Ok,
    Err,
}

/// State kept per rule between evaluations.
#[derive(Debug)]
pub struct RuleState {
    pub name: String,
    pub health: RuleHealth,
    pub last_error: Option<RuleError>,
    pub last_evaluation: Option<Timestamp>,
    pub last_duration: Duration,
    /// Alerts of an alerting rule (empty for recording rules).
    pub alerts: ActiveAlerts,
    /// Whether the last evaluation's query and state update succeeded;
    /// Prometheus only sends a rule's alerts after such an evaluation.
    eval_ok: bool,
    /// Series appended by the last successful evaluation, for stale markers.
    previous: HashMap<Labels, ()>,
    labels: Vec<(String, Result<Template, String>)>,
    annotations: Vec<(String, Result<Template, String>)>,
}

/// What one evaluation did.
#[derive(Debug, Default)]
pub struct EvalReport {
    pub t: Timestamp,
    pub duration: Duration,
    /// Samples appended (outputs, `ALERTS*`, not stale markers).
    pub samples: usize,
    /// `(rule index, rule name, error)` for every rule that failed.
    pub errors: Vec<(usize, String, RuleError)>,
}

/// A group's rules and their evaluation state.
#[derive(Debug)]
pub struct GroupState {
    pub file: String,
    pub group: RuleGroup,
    pub interval: Duration,
    pub external_url: String,
    pub rules: Vec<RuleState>,
    pub last_evaluation: Option<Timestamp>,
    pub last_duration: Duration,
    /// Set when a reload replaced this group: an evaluation already queued
    /// for it must not run any more (its successor owns the state now).
    pub retired: bool,
    /// Series of rules a reload removed from this group; they get stale
    /// markers at the next evaluation, as in Prometheus' `CopyState`.
    pending_stale: Vec<Labels>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Prometheus' group hash: the label set `{file, name}` hashed like labels.
pub fn group_hash(file: &str, name: &str) -> u64 {
    Labels::from_pairs([("name", name), ("file", file)]).hash64()
}

/// Prometheus' `EvalTimestamp`: the latest slot at or before `now_ns` of the
/// group's interval grid, shifted by `hash(group) % interval` so groups
/// spread over the interval instead of all running at once. Nanoseconds.
pub fn eval_timestamp(file: &str, name: &str, interval: Duration, now_ns: i64) -> i64 {
    let iv = i64::try_from(interval.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1);
    let offset = (group_hash(file, name) % iv as u64) as i64;
    let adj = now_ns - offset;
    // Go's `%` keeps the dividend's sign; so does Rust's.
    adj - adj % iv + offset
}

fn compile(alert: &str, entries: Vec<(String, String)>) -> Vec<(String, Result<Template, String>)> {
    let tname = format!("__alert_{alert}");
    entries
        .into_iter()
        .map(|(k, v)| {
            let t = Template::parse(&tname, &v).map_err(|e| expand_error_text(&tname, &e));
            (k, t)
        })
        .collect()
}

impl GroupState {
    /// State for `group` from `file`; `default_interval` applies when the
    /// group has none. Group labels (3.x) are merged under each rule's own.
    pub fn new(
        file: &str,
        group: RuleGroup,
        default_interval: Duration,
        external_url: &str,
    ) -> GroupState {
        let mut group = group;
        if !group.labels.is_empty() {
            for r in &mut group.rules {
                let mut b = group.labels.builder();
                for l in &r.labels {
                    b.set(l.name.clone(), l.value.clone());
                }
                r.labels = b.build();
            }
        }
        let rules = group
            .rules
            .iter()
            .map(|r| {
                let (labels, annotations) = match &r.kind {
                    RuleKind::Alert(n) => (
                        compile(
                            n,
                            r.labels
                                .iter()
                                .map(|l| (l.name.clone(), l.value.clone()))
                                .collect(),
                        ),
                        compile(
                            n,
                            r.annotations
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                    ),
                    RuleKind::Record(_) => (Vec::new(), Vec::new()),
                };
                RuleState {
                    name: r.kind.name().to_string(),
                    health: RuleHealth::Unknown,
                    last_error: None,
                    last_evaluation: None,
                    last_duration: Duration::ZERO,
                    alerts: ActiveAlerts::default(),
                    eval_ok: false,
                    previous: HashMap::new(),
                    labels,
                    annotations,
                }
            })
            .collect();
        GroupState {
            file: file.to_string(),
            interval: group.interval.unwrap_or(default_interval),
            group,
            external_url: external_url.to_string(),
            rules,
            last_evaluation: None,
            last_duration: Duration::ZERO,
            retired: false,
            pending_stale: Vec::new(),
        }
    }

    /// Prometheus' group key, the `rule_group` label of the group metrics.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.group.name)
    }

    /// The alerts of every alerting rule that has any, for the store.
    pub fn rule_alerts(&self) -> Vec<RuleAlerts> {
        self.group
            .rules
            .iter()
            .zip(&self.rules)
            .filter(|(r, st)| matches!(r.kind, RuleKind::Alert(_)) && !st.alerts.active.is_empty())
            .map(|(r, st)| RuleAlerts {
                rule: st.name.clone(),
                expr: r.expr_text.clone(),
                alerts: st.alerts.alerts().into_iter().cloned().collect(),
            })
            .collect()
    }

    /// A digest of what a restart needs of the active alerts (identity,
    /// state and its timestamps; not the value, annotations or resend
    /// bookkeeping, which change every evaluation and are recomputed by the
    /// first one after a restart): saving is skipped while it is unchanged.
    pub fn alert_state_digest(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for (r, st) in self.group.rules.iter().zip(&self.rules) {
            if !matches!(r.kind, RuleKind::Alert(_)) {
                continue;
            }
            h.update(st.name.as_bytes());
            h.update(r.expr_text.as_bytes());
            for a in st.alerts.alerts() {
                h.update(&a.labels.hash64().to_le_bytes());
                h.update(a.state.as_str().as_bytes());
                for t in [
                    Some(a.active_at),
                    a.fired_at,
                    a.resolved_at,
                    a.keep_firing_since,
                ] {
                    h.update(&t.unwrap_or(i64::MIN).to_le_bytes());
                }
            }
        }
        h.digest()
    }

    /// Puts back alerts saved by [`rule_alerts`](Self::rule_alerts) onto the
    /// alerting rules with the same name and expression; returns how many.
    /// Saved alerts of rules that no longer exist are ignored.
    pub fn restore_alerts(&mut self, saved: &[RuleAlerts]) -> usize {
        let mut n = 0;
        for (r, st) in self.group.rules.iter().zip(&mut self.rules) {
            if !matches!(r.kind, RuleKind::Alert(_)) {
                continue;
            }
            if let Some(s) = saved
                .iter()
                .find(|s| s.rule == st.name && s.expr == r.expr_text)
            {
                for a in &s.alerts {
                    st.alerts.restore(a.clone());
                    n += 1;
                }
            }
        }
        n
    }

    /// Prometheus' `Group.CopyState` on reload: each rule that also exists
    /// in `old` (same name, labels and expression, matched in order for
    /// duplicates) takes over its active alerts and the series it wrote, so
    /// a reload neither resets `for` nor writes needless stale markers. The
    /// series of old rules without a successor become stale at the next
    /// evaluation.
    pub fn copy_state_from(&mut self, old: &mut GroupState) {
        self.last_evaluation = old.last_evaluation;
        self.last_duration = old.last_duration;
        let mut used = vec![false; old.rules.len()];
        for (r, st) in self.group.rules.iter().zip(&mut self.rules) {
            let found = old.group.rules.iter().enumerate().position(|(i, o)| {
                !used.get(i).copied().unwrap_or(true)
                    && o.kind == r.kind
                    && o.labels == r.labels
                    && o.expr_text == r.expr_text
            });
            let Some(i) = found else { continue };
            if let (Some(u), Some(ost)) = (used.get_mut(i), old.rules.get_mut(i)) {
                *u = true;
                st.previous = std::mem::take(&mut ost.previous);
                st.alerts = std::mem::take(&mut ost.alerts);
                st.eval_ok = ost.eval_ok;
            }
        }
        self.pending_stale = std::mem::take(&mut old.pending_stale);
        for (i, ost) in old.rules.iter_mut().enumerate() {
            if !used.get(i).copied().unwrap_or(true) {
                self.pending_stale
                    .extend(ost.previous.drain().map(|(l, _)| l));
            }
        }
    }

    /// Stale markers at `t` for every series this group wrote last: the
    /// group was removed by a reload.
    pub fn mark_stale(&mut self, head: &Head, t: Timestamp) {
        let mut all = std::mem::take(&mut self.pending_stale);
        for st in &mut self.rules {
            all.extend(st.previous.drain().map(|(l, _)| l));
        }
        write_stale(head, &all, t);
    }

    /// Evaluates every rule at `t` (ms) in order with the local engine,
    /// appending outputs to `head`. A failing rule is recorded and the next
    /// one still runs.
    pub fn eval_group(
        &mut self,
        head: &Head,
        engine: &Engine,
        t: Timestamp,
        external_labels: &Labels,
    ) -> EvalReport {
        self.eval_group_with(head, &LocalQuerier { engine, head }, t, external_labels)
    }

    /// [`eval_group`](Self::eval_group) with the queries answered by `q`
    /// (datasource mode); outputs still go to the local `head`. A failed
    /// query leaves the rule's alerts exactly as they were (Prometheus
    /// returns before touching them): nothing resolves because the
    /// datasource was unreachable for one evaluation.
    pub fn eval_group_with(
        &mut self,
        head: &Head,
        q: &dyn Querier,
        t: Timestamp,
        external_labels: &Labels,
    ) -> EvalReport {
        let start = Instant::now();
        let offset = ms(self
            .group
            .query_offset
            .unwrap_or_else(|| q.default_query_offset()));
        let qt = t - offset;
        let mut report = EvalReport {
            t,
            ..EvalReport::default()
        };
        if !self.pending_stale.is_empty() {
            let stale = std::mem::take(&mut self.pending_stale);
            write_stale(head, &stale, qt);
        }
        for (i, (rule, st)) in self.group.rules.iter().zip(&mut self.rules).enumerate() {
            let rstart = Instant::now();
            let res = match &rule.kind {
                RuleKind::Record(name) => eval_recording(rule, name, q, qt, self.group.limit),
                RuleKind::Alert(name) => eval_alerting(
                    rule,
                    name,
                    st,
                    q,
                    t,
                    qt,
                    self.group.limit,
                    external_labels,
                    &self.external_url,
                ),
            };
            st.last_evaluation = Some(t);
            st.eval_ok = res.is_ok();
            match res {
                Err(e) => {
                    tracing::warn!(group = %self.group.name, rule = %st.name, index = i, error = %e, "evaluating rule failed");
                    st.health = RuleHealth::Err;
                    st.last_error = Some(e.clone());
                    report.errors.push((i, st.name.clone(), e));
                }
                Ok(out) => {
                    st.health = RuleHealth::Ok;
                    st.last_error = None;
                    let (n, err) = append_outputs(head, st, out, qt);
                    report.samples += n;
                    if let Some(e) = err {
                        st.health = RuleHealth::Err;
                        st.last_error = Some(e.clone());
                        report.errors.push((i, st.name.clone(), e));
                    }
                }
            }
            st.last_duration = rstart.elapsed();
        }
        self.last_evaluation = Some(t);
        self.last_duration = start.elapsed();
        report.duration = self.last_duration;
        report
    }

    /// Prometheus' `sendAlerts` over all alerting rules whose last evaluation
    /// succeeded: firing alerts once per `resend_delay`, resolutions until
    /// they leave the retention window.
    pub fn alerts_to_send(&mut self, t: Timestamp, resend_delay: Duration) -> Vec<AlertToSend> {
        let iv = ms(self.interval);
        let rd = ms(resend_delay);
        let mut out = Vec::new();
        for (rule, st) in self.group.rules.iter().zip(&mut self.rules) {
            if matches!(rule.kind, RuleKind::Alert(_)) && st.eval_ok {
                out.extend(st.alerts.to_send(t, rd, iv, &rule.expr_text));
            }
        }
        out
    }

    /// The pending and firing alerts of the rule named `alertname`.
    pub fn active_alerts(&self, alertname: &str) -> Vec<&Alert> {
        self.rules
            .iter()
            .filter(|r| r.name == alertname)
            .flat_map(|r| r.alerts.alerts())
            .filter(|a| a.state != crate::rules::alert::AlertState::Inactive)
            .collect()
    }
}

/// Stale markers for `series`; as for a rule's own, a marker that lands
/// out of order (another rule wrote the series meanwhile) is dropped.
fn write_stale(head: &Head, series: &[Labels], t: Timestamp) {
    let mut app = head.appender();
    append_stale(&mut app, series.iter(), t, "");
    if let Err(e) = app.commit() {
        tracing::warn!(series = series.len(), error = %e, "storing stale markers failed");
    }
}

/// Stale markers for `series` into a batch. Out-of-order/duplicate
/// markers are expected (another rule may write the same series) and
/// ignored, as in Prometheus.
fn append_stale<'l>(
    app: &mut HeadAppender<'_>,
    series: impl Iterator<Item = &'l Labels>,
    t: Timestamp,
    rule: &str,
) {
    for l in series {
        if let Err(e) = app.append(l, t, STALE_NAN) {
            if !matches!(
                e,
                AppendError::OutOfOrder
                    | AppendError::DuplicateTimestamp
                    | AppendError::OutOfBounds
            ) {
                tracing::warn!(rule, series = %l, error = %e, "writing stale marker failed");
            }
        }
    }
}

/// Appends a rule's output and stale markers for series it no longer
/// produces. Out-of-order/duplicate stale markers are expected (another rule
/// may write the same series) and ignored, as in Prometheus.
fn append_outputs(
    head: &Head,
    st: &mut RuleState,
    out: Vec<(Labels, RuleValue)>,
    t: Timestamp,
) -> (usize, Option<RuleError>) {
    let mut returned = HashMap::with_capacity(out.len());
    let mut n = 0;
    let mut err = None;
    // One batch per rule, so the next rule of the group sees this one's
    // output (as Prometheus commits per rule).
    let mut app = head.appender();
    for (l, v) in out {
        let res = match v {
            RuleValue::Float(v) => app.append(&l, t, v),
            RuleValue::Histogram(h) => app.append_histogram(&l, t, &HistValue::Float(*h)),
        };
        match res {
            Ok(_) => {
                n += 1;
                returned.insert(l, ());
            }
            Err(e) => {
                tracing::warn!(rule = %st.name, series = %l, error = %e, "appending rule output failed");
                err = Some(RuleError::Append {
                    series: l.to_string(),
                    error: e,
                });
            }
        }
    }
    append_stale(
        &mut app,
        st.previous.keys().filter(|l| !returned.contains_key(*l)),
        t,
        &st.name,
    );
    if let Err(e) = app.commit() {
        tracing::warn!(rule = %st.name, error = %e, "storing rule output failed");
        n = 0;
        err = Some(RuleError::Storage(e));
    }
    st.previous = returned;
    (n, err)
}

fn eval_recording(
    rule: &Rule,
    name: &str,
    q: &dyn Querier,
    t: Timestamp,
    limit: u64,
) -> Result<Vec<(Labels, RuleValue)>, RuleError> {
    let v = q.instant_values(&rule.expr_text, Some(&rule.expr), t)?;
    let mut out = Vec::with_capacity(v.len());
    let mut seen = HashMap::with_capacity(v.len());
    for (l, val) in v {
        let mut b = l.builder();
        b.set("__name__", name);
        for rl in &rule.labels {
            b.set(rl.name.clone(), rl.value.clone());
        }
        let l = b.build();
        if seen.insert(l.clone(), ()).is_some() {
            return Err(RuleError::DuplicateRecorded);
        }
        out.push((l, val));
    }
    if limit > 0 && out.len() as u64 > limit {
        return Err(RuleError::SeriesLimit {
            limit,
            count: out.len(),
        });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn eval_alerting(
    rule: &Rule,
    name: &str,
    st: &mut RuleState,
    q: &dyn Querier,
    t: Timestamp,
    qt: Timestamp,
    limit: u64,
    external_labels: &Labels,
    external_url: &str,
) -> Result<Vec<(Labels, RuleValue)>, RuleError> {
    let v = q.instant(&rule.expr_text, Some(&rule.expr), qt)?;
    // `query` in templates runs at the evaluation time, as in Prometheus.
    let qf = |text: &str| -> Result<Vec<QuerySample>, String> {
        q.instant(text, None, t)
            .map(|v| {
                v.into_iter()
                    .map(|(labels, value)| QuerySample { labels, value })
                    .collect()
            })
            .map_err(|e| e.to_string())
    };
    let mut candidates = Vec::with_capacity(v.len());
    for (l, value) in v {
        let ctx = TemplateContext {
            labels: &l,
            external_labels,
            external_url,
            value,
            now_ms: t,
            query: Some(&qf),
        };
        let expand = |tmpl: &Result<Template, String>| -> String {
            match tmpl {
                Ok(tm) => tm.execute(&ctx).unwrap_or_else(|e| {
                    tracing::warn!(alert = name, error = %e, "expanding alert template failed");
                    format!(
                        "<error expanding template: {}>",
                        expand_error_text(tm.name(), &e)
                    )
                }),
                Err(msg) => format!("<error expanding template: {msg}>"),
            }
        };
        let mut b = l.builder();
        b.del("__name__");
        for (k, tmpl) in &st.labels {
            b.set(k.clone(), expand(tmpl));
        }
        b.set("alertname", name);
        let annotations: BTreeMap<String, String> = st
            .annotations
            .iter()
            .map(|(k, tmpl)| (k.clone(), expand(tmpl)))
            .collect();
        candidates.push(Candidate {
            labels: b.build(),
            annotations,
            value,
        });
    }
    let active = st.alerts.update(
        candidates,
        t,
        ms(rule.for_),
        ms(rule.keep_firing_for),
        limit,
    )?;
    Ok(active
        .iter()
        .flat_map(|a| state_series(&rule.labels, name, a))
        .map(|(l, v)| (l, RuleValue::Float(v)))
        .collect())
}
