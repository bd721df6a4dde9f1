//! Runs the rule groups of `rule_files` inside `klaxon run`: each group on
//! its own interval, at Prometheus' hash-spread slot, evaluated on the
//! blocking pool so a slow query never stalls the scrape tasks.
//!
//! After each evaluation the group's alerts go three ways: to the
//! [`AlertSink`] (the dispatcher) when one is given, else to the log; to the
//! store when they changed, so a restart neither resets `for` nor re-pages;
//! and into the per-group metrics. A reload swaps in new groups at once,
//! carrying over the state of rules that did not change.

use crate::config::GlobalConfig;
use crate::model::alert::AlertSink;
use crate::model::{Labels, Timestamp};
use crate::promql::Engine;
use crate::rules::alert::AlertToSend;
use crate::rules::file::{
    load_rule_file_with, parse_rule_file, Dialect, RuleFile, RuleFileError, RuleFileErrors,
};
use crate::rules::group::{eval_timestamp, GroupState};
use crate::rules::metrics::{missed_slots, RuleMetrics};
use crate::rules::querier::Querier;
use crate::store::alerts::{self as stored, RuleAlerts};
use crate::store::Store;
use crate::tsdb::Head;
use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Prometheus' default `--rules.alert.resend-delay`: a firing alert is
/// re-sent at most this often.
pub const RESEND_DELAY: Duration = Duration::from_secs(60);

/// What running groups need besides their own state.
#[derive(Clone)]
pub struct RunContext {
    pub head: Arc<Head>,
    pub engine: Engine,
    pub external_labels: Labels,
    /// Where alert state is saved; `None` keeps it in memory only.
    pub store: Option<Arc<Store>>,
    /// The dispatcher; `None` logs firing and resolved alerts instead.
    pub sink: Option<Arc<dyn AlertSink>>,
    pub metrics: Option<Arc<RuleMetrics>>,
    /// Datasource mode: queries go here instead of `engine` over `head`
    /// (outputs are still appended to `head`).
    pub querier: Option<Arc<dyn Querier>>,
    /// What local queries read when it is more than the head (the head
    /// and persisted blocks); `None` reads the head.
    pub storage: Option<Arc<dyn crate::tsdb::Queryable>>,
    /// `--rules.alert.resend-delay`: a firing alert goes to the sink again
    /// at most this often ([`RESEND_DELAY`] by default).
    pub resend_delay: Duration,
}

struct Running {
    ctx: RunContext,
    tasks: Vec<JoinHandle<()>>,
}

/// Every loaded group, shared with the API; replaced whole by a reload.
#[derive(Default)]
pub struct RuleManager {
    groups: RwLock<Vec<Arc<Mutex<GroupState>>>>,
    external_url: RwLock<String>,
    running: Mutex<Option<Running>>,
}

/// One reason rule files did not load, naming where.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("rule_files: bad pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    /// A problem in a rule file: `FILE: message`, the message carrying
    /// promtool's `LINE:COL` where promtool prints one.
    #[error(transparent)]
    File(#[from] RuleFileError),
}

/// Every reason rule files did not load (never empty), one per line.
#[derive(Debug, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    pub fn errors(&self) -> &[LoadError] {
        &self.0
    }

    /// The errors joined by `sep` (a reload reports them on one line).
    pub fn join(&self, sep: &str) -> String {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        lines.join(sep)
    }
}

impl IntoIterator for LoadErrors {
    type Item = LoadError;
    type IntoIter = std::vec::IntoIter<LoadError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.join("\n"))
    }
}

/// Collects load errors; `finish` hands back `ok` when there were none.
#[derive(Default)]
struct Problems(Vec<LoadError>);

impl Problems {
    fn pattern(&mut self, pattern: &str, reason: impl std::fmt::Display) {
        self.0.push(LoadError::Pattern {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        });
    }

    fn file(&mut self, e: RuleFileErrors) {
        self.0.extend(e.0.into_iter().map(LoadError::File));
    }

    fn finish<T>(self, ok: T) -> Result<T, LoadErrors> {
        if self.0.is_empty() {
            Ok(ok)
        } else {
            Err(LoadErrors(self.0))
        }
    }
}

