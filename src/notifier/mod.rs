//! notifier: sends the rules' alerts to external Alertmanagers
//! (`alerting.alertmanagers`), with the semantics of Prometheus' notifier.
//!
//! Each `alertmanagers` entry is a set, named `config-N` after its position
//! as in Prometheus. A set's Alertmanagers come from target groups: its SD
//! entries (static, file, http, dns, consul, docker, kubernetes) run on a
//! [`crate::discovery::Manager`] of their own (`name="notify"`), the same
//! providers the scrape jobs use; each group is relabeled with the entry's
//! `relabel_configs` (`__meta_*` labels included) into
//! `__scheme__://__address____alerts_path__` URLs. A failing SD source
//! publishes nothing, so the set keeps its last known Alertmanagers. Every Alertmanager of every set gets every alert: each has its own
//! bounded queue and its own send task, so a down or slow one delays no
//! other. Alerts first get the external labels and `alert_relabel_configs`;
//! a set's own `alert_relabel_configs` apply on top for that set.
//!
//! It sits beside the built-in router: [`FanOut`] hands the rules' alerts
//! to both.

pub mod config;

use crate::config::{RelabelConfig, TargetGroup};
use crate::metrics::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, Registry};
use crate::model::{Labels, LabelsBuilder};
use crate::notify::{Alert, AlertSink};
pub use config::{AlertingConfig, AlertmanagerConfig, NotifierSection};
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Alerts per request at most (Prometheus' `DefaultMaxBatchSize`).
pub const MAX_BATCH_SIZE: usize = 256;
/// Default of `--alertmanager.notification-queue-capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// The label holding the path alerts are posted to.
pub const ALERTS_PATH_LABEL: &str = "__alerts_path__";

/// Command-line settings of the notifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifierOptions {
    /// Alerts each Alertmanager's queue holds before the oldest are dropped.
    pub queue_capacity: usize,
    pub max_batch_size: usize,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch_size: MAX_BATCH_SIZE,
        }
    }
}

/// `klaxon_notifications_*`, Prometheus' `prometheus_notifications_*`
/// families labelled `alertmanager` (the URL) as its per-Alertmanager send
/// loops label them.
pub struct NotifierMetrics {
    sent: Arc<CounterVec>,
    errors: Arc<CounterVec>,
    dropped: Arc<CounterVec>,
    queue_length: Arc<GaugeVec>,
    latency: Arc<HistogramVec>,
    queue_capacity: Gauge,
    discovered: Gauge,
}

impl NotifierMetrics {
    pub fn register(r: &Registry) -> NotifierMetrics {
        const L: &[&str] = &["alertmanager"];
        NotifierMetrics {
            sent: r.counter_vec(
                "klaxon_notifications_sent",
                "Total number of alerts sent.",
                L,
            ),
            errors: r.counter_vec(
                "klaxon_notifications_errors",
                "Total number of sent alerts affected by errors.",
                L,
            ),
            dropped: r.counter_vec(
                "klaxon_notifications_dropped",
                "Total number of alerts dropped due to errors when sending to Alertmanager.",
                L,
            ),
            queue_length: r.gauge_vec(
                "klaxon_notifications_queue_length",
                "The number of alert notifications in the queue.",
                L,
            ),
            latency: r.histogram_vec(
                "klaxon_notifications_latency_seconds",
                "Latency for sending alert notifications.",
                L,
                &[0.01, 0.1, 1.0, 10.0],
            ),
            queue_capacity: r.gauge(
                "klaxon_notifications_queue_capacity",
                "The capacity of the alert notifications queue.",
            ),
            discovered: r.gauge(
                "klaxon_notifications_alertmanagers_discovered",
                "The number of alertmanagers discovered and active.",
            ),
        }
    }

    fn for_url(&self, url: &str) -> LoopMetrics {
        LoopMetrics {
            sent: self.sent.with(&[url]),
            errors: self.errors.with(&[url]),
            dropped: self.dropped.with(&[url]),
            queue_length: self.queue_length.with(&[url]),
            latency: self.latency.with(&[url]),
        }
    }

    fn forget(&self, url: &str) {
        self.sent.remove(&[url]);
        self.errors.remove(&[url]);
        self.dropped.remove(&[url]);
        self.queue_length.remove(&[url]);
        self.latency.remove(&[url]);
    }
}

#[derive(Clone)]
struct LoopMetrics {
    sent: Counter,
    errors: Counter,
    dropped: Counter,
    queue_length: Gauge,
    latency: Histogram,
}

