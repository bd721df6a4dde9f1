//! Scheduled probes (the `probes:` section is `probe::config`): the loops that run
//! each (target, module) at its interval and write the results into the
//! head, so rules can alert on `probe_success == 0` or on certificate
//! expiry without any external exporter.
//!
//! An entry may also hold only `modules_file`, to add modules that
//! `GET /probe` serves without scheduling anything.
//!
//! Each result is written with `job`, `instance` (the target) and `module`
//! labels plus the configured ones. A series the previous run had but this
//! one lacks (a TLS metric after a fallback to plain HTTP, say) gets a stale
//! marker, as a scrape would give it, so queries stop returning it at once.

use super::{run_probe, ProbeOutcome};
use crate::model::{Labels, STALE_NAN};
use crate::tsdb::Head;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub use super::config::{ProbeConfig, ProbesSection, DEFAULT_JOB};

/// Writes one probe's samples at `ts`, marking series of the previous
/// write that are gone as stale. Returns the labels written.
pub fn write_outcome(
    head: &Head,
    cfg: &ProbeConfig,
    outcome: &ProbeOutcome,
    ts: i64,
    previous: &HashSet<Labels>,
) -> HashSet<Labels> {
    let mut written = HashSet::new();
    let mut app = head.appender();
    for (name, sample_labels, v) in outcome.metrics.samples() {
        let mut pairs: Vec<(String, String)> = cfg.labels.clone();
        pairs.push(("job".into(), cfg.job.clone()));
        pairs.push(("instance".into(), outcome.target.clone()));
        pairs.push(("module".into(), outcome.module.clone()));
        pairs.extend(sample_labels);
        pairs.push(("__name__".into(), name));
        let labels = Labels::from_pairs(pairs);
        append(&mut app, &labels, ts, v);
        written.insert(labels);
    }
    for gone in previous.difference(&written) {
        append(&mut app, gone, ts, STALE_NAN);
    }
    if let Err(e) = app.commit() {
        tracing::warn!(job = %cfg.job, target = %outcome.target, error = %e, "probe samples not stored");
    }
    written
}

fn append(app: &mut crate::tsdb::HeadAppender<'_>, labels: &Labels, ts: i64, v: f64) {
    if let Err(e) = app.append(labels, ts, v) {
        tracing::debug!(error = ?e, series = %labels, "probe sample not appended");
    }
}

/// The last outcome of one scheduled (job, target, module), as the probes
/// page shows it. Kept beside the series because phases and the failure
/// reason are awkward to reassemble from PromQL.
#[derive(Clone, Debug, PartialEq)]
pub struct LastResult {
    pub job: String,
    pub target: String,
    pub module: String,
    pub interval: Duration,
    /// When the probe started (Unix millis).
    pub at_ms: i64,
    pub success: bool,
    pub duration: Duration,
    /// The one-line failure reason, if it failed.
    pub reason: Option<String>,
    /// Final HTTP status, for HTTP probes that got a response.
    pub status: Option<u16>,
    /// `(phase, seconds)` from the `*_duration_seconds{phase=...}` metrics,
    /// in the order a request goes through them (resolve, connect, tls,
    /// processing, transfer; other phases after, by name).
    pub phases: Vec<(String, f64)>,
    /// `probe_ssl_earliest_cert_expiry` (Unix seconds), for TLS probes.
    pub cert_expiry: Option<f64>,
}

impl LastResult {
    fn from_outcome(cfg: &ProbeConfig, outcome: &ProbeOutcome, at_ms: i64) -> LastResult {
        let mut phases = Vec::new();
        for (name, labels, v) in outcome.metrics.samples() {
            if !name.ends_with("_duration_seconds") {
                continue;
            }
            if let Some((_, phase)) = labels.iter().find(|(k, _)| k == "phase") {
                phases.push((phase.clone(), v));
            }
        }
        // The metrics come sorted by label value; a reader wants time order.
        const ORDER: [&str; 8] = [
            "resolve",
            "setup",
            "rtt",
            "connect",
            "tls",
            "request",
            "processing",
            "transfer",
        ];
        let rank = |p: &str| ORDER.iter().position(|o| *o == p).unwrap_or(ORDER.len());
        phases.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
        LastResult {
            job: cfg.job.clone(),
            target: outcome.target.clone(),
            module: outcome.module.clone(),
            interval: cfg.interval,
            at_ms,
            success: outcome.success,
            duration: outcome.duration,
            reason: outcome.reason.clone(),
            status: outcome.status,
            phases,
            cert_expiry: outcome.metrics.get("probe_ssl_earliest_cert_expiry"),
        }
    }
}

/// The last result of every scheduled probe, keyed by (job, target,
/// module). Written by the probe loops, read by `GET /api/v1/probes`.
#[derive(Debug, Default)]
pub struct ProbeResults {
    map: parking_lot::RwLock<BTreeMap<(String, String, String), LastResult>>,
}

impl ProbeResults {
    pub fn record(&self, r: LastResult) {
        let key = (r.job.clone(), r.target.clone(), r.module.clone());
        self.map.write().insert(key, r);
    }

    /// Every recorded result, ordered by job, target, module.
    pub fn snapshot(&self) -> Vec<LastResult> {
        self.map.read().values().cloned().collect()
    }
}

/// Starts one loop per (entry, target). Loops run until aborted.
/// Scheduled probes pause while `maintenance` is on (a kill-switch): their
/// series keep their last values instead of paging on a planned outage.
pub fn spawn(
    head: Arc<Head>,
    probes: &[ProbeConfig],
    maintenance: Arc<crate::maintenance::Maintenance>,
) -> Vec<JoinHandle<()>> {
    spawn_recording(head, probes, maintenance, Arc::new(ProbeResults::default()))
}

/// [`spawn`], keeping each probe's last result in `results`.
pub fn spawn_recording(
    head: Arc<Head>,
    probes: &[ProbeConfig],
    maintenance: Arc<crate::maintenance::Maintenance>,
    results: Arc<ProbeResults>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for cfg in probes {
        for target in &cfg.targets {
            let cfg = cfg.clone();
            let target = target.clone();
            let head = head.clone();
            let maintenance = maintenance.clone();
            let results = results.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(cfg.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut previous = HashSet::new();
                loop {
                    tick.tick().await;
                    if maintenance.is_on() {
                        continue;
                    }
                    let ts = crate::model::now_millis();
                    let outcome = run_probe(&cfg.module, &target, cfg.timeout).await;
                    if !outcome.success {
                        tracing::debug!(
                            target = %target,
                            module = %cfg.module.name,
                            reason = outcome.reason.as_deref().unwrap_or(""),
                            "probe failed"
                        );
                    }
                    previous = write_outcome(&head, &cfg, &outcome, ts, &previous);
                    results.record(LastResult::from_outcome(&cfg, &outcome, ts));
                }
            }));
        }
    }
    tasks
}