/// Rule sources compiled into the binary (the bundled `rules/` and
/// `recording_rules/` folders), as `(path relative to the repo, content)`.
pub fn embedded_sources() -> &'static [(&'static str, &'static str)] {
    crate::rules::embedded::SOURCES
}

/// What the rule manager reads from the configuration: the `rule_files`
/// globs (joined to the config's directory), the `global:` defaults, and
/// whether the globs name the bundled rule files (the embedded default).
/// The whole file converts into it (`crate::settings`).
#[derive(Clone, Copy, Debug)]
pub struct RulesSection<'a> {
    pub rule_files: &'a [String],
    pub global: &'a GlobalConfig,
    pub embedded: bool,
}

impl RuleManager {
    /// Loads every file the `rule_files` globs match (a glob matching
    /// nothing is fine, as in Prometheus). Errors come back all of them,
    /// each naming its file and position.
    pub fn load<'a>(
        cfg: impl Into<RulesSection<'a>>,
        external_url: &str,
    ) -> Result<RuleManager, LoadErrors> {
        let groups = load_groups(cfg.into(), external_url)?;
        Ok(RuleManager {
            groups: RwLock::new(
                groups
                    .into_iter()
                    .map(|g| Arc::new(Mutex::new(g)))
                    .collect(),
            ),
            external_url: RwLock::new(external_url.to_string()),
            running: Mutex::new(None),
        })
    }

    /// Sets the URL klaxon is reached at (`$externalURL`, `generatorURL`)
    /// for the loaded groups and those of later reloads, e.g. once the
    /// listener picked its port.
    pub fn set_external_url(&self, url: &str) {
        *self.external_url.write() = url.to_string();
        for g in self.groups.read().iter() {
            g.lock().external_url = url.to_string();
        }
    }

    /// The current groups (a snapshot: a reload may replace them).
    pub fn groups(&self) -> Vec<Arc<Mutex<GroupState>>> {
        self.groups.read().clone()
    }

    /// Puts back the alerts saved in `store` before the first evaluation,
    /// then forgets saved state of groups and rules that no longer exist.
    /// Returns how many alerts came back.
    pub fn restore(&self, store: &Store) -> Result<usize, crate::store::StoreError> {
        let saved = stored::load_all(store)?;
        let mut n = 0;
        let mut keep = Vec::new();
        for g in self.groups.read().iter() {
            let mut g = g.lock();
            if let Some(s) = saved
                .iter()
                .find(|s| s.file == g.file && s.group == g.group.name)
            {
                n += g.restore_alerts(&s.rules);
            }
            // Rewriting the group drops rows of rules that went away.
            stored::save_group(store, &g.file, &g.group.name, &g.rule_alerts())?;
            keep.push((g.file.clone(), g.group.name.clone()));
        }
        stored::retain_groups(store, &keep)?;
        tracing::info!(alerts = n, "restored alert state");
        Ok(n)
    }

    /// Starts one task per group, evaluating at the group's slots until
    /// [`stop`](Self::stop) or a reload replaces them.
    pub fn spawn(&self, ctx: RunContext) {
        let mut running = self.running.lock();
        if let Some(old) = running.take() {
            for t in old.tasks {
                t.abort();
            }
        }
        let tasks = spawn_groups(&self.groups.read(), &ctx);
        *running = Some(Running { ctx, tasks });
    }

    /// Stops every group task.
    pub fn stop(&self) {
        if let Some(r) = self.running.lock().take() {
            for t in r.tasks {
                t.abort();
            }
        }
    }

    /// Replaces the groups by those of `cfg` in one step. Nothing changes
    /// when a file does not load (the errors come back). Groups with the
    /// same file and name take over the alerts and series of their
    /// unchanged rules; removed groups get stale markers and lose their
    /// metrics and saved state.
    pub fn reload<'a>(&self, cfg: impl Into<RulesSection<'a>>) -> Result<(), LoadErrors> {
        let p = self.prepare_reload(cfg)?;
        self.apply_reload(p);
        Ok(())
    }

    /// The first half of [`RuleManager::reload`]: every rule file of `cfg`
    /// read and validated; nothing running changes.
    pub fn prepare_reload<'a>(
        &self,
        cfg: impl Into<RulesSection<'a>>,
    ) -> Result<PreparedRules, LoadErrors> {
        let cfg = cfg.into();
        let external_url = self.external_url.read().clone();
        Ok(PreparedRules {
            groups: load_groups(cfg, &external_url)?,
            external_labels: cfg.global.external_labels.clone(),
        })
    }

    /// The second half of [`RuleManager::reload`]: swaps the prepared
    /// groups in; cannot fail.
    pub fn apply_reload(&self, p: PreparedRules) {
        let mut new_groups = p.groups;
        let mut running = self.running.lock();
        if let Some(r) = running.as_mut() {
            for t in r.tasks.drain(..) {
                t.abort();
            }
            r.ctx.external_labels = p.external_labels;
        }
        let old_groups = std::mem::take(&mut *self.groups.write());
        let now = crate::model::now_millis();
        let mut removed = Vec::new();
        for old in &old_groups {
            let mut old = old.lock();
            old.retired = true;
            match new_groups
                .iter_mut()
                .find(|n| n.file == old.file && n.group.name == old.group.name)
            {
                Some(n) => n.copy_state_from(&mut old),
                None => {
                    if let Some(r) = running.as_ref() {
                        old.mark_stale(&r.ctx.head, now);
                    }
                    removed.push(old.key());
                }
            }
        }
        let new_groups: Vec<_> = new_groups
            .into_iter()
            .map(|g| Arc::new(Mutex::new(g)))
            .collect();
        *self.groups.write() = new_groups.clone();
        if let Some(r) = running.as_mut() {
            if let Some(m) = &r.ctx.metrics {
                for k in &removed {
                    m.group_removed(k);
                }
            }
            if let Some(store) = &r.ctx.store {
                let keep: Vec<(String, String)> = new_groups
                    .iter()
                    .map(|g| {
                        let g = g.lock();
                        (g.file.clone(), g.group.name.clone())
                    })
                    .collect();
                if let Err(e) = stored::retain_groups(store, &keep) {
                    tracing::warn!(error = %e, "forgetting alert state of removed groups");
                }
            }
            r.tasks = spawn_groups(&new_groups, &r.ctx);
        }
        tracing::info!(
            groups = new_groups.len(),
            removed = removed.len(),
            "rule groups reloaded"
        );
    }
}

