//! `file_sd_configs`: files polled for changes, their groups sent to the
//! discovery manager.
//!
//! Files are polled (a cheap `stat` of every matching path every few seconds)
//! rather than watched with inotify: it behaves the same on every filesystem,
//! including the bind mounts and NFS shares where inotify misses changes, and
//! Prometheus re-reads on `refresh_interval` anyway.

use super::ProviderCtx;
use crate::config::{FileSdConfig, FileSdError, TargetGroup};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often file metadata is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

pub async fn run(cfg: FileSdConfig, ctx: ProviderCtx) {
    let every = POLL_INTERVAL.min(cfg.refresh_interval);
    let mut watcher = FileSd::new(cfg, ctx.opts.base_dir.clone());
    loop {
        if let Some((groups, errors)) = watcher.poll() {
            for e in &errors {
                ctx.shared.metrics.file_read_errors.inc();
                ctx.failed(e);
            }
            ctx.replace_all(groups);
        }
        tokio::time::sleep(every).await;
    }
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

    /// Returns the full group list when anything changed since the last
    /// call, with the files that could not be read (their last good groups
    /// are part of the list).
    pub fn poll(&mut self) -> Option<(Vec<TargetGroup>, Vec<FileSdError>)> {
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
        let mut errors = Vec::new();
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
                Err(e) => errors.push(e),
            }
        }
        self.stamps = stamps;
        Some((self.groups.values().flatten().cloned().collect(), errors))
    }
}
