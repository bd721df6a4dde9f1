//! The running auto-healing engine: the rules (config file and API), the
//! ledger of past runs, and the loop that checks the dispatcher's firing
//! alerts against the rules once a second and runs actions on tasks of
//! their own, never on the notification path.
//!
//! A rule decides once per firing episode of an alert (its start time):
//! when the episode has lasted `firing_for`, the ledger says run, dry-run
//! or skip (cooldown, rate limit, maintenance), and that decision stands
//! until the alert resolves and fires again. Every decision and every run's
//! end is an `autoheal` event (the audit log, the event stream and the run
//! history read them) and is counted in `klaxon_autoheal_*`. At start the
//! ledger is rebuilt from those events, so a restart neither forgets a
//! cooldown nor runs an episode a second time.

use super::{Decision, Ledger, Rule};
use crate::metrics::{CounterVec, HistogramVec, Registry};
use crate::notify::dispatch::Dispatcher;
use crate::ops::{Events, Maintenance};
use crate::store::Store;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Event kind of every auto-healing decision and run outcome.
pub use crate::events::KIND_AUTOHEAL;

/// How often firing alerts are checked.
const TICK: Duration = Duration::from_millis(500);

/// How far back the ledger is rebuilt from the event store at start.
const RESTORE_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

struct Metrics {
    decisions: Arc<CounterVec>,
    failures: Arc<CounterVec>,
    duration: Arc<HistogramVec>,
}

/// The engine; share it as `Arc<Engine>`.
pub struct Engine {
    config_rules: RwLock<Vec<Arc<Rule>>>,
    api_rules: RwLock<Vec<Arc<Rule>>>,
    ledger: Mutex<Ledger>,
    /// (rule, alert fingerprint) -> the episode's start already decided.
    decided: Mutex<HashMap<(String, u64), i64>>,
    /// A client per rule (its TLS and proxy settings).
    clients: Mutex<HashMap<String, reqwest::Client>>,
    maintenance: Arc<Maintenance>,
    events: Events,
    store: Arc<Store>,
    metrics: Metrics,
}