/// Rule groups loaded for a reload, not yet running
/// ([`RuleManager::prepare_reload`]).
pub struct PreparedRules {
    groups: Vec<GroupState>,
    external_labels: crate::model::Labels,
}

/// One task per group (registered in the group metrics first).
fn spawn_groups(groups: &[Arc<Mutex<GroupState>>], ctx: &RunContext) -> Vec<JoinHandle<()>> {
    groups
        .iter()
        .map(|g| {
            if let Some(m) = &ctx.metrics {
                let s = g.lock();
                m.group_added(&s.key(), s.interval, s.rules.len());
            }
            spawn_group(g.clone(), ctx.clone())
        })
        .collect()
}

/// Reads and validates every rule file of `cfg`; the bundled sources when
/// `cfg` is the embedded default (so the binary works outside the repo).
fn load_groups(cfg: RulesSection<'_>, external_url: &str) -> Result<Vec<GroupState>, LoadErrors> {
    if cfg.embedded {
        return load_sources(cfg, embedded_sources(), external_url);
    }
    let mut errors = Problems::default();
    let mut files = Vec::new();
    for pattern in cfg.rule_files {
        match glob::glob(pattern) {
            Ok(paths) => {
                let before = files.len();
                files.extend(paths.flatten());
                if files.len() == before {
                    tracing::warn!(pattern = %pattern, "rule_files: pattern matches no file");
                }
            }
            Err(e) => errors.pattern(pattern, e),
        }
    }
    files.sort();
    files.dedup();
    let mut groups = Vec::new();
    for f in files {
        // `klaxon run` takes current Prometheus files (query_offset,
        // group labels; names under the global validation scheme);
        // `check rules` stays with promtool 2.42's verdicts.
        match load_rule_file_with(&f, Dialect::prometheus3(cfg.global.names.validation)) {
            Ok(rf) => add_groups(&mut groups, &f.display().to_string(), rf, cfg, external_url),
            Err(e) => errors.file(e),
        }
    }
    errors.finish(groups)
}

