//! File-based service discovery: watch `file_sd_configs` files and push their
//! target groups to the manager.
//!
//! Files are polled (a cheap `stat` of every matching path every few seconds)
//! rather than watched with inotify: it behaves the same on every filesystem,
//! including the bind mounts and NFS shares where inotify misses changes, and
//! Prometheus re-reads on `refresh_interval` anyway.

use crate::config::{FileSdConfig, TargetGroup};
use crate::scrape::manager::Manager;
use crate::scrape::ScrapeMetrics;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often file metadata is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Starts a task for one `file_sd_configs` entry of `job`.
pub fn spawn_file_sd(
    manager: Arc<Manager>,
    metrics: Arc<ScrapeMetrics>,
    job: String,
    index: usize,
    cfg: FileSdConfig,
    base_dir: PathBuf,
) -> tokio::task::JoinHandle<()> {
    let source = format!("file_sd/{index}");
    spawn_file_sd_into(metrics, cfg, base_dir, move |groups| {
        manager.sync_groups(&job, &source, groups)
    })
}

/// Starts a task polling one `file_sd_configs` entry, handing the full
/// group list to `on_change` whenever it changed (scrape jobs and the
/// Alertmanager sets of the notifier both consume it this way).
pub fn spawn_file_sd_into(
    metrics: Arc<ScrapeMetrics>,
    cfg: FileSdConfig,
    base_dir: PathBuf,
    mut on_change: impl FnMut(Vec<TargetGroup>) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut watcher = FileSd::new(cfg, base_dir);
        loop {
            if let Some(groups) = watcher.poll(&metrics) {
                on_change(groups);
            }
            tokio::time::sleep(POLL_INTERVAL.min(watcher.cfg.refresh_interval)).await;
        }
    })
}

/// State of one file_sd entry: last seen file metadata and groups per file.
pub struct FileSd {
    cfg: FileSdConfig,
    base_dir: PathBuf,
    stamps: BTreeMap<PathBuf, (SystemTime, u64)>,
    /// Last good groups per file; a file that stops parsing keeps them.
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
    last_full: Option<Instant>,
}

impl FileSd {
    pub fn new(cfg: FileSdConfig, base_dir: PathBuf) -> Self {
        FileSd {
            cfg,
            base_dir,
            stamps: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_full: None,
        }
    }

    fn paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for pattern in &self.cfg.files {
            let full = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                self.base_dir.join(pattern)
            };
            match glob::glob(&full.to_string_lossy()) {
                Ok(it) => out.extend(it.flatten()),
                Err(e) => tracing::warn!(pattern = %pattern, error = %e, "bad file_sd glob"),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Returns the full group list when anything changed since the last call.
    pub fn poll(&mut self, metrics: &ScrapeMetrics) -> Option<Vec<TargetGroup>> {
        let paths = self.paths();
        let mut stamps = BTreeMap::new();
        for p in &paths {
            if let Ok(md) = std::fs::metadata(p) {
                stamps.insert(
                    p.clone(),
                    (md.modified().unwrap_or(SystemTime::UNIX_EPOCH), md.len()),
                );
            }
        }
        let refresh_due = self
            .last_full
            .is_none_or(|t| t.elapsed() >= self.cfg.refresh_interval);
        if stamps == self.stamps && !refresh_due {
            return None;
        }
        self.last_full = Some(Instant::now());
        // Files that vanished take their targets with them.
        self.groups.retain(|p, _| stamps.contains_key(p));
        for p in stamps.keys() {
            let changed = self.stamps.get(p) != stamps.get(p) || refresh_due;
            if !changed && self.groups.contains_key(p) {
                continue;
            }
            match crate::config::parse_file_sd(p) {
                Ok(mut gs) => {
                    for (i, g) in gs.iter_mut().enumerate() {
                        g.source = format!("{}:{i}", p.display());
                    }
                    self.groups.insert(p.clone(), gs);
                }
                Err(e) => {
                    metrics.sd_file_read_errors.inc();
                    tracing::error!(file = %p.display(), error = %e, "file_sd: keeping the last good targets");
                }
            }
        }
        self.stamps = stamps;
        Some(self.groups.values().flatten().cloned().collect())
    }
}
