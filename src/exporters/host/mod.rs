//! Host metrics under node_exporter 1.5's names, read straight from `/proc`
//! and `/sys` because node_exporter's semantics (per-mode CPU seconds, raw
//! kernel counters) are not available through portable crates.
//!
//! Every source is one submodule; a source that fails (file missing,
//! unparsable) contributes no families and reports
//! `node_scrape_collector_success{collector} 0`, as node_exporter does, so
//! one broken file never hides the rest.

mod conntrack;
mod diskstats;
mod entropy;
mod filefd;
mod filesystem;
mod loadavg;
mod meminfo;
pub use meminfo::total_memory;
mod netclass;
mod netdev;
mod netstat;
mod pressure;
mod sockstat;
mod softnet;
mod stat;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;

use crate::metrics::FamilySnapshot;
use std::path::{Path, PathBuf};

/// Where the host's pseudo file systems are mounted; tests point these at
/// fixture trees, containers at the host's bind mounts.
#[derive(Clone, Debug)]
pub struct HostOptions {
    pub proc_path: PathBuf,
    pub sys_path: PathBuf,
    pub rootfs: PathBuf,
    /// How long one `statvfs` may take before its mount is reported with
    /// `node_filesystem_device_error 1` (node_exporter's mount timeout).
    pub mount_timeout: std::time::Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            proc_path: PathBuf::from("/proc"),
            sys_path: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            mount_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Why one source could not be collected; always names the file and,
/// for parse errors, the line and field.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {what}")]
    Parse {
        path: String,
        line: usize,
        what: String,
    },
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, HostError> {
    std::fs::read_to_string(path).map_err(|source| HostError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Parses a number from a file, naming file, line and field on failure.
pub(crate) fn num(path: &Path, line: usize, field: &str, s: &str) -> Result<f64, HostError> {
    s.trim().parse::<f64>().map_err(|_| HostError::Parse {
        path: path.display().to_string(),
        line,
        what: format!("field {field}: not a number: {s:?}"),
    })
}

pub(crate) fn parse_err(path: &Path, line: usize, what: impl Into<String>) -> HostError {
    HostError::Parse {
        path: path.display().to_string(),
        line,
        what: what.into(),
    }
}

/// Families being built by one source (shared with the PostgreSQL exporter).
pub(crate) type Out = crate::metrics::FamilyBuilder;

type Source = fn(&HostOptions, &mut Out) -> Result<(), HostError>;

/// node_exporter's collector names, so `node_scrape_collector_success`
/// carries the same `collector` label values.
const SOURCES: &[(&str, Source)] = &[
    ("cpu", stat::collect_cpu),
    ("conntrack", conntrack::collect),
    ("diskstats", diskstats::collect),
    ("entropy", entropy::collect),
    ("filefd", filefd::collect),
    ("filesystem", filesystem::collect),
    ("loadavg", loadavg::collect),
    ("meminfo", meminfo::collect),
    ("netclass", netclass::collect),
    ("netdev", netdev::collect),
    ("netstat", netstat::collect),
    ("os", uname::collect_os),
    ("pressure", pressure::collect),
    ("sockstat", sockstat::collect),
    ("softnet", softnet::collect),
    ("stat", stat::collect_stat),
    ("time", time::collect),
    ("timex", timex::collect),
    ("udp_queues", udp_queues::collect),
    ("uname", uname::collect_uname),
    ("vmstat", vmstat::collect),
];

/// One collection of every host source, sorted by family name.
pub fn collect(opts: &HostOptions) -> Vec<FamilySnapshot> {
    let mut all = Out::default();
    let mut success = Vec::with_capacity(SOURCES.len());
    for (name, f) in SOURCES {
        let mut out = Out::default();
        let start = std::time::Instant::now();
        let res = f(opts, &mut out);
        let took = start.elapsed().as_secs_f64();
        let ok = match res {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(collector = name, error = %e, "host collector failed");
                false
            }
        };
        if ok {
            all.merge(out);
        }
        success.push((*name, ok, took));
    }
    for (name, ok, took) in success {
        all.gauge(
            "node_scrape_collector_duration_seconds",
            "How long a host collector took.",
            &[("collector", name)],
            took,
        );
        all.gauge(
            "node_scrape_collector_success",
            "Whether a host collector succeeded.",
            &[("collector", name)],
            if ok { 1.0 } else { 0.0 },
        );
    }
    all.finish()
}