/// Loads the `sources` (`(name, content)`) whose names match one of the
/// config's `rule_files` globs, in name order.
pub fn load_sources(
    cfg: RulesSection<'_>,
    sources: &[(&str, &str)],
    external_url: &str,
) -> Result<Vec<GroupState>, LoadErrors> {
    let mut errors = Problems::default();
    let mut patterns = Vec::new();
    for p in cfg.rule_files {
        match glob::Pattern::new(p) {
            Ok(x) => patterns.push(x),
            Err(e) => errors.pattern(p, e),
        }
    }
    let mut chosen: Vec<&(&str, &str)> = sources
        .iter()
        .filter(|(name, _)| patterns.iter().any(|p| p.matches(name)))
        .collect();
    chosen.sort_by_key(|(name, _)| *name);
    let mut groups = Vec::new();
    for (name, text) in chosen {
        match parse_rule_file(
            name,
            text.as_bytes(),
            Dialect::prometheus3(cfg.global.names.validation),
        ) {
            Ok(rf) => add_groups(&mut groups, name, rf, cfg, external_url),
            Err(e) => errors.file(e),
        }
    }
    errors.finish(groups)
}

fn add_groups(
    out: &mut Vec<GroupState>,
    file: &str,
    rf: RuleFile,
    cfg: RulesSection<'_>,
    url: &str,
) {
    for g in rf.groups {
        out.push(GroupState::new(
            file,
            g,
            cfg.global.evaluation_interval,
            url,
        ));
    }
}

/// A group task's view of its saved alert state.
#[derive(Default)]
struct SaveState {
    /// Digest of the state the store holds.
    saved: Option<u64>,
    /// A save is running.
    busy: bool,
}

/// What one evaluation leaves for the follow-up work outside the lock.
struct Evaluated {
    key: String,
    rules: usize,
    report: crate::rules::group::EvalReport,
    to_send: Vec<AlertToSend>,
    /// The group's alert state and its digest, when it differs from what
    /// was last saved.
    alerts: Option<(u64, Vec<RuleAlerts>)>,
    file: String,
    name: String,
}

fn spawn_group(g: Arc<Mutex<GroupState>>, ctx: RunContext) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (file, name, interval) = {
            let s = g.lock();
            (s.file.clone(), s.group.name.clone(), s.interval)
        };
        let iv_ns = i64::try_from(interval.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        // What the store holds for this group (None: not written yet by
        // this task, so the first evaluation writes), and whether a save is
        // under way. Saves run detached: evaluation never waits on the
        // store; while one is slow, later states wait for the next round.
        let saver = Arc::new(Mutex::new(SaveState::default()));
        // Alerts logged as firing, when there is no sink.
        let mut logged: HashSet<u64> = HashSet::new();
        let mut next = eval_timestamp(&file, &name, interval, now_nanos()) + iv_ns;
        loop {
            let wait = u64::try_from(next - now_nanos()).unwrap_or(0);
            tokio::time::sleep(Duration::from_nanos(wait)).await;
            let slot = next;
            let (g2, ctx2) = (g.clone(), ctx.clone());
            let saved = saver.lock().saved;
            let span = tracing::debug_span!("rules", group = %name);
            let res = tokio::task::spawn_blocking(move || {
                let _e = span.enter();
                evaluate(&g2, &ctx2, slot / 1_000_000, saved)
            })
            .await;
            let now = now_nanos();
            let Ok(Some(ev)) = res else {
                // Retired by a reload, or the evaluation panicked.
                return;
            };
            // Prometheus: an overrun skips `missed` slots and evaluates the
            // latest one that has begun next (late), counting the skipped.
            let missed = missed_slots(slot, now, iv_ns);
            if let Some(m) = &ctx.metrics {
                m.evaluated(&ev.key, ev.rules, &ev.report);
                m.missed(&ev.key, missed);
            }
            // Each failed rule was logged once where it was evaluated.
            deliver(&ctx, &g, &ev, &mut logged);
            if let Some(store) = &ctx.store {
                let start = ev
                    .alerts
                    .filter(|_| !std::mem::replace(&mut saver.lock().busy, true));
                if let Some((digest, alerts)) = start {
                    let (store, gfile, gname) = (store.clone(), ev.file.clone(), ev.name.clone());
                    let saver = saver.clone();
                    tokio::task::spawn_blocking(move || {
                        let r = stored::save_group(&store, &gfile, &gname, &alerts);
                        let mut st = saver.lock();
                        st.busy = false;
                        match r {
                            Ok(_) => st.saved = Some(digest),
                            Err(e) => {
                                tracing::warn!(group = %gname, error = %e, "saving alert state failed")
                            }
                        }
                    });
                }
            }
            next = slot + (i64::try_from(missed).unwrap_or(0) + 1) * iv_ns;
        }
    })
}