/// One rule with its state, for the API and the UI.
#[derive(Debug, serde::Serialize)]
pub struct RuleView {
    pub name: String,
    pub source: &'static str,
    pub matchers: Vec<String>,
    pub severity: Vec<String>,
    pub firing_for: String,
    pub cooldown: String,
    pub max_runs: u32,
    pub window: String,
    pub dry_run: bool,
    pub target_labels: Vec<String>,
    pub action: serde_json::Value,
    pub retry: serde_json::Value,
    /// Targets that ran, with their last run and next allowed run (ms).
    pub targets: Vec<TargetState>,
    pub runs_in_window: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct TargetState {
    pub target: String,
    pub last_run_ms: i64,
    pub next_allowed_ms: i64,
}

fn dur(d: Duration) -> String {
    crate::config::format_duration(d)
}

impl RuleView {
    fn of(r: &Rule, ledger: &Ledger) -> RuleView {
        let a = &r.action;
        let mut action = match &a.kind {
            super::action::ActionKind::Http => serde_json::json!({"http": {
                "method": a.method.as_str(),
                "url": crate::config::redact::redact_url(&a.url),
                "headers": a.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "body": a.body,
                "timeout": dur(a.timeout),
                "signed": a.secret.is_some(),
            }}),
            super::action::ActionKind::Command { command, reason } => {
                serde_json::json!({"command": {
                    "url": crate::config::redact::redact_url(&a.url),
                    "command": command.as_str(),
                    "reason": reason,
                    "timeout": dur(a.timeout),
                    "signed": a.secret.is_some(),
                }})
            }
        };
        if let Some(o) = action.as_object_mut().and_then(|o| o.values_mut().next()) {
            if let Some(o) = o.as_object_mut() {
                o.insert(
                    "hmac_secret".into(),
                    serde_json::json!(a.secret.as_ref().map(|_| crate::config::redact::SECRET)),
                );
            }
        }
        let (targets, runs_in_window) = ledger.state(r);
        RuleView {
            name: r.name.clone(),
            source: if r.from_config { "config" } else { "api" },
            matchers: r.matchers.iter().map(|m| m.to_string()).collect(),
            severity: r.severity.clone(),
            firing_for: dur(r.firing_for),
            cooldown: dur(r.cooldown),
            max_runs: r.max_runs,
            window: dur(r.window),
            dry_run: r.dry_run,
            target_labels: r.target_labels.clone(),
            action,
            retry: serde_json::json!({"attempts": a.attempts, "backoff": dur(a.backoff)}),
            targets: targets
                .into_iter()
                .map(|(target, last_run_ms)| TargetState {
                    target,
                    last_run_ms,
                    next_allowed_ms: last_run_ms
                        .saturating_add(r.cooldown.as_millis().min(i64::MAX as u128) as i64),
                })
                .collect(),
            runs_in_window,
        }
    }
}

/// Why an API change of a rule was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleChangeError {
    #[error("rule {0:?} comes from the config file and is read-only")]
    ReadOnly(String),
    #[error("rule {0:?} already exists")]
    Exists(String),
    #[error("rule {0:?} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Engine {
    pub fn new(
        registry: &Registry,
        store: Arc<Store>,
        events: Events,
        maintenance: Arc<Maintenance>,
    ) -> Arc<Engine> {
        let metrics = Metrics {
            decisions: registry.counter_vec(
                "klaxon_autoheal_decisions",
                "Auto-healing decisions and run outcomes by rule (triggered, dry_run, skipped_cooldown, skipped_rate_limit, skipped_maintenance, retrying, succeeded, failed).",
                &["rule", "outcome"],
            ),
            failures: registry.counter_vec(
                "klaxon_autoheal_action_failures",
                "Auto-healing action runs that failed after their retries, by rule and reason.",
                &["rule", "reason"],
            ),
            duration: registry.histogram_vec(
                "klaxon_autoheal_action_duration_seconds",
                "Time an auto-healing action took, retries included.",
                &["rule"],
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
        };
        Arc::new(Engine {
            config_rules: RwLock::new(Vec::new()),
            api_rules: RwLock::new(Vec::new()),
            ledger: Mutex::new(Ledger::default()),
            decided: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            maintenance,
            events,
            store,
            metrics,
        })
    }

    /// Checks that every rule can get its HTTP client (TLS files readable,
    /// proxy valid): what a reload must know before it applies anything.
    pub fn prepare(rules: &[Rule]) -> Result<HashMap<String, reqwest::Client>, String> {
        rules
            .iter()
            .map(|r| {
                r.action
                    .client()
                    .map(|c| (r.name.clone(), c))
                    .map_err(|e| format!("autoheal rule {:?}: {e}", r.name))
            })
            .collect()
    }

    /// Swaps in the config file's rules (at start and on reload) with the
    /// clients [`Engine::prepare`] built for them.
    pub fn apply_config(&self, rules: Vec<Rule>, clients: HashMap<String, reqwest::Client>) {
        let api: Vec<String> = self
            .api_rules
            .read()
            .iter()
            .map(|r| r.name.clone())
            .collect();
        // A config rule takes the name of an API rule: the config wins.
        let config: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
        let mut c = self.clients.lock();
        c.retain(|k, _| api.contains(k));
        c.extend(clients);
        drop(c);
        *self.config_rules.write() = config;
    }

    /// Loads the rules admins created through the API from the store, and
    /// rebuilds the ledger from the run history. Rows that no longer
    /// validate are logged and skipped.
    pub fn load_from_store(&self) -> Result<(), crate::store::StoreError> {
        let mut rules = Vec::new();
        for (name, body) in crate::store::autoheal::load_all(&self.store)? {
            match super::config::parse_rule_json(&body, &format!("stored autoheal rule {name}")) {
                Ok(r) => match r.action.client() {
                    Ok(c) => {
                        self.clients.lock().insert(r.name.clone(), c);
                        rules.push(Arc::new(r));
                    }
                    Err(e) => {
                        tracing::error!(rule = %name, error = %e, "autoheal: stored rule skipped")
                    }
                },
                Err(e) => {
                    tracing::error!(rule = %name, error = %e, "autoheal: stored rule skipped")
                }
            }
        }
        *self.api_rules.write() = rules;
        self.restore_ledger();
        Ok(())
    }

    fn restore_ledger(&self) {
        let since = crate::model::now_millis()
            - i64::try_from(RESTORE_MAX.as_millis()).unwrap_or(i64::MAX / 2);
        // Read first, then rebuild under the locks (the checking loop
        // takes them too and must not wait on the store).
        let rows = match self.read_history(since) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "autoheal: reading the run history");
                return;
            }
        };
        let mut ledger = self.ledger.lock();
        // Rebuilt from scratch: the history holds every run.
        *ledger = Ledger::default();
        let mut decided = self.decided.lock();
        for ev in &rows {
            let d = &ev.data;
            let (Some(rule), Some(outcome)) = (d["rule"].as_str(), d["outcome"].as_str()) else {
                continue;
            };
            if let (Some(fp), Some(start)) = (
                d["fingerprint"]
                    .as_str()
                    .and_then(|f| u64::from_str_radix(f, 16).ok()),
                d["starts_at_ms"].as_i64(),
            ) {
                decided.insert((rule.to_string(), fp), start);
            }
            if matches!(outcome, "triggered" | "dry_run") {
                ledger.record_run(rule, d["target"].as_str().unwrap_or(""), ev.at_ms);
            }
        }
    }

    /// Every `autoheal` event since `since_ms`, oldest first.
    fn read_history(
        &self,
        since_ms: i64,
    ) -> Result<Vec<crate::ops::events::Event>, crate::store::StoreError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let rows = self.events.query(&crate::store::audit::EventQuery {
                since_ms: Some(since_ms),
                kind: Some(KIND_AUTOHEAL.into()),
                after_id: after,
                limit: 1000,
                ..Default::default()
            })?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            out.extend(rows);
        }
        Ok(out)
    }

    /// Every rule, config first, with its state.
    pub fn views(&self) -> Vec<RuleView> {
        let ledger = self.ledger.lock();
        self.rules()
            .iter()
            .map(|r| RuleView::of(r, &ledger))
            .collect()
    }

    pub fn view(&self, name: &str) -> Option<RuleView> {
        let ledger = self.ledger.lock();
        self.rules()
            .iter()
            .find(|r| r.name == name)
            .map(|r| RuleView::of(r, &ledger))
    }

    fn rules(&self) -> Vec<Arc<Rule>> {
        let config = self.config_rules.read().clone();
        let mut all = config.clone();
        all.extend(
            self.api_rules
                .read()
                .iter()
                .filter(|r| !config.iter().any(|c| c.name == r.name))
                .cloned(),
        );
        all
    }

    /// Creates (`create`) or replaces an API rule from its JSON text.
    pub fn put_rule(
        &self,
        name: Option<&str>,
        body: &str,
        create: bool,
    ) -> Result<RuleView, RuleChangeError> {
        let rule = super::config::parse_rule_json(body, "request body")
            .map_err(|e| RuleChangeError::Invalid(e.to_string().trim_end().to_string()))?;
        if let Some(n) = name {
            if n != rule.name {
                return Err(RuleChangeError::Invalid(format!(
                    "the body's name {:?} differs from the path's {n:?}",
                    rule.name
                )));
            }
        }
        if self.config_rules.read().iter().any(|r| r.name == rule.name) {
            return Err(RuleChangeError::ReadOnly(rule.name));
        }
        let exists = self.api_rules.read().iter().any(|r| r.name == rule.name);
        if create && exists {
            return Err(RuleChangeError::Exists(rule.name));
        }
        if !create && !exists {
            return Err(RuleChangeError::NotFound(rule.name));
        }
        let client = rule.action.client().map_err(RuleChangeError::Invalid)?;
        crate::store::autoheal::put(&self.store, &rule.name, body)?;
        self.clients.lock().insert(rule.name.clone(), client);
        let rule = Arc::new(rule);
        let mut api = self.api_rules.write();
        api.retain(|r| r.name != rule.name);
        api.push(rule.clone());
        drop(api);
        Ok(RuleView::of(&rule, &self.ledger.lock()))
    }

    pub fn delete_rule(&self, name: &str) -> Result<(), RuleChangeError> {
        if self.config_rules.read().iter().any(|r| r.name == name) {
            return Err(RuleChangeError::ReadOnly(name.to_string()));
        }
        if !self.api_rules.read().iter().any(|r| r.name == name) {
            return Err(RuleChangeError::NotFound(name.to_string()));
        }
        crate::store::autoheal::delete(&self.store, name)?;
        self.api_rules.write().retain(|r| r.name != name);
        self.clients.lock().remove(name);
        self.ledger.lock().forget(name);
        Ok(())
    }

    /// The run history: `autoheal` events since `since_ms`, oldest first.
    pub fn history(
        &self,
        since_ms: i64,
        rule: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::ops::events::Event>, crate::store::StoreError> {
        let mut out: Vec<_> = self
            .read_history(since_ms)?
            .into_iter()
            .filter(|e| rule.is_none_or(|r| e.data["rule"].as_str() == Some(r)))
            .collect();
        // The newest `limit`.
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }

    /// Publishes one decision or outcome (audit log, event stream, run
    /// history) and counts it.
    fn record(&self, rule: &str, outcome: &str, data: serde_json::Value) {
        self.metrics.decisions.with(&[rule, outcome]).inc();
        tracing::info!(
            target: "klaxon::audit",
            rule,
            outcome,
            target_labels = %data["target"].as_str().unwrap_or(""),
            error = %data["error"].as_str().unwrap_or(""),
            "autoheal"
        );
        let mut data = data;
        if let Some(o) = data.as_object_mut() {
            o.insert("rule".into(), rule.into());
            o.insert("outcome".into(), outcome.into());
        }
        self.events.publish_later(KIND_AUTOHEAL, data);
    }

    /// One pass over the firing alerts at `now`.
    pub fn check(self: &Arc<Self>, alerts: &[crate::notify::dispatch::StoredAlert], now: i64) {
        let rules = self.rules();
        let maintenance = self.maintenance.is_on();
        let mut runs = Vec::new();
        {
            let mut decided = self.decided.lock();
            let mut ledger = self.ledger.lock();
            let active: std::collections::HashSet<u64> = alerts
                .iter()
                .filter(|a| !a.resolved_at(now))
                .map(|a| a.fingerprint)
                .collect();
            decided.retain(|(_, fp), _| active.contains(fp));
            if rules.is_empty() {
                return;
            }
            for a in alerts.iter().filter(|a| !a.resolved_at(now)) {
                for r in &rules {
                    let key = (r.name.clone(), a.fingerprint);
                    if decided.get(&key) == Some(&a.alert.starts_at) || !r.matches(&a.alert.labels)
                    {
                        continue;
                    }
                    let d = ledger.decide(r, &a.alert.labels, a.alert.starts_at, now, maintenance);
                    if d == Decision::NotYet {
                        continue;
                    }
                    decided.insert(key, a.alert.starts_at);
                    let target = r.target(&a.alert.labels);
                    // Also the X-Correlation-ID: at most 128 characters.
                    let short = r.name.get(..r.name.len().min(80)).unwrap_or("");
                    let run_id = format!("ah-{short}-{:016x}-{now}", a.fingerprint);
                    let mut data = serde_json::json!({
                        "run_id": run_id,
                        "target": target,
                        "alertname": a.alert.labels.get("alertname").unwrap_or(""),
                        "fingerprint": format!("{:016x}", a.fingerprint),
                        "starts_at_ms": a.alert.starts_at,
                    });
                    if let Decision::SkippedCooldown { until } = d {
                        data["until_ms"] = until.into();
                    }
                    self.record(&r.name, d.outcome(), data);
                    if d == (Decision::Run { dry_run: false }) {
                        runs.push((r.clone(), a.alert.clone(), target, run_id));
                    }
                }
            }
        }
        for (rule, alert, target, run_id) in runs {
            let me = self.clone();
            tokio::spawn(async move { me.run(rule, alert, target, run_id).await });
        }
    }

    async fn run(
        self: Arc<Self>,
        rule: Arc<Rule>,
        alert: crate::notify::Alert,
        target: String,
        run_id: String,
    ) {
        let client = self.clients.lock().get(&rule.name).cloned();
        let ann: std::collections::BTreeMap<String, String> = alert
            .annotations
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let base = serde_json::json!({
            "run_id": run_id,
            "target": target,
            "alertname": alert.labels.get("alertname").unwrap_or(""),
            "fingerprint": format!("{:016x}", alert.fingerprint()),
            "starts_at_ms": alert.starts_at,
        });
        let t0 = Instant::now();
        let body = {
            let p = super::action::Payload::new(
                &rule.name,
                &target,
                &alert.labels,
                &ann,
                alert.starts_at,
            );
            rule.action.render_body(&rule.name, &p)
        };
        let result = match (client, body) {
            (None, _) => Err(super::action::ActionError::Encode(
                "no HTTP client for the rule".into(),
            )),
            (_, Err(e)) => Err(e),
            (Some(client), Ok(body)) => {
                let me = self.clone();
                let (name, base2) = (rule.name.clone(), base.clone());
                let on_retry = move |attempt: u32, e: &super::action::ActionError| {
                    let mut d = base2.clone();
                    d["attempt"] = attempt.into();
                    d["error"] = e.to_string().into();
                    me.record(&name, "retrying", d);
                };
                super::action::execute(
                    &client,
                    &rule.action,
                    body,
                    &run_id,
                    crate::model::now_millis() / 1000,
                    &on_retry,
                )
                .await
            }
        };
        let took = t0.elapsed();
        self.metrics
            .duration
            .with(&[&rule.name])
            .observe(took.as_secs_f64());
        let mut data = base;
        data["duration_ms"] = (took.as_millis() as u64).into();
        match result {
            Ok((status, attempts)) => {
                data["status"] = status.into();
                data["attempts"] = attempts.into();
                self.record(&rule.name, "succeeded", data);
            }
            Err(e) => {
                let reason = match &e {
                    super::action::ActionError::Status { .. } => "status",
                    super::action::ActionError::Transport { .. } => "transport",
                    super::action::ActionError::Encode(_) => "config",
                };
                self.metrics.failures.with(&[&rule.name, reason]).inc();
                data["error"] = e.to_string().into();
                self.record(&rule.name, "failed", data);
            }
        }
    }

    /// Checks the dispatcher's alerts every [`TICK`] until aborted (only
    /// while this process is the store's leader).
    pub fn spawn(self: &Arc<Self>, dispatcher: Arc<Dispatcher>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(TICK);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_leader = me.store.is_leader();
            loop {
                t.tick().await;
                // HA pair: only the leader acts; one that takes over first
                // reads the API's rules and what the old leader ran from the
                // shared store.
                let leader = me.store.is_leader();
                if leader && !was_leader {
                    let m = me.clone();
                    match tokio::task::spawn_blocking(move || m.load_from_store()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(error = %e, "autoheal: reloading rules"),
                        Err(e) => tracing::error!(error = %e, "autoheal: reloading rules"),
                    }
                }
                was_leader = leader;
                if !leader || (me.config_rules.read().is_empty() && me.api_rules.read().is_empty())
                {
                    continue;
                }
                let alerts = dispatcher.alerts();
                me.check(&alerts, crate::model::now_millis());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use crate::notify::dispatch::StoredAlert;

    fn alert(starts_at: i64) -> StoredAlert {
        let labels = Labels::from_pairs([
            ("alertname", "A".to_string()),
            ("instance", "i:1".to_string()),
        ]);
        StoredAlert {
            fingerprint: crate::notify::dispatch::fingerprint(&labels),
            alert: crate::notify::Alert {
                labels,
                annotations: Labels::empty(),
                starts_at,
                ends_at: Some(i64::MAX / 2),
                generator_url: String::new(),
                updated_at: starts_at,
                request_id: None,
            },
            timeout: false,
        }
    }

    fn last_run(e: &Engine) -> Option<i64> {
        e.views()[0].targets.first().map(|t| t.last_run_ms)
    }

    #[tokio::test]
    async fn waits_for_firing_for_decides_once_per_episode_and_pauses_in_maintenance() {
        let store = Arc::new(Store::open_in_memory().expect("store"));
        let m = Arc::new(Maintenance::new());
        let e = Engine::new(
            &Registry::new(),
            store.clone(),
            Events::new(store),
            m.clone(),
        );
        let rule = super::super::config::parse_rule_json(
            r#"{"name": "r", "matchers": ["alertname=\"A\""], "firing_for": "1m", "cooldown": "0s", "dry_run": true, "action": {"http": {"url": "http://127.0.0.1:9/x"}}}"#,
            "t",
        )
        .expect("rule");
        e.apply_config(vec![rule], HashMap::new());
        let a = alert(1_000_000);
        e.check(std::slice::from_ref(&a), 1_059_999);
        assert_eq!(last_run(&e), None, "ran before firing_for");
        e.check(std::slice::from_ref(&a), 1_060_000);
        assert_eq!(last_run(&e), Some(1_060_000));
        // Still the same episode: no second run, even without a cooldown.
        e.check(std::slice::from_ref(&a), 1_200_000);
        assert_eq!(last_run(&e), Some(1_060_000));
        // A new episode (it resolved and fired again) runs again.
        let b = alert(2_000_000);
        e.check(std::slice::from_ref(&b), 2_060_000);
        assert_eq!(last_run(&e), Some(2_060_000));
        // Maintenance: the next episode is skipped, not run.
        m.enable(crate::ops::MaintenanceState {
            reason: "r".into(),
            operator: "o".into(),
            since_ms: 0,
            correlation_id: "c".into(),
        });
        let c = alert(3_000_000);
        e.check(std::slice::from_ref(&c), 3_060_000);
        assert_eq!(last_run(&e), Some(2_060_000));
    }
}
