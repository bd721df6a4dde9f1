//! Service discovery: one manager turns sets of SD configs (a scrape job's,
//! or an `alerting.alertmanagers` entry's) into target groups.
//!
//! The shape is Prometheus' `discovery.Manager`: [`Manager::apply`] takes
//! the configs keyed by set name, runs one provider per SD entry, and
//! [`Manager::subscribe`] hands out a watch of every set's merged groups.
//! A provider replaces its groups by `source`; a provider that fails sends
//! nothing, so the last known targets stay. Groups are shared (`Arc`) from
//! the provider's update to the consumers and never copied: a set's list
//! is sorted by source, an unchanged group keeps its pointer, so a consumer
//! (the scrape manager, the notifier) finds the groups that changed with
//! [`diff_groups`] and re-derives only those.

pub mod config;
pub mod consul;
pub mod dns;
pub mod docker;
pub mod file;
pub mod http;
pub mod kubernetes;
pub mod refresh;

pub use crate::config::TargetGroup;
pub use config::SdConfig;

use crate::metrics::{CounterVec, GaugeVec, Registry};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Every set's groups (sorted by source), as last published.
pub type Snapshot = BTreeMap<String, Arc<Vec<Arc<TargetGroup>>>>;

/// Counters and gauges of discovery, shared by every manager of a process
/// (the `name` label tells the scrape manager from the notifier's).
pub struct SdMetrics {
    pub discovered: Arc<GaugeVec>,
    pub failures: Arc<CounterVec>,
    pub updates: Arc<CounterVec>,
    pub file_read_errors: crate::metrics::Counter,
}

impl SdMetrics {
    pub fn register(r: &Registry) -> Arc<Self> {
        Arc::new(SdMetrics {
            discovered: r.gauge_vec(
                "klaxon_sd_discovered_targets",
                "Current number of discovered targets, by set (config) and manager (name).",
                &["config", "name"],
            ),
            failures: r.counter_vec(
                "klaxon_sd_refresh_failures",
                "Failed discovery requests (list, watch or refresh), by mechanism and set.",
                &["mechanism", "config"],
            ),
            updates: r.counter_vec(
                "klaxon_sd_updates",
                "Target group updates sent to consumers, by manager.",
                &["name"],
            ),
            file_read_errors: r.counter(
                "klaxon_sd_file_read_errors",
                "file_sd files that could not be read or parsed.",
            ),
        })
    }

    /// Unregistered metrics, for tests and tools.
    pub fn detached() -> Arc<Self> {
        Self::register(&Registry::new())
    }
}

/// Settings of a manager that are not part of an SD config.
#[derive(Clone, Debug)]
pub struct Options {
    /// Shortest time between two published snapshots. Prometheus waits 5s;
    /// klaxon 1s, so a file_sd edit or a new pod is scraped sooner, while a
    /// burst of changes still becomes one re-sync.
    pub throttle: Duration,
    /// Directory relative `kubeconfig_file`s and file_sd globs are read from
    /// when the config did not already join them.
    pub base_dir: PathBuf,
    /// DNS servers for `dns_sd_configs`; `None` reads /etc/resolv.conf.
    pub dns_servers: Option<Vec<SocketAddr>>,
    /// Per-query timeout with `dns_servers` (resolv.conf's `timeout`
    /// otherwise).
    pub dns_timeout: Duration,
    /// Largest answer read from an SD API (a Kubernetes list, an HTTP SD
    /// document); larger ones fail and the last good targets stay.
    pub max_response_bytes: usize,
    /// Timeout of one API request that is not a watch or blocking query
    /// (a Kubernetes list, a Docker or Consul call).
    pub request_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            throttle: Duration::from_secs(1),
            base_dir: PathBuf::from("."),
            dns_servers: None,
            dns_timeout: Duration::from_secs(5),
            max_response_bytes: 256 << 20,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What a provider is given: where its updates go and how to report.
#[derive(Clone)]
pub struct ProviderCtx {
    /// The set (job name or Alertmanager set) this entry belongs to.
    pub set: String,
    /// The SD entry, as written: `kubernetes_sd_configs[0]`.
    pub entry: String,
    pub mechanism: &'static str,
    pub opts: Arc<Options>,
    id: u64,
    shared: Arc<Shared>,
}

impl ProviderCtx {
    /// Replaces the provider's groups with the same `source`; a group
    /// without targets removes its source.
    pub fn update(&self, groups: Vec<TargetGroup>) {
        self.shared.update(self.id, groups, false);
    }