/// Runs one evaluation at `t` (ms) unless the group was retired.
fn evaluate(
    g: &Mutex<GroupState>,
    ctx: &RunContext,
    t: Timestamp,
    saved: Option<u64>,
) -> Option<Evaluated> {
    let mut s = g.lock();
    if s.retired {
        return None;
    }
    let report = match &ctx.querier {
        Some(q) => s.eval_group_with(&ctx.head, q.as_ref(), t, &ctx.external_labels),
        None => match &ctx.storage {
            Some(st) => {
                let q = crate::rules::querier::LocalQuerier {
                    engine: &ctx.engine,
                    head: st.as_ref(),
                };
                s.eval_group_with(&ctx.head, &q, t, &ctx.external_labels)
            }
            None => s.eval_group(&ctx.head, &ctx.engine, t, &ctx.external_labels),
        },
    };
    let to_send = s.alerts_to_send(t, ctx.resend_delay);
    // Alert state is copied out for saving only when it changed.
    let alerts = match ctx.store {
        Some(_) => {
            let digest = s.alert_state_digest();
            (saved != Some(digest)).then(|| (digest, s.rule_alerts()))
        }
        None => None,
    };
    Some(Evaluated {
        key: s.key(),
        rules: s.rules.len(),
        report,
        to_send,
        alerts,
        file: s.file.clone(),
        name: s.group.name.clone(),
    })
}

/// Hands the alerts to the sink, or logs transitions when there is none.
fn deliver(ctx: &RunContext, g: &Mutex<GroupState>, ev: &Evaluated, logged: &mut HashSet<u64>) {
    if ev.to_send.is_empty() {
        return;
    }
    let external_url = g.lock().external_url.clone();
    match &ctx.sink {
        Some(sink) => {
            let now = crate::model::now_millis();
            let alerts = ev
                .to_send
                .iter()
                .map(|a| to_notify(a, &external_url, &ctx.external_labels, now))
                .collect();
            sink.send(alerts);
        }
        None => {
            for a in &ev.to_send {
                let fp = a.labels.hash64();
                let resolved = a.ends_at <= ev.report.t;
                if resolved && logged.remove(&fp) {
                    tracing::info!(alert = %a.labels, "alert resolved");
                } else if !resolved && logged.insert(fp) {
                    tracing::info!(alert = %a.labels, annotations = ?a.annotations, "alert firing");
                }
            }
        }
    }
}

/// Prometheus' `strutil.TableLinkForExpression`, after the external URL.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.trim_end_matches('/'),
        crate::model::url::query_escape(expr)
    )
}