/// The alerting section made ready to apply: everything that can fail
/// (HTTP clients with their TLS files) is done.
pub struct Prepared {
    external_labels: Labels,
    alert_relabel: Vec<RelabelConfig>,
    sets: Vec<(Arc<AlertmanagerConfig>, reqwest::Client)>,
}

/// Builds what [`Notifier::apply`] needs from `cfg`, or says which
/// `alertmanagers` entry cannot get an HTTP client.
pub fn prepare<'a>(cfg: impl Into<NotifierSection<'a>>) -> Result<Prepared, String> {
    let cfg = cfg.into();
    let mut sets = Vec::new();
    for (i, am) in cfg.alerting.alertmanagers.iter().enumerate() {
        let client = crate::config::client::client_builder(&am.http_client)
            .map_err(String::from)
            .and_then(|b| b.build().map_err(|e| e.to_string()))
            .map_err(|e| format!("alerting.alertmanagers[{i}]: {e}"))?;
        sets.push((Arc::new(am.clone()), client));
    }
    Ok(Prepared {
        external_labels: cfg.global.external_labels.clone(),
        alert_relabel: cfg.alerting.alert_relabel_configs.clone(),
        sets,
    })
}

/// One Alertmanager as discovery and relabeling left it.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveredAlertmanager {
    /// `__scheme__://__address____alerts_path__`.
    pub url: String,
    pub labels: Labels,
}

impl DiscoveredAlertmanager {
    fn from_labels(labels: Labels) -> Self {
        let url = format!(
            "{}://{}{}",
            labels
                .get(crate::scrape::target::SCHEME_LABEL)
                .unwrap_or(""),
            labels
                .get(crate::scrape::target::ADDRESS_LABEL)
                .unwrap_or(""),
            labels.get(ALERTS_PATH_LABEL).unwrap_or("")
        );
        DiscoveredAlertmanager { url, labels }
    }
}

/// The Alertmanagers of one target group for a set: `(active, dropped)`,
/// as Prometheus' `AlertmanagerFromGroup`. An address with a path after
/// relabeling makes the whole group unusable, as upstream.
pub fn alertmanagers_from_group(
    g: &TargetGroup,
    cfg: &AlertmanagerConfig,
) -> Result<(Vec<DiscoveredAlertmanager>, Vec<DiscoveredAlertmanager>), String> {
    use crate::scrape::target::{ADDRESS_LABEL, SCHEME_LABEL};
    let (mut active, mut dropped) = (Vec::new(), Vec::new());
    let path = cfg.alerts_path();
    for (t, labels) in g.each_target() {
        let mut b = LabelsBuilder::new();
        b.set(ADDRESS_LABEL, t);
        b.set(SCHEME_LABEL, cfg.scheme.as_str());
        b.set(ALERTS_PATH_LABEL, path.as_str());
        for (k, v) in labels.iter() {
            if k != ADDRESS_LABEL {
                b.set(k.as_str(), v.as_str());
            }
        }
        let before = b.labels();
        if !crate::config::relabel::process_builder(&mut b, &cfg.relabel_configs) {
            dropped.push(DiscoveredAlertmanager::from_labels(before));
            continue;
        }
        let addr = b.get(ADDRESS_LABEL).unwrap_or("");
        if addr.contains('/') {
            return Err(format!("{addr:?} is not a valid hostname"));
        }
        active.push(DiscoveredAlertmanager::from_labels(b.build()));
    }
    Ok((active, dropped))
}

