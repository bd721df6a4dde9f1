//! The `probes:` section: scheduled (target, module) probes and the
//! module files `GET /probe` serves, resolved with positions.

use super::{effective_timeout, Module, Modules};
use crate::config::errors::{Pos, Sink};
use crate::config::relabel::is_valid_label_name;
use crate::config::{parse_duration, ConfigErrors};
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
