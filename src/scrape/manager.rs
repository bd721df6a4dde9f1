//! The scrape manager: one pool per `scrape_configs` job, one loop per
//! target. Discovery pushes target groups in; the manager diffs them against
//! the running loops so an unchanged target keeps its loop and its cache.

use crate::config::{ScrapeConfig, TargetGroup};
use crate::model::Labels;
use crate::scrape::client::Scraper;
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

struct Pool {
    cfg: Arc<ScrapeConfig>,
    scraper: Arc<Result<Scraper, String>>,
    /// Set for in-process jobs: bodies come from here, not HTTP.
    local: Option<Arc<dyn LocalSource>>,
    /// Target groups by discovery source (`static/0`, `file_sd/0:path:1`, ...).
    groups: BTreeMap<String, Vec<TargetGroup>>,
    loops: HashMap<u64, LoopHandle>,
    /// Targets listed but not scraped (target_limit exceeded).
    held: Vec<Arc<Target>>,
    dropped: Vec<Labels>,
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
}

/// The source key of the groups the discovery manager hands over.
const DISCOVERY_SOURCE: &str = "discovery";

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
        })
    }

    /// Runs the jobs' SD entries on `sd` from now on: every `apply_config`
    /// hands them over, and its updates re-sync the pools whose groups
    /// changed. Call once, before the first `apply_config`.
    pub fn attach_discovery(self: &Arc<Self>, sd: Arc<crate::discovery::Manager>) {
        let mut rx = sd.subscribe();
        if self.discovery.set(sd).is_err() {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen: HashMap<String, Arc<Vec<TargetGroup>>> = HashMap::new();
            loop {
                let snap = rx.borrow_and_update().clone();
                let Some(m) = me.upgrade() else { return };
                for (job, groups) in snap.iter() {
                    if seen.get(job).is_some_and(|g| Arc::ptr_eq(g, groups)) {
                        continue;
                    }
                    m.sync_groups(job, DISCOVERY_SOURCE, groups.to_vec());
                    seen.insert(job.clone(), groups.clone());
                }
                seen.retain(|j, _| snap.contains_key(j));
                drop(m);
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Makes `job` an in-process job: its targets' bodies come from `src`.
    /// Call before `apply_config`.
    pub fn set_local_source(&self, job: &str, src: Arc<dyn LocalSource>) {
        self.local.lock().insert(job.to_string(), src);
    }

    /// Creates a pool per scrape config and feeds its static targets; hands
    /// every job's SD entries to the attached discovery manager. A pool
    /// whose config did not change keeps its loops; pools of jobs no longer
    /// configured stop (in-process jobs stay). Must be called inside the
    /// tokio runtime.
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
            // Static targets start at once; discovery's first update
            // replaces them with the merged groups of every entry.
            let mut groups = BTreeMap::new();
            groups.insert(DISCOVERY_SOURCE.to_string(), cfg.static_configs.clone());
            if let Some(mut old) = pools.remove(&cfg.job_name) {
                stop_pool(&mut old);
            }
            let pool = Pool {
                cfg: Arc::new(cfg.clone()),
                scraper: Arc::new(scraper),
                local: local.get(&cfg.job_name).cloned(),
                groups,
                loops: HashMap::new(),
                held: Vec::new(),
                dropped: Vec::new(),
            };
            pools.insert(cfg.job_name.clone(), pool);
            changed.push(cfg.job_name.clone());
        }
        for job in changed {
            if let Some(p) = pools.get_mut(&job) {
                self.resync(p);
            }
        }
        drop(pools);
        if let Some(sd) = self.discovery.get() {
            let sets = cfgs
                .iter()
                .map(|c| (c.job_name.clone(), c.sd_configs()))
                .collect();
            sd.apply(sets);
        }
    }

    /// Replaces the groups one discovery source gave for `job`.
    pub fn sync_groups(&self, job: &str, source: &str, groups: Vec<TargetGroup>) {
        let mut pools = self.pools.lock();
        let Some(pool) = pools.get_mut(job) else {
            return;
        };
        pool.groups.insert(source.to_string(), groups);
        self.resync(pool);
    }

    fn resync(&self, pool: &mut Pool) {
        let cfg = pool.cfg.clone();
        let mut wanted: Vec<Target> = Vec::new();
        let mut dropped = Vec::new();
        for groups in pool.groups.values() {
            for g in groups {
                for addr in &g.targets {
                    match populate(addr, &g.labels, &cfg) {
                        Ok(Some(t)) => wanted.push(t),
                        Ok(None) => dropped.push(crate::scrape::target::discovered_labels(
                            addr, &g.labels, &cfg,
                        )),
                        Err(e) => tracing::warn!(
                            job = %cfg.job_name, target = %addr, error = %e,
                            "creating target failed"
                        ),
                    }
                }
            }
        }
        // Two groups may name the same target; keep one.
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|t| seen.insert(t.key()));
        pool.dropped = dropped;
        self.metrics
            .pool_targets
            .with(&[&cfg.job_name])
            .set(wanted.len() as f64);

        if cfg.target_limit > 0 && wanted.len() as u64 > cfg.target_limit {
            // As Prometheus: the whole pool stops scraping and every target
            // shows the reason.
            self.metrics.target_limit_exceeded.inc();
            let msg = format!(
                "target_limit exceeded (number of targets: {}, limit: {})",
                wanted.len(),
                cfg.target_limit
            );
            tracing::warn!(job = %cfg.job_name, "{msg}");
            for (_, h) in pool.loops.drain() {
                let _ = h.stop.send(true);
            }
            pool.held = wanted
                .into_iter()
                .map(|t| {
                    t.set_status(ScrapeStatus {
                        health: Health::Down,
                        last_error: msg.clone(),
                        last_scrape: None,
                        last_scrape_duration: Duration::ZERO,
                    });
                    Arc::new(t)
                })
                .collect();
            return;
        }
        pool.held.clear();

        let mut next: HashMap<u64, LoopHandle> = HashMap::with_capacity(wanted.len());
        for t in wanted {
            let key = t.key();
            if let Some(h) = pool.loops.remove(&key) {
                next.insert(key, h);
                continue;
            }
            let target = Arc::new(t);
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
            next.insert(
                key,
                LoopHandle {
                    target,
                    stop: tx,
                    task,
                },
            );
        }
        // Whatever is left went away: stop with end-of-run staleness.
        for (_, h) in pool.loops.drain() {
            let _ = h.stop.send(true);
        }
        pool.loops = next;
    }

    /// The groups a job's targets come from (by source), for tests and the
    /// service discovery page.
    pub fn groups(&self, job: &str) -> Vec<TargetGroup> {
        let pools = self.pools.lock();
        pools
            .get(job)
            .map(|p| p.groups.values().flatten().cloned().collect())
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
                    dropped: p.dropped.clone(),
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

/// Stops a pool's loops with end-of-run staleness (the job went away or
/// its config changed).
fn stop_pool(p: &mut Pool) {
    for (_, h) in p.loops.drain() {
        let _ = h.stop.send(true);
    }
    p.held.clear();
}