/// One Alertmanager's queue and the task that empties it.
struct SendLoop {
    url: String,
    capacity: usize,
    queue: Mutex<VecDeque<Arc<Alert>>>,
    wake: tokio::sync::Notify,
    m: LoopMetrics,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SendLoop {
    fn new(url: String, capacity: usize, m: LoopMetrics) -> Arc<SendLoop> {
        Arc::new(SendLoop {
            url,
            capacity: capacity.max(1),
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            m,
            task: Mutex::new(None),
        })
    }

    /// Queues alerts; when full the oldest go first (newer state wins),
    /// counted as dropped.
    fn add(&self, alerts: &[Arc<Alert>]) {
        let mut dropped = 0usize;
        let alerts = match alerts.len().checked_sub(self.capacity) {
            Some(d) if d > 0 => {
                dropped += d;
                &alerts[d..]
            }
            _ => alerts,
        };
        let len = {
            let mut q = self.queue.lock();
            let over = (q.len() + alerts.len()).saturating_sub(self.capacity);
            if over > 0 {
                q.drain(..over);
                dropped += over;
            }
            q.extend(alerts.iter().cloned());
            q.len()
        };
        self.m.queue_length.set(len as f64);
        if dropped > 0 {
            tracing::warn!(alertmanager = %self.url, count = dropped, "alert notification queue full, dropping alerts");
            self.m.dropped.inc_by(dropped as f64);
        }
        self.wake.notify_one();
    }

    fn next_batch(&self, max: usize) -> Vec<Arc<Alert>> {
        let mut q = self.queue.lock();
        let n = q.len().min(max.max(1));
        let batch: Vec<_> = q.drain(..n).collect();
        self.m.queue_length.set(q.len() as f64);
        batch
    }

    fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Sends batches whenever alerts are queued, until aborted.
    async fn run(
        self: Arc<Self>,
        client: reqwest::Client,
        cfg: Arc<AlertmanagerConfig>,
        max: usize,
    ) {
        loop {
            self.wake.notified().await;
            loop {
                let batch = self.next_batch(max);
                if batch.is_empty() {
                    break;
                }
                self.send_batch(&client, &cfg, &batch).await;
            }
        }
    }

    async fn send_batch(
        &self,
        client: &reqwest::Client,
        cfg: &AlertmanagerConfig,
        batch: &[Arc<Alert>],
    ) {
        let n = batch.len() as f64;
        let begin = Instant::now();
        let span = tracing::debug_span!("notifier", alertmanager = %self.url, count = batch.len());
        let _e = span.enter();
        match post_alerts(client, cfg, &self.url, batch).await {
            Ok(()) => {
                self.m.latency.observe(begin.elapsed().as_secs_f64());
                self.m.sent.inc_by(n);
            }
            Err(e) => {
                tracing::error!(alertmanager = %self.url, count = batch.len(), error = %e, "error sending alerts");
                self.m.errors.inc_by(n);
                self.m.dropped.inc_by(n);
            }
        }
    }

    /// Stops the task; what is still queued is counted as dropped.
    fn stop(&self) {
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
        let left = std::mem::take(&mut *self.queue.lock()).len();
        if left > 0 {
            tracing::warn!(alertmanager = %self.url, count = left, "alertmanager removed, dropping its queued alerts");
            self.m.dropped.inc_by(left as f64);
        }
    }
}

/// Why a batch did not reach an Alertmanager.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("bad response status {0}")]
    Status(reqwest::StatusCode),
    #[error("{0}")]
    Auth(String),
}

/// The Alertmanager v2 API body for `alerts` (`[]PostableAlert`).
pub fn encode_v2(alerts: &[Arc<Alert>]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let mut o = serde_json::Map::new();
            o.insert("labels".into(), a.labels.to_json());
            o.insert("annotations".into(), a.annotations.to_json());
            o.insert(
                "startsAt".into(),
                crate::model::time::rfc3339_millis(a.starts_at).into(),
            );
            if let Some(e) = a.ends_at {
                o.insert(
                    "endsAt".into(),
                    crate::model::time::rfc3339_millis(e).into(),
                );
            }
            o.insert("generatorURL".into(), a.generator_url.clone().into());
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec())
}