    /// Replaces every group of the provider (refresh-style mechanisms).
    pub fn replace_all(&self, groups: Vec<TargetGroup>) {
        self.shared.update(self.id, groups, true);
    }

    /// Counts and logs a failure; the last known targets stay.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        self.shared
            .metrics
            .failures
            .with(&[self.mechanism, &self.set])
            .inc();
        tracing::warn!(
            job = %self.set, sd = %self.entry, error = %error,
            "job {:?} {}: service discovery failed, keeping the last known targets: {error}",
            self.set, self.entry
        );
    }
}

struct ProviderState {
    set: String,
    cfg: SdConfig,
    /// By the provider's own source; each group's `source` is prefixed
    /// with the provider (`MECHANISM/ID/SOURCE`) so that two entries'
    /// groups never replace each other.
    groups: BTreeMap<String, Arc<TargetGroup>>,
    task: Option<JoinHandle<()>>,
}

/// `source` made unique within a set: prefixed with the provider.
fn provider_source(cfg: &SdConfig, id: u64, source: &str) -> String {
    format!("{}/{id}/{source}", cfg.mechanism())
}

struct State {
    providers: HashMap<u64, ProviderState>,
    sets: BTreeSet<String>,
    dirty: BTreeSet<String>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    metrics: Arc<SdMetrics>,
}

impl Shared {
    fn update(&self, id: u64, groups: Vec<TargetGroup>, replace: bool) {
        let mut st = self.state.lock();
        let Some(p) = st.providers.get_mut(&id) else {
            return; // the provider was stopped meanwhile
        };
        if replace {
            p.groups.clear();
        }
        for mut g in groups {
            if g.targets.is_empty() {
                p.groups.remove(&g.source);
            } else {
                let own = std::mem::take(&mut g.source);
                g.source = provider_source(&p.cfg, id, &own);
                p.groups.insert(own, Arc::new(g));
            }
        }
        let set = p.set.clone();
        st.dirty.insert(set);
        drop(st);
        self.notify.notify_one();
    }
}

/// Runs the providers of every set and publishes their merged groups.
pub struct Manager {
    name: &'static str,
    opts: Arc<Options>,
    shared: Arc<Shared>,
    tx: watch::Sender<Arc<Snapshot>>,
    publisher: JoinHandle<()>,
}