/// An alert as the notifier sends it: external labels added where the
/// alert has no such label (as Prometheus' notifier does), starts at its
/// `firedAt`.
pub fn to_notify(
    a: &AlertToSend,
    external_url: &str,
    external_labels: &Labels,
    now: Timestamp,
) -> crate::model::alert::Alert {
    let labels = if external_labels.is_empty() {
        a.labels.clone()
    } else {
        let mut b = a.labels.builder();
        for l in external_labels {
            if a.labels.get(&l.name).is_none() {
                b.set(l.name.clone(), l.value.clone());
            }
        }
        b.build()
    };
    crate::model::alert::Alert {
        labels,
        annotations: Labels::from_pairs(
            a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        starts_at: a.starts_at.unwrap_or(0),
        ends_at: Some(a.ends_at),
        generator_url: generator_url(external_url, &a.generator_expr),
        request_id: None,
        updated_at: now,
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn section<'a>(rule_files: &'a [String], global: &'a GlobalConfig) -> RulesSection<'a> {
        RulesSection {
            rule_files,
            global,
            embedded: false,
        }
    }

    #[test]
    fn notify_alerts_carry_external_labels_and_a_graph_link() {
        let a = AlertToSend {
            labels: Labels::from_pairs([("alertname", "A"), ("env", "own")]),
            annotations: BTreeMap::from([("summary".to_string(), "s".to_string())]),
            starts_at: Some(5_000),
            ends_at: 65_000,
            generator_expr: "up == 0".into(),
        };
        let ext = Labels::from_pairs([("env", "ext"), ("dc", "x")]);
        let n = to_notify(&a, "http://k:9470/", &ext, 7);
        assert_eq!(n.labels.get("env"), Some("own"));
        assert_eq!(n.labels.get("dc"), Some("x"));
        assert_eq!(n.annotations.get("summary"), Some("s"));
        assert_eq!(n.starts_at, 5_000);
        assert_eq!(n.ends_at, Some(65_000));
        assert_eq!(
            n.generator_url,
            "http://k:9470/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }

    #[test]
    fn restore_puts_alerts_back_and_drops_state_of_removed_rules() {
        use crate::rules::alert::{Alert, AlertState};
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("r.yml");
        let write = |alert: &str| {
            std::fs::write(
                &rules,
                format!("groups:\n  - name: g\n    rules:\n      - alert: {alert}\n        expr: vector(1)\n"),
            )
            .unwrap()
        };
        let global = GlobalConfig::default();
        let rule_files = [rules.display().to_string()];
        let cfg = section(&rule_files, &global);
        let store = Store::open_in_memory().unwrap();
        let file = rules.display().to_string();
        let alert = Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Default::default(),
            state: AlertState::Firing,
            value: 1.0,
            active_at: 1_000,
            fired_at: Some(2_000),
            resolved_at: None,
            last_sent_at: Some(2_000),
            valid_until: Some(242_000),
            keep_firing_since: None,
        };
        let saved = [RuleAlerts {
            rule: "A".into(),
            expr: "vector(1)".into(),
            alerts: vec![alert.clone()],
        }];
        stored::save_group(&store, &file, "g", &saved).unwrap();
        stored::save_group(&store, "gone.yml", "old", &saved).unwrap();

        write("A");
        let m = RuleManager::load(cfg, "http://x").unwrap();
        assert_eq!(m.restore(&store).unwrap(), 1);
        // Restored alerts are handed to the dispatcher again at once.
        let want = Alert {
            last_sent_at: None,
            ..alert.clone()
        };
        assert_eq!(m.groups()[0].lock().active_alerts("A"), vec![&want]);
        // The removed group's state is gone; the live one is kept.
        let left = stored::load_all(&store).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].file, file);

        // The rule was renamed: nothing comes back, and its state is dropped.
        write("B");
        let m = RuleManager::load(cfg, "http://x").unwrap();
        assert_eq!(m.restore(&store).unwrap(), 0);
        assert!(m.groups()[0].lock().active_alerts("B").is_empty());
        assert!(stored::load_all(&store).unwrap().is_empty());
    }

    #[test]
    fn embedded_sources_load_when_they_match_the_globs() {
        let global = GlobalConfig::default();
        let rule_files = [
            "rules/*.yml".to_string(),
            "recording_rules/*.yml".to_string(),
        ];
        let cfg = section(&rule_files, &global);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yml");
        std::fs::write(
            &p,
            "groups:\n  - name: g\n    rules:\n      - record: a:b:c\n        expr: vector(1)\n",
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let srcs = [
            ("rules/x.yml", text.as_str()),
            ("rules/README.md", "not yaml: ["),
            ("other/y.yml", text.as_str()),
        ];
        let g = load_sources(cfg, &srcs, "http://x").unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].file, "rules/x.yml");
        // No bundled sources at all is fine too.
        assert!(load_sources(cfg, &[], "http://x").unwrap().is_empty());
        // A broken bundled file is an error naming it.
        let e = load_sources(cfg, &[("rules/bad.yml", "groups: [")], "u").unwrap_err();
        assert!(e.to_string().starts_with("rules/bad.yml: "), "{e}");
        assert!(matches!(&e.errors()[0], LoadError::File(f) if f.file == "rules/bad.yml"));
    }
}