async fn post_alerts(
    client: &reqwest::Client,
    cfg: &AlertmanagerConfig,
    url: &str,
    alerts: &[Arc<Alert>],
) -> Result<(), SendError> {
    let mut req = client
        .post(url)
        .timeout(cfg.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(encode_v2(alerts));
    if let Some(h) = crate::config::client::authorization_header(&cfg.http_client)
        .map_err(|e| SendError::Auth(e.to_string()))?
    {
        req = req.header(reqwest::header::AUTHORIZATION, h);
    }
    let resp = req.send().await?;
    let status = resp.status();
    // Read the body so the connection can be reused.
    let _ = resp.bytes().await;
    if !status.is_success() {
        return Err(SendError::Status(status));
    }
    Ok(())
}

/// A set of Alertmanagers sharing one `alertmanagers` entry.
struct AmSet {
    cfg: Arc<AlertmanagerConfig>,
    client: reqwest::Client,
    active: Vec<DiscoveredAlertmanager>,
    dropped: Vec<DiscoveredAlertmanager>,
    loops: BTreeMap<String, Arc<SendLoop>>,
}

#[derive(Default)]
struct State {
    external_labels: Labels,
    alert_relabel: Vec<RelabelConfig>,
    /// In config order; the set of entry `i` is named `config-i`.
    sets: Vec<AmSet>,
}

/// Hands alerts to every external Alertmanager (see the module docs).
pub struct Notifier {
    opts: NotifierOptions,
    metrics: NotifierMetrics,
    /// Runs every set's SD entries; its sets are named like ours.
    discovery: Arc<crate::discovery::Manager>,
    rt: tokio::runtime::Handle,
    state: Mutex<State>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

/// The name Prometheus gives the set of `alertmanagers` entry `i`.
pub fn set_name(i: usize) -> String {
    format!("config-{i}")
}

impl Notifier {
    /// A notifier with no Alertmanagers yet (see [`apply`](Self::apply)),
    /// whose sets' SD entries run on `discovery` (a manager of its own,
    /// named `notify`). Must be called inside the tokio runtime its tasks
    /// run on.
    pub fn new(
        registry: &Registry,
        opts: NotifierOptions,
        discovery: Arc<crate::discovery::Manager>,
    ) -> Arc<Notifier> {
        let metrics = NotifierMetrics::register(registry);
        metrics.queue_capacity.set(opts.queue_capacity as f64);
        let n = Arc::new(Notifier {
            opts,
            metrics,
            discovery: discovery.clone(),
            rt: tokio::runtime::Handle::current(),
            state: Mutex::new(State::default()),
            watcher: Mutex::new(None),
        });
        let me = Arc::downgrade(&n);
        *n.watcher.lock() = Some(discovery.follow(move |set, groups| match me.upgrade() {
            Some(n) => {
                n.sync_groups(set, &groups);
                true
            }
            None => false,
        }));
        n
    }

    /// Swaps in a prepared alerting section. An entry identical to a running
    /// one keeps its Alertmanagers and queues, and, at the same position,
    /// its discovery; the others start fresh from their SD entries.
    pub fn apply(&self, p: Prepared) {
        let _rt = self.rt.enter();
        let mut st = self.state.lock();
        st.external_labels = p.external_labels;
        st.alert_relabel = p.alert_relabel;
        let mut old: Vec<Option<AmSet>> =
            std::mem::take(&mut st.sets).into_iter().map(Some).collect();
        let mut sets = Vec::with_capacity(p.sets.len());
        for (cfg, client) in p.sets {
            let reused = old
                .iter_mut()
                .find(|o| o.as_ref().is_some_and(|o| o.cfg == cfg))
                .and_then(Option::take);
            sets.push(reused.unwrap_or_else(|| AmSet {
                cfg,
                client,
                active: Vec::new(),
                dropped: Vec::new(),
                loops: BTreeMap::new(),
            }));
        }
        for s in old.into_iter().flatten() {
            self.stop_set(s);
        }
        st.sets = sets;
        let wanted = st
            .sets
            .iter()
            .enumerate()
            .map(|(i, s)| (set_name(i), s.cfg.sd_configs()))
            .collect();
        // Static entries and kept providers are known now: derive every
        // set from them at once, discovery's updates follow.
        self.discovery.apply(wanted);
        for i in 0..st.sets.len() {
            let groups = self.discovery.current_set(&set_name(i)).unwrap_or_default();
            self.sync_set(&mut st.sets[i], &groups);
        }
        self.update_discovered(&st);
    }

    fn stop_set(&self, s: AmSet) {
        for (url, l) in s.loops {
            l.stop();
            self.metrics.forget(&url);
        }
    }

    /// Re-derives the Alertmanagers of the set named `set` (`config-N`, N
    /// the entry's position) from `groups`, as discovery's updates do.
    /// False when no such set exists.
    pub fn sync_groups(&self, set: &str, groups: &[Arc<TargetGroup>]) -> bool {
        let mut st = self.state.lock();
        let Some(i) = (0..st.sets.len()).find(|i| set_name(*i) == set) else {
            return false;
        };
        let _rt = self.rt.enter();
        self.sync_set(&mut st.sets[i], groups);
        self.update_discovered(&st);
        true
    }

    fn sync_set(&self, s: &mut AmSet, groups: &[Arc<TargetGroup>]) {
        let (mut active, mut dropped) = (Vec::new(), Vec::new());
        for g in groups {
            match alertmanagers_from_group(g, &s.cfg) {
                Ok((a, d)) => {
                    active.extend(a);
                    dropped.extend(d);
                }
                Err(e) => {
                    tracing::error!(group = %g.source, error = %e, "creating discovered Alertmanagers failed")
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        active.retain(|a| seen.insert(a.url.clone()));
        let wanted: std::collections::HashSet<&str> =
            active.iter().map(|a| a.url.as_str()).collect();
        let gone: Vec<String> = s
            .loops
            .keys()
            .filter(|u| !wanted.contains(u.as_str()))
            .cloned()
            .collect();
        for url in gone {
            if let Some(l) = s.loops.remove(&url) {
                l.stop();
                self.metrics.forget(&url);
            }
        }
        for a in &active {
            if s.loops.contains_key(&a.url) {
                continue;
            }
            let l = SendLoop::new(
                a.url.clone(),
                self.opts.queue_capacity,
                self.metrics.for_url(&a.url),
            );
            let task = tokio::spawn(l.clone().run(
                s.client.clone(),
                s.cfg.clone(),
                self.opts.max_batch_size,
            ));
            *l.task.lock() = Some(task);
            s.loops.insert(a.url.clone(), l);
        }
        s.active = active;
        s.dropped = dropped;
    }

    fn update_discovered(&self, st: &State) {
        let n: usize = st.sets.iter().map(|s| s.active.len()).sum();
        self.metrics.discovered.set(n as f64);
    }

    /// Active and dropped Alertmanagers over all sets, for
    /// `/api/v1/alertmanagers`.
    pub fn alertmanagers(&self) -> (Vec<DiscoveredAlertmanager>, Vec<DiscoveredAlertmanager>) {
        let st = self.state.lock();
        let active = st
            .sets
            .iter()
            .flat_map(|s| s.active.iter().cloned())
            .collect();
        let dropped = st
            .sets
            .iter()
            .flat_map(|s| s.dropped.iter().cloned())
            .collect();
        (active, dropped)
    }

    /// Gives the queues up to `grace` to empty (Prometheus drains on
    /// shutdown), then stops every task.
    pub async fn stop(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        loop {
            let pending: usize = {
                let st = self.state.lock();
                st.sets
                    .iter()
                    .flat_map(|s| s.loops.values())
                    .map(|l| l.queue_len())
                    .sum()
            };
            if pending == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sets = std::mem::take(&mut self.state.lock().sets);
        self.discovery.apply(BTreeMap::new());
        for s in sets {
            self.stop_set(s);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(w) = self.watcher.lock().take() {
            w.abort();
        }
    }
}

/// Alerts with the external labels added where missing, then relabeled;
/// dropped ones (and ones left without labels) are left out.
pub fn relabel_alerts(
    alerts: &[Arc<Alert>],
    external: &Labels,
    cfgs: &[RelabelConfig],
) -> Vec<Arc<Alert>> {
    if external.is_empty() && cfgs.is_empty() {
        return alerts.to_vec();
    }
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        let mut b = a.labels.builder();
        for l in external {
            if b.get(&l.name).is_none() {
                b.set(l.name.clone(), l.value.clone());
            }
        }
        if !crate::config::relabel::process_builder(&mut b, cfgs) {
            continue;
        }
        let labels = b.build();
        if labels.is_empty() {
            continue;
        }
        if labels == a.labels {
            out.push(a.clone());
        } else {
            out.push(Arc::new(Alert {
                labels,
                ..(**a).clone()
            }));
        }
    }
    out
}

impl AlertSink for Notifier {
    fn send(&self, alerts: Vec<Alert>) {
        let st = self.state.lock();
        if st.sets.iter().all(|s| s.loops.is_empty()) {
            return;
        }
        let alerts: Vec<Arc<Alert>> = alerts.into_iter().map(Arc::new).collect();
        let alerts = relabel_alerts(&alerts, &st.external_labels, &st.alert_relabel);
        for s in &st.sets {
            if s.loops.is_empty() {
                continue;
            }
            let own;
            let these = if s.cfg.alert_relabel_configs.is_empty() {
                &alerts
            } else {
                own = relabel_alerts(&alerts, &Labels::empty(), &s.cfg.alert_relabel_configs);
                &own
            };
            if these.is_empty() {
                continue;
            }
            for l in s.loops.values() {
                l.add(these);
            }
        }
    }
}

/// Hands every alert to several sinks (the built-in router and the
/// notifier).
pub struct FanOut(pub Vec<Arc<dyn AlertSink>>);

impl AlertSink for FanOut {
    fn send(&self, alerts: Vec<Alert>) {
        if let Some((last, rest)) = self.0.split_last() {
            for s in rest {
                s.send(alerts.clone());
            }
            last.send(alerts);
        }
    }
}

#[cfg(test)]
mod tests;