impl Manager {
    /// A manager named `name` (`scrape`, `notify`: the `name` label of its
    /// metrics). Must be called inside the tokio runtime.
    pub fn new(name: &'static str, metrics: Arc<SdMetrics>, opts: Options) -> Arc<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                providers: HashMap::new(),
                sets: BTreeSet::new(),
                dirty: BTreeSet::new(),
                next_id: 0,
            }),
            notify: Notify::new(),
            metrics,
        });
        let (tx, _) = watch::channel(Arc::new(Snapshot::new()));
        let publisher = tokio::spawn(publish(name, shared.clone(), tx.clone(), opts.throttle));
        Arc::new(Manager {
            name,
            opts: Arc::new(opts),
            shared,
            tx,
            publisher,
        })
    }

    /// Every set's merged groups; the receiver sees a new snapshot whenever
    /// a set changed (at most once per `throttle`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Starts, keeps or stops providers so they match `sets`. A provider
    /// whose set and config are unchanged keeps running with its targets;
    /// sets no longer present are published as removed.
    pub fn apply(&self, sets: BTreeMap<String, Vec<SdConfig>>) {
        let mut guard = self.shared.state.lock();
        let st = &mut *guard;
        // Match old providers to new entries by (set, config).
        let mut old: Vec<(u64, ProviderState)> = st.providers.drain().collect();
        old.sort_by_key(|(id, _)| *id);
        let mut started = Vec::new();
        for (set, cfgs) in &sets {
            for (pos, cfg) in cfgs.iter().enumerate() {
                // The entry's index within its own field, as the user wrote it.
                let index = cfgs[..pos]
                    .iter()
                    .filter(|c| c.field() == cfg.field())
                    .count();
                let kept = old
                    .iter()
                    .position(|(_, p)| &p.set == set && &p.cfg == cfg)
                    .map(|i| old.swap_remove(i));
                let (id, p) = match kept {
                    Some(x) => x,
                    None => {
                        let id = st.next_id;
                        st.next_id += 1;
                        started.push((id, set.clone(), index, cfg.clone()));
                        let p = ProviderState {
                            set: set.clone(),
                            cfg: cfg.clone(),
                            groups: BTreeMap::new(),
                            task: None,
                        };
                        (id, p)
                    }
                };
                st.providers.insert(id, p);
            }
        }
        // Publish what changed now: sets that lost a provider or went
        // away, and static groups. A new dynamic provider publishes its set
        // with its first answer, so a file or a first list is not held
        // back by the throttle behind an empty snapshot.
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for (_, p) in old {
            if let Some(t) = p.task {
                t.abort();
            }
            touched.insert(p.set);
        }
        touched.extend(st.sets.iter().filter(|s| !sets.contains_key(*s)).cloned());
        touched.extend(
            started
                .iter()
                .filter(|(_, _, _, c)| matches!(c, SdConfig::Static(_)))
                .map(|(_, set, _, _)| set.clone()),
        );
        st.dirty.extend(touched);
        st.sets = sets.keys().cloned().collect();
        for (id, set, index, cfg) in started {
            let ctx = ProviderCtx {
                set: set.clone(),
                entry: format!("{}[{index}]", cfg.field()),
                mechanism: cfg.mechanism(),
                opts: self.opts.clone(),
                id,
                shared: self.shared.clone(),
            };
            let task = match &cfg {
                SdConfig::Static(groups) => {
                    // The provider was inserted above for every started id.
                    if let Some(p) = st.providers.get_mut(&id) {
                        for (i, g) in groups.iter().enumerate() {
                            if !g.targets.is_empty() {
                                let mut g = g.clone();
                                g.source = provider_source(&p.cfg, id, &i.to_string());
                                p.groups.insert(i.to_string(), Arc::new(g));
                            }
                        }
                    }
                    None
                }
                other => Some(spawn_provider(other.clone(), ctx)),
            };
            if let Some(p) = st.providers.get_mut(&id) {
                p.task = task;
            }
        }
        drop(guard);
        self.shared.notify.notify_one();
    }

    /// The groups of every set now, without waiting for the throttle
    /// (used by consumers at start and by tests).
    pub fn current(&self) -> Snapshot {
        let st = self.shared.state.lock();
        st.sets
            .iter()
            .map(|s| (s.clone(), Arc::new(merged(&st, s))))
            .collect()
    }

    /// The groups of one set now (`None`: no such set), merged from its
    /// providers as the next snapshot will have them.
    pub fn current_set(&self, set: &str) -> Option<Vec<Arc<TargetGroup>>> {
        let st = self.shared.state.lock();
        st.sets.contains(set).then(|| merged(&st, set))
    }

    /// Calls `sync(set, groups)` with the groups the manager holds now for
    /// every set whose published groups changed (by pointer) since the
    /// last call. The snapshot only says which sets changed, so one
    /// published before a reload never lands on a renumbered set. Stops
    /// when the manager goes away or `sync` returns false (its consumer is
    /// gone).
    pub fn follow(
        self: &Arc<Self>,
        mut sync: impl FnMut(&str, Vec<Arc<TargetGroup>>) -> bool + Send + 'static,
    ) -> JoinHandle<()> {
        let mut rx = self.subscribe();
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen: HashMap<String, Arc<Vec<Arc<TargetGroup>>>> = HashMap::new();
            loop {
                let snap = rx.borrow_and_update().clone();
                let Some(m) = me.upgrade() else { return };
                for (set, groups) in snap.iter() {
                    if seen.get(set).is_some_and(|g| Arc::ptr_eq(g, groups)) {
                        continue;
                    }
                    seen.insert(set.clone(), groups.clone());
                    if let Some(now) = m.current_set(set) {
                        if !sync(set, now) {
                            return;
                        }
                    }
                }
                seen.retain(|s, _| snap.contains_key(s));
                drop(m);
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.publisher.abort();
        for p in self.shared.state.lock().providers.values_mut() {
            if let Some(t) = p.task.take() {
                t.abort();
            }
        }
    }
}

