//! Runs the rule groups of `rule_files` inside `klaxon run`: each group on
//! its own interval, at Prometheus' hash-spread slot, evaluated on the
//! blocking pool so a slow query never stalls the scrape tasks.

use crate::config::Config;
use crate::model::Labels;
use crate::promql::Engine;
use crate::rules::file::{load_rule_file_with, Dialect};
use crate::rules::group::{eval_timestamp, GroupState};
use crate::tsdb::Head;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Every loaded group, shared with the API.
#[derive(Default)]
pub struct RuleManager {
    groups: Vec<Arc<Mutex<GroupState>>>,
    /// Where firing/resolved alerts go after each evaluation (the notify
    /// dispatcher); unset = kept in the rule state only.
    sink: Arc<parking_lot::RwLock<Option<Arc<dyn crate::notify::AlertSink>>>>,
}

impl RuleManager {
    /// Loads every file the `rule_files` globs match (a glob matching
    /// nothing is fine, as in Prometheus). Errors come back as
    /// `FILE:LINE:COL: message` lines, all of them.
    pub fn load(cfg: &Config, external_url: &str) -> Result<RuleManager, Vec<String>> {
        let mut errors = Vec::new();
        let mut files = Vec::new();
        for pattern in &cfg.rule_files {
            match glob::glob(pattern) {
                Ok(paths) => files.extend(paths.flatten()),
                Err(e) => errors.push(format!("rule_files: bad pattern {pattern:?}: {e}")),
            }
        }
        files.sort();
        files.dedup();
        let mut groups = Vec::new();
        for f in files {
            // `klaxon run` takes current Prometheus files (query_offset,
            // group labels); `check rules` stays with promtool 2.42's verdicts.
            match load_rule_file_with(&f, Dialect::Prometheus3) {
                Ok(rf) => {
                    let name = f.display().to_string();
                    for g in rf.groups {
                        groups.push(Arc::new(Mutex::new(GroupState::new(
                            &name,
                            g,
                            cfg.global.evaluation_interval,
                            external_url,
                        ))));
                    }
                }
                Err(e) => errors.extend(e.0.iter().map(|x| x.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(RuleManager {
                groups,
                sink: Default::default(),
            })
        } else {
            Err(errors)
        }
    }

    /// Sends each evaluation's alerts (Prometheus' `sendAlerts`) to `sink`.
    pub fn set_sink(&self, sink: Arc<dyn crate::notify::AlertSink>) {
        *self.sink.write() = Some(sink);
    }

    pub fn groups(&self) -> &[Arc<Mutex<GroupState>>] {
        &self.groups
    }

    /// One task per group, evaluating at the group's slots until aborted.
    pub fn spawn(&self, head: Arc<Head>, engine: Engine, external: Labels) -> Vec<JoinHandle<()>> {
        self.groups
            .iter()
            .map(|g| {
                let (g, head, engine, external) =
                    (g.clone(), head.clone(), engine.clone(), external.clone());
                let sink = self.sink.clone();
                tokio::spawn(async move {
                    let (file, name, interval) = {
                        let s = g.lock();
                        (s.file.clone(), s.group.name.clone(), s.interval)
                    };
                    let iv_ns = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX).max(1);
                    loop {
                        let now_ns = now_nanos();
                        let next = eval_timestamp(&file, &name, interval, now_ns) + iv_ns;
                        let wait = u64::try_from(next - now_ns).unwrap_or(0);
                        tokio::time::sleep(Duration::from_nanos(wait)).await;
                        let (g, head, engine, external, sink) = (
                            g.clone(),
                            head.clone(),
                            engine.clone(),
                            external.clone(),
                            sink.clone(),
                        );
                        let span = tracing::debug_span!("rules", group = %name);
                        let _ = tokio::task::spawn_blocking(move || {
                            let _e = span.enter();
                            let report = g.lock().eval_group(&head, &engine, next / 1_000_000, &external);
                            for (_, rule, err) in &report.errors {
                                tracing::warn!(rule = %rule, error = %err, "rule evaluation failed");
                            }
                            let target = sink.read().clone();
                            if let Some(target) = target {
                                let t = next / 1_000_000;
                                let mut st = g.lock();
                                let sends = st.alerts_to_send(t, RESEND_DELAY);
                                let url = st.external_url.clone();
                                drop(st);
                                if !sends.is_empty() {
                                    target.send(sends.into_iter().map(|a| to_notify_alert(a, &url, t)).collect());
                                }
                            }
                        })
                        .await;
                    }
                })
            })
            .collect()
    }
}

/// Prometheus' `--rules.alert.resend-delay` default.
const RESEND_DELAY: Duration = Duration::from_secs(60);

/// A rule alert as the notifier sends it (Prometheus' `notifier.Alert`).
fn to_notify_alert(
    a: crate::rules::alert::AlertToSend,
    external_url: &str,
    now: crate::model::Timestamp,
) -> crate::notify::Alert {
    crate::notify::Alert {
        labels: a.labels,
        annotations: Labels::from_pairs(a.annotations),
        starts_at: a.starts_at.unwrap_or(0),
        ends_at: Some(a.ends_at),
        generator_url: format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            external_url.trim_end_matches('/'),
            crate::model::url::query_escape(&a.generator_expr)
        ),
        updated_at: now,
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
