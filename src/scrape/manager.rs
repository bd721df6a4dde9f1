//! The scrape manager: one pool per `scrape_configs` job, one loop per
//! target. Discovery pushes target groups in; the manager diffs them against
//! the running loops so an unchanged target keeps its loop and its cache.

use crate::config::TargetGroup;
use crate::model::Labels;
use crate::scrape::client::Scraper;
use crate::scrape::config::ScrapeConfig;
use crate::scrape::local::LocalSource;
use crate::scrape::scrape_loop::{ScrapeLoop, ScrapePools};
use crate::scrape::target::{populate, Health, ScrapeStatus, Target};
use crate::scrape::ScrapeMetrics;
use crate::tsdb::Head;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct LoopHandle {
    target: Arc<Target>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What one target group became after relabeling.
#[derive(Default)]
struct Derived {
    active: Vec<Arc<Target>>,
    dropped: Vec<Labels>,
}

struct Pool {
    cfg: Arc<ScrapeConfig>,
    scraper: Arc<Result<Scraper, String>>,
    /// Set for in-process jobs: bodies come from here, not HTTP.
    local: Option<Arc<dyn LocalSource>>,
    /// The job's groups as last applied, sorted by source.
    groups: Vec<Arc<TargetGroup>>,
    /// Each group's targets after relabeling, by source: a group is
    /// relabeled when it changes, never again while it stays.
    derived: HashMap<String, Derived>,
    /// How many groups list each target (by key); one loop per target.
    refs: HashMap<u64, usize>,
    loops: HashMap<u64, LoopHandle>,
    /// Targets listed but not scraped (target_limit exceeded).
    held: Vec<Arc<Target>>,
}

/// Owns every scrape loop.
pub struct Manager {
    head: Arc<Head>,
    metrics: Arc<ScrapeMetrics>,
    pools: Mutex<BTreeMap<String, Pool>>,
    buffers: Arc<ScrapePools>,
    local: Mutex<HashMap<String, Arc<dyn LocalSource>>>,
    /// Where the jobs' SD entries run, once attached.
    discovery: std::sync::OnceLock<Arc<crate::discovery::Manager>>,
    /// Target groups relabeled so far (each new or changed group once).
    relabeled_groups: std::sync::atomic::AtomicU64,
}

/// What `/api/v1/targets` shows for one job.
pub struct PoolView {
    pub job: String,
    pub active: Vec<Arc<Target>>,
    pub dropped: Vec<Labels>,
}

impl Manager {
    pub fn new(head: Arc<Head>, metrics: Arc<ScrapeMetrics>) -> Arc<Self> {
        Arc::new(Manager {
            head,
            metrics,
            pools: Mutex::new(BTreeMap::new()),
            buffers: ScrapePools::new(),
            local: Mutex::new(HashMap::new()),
            discovery: std::sync::OnceLock::new(),
            relabeled_groups: Default::default(),
        })
    }

    /// Runs the jobs' SD entries on `sd` from now on: every `apply_config`
    /// hands them over, and its updates re-sync the pools whose groups
    /// changed. Call once, before the first `apply_config`.
    pub fn attach_discovery(self: &Arc<Self>, sd: Arc<crate::discovery::Manager>) {
        if self.discovery.set(sd.clone()).is_err() {
            return;
        }
        let me = Arc::downgrade(self);
        sd.follow(move |job, groups| match me.upgrade() {
            Some(m) => {
                m.sync_groups(job, groups);
                true
            }
            None => false,
        });
    }

    /// Makes `job` an in-process job: its targets' bodies come from `src`.
    /// Call before `apply_config`.
    pub fn set_local_source(&self, job: &str, src: Arc<dyn LocalSource>) {
        self.local.lock().insert(job.to_string(), src);
    }

    /// Creates a pool per scrape config and feeds its static targets;
    /// hands every job's SD entries to the attached discovery manager. A
    /// pool whose config did not change keeps its loops; pools of jobs no
    /// longer configured stop (in-process jobs stay). Must be called inside
    /// the tokio runtime.
    pub fn apply_config(&self, cfgs: &[ScrapeConfig]) {
        let mut pools = self.pools.lock();
        let local = self.local.lock().clone();
        let wanted: std::collections::HashSet<&str> =
            cfgs.iter().map(|c| c.job_name.as_str()).collect();
        let gone: Vec<String> = pools
            .keys()
            .filter(|j| !wanted.contains(j.as_str()) && !local.contains_key(*j))
            .cloned()
            .collect();
        for job in gone {
            if let Some(mut p) = pools.remove(&job) {
                stop_pool(&mut p);
                self.metrics.pool_targets.remove(&[&job]);
            }
        }
        let mut changed = Vec::new();
        for cfg in cfgs {
            if pools.get(&cfg.job_name).is_some_and(|p| *p.cfg == *cfg) {
                continue;
            }
            let scraper = Scraper::new(cfg).map_err(|e| e.to_string());
            if let Err(e) = &scraper {
                tracing::error!(job = %cfg.job_name, error = %e, "scrape pool HTTP client");
            }
            if let Some(mut old) = pools.remove(&cfg.job_name) {
                stop_pool(&mut old);
            }
            let pool = Pool {
                cfg: Arc::new(cfg.clone()),
                scraper: Arc::new(scraper),
                local: local.get(&cfg.job_name).cloned(),
                groups: Vec::new(),
                derived: HashMap::new(),
                refs: HashMap::new(),
                loops: HashMap::new(),
                held: Vec::new(),
            };
            pools.insert(cfg.job_name.clone(), pool);
            changed.push(cfg);
        }
        let sd = self.discovery.get();
        if let Some(sd) = sd {
            let sets = cfgs
                .iter()
                .map(|c| (c.job_name.clone(), c.sd_configs()))
                .collect();
            sd.apply(sets);
        }
        // Static targets (and a kept provider's) start at once; discovery's
        // updates follow.
        for cfg in changed {
            let groups = match sd {
                Some(sd) => sd.current_set(&cfg.job_name).unwrap_or_default(),
                None => static_groups(cfg),
            };
            if let Some(p) = pools.get_mut(&cfg.job_name) {
                self.update_pool(p, groups);
            }
        }
    }

    /// Replaces the groups of `job` (sorted by source, as discovery
    /// publishes them): only groups that are new or changed (another
    /// pointer) are relabeled, only their targets' loops start or stop.
    pub fn sync_groups(&self, job: &str, groups: Vec<Arc<TargetGroup>>) {
        let mut pools = self.pools.lock();
        let Some(pool) = pools.get_mut(job) else {
            return;
        };
        self.update_pool(pool, groups);
    }

    /// How many target groups were relabeled since start (each new or
    /// changed group once).
    pub fn groups_relabeled(&self) -> u64 {
        self.relabeled_groups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn update_pool(&self, pool: &mut Pool, groups: Vec<Arc<TargetGroup>>) {
        let cfg = pool.cfg.clone();
        let old = std::mem::take(&mut pool.groups);
        let (mut changed, mut removed) = (Vec::new(), Vec::new());
        crate::discovery::diff_groups(
            &old,
            &groups,
            |g| changed.push(g.clone()),
            |s| removed.push(s.to_string()),
        );
        pool.groups = groups;
        if changed.is_empty() && removed.is_empty() {
            self.metrics
                .pool_targets
                .with(&[&cfg.job_name])
                .set(pool.refs.len() as f64);
            return;
        }
        self.relabeled_groups
            .fetch_add(changed.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // New targets are counted before the replaced ones are released,
        // so a target that stays keeps its loop.
        let mut to_start = Vec::new();
        let mut replaced = Vec::new();
        for g in &changed {
            let d = derive(g, &cfg);
            for t in &d.active {
                let n = pool.refs.entry(t.key()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    to_start.push(t.clone());
                }
            }
            replaced.extend(pool.derived.insert(g.source.clone(), d));
        }
        for s in &removed {
            replaced.extend(pool.derived.remove(s));
        }
        let mut to_stop = Vec::new();
        for t in replaced.iter().flat_map(|d| &d.active) {
            let k = t.key();
            if let Some(n) = pool.refs.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    pool.refs.remove(&k);
                    to_stop.push(k);
                }
            }
        }
        self.apply_loops(pool, to_start, to_stop);
    }

    /// Starts and stops loops after the targets changed, or holds every
    /// target when the pool is over its target_limit.
    fn apply_loops(&self, pool: &mut Pool, to_start: Vec<Arc<Target>>, to_stop: Vec<u64>) {
        let cfg = pool.cfg.clone();
        let n = pool.refs.len();
        self.metrics
            .pool_targets
            .with(&[&cfg.job_name])
            .set(n as f64);
        if cfg.target_limit > 0 && n as u64 > cfg.target_limit {
            // As Prometheus: the whole pool stops scraping and every target
            // shows the reason.
            self.metrics.target_limit_exceeded.inc();
            let msg = format!(
                "target_limit exceeded (number of targets: {n}, limit: {})",
                cfg.target_limit
            );
            tracing::warn!(job = %cfg.job_name, "{msg}");
            for (_, h) in pool.loops.drain() {
                let _ = h.stop.send(true);
            }
            pool.held = unique_targets(pool);
            for t in &pool.held {
                t.set_status(ScrapeStatus {
                    health: Health::Down,
                    last_error: msg.clone(),
                    last_scrape: None,
                    last_scrape_duration: Duration::ZERO,
                });
            }
            return;
        }
        let to_start = if pool.held.is_empty() {
            to_stop.iter().for_each(|k| {
                if let Some(h) = pool.loops.remove(k) {
                    // Gone: stop with end-of-run staleness.
                    let _ = h.stop.send(true);
                }
            });
            to_start
        } else {
            // Back under the limit: every target starts afresh.
            pool.held.clear();
            let all = unique_targets(pool);
            for t in &all {
                t.set_status(ScrapeStatus {
                    health: Health::Unknown,
                    last_error: String::new(),
                    last_scrape: None,
                    last_scrape_duration: Duration::ZERO,
                });
            }
            all
        };
        for target in to_start {
            let key = target.key();
            if pool.loops.contains_key(&key) {
                continue;
            }
            let (tx, rx) = watch::channel(false);
            let lp = ScrapeLoop::new(
                target.clone(),
                cfg.clone(),
                pool.scraper.clone(),
                self.head.clone(),
                self.metrics.clone(),
                self.buffers.clone(),
            )
            .with_local(pool.local.clone());
            let task = tokio::spawn(lp.run(rx));
            pool.loops.insert(
                key,
                LoopHandle {
                    target,
                    stop: tx,
                    task,
                },
            );
        }
    }

    /// The groups a job's targets come from (by source), for tests and the
    /// service discovery page.
    pub fn groups(&self, job: &str) -> Vec<TargetGroup> {
        let pools = self.pools.lock();
        pools
            .get(job)
            .map(|p| p.groups.iter().map(|g| (**g).clone()).collect())
            .unwrap_or_default()
    }

    /// Every pool's targets, sorted by job then scrape URL.
    pub fn targets(&self) -> Vec<PoolView> {
        let pools = self.pools.lock();
        pools
            .iter()
            .map(|(job, p)| {
                let mut active: Vec<Arc<Target>> =
                    p.loops.values().map(|h| h.target.clone()).collect();
                active.extend(p.held.iter().cloned());
                active.sort_by(|a, b| a.scrape_url.cmp(&b.scrape_url));
                PoolView {
                    job: job.clone(),
                    active,
                    dropped: p
                        .groups
                        .iter()
                        .filter_map(|g| p.derived.get(&g.source))
                        .flat_map(|d| d.dropped.iter().cloned())
                        .collect(),
                }
            })
            .collect()
    }

    /// Stops every loop without staleness markers (the process is exiting).
    pub async fn shutdown(&self) {
        let handles: Vec<LoopHandle> = {
            let mut pools = self.pools.lock();
            pools
                .values_mut()
                .flat_map(|p| p.loops.drain().map(|(_, h)| h).collect::<Vec<_>>())
                .collect()
        };
        for h in &handles {
            let _ = h.stop.send(false);
        }
        for h in handles {
            let _ = h.task.await;
        }
    }
}

/// A group's targets after relabeling; dropped ones keep their
/// discovered labels for the targets page.
fn derive(g: &TargetGroup, cfg: &ScrapeConfig) -> Derived {
    let mut d = Derived::default();
    for (addr, labels) in g.each_target() {
        match populate(addr, &labels, cfg) {
            Ok(Some(t)) => d.active.push(Arc::new(t)),
            Ok(None) => d
                .dropped
                .push(crate::scrape::target::discovered_labels(addr, &labels, cfg)),
            Err(e) => tracing::warn!(
                job = %cfg.job_name, target = %addr, error = %e,
                "creating target failed"
            ),
        }
    }
    // A group may name the same target twice; keep one.
    let mut seen = std::collections::HashSet::new();
    d.active.retain(|t| seen.insert(t.key()));
    d
}

/// Every target of the pool once (a target listed by two groups, once).
fn unique_targets(pool: &Pool) -> Vec<Arc<Target>> {
    let mut seen = std::collections::HashSet::new();
    pool.groups
        .iter()
        .filter_map(|g| pool.derived.get(&g.source))
        .flat_map(|d| d.active.iter())
        .filter(|t| seen.insert(t.key()))
        .cloned()
        .collect()
}

/// A job's static groups as discovery would list them, for a manager
/// without discovery attached.
fn static_groups(cfg: &ScrapeConfig) -> Vec<Arc<TargetGroup>> {
    let mut out: Vec<Arc<TargetGroup>> = cfg
        .static_configs
        .iter()
        .enumerate()
        .filter(|(_, g)| !g.targets.is_empty())
        .map(|(i, g)| {
            let mut g = g.clone();
            g.source = format!("static/{i}");
            Arc::new(g)
        })
        .collect();
    out.sort_by(|a, b| a.source.cmp(&b.source));
    out
}

/// Stops a pool's loops with end-of-run staleness (the job went away or
/// its config changed).
fn stop_pool(p: &mut Pool) {
    for (_, h) in p.loops.drain() {
        let _ = h.stop.send(true);
    }
    p.held.clear();
}