/// The groups of one set, sorted by (provider-prefixed) source: pointers
/// only, no group is copied.
fn merged(st: &State, set: &str) -> Vec<Arc<TargetGroup>> {
    let mut out: Vec<Arc<TargetGroup>> = st
        .providers
        .values()
        .filter(|p| p.set == set)
        .flat_map(|p| p.groups.values().cloned())
        .collect();
    out.sort_unstable_by(|a, b| a.source.cmp(&b.source));
    out
}

/// What changed from `old` to `new` (both sorted by source, as published):
/// `changed` gets every group that is new or replaced, `removed` every
/// source that went away. Unchanged groups (the same pointer) cost a
/// comparison each, no label is read.
pub fn diff_groups<'a>(
    old: &[Arc<TargetGroup>],
    new: &'a [Arc<TargetGroup>],
    mut changed: impl FnMut(&'a Arc<TargetGroup>),
    mut removed: impl FnMut(&str),
) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) if Arc::ptr_eq(o, n) => {
                i += 1;
                j += 1;
            }
            (Some(o), Some(n)) => match o.source.cmp(&n.source) {
                std::cmp::Ordering::Equal => {
                    changed(n);
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    removed(&o.source);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    changed(n);
                    j += 1;
                }
            },
            (Some(o), None) => {
                removed(&o.source);
                i += 1;
            }
            (None, Some(n)) => {
                changed(n);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

async fn publish(
    name: &'static str,
    shared: Arc<Shared>,
    tx: watch::Sender<Arc<Snapshot>>,
    throttle: Duration,
) {
    loop {
        shared.notify.notified().await;
        let next = {
            let mut st = shared.state.lock();
            if st.dirty.is_empty() {
                continue;
            }
            let dirty = std::mem::take(&mut st.dirty);
            let mut next: Snapshot = (**tx.borrow()).clone();
            for set in dirty {
                if st.sets.contains(&set) {
                    let groups = merged(&st, &set);
                    let n: usize = groups.iter().map(|g| g.targets.len()).sum();
                    shared.metrics.discovered.with(&[&set, name]).set(n as f64);
                    next.insert(set, Arc::new(groups));
                } else {
                    shared.metrics.discovered.remove(&[&set, name]);
                    next.remove(&set);
                }
            }
            next
        };
        shared.metrics.updates.with(&[name]).inc();
        tx.send_replace(Arc::new(next));
        tokio::time::sleep(throttle).await;
    }
}

fn spawn_provider(cfg: SdConfig, ctx: ProviderCtx) -> JoinHandle<()> {
    match cfg {
        SdConfig::Static(_) => tokio::spawn(async {}),
        SdConfig::File(c) => tokio::spawn(file::run(c, ctx)),
        SdConfig::Http(c) => tokio::spawn(http::run(c, ctx)),
        SdConfig::Dns(c) => tokio::spawn(dns::run(c, ctx)),
        SdConfig::Consul(c) => tokio::spawn(consul::run(c, ctx)),
        SdConfig::Docker(c) => tokio::spawn(docker::run(c, ctx)),
        SdConfig::Kubernetes(c) => tokio::spawn(kubernetes::run(c, ctx)),
    }
}

/// Sanitizes a name into a label name part as Prometheus does
/// (`[^a-zA-Z0-9_]` becomes `_`).
pub fn sanitize_label_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `host:port`, bracketing IPv6 addresses as Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(src: &str, targets: &[&str]) -> TargetGroup {
        TargetGroup {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            labels: BTreeMap::new(),
            source: src.to_string(),
            target_labels: Vec::new(),
        }
    }

    fn opts() -> Options {
        Options {
            throttle: Duration::from_millis(1),
            ..Options::default()
        }
    }

    async fn wait_for(
        rx: &mut watch::Receiver<Arc<Snapshot>>,
        f: impl Fn(&Snapshot) -> bool,
    ) -> Arc<Snapshot> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let s = rx.borrow_and_update().clone();
                if f(&s) {
                    return s;
                }
                rx.changed().await.expect("manager alive");
            }
        })
        .await
        .expect("snapshot in time")
    }

    #[tokio::test]
    async fn static_sets_are_published_and_removed() {
        let metrics = SdMetrics::detached();
        let m = Manager::new("scrape", metrics.clone(), opts());
        let mut rx = m.subscribe();
        let mut sets = BTreeMap::new();
        sets.insert(
            "a".to_string(),
            vec![
                SdConfig::Static(vec![group("0", &["x:1", "y:1"])]),
                SdConfig::Static(vec![group("0", &["z:1"])]),
            ],
        );
        sets.insert("empty".to_string(), vec![]);
        m.apply(sets);
        let s = wait_for(&mut rx, |s| s.contains_key("a")).await;
        let a = &s["a"];
        // Two static entries of one job merge; their sources stay apart.
        assert_eq!(a.len(), 2);
        assert_ne!(a[0].source, a[1].source);
        assert!(s.get("empty").is_none_or(|g| g.is_empty()));
        assert_eq!(metrics.discovered.with(&["a", "scrape"]).get(), 3.0);
        m.apply(BTreeMap::new());
        wait_for(&mut rx, |s| s.is_empty()).await;
    }

    #[tokio::test]
    async fn provider_updates_replace_by_source_and_survive_unchanged_apply() {
        let m = Manager::new("scrape", SdMetrics::detached(), opts());
        let mut rx = m.subscribe();
        let cfg = SdConfig::Static(vec![group("0", &["s:1"])]);
        let mut sets = BTreeMap::new();
        sets.insert("j".to_string(), vec![cfg.clone()]);
        m.apply(sets.clone());
        wait_for(&mut rx, |s| s.get("j").is_some_and(|g| g.len() == 1)).await;
        // Feed the provider as a dynamic one would.
        let id = *m.shared.state.lock().providers.keys().next().unwrap();
        m.shared.update(id, vec![group("b", &["t:1"])], false);
        wait_for(&mut rx, |s| s["j"].len() == 2).await;
        m.shared.update(id, vec![group("b", &[])], false);
        wait_for(&mut rx, |s| s["j"].len() == 1).await;
        m.shared.update(id, vec![group("c", &["u:1"])], true);
        let s = wait_for(&mut rx, |s| {
            s["j"].len() == 1 && s["j"][0].targets == ["u:1"]
        })
        .await;
        assert!(s["j"][0].source.ends_with("/c"));
        // Re-applying the same config keeps the provider and its groups.
        m.apply(sets);
        assert_eq!(m.current()["j"][0].targets, ["u:1"]);
    }
}
