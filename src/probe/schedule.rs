//! Scheduled probes: the `probes:` config section, and the loops that run
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

use super::{effective_timeout, run_probe, Module, Modules, ProbeOutcome};
use crate::config::errors::{Pos, Sink};
use crate::config::relabel::is_valid_label_name;
use crate::config::{parse_duration, ConfigErrors};
use crate::model::{Labels, STALE_NAN};
use crate::tsdb::Head;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Default `job` label of scheduled probe series.
pub const DEFAULT_JOB: &str = "probe";

/// One `probes:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    targets: Option<S<Vec<S<String>>>>,
    module: Option<S<String>>,
    interval: Option<S<String>>,
    timeout: Option<S<String>>,
    job: Option<S<String>>,
    labels: Option<BTreeMap<String, String>>,
    modules_file: Option<S<String>>,
}

/// One resolved `probes:` entry.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub targets: Vec<String>,
    pub module: Arc<Module>,
    pub interval: Duration,
    pub timeout: Duration,
    pub job: String,
    pub labels: Vec<(String, String)>,
}

/// All modules the `probes:` section can use: the shipped defaults plus
/// every `modules_file` it names (later files win on equal names).
pub(crate) fn modules_for(raw: &[S<RawProbe>], dir: Option<&Path>, sink: &mut Sink) -> Modules {
    let mut m = Modules::defaults();
    for p in raw {
        if let Some(f) = &p.value.modules_file {
            let path = match dir {
                Some(d) if Path::new(&f.value).is_relative() => d.join(&f.value),
                _ => Path::new(&f.value).to_path_buf(),
            };
            match Modules::load_file(&path) {
                Ok(user) => m.extend(user),
                Err(ConfigErrors(errs)) => {
                    for e in errs {
                        sink.push(
                            Pos::of(f),
                            format!(
                                "modules_file: {}:{}:{}: {}",
                                e.file, e.line, e.column, e.message
                            ),
                        );
                    }
                }
            }
        }
    }
    m
}

/// Resolves the section; `default_interval` is the global scrape interval.
pub(crate) fn resolve(
    raw: &[S<RawProbe>],
    modules: &Modules,
    default_interval: Duration,
    sink: &mut Sink,
) -> Vec<ProbeConfig> {
    let mut out = Vec::new();
    for p in raw {
        let r = &p.value;
        // An entry with only `modules_file` just adds modules (for /probe).
        let (rtargets, rmodule) = match (&r.targets, &r.module) {
            (Some(t), Some(m)) => (t, m),
            (None, None) if r.modules_file.is_some() => continue,
            (None, _) => {
                sink.push(Pos::of(p), "probes: targets must be set");
                continue;
            }
            (_, None) => {
                sink.push(Pos::of(p), "probes: module must be set");
                continue;
            }
        };
        let Some(module) = modules.get(&rmodule.value) else {
            sink.push(
                Pos::of(rmodule),
                format!("probes: unknown module {:?}", rmodule.value),
            );
            continue;
        };
        let dur = |d: &Option<S<String>>, field: &str, sink: &mut Sink| -> Option<Duration> {
            let d = d.as_ref()?;
            match parse_duration(&d.value) {
                Ok(v) if !v.is_zero() => Some(v),
                Ok(_) => {
                    sink.push(
                        Pos::of(d),
                        format!("probes: {field} must be greater than 0"),
                    );
                    None
                }
                Err(e) => {
                    sink.push(Pos::of(d), format!("probes: {field}: {e}"));
                    None
                }
            }
        };
        let interval = dur(&r.interval, "interval", sink).unwrap_or(default_interval);
        let timeout = dur(&r.timeout, "timeout", sink).unwrap_or_else(|| {
            // Like a scrape: the probe must end before the next one starts.
            effective_timeout(&module, Some(interval.as_secs_f64())).min(interval)
        });
        let mut targets = Vec::new();
        for t in &rtargets.value {
            match super::check_target(&module, &t.value) {
                Ok(()) => targets.push(t.value.clone()),
                Err(e) => sink.push(Pos::of(t), format!("probes: {e}")),
            }
        }
        if rtargets.value.is_empty() {
            sink.push(Pos::of(rtargets), "probes: targets must not be empty");
        }
        let mut labels = Vec::new();
        for (k, v) in r.labels.clone().unwrap_or_default() {
            if !is_valid_label_name(&k) || k.starts_with("__") {
                sink.push(Pos::of(p), format!("probes: invalid label name {k:?}"));
                continue;
            }
            labels.push((k, v));
        }
        out.push(ProbeConfig {
            targets,
            module,
            interval,
            timeout,
            job: r
                .job
                .as_ref()
                .map(|j| j.value.clone())
                .unwrap_or_else(|| DEFAULT_JOB.to_string()),
            labels,
        });
    }
    out
}

/// The resolved `probes:` section plus the modules `/probe` serves.
#[derive(Clone, Debug)]
pub struct ProbesSection {
    pub probes: Vec<ProbeConfig>,
    pub modules: Arc<Modules>,
}

impl Default for ProbesSection {
    fn default() -> Self {
        ProbesSection {
            probes: Vec::new(),
            modules: Arc::new(Modules::defaults()),
        }
    }
}

/// Compared by what a user wrote (modules hold compiled regexes, which
/// have no equality): entries by targets, module name, timing and labels,
/// modules by name.
impl PartialEq for ProbesSection {
    fn eq(&self, o: &Self) -> bool {
        let key = |p: &ProbeConfig| {
            (
                p.targets.clone(),
                p.module.name.clone(),
                p.interval,
                p.timeout,
                p.job.clone(),
                p.labels.clone(),
            )
        };
        self.probes.len() == o.probes.len()
            && self
                .probes
                .iter()
                .zip(&o.probes)
                .all(|(a, b)| key(a) == key(b))
            && self.modules.names().eq(o.modules.names())
    }
}

/// Resolves the optional section (config loading calls this).
pub(crate) fn resolve_section(
    raw: Option<Vec<S<RawProbe>>>,
    dir: Option<&Path>,
    default_interval: Duration,
    sink: &mut Sink,
) -> ProbesSection {
    let raw = raw.unwrap_or_default();
    let modules = modules_for(&raw, dir, sink);
    let probes = resolve(&raw, &modules, default_interval, sink);
    ProbesSection {
        probes,
        modules: Arc::new(modules),
    }
}

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
