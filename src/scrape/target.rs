//! Targets: turning a discovered address and its labels into the label set and
//! URL a scrape loop uses, as Prometheus' `PopulateLabels` does.

use crate::model::url::query_escape;
use crate::model::{Labels, LabelsBuilder, Timestamp};
use crate::scrape::config::ScrapeConfig;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::time::Duration;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";
pub const RESERVED_PREFIX: &str = "__";

/// Why a discovered target was not turned into a scrape target.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("invalid {label} label {value:?}: {reason}")]
    InvalidLabel {
        label: &'static str,
        value: String,
        reason: String,
    },
    #[error("scrape timeout {timeout:?} greater than scrape interval {interval:?}")]
    TimeoutAboveInterval {
        timeout: Duration,
        interval: Duration,
    },
}

/// Health as the targets API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the last scrape left behind, for `/api/v1/targets`.
#[derive(Clone, Debug)]
pub struct ScrapeStatus {
    pub health: Health,
    pub last_error: String,
    /// Wall-clock start of the last scrape, ms.
    pub last_scrape: Option<Timestamp>,
    pub last_scrape_duration: Duration,
}

/// A metric family's metadata as the target last exposed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// One scrape target.
#[derive(Debug)]
pub struct Target {
    /// Final labels (no `__` labels): attached to every scraped series.
    pub labels: Labels,
    /// Labels before relabeling, as discovered.
    pub discovered_labels: Labels,
    pub scrape_url: String,
    pub job: String,
    pub interval: Duration,
    pub timeout: Duration,
    status: Mutex<ScrapeStatus>,
    /// Family name → metadata, from the target's TYPE/HELP/UNIT lines.
    metadata: Mutex<BTreeMap<String, Metadata>>,
}

impl Target {
    /// Identity for sync: a target that keeps its labels and URL keeps its loop.
    pub fn key(&self) -> u64 {
        let mut h = self.labels.hash64();
        h ^= xxhash_rust::xxh64::xxh64(self.scrape_url.as_bytes(), 1);
        h
    }

    pub fn status(&self) -> ScrapeStatus {
        self.status.lock().clone()
    }

    pub fn health(&self) -> Health {
        self.status.lock().health
    }

    pub fn set_status(&self, s: ScrapeStatus) {
        *self.status.lock() = s;
    }

    /// Updates one field of a family's metadata; allocates only on change,
    /// so a steady target costs a lookup per metadata line.
    pub fn note_metadata(&self, family: &str, f: impl FnOnce(&mut Metadata) -> bool) {
        let mut m = self.metadata.lock();
        match m.get_mut(family) {
            Some(md) => {
                f(md);
            }
            None => {
                let mut md = Metadata::default();
                if f(&mut md) {
                    m.insert(family.to_string(), md);
                }
            }
        }
    }

    pub fn metadata(&self) -> BTreeMap<String, Metadata> {
        self.metadata.lock().clone()
    }
}

/// The labels of a target before relabeling, as Prometheus shows them
/// (`discoveredLabels`): the group's labels, `__address__`, then the scrape
/// config's defaults where discovery set none.
pub fn discovered_labels(
    address: &str,
    group_labels: &BTreeMap<String, String>,
    cfg: &ScrapeConfig,
) -> Labels {
    discovered_builder(address, group_labels, cfg).labels()
}

fn discovered_builder(
    address: &str,
    group_labels: &BTreeMap<String, String>,
    cfg: &ScrapeConfig,
) -> LabelsBuilder {
    let mut b = LabelsBuilder::new();
    for (k, v) in group_labels {
        b.set(k.as_str(), v.as_str());
    }
    b.set(ADDRESS_LABEL, address);
    // Scrape-config defaults fill in only what discovery did not set.
    let defaults = [
        ("job", cfg.job_name.clone()),
        (SCHEME_LABEL, cfg.scheme.as_str().to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (
            SCRAPE_INTERVAL_LABEL,
            crate::config::format_duration(cfg.scrape_interval),
        ),
        (
            SCRAPE_TIMEOUT_LABEL,
            crate::config::format_duration(cfg.scrape_timeout),
        ),
    ];
    for (name, value) in defaults {
        if b.get(name).is_none() {
            b.set(name, value);
        }
    }
    for (name, values) in &cfg.params {
        let label = format!("{PARAM_PREFIX}{name}");
        if b.get(&label).is_none() {
            if let Some(first) = values.first() {
                b.set(label, first.as_str());
            }
        }
    }
    b
}

/// Builds a target from one discovered address and its group's labels, or
/// returns `Ok(None)` when relabeling drops it.
pub fn populate(
    address: &str,
    group_labels: &BTreeMap<String, String>,
    cfg: &ScrapeConfig,
) -> Result<Option<Target>, TargetError> {
    let mut b = discovered_builder(address, group_labels, cfg);
    let discovered = b.labels();
    for (k, v) in group_labels {
        b.set(k.as_str(), v.as_str());
    }
    if !crate::config::relabel::process_builder(&mut b, &cfg.relabel_configs) {
        return Ok(None);
    }
    let address = match b.get(ADDRESS_LABEL) {
        Some(a) if !a.is_empty() => a.to_string(),
        _ => return Err(TargetError::NoAddress),
    };
    if address.contains('/') {
        return Err(TargetError::InvalidLabel {
            label: ADDRESS_LABEL,
            value: address,
            reason: "must be host:port without a path".into(),
        });
    }
    let interval = parse_label_duration(&b, SCRAPE_INTERVAL_LABEL)?;
    let timeout = parse_label_duration(&b, SCRAPE_TIMEOUT_LABEL)?;
    if interval.is_zero() || timeout.is_zero() {
        return Err(TargetError::InvalidLabel {
            label: if interval.is_zero() {
                SCRAPE_INTERVAL_LABEL
            } else {
                SCRAPE_TIMEOUT_LABEL
            },
            value: "0s".into(),
            reason: "must be greater than zero".into(),
        });
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval { timeout, interval });
    }
    let scheme = b.get(SCHEME_LABEL).unwrap_or("http").to_string();
    let path = b.get(METRICS_PATH_LABEL).unwrap_or("/metrics").to_string();
    let mut query: Vec<(String, String)> = Vec::new();
    // Params from the config keep all their values unless a __param_ label
    // overrides the first one, as Prometheus does.
    for (name, values) in &cfg.params {
        let label = format!("{PARAM_PREFIX}{name}");
        let mut vals = values.clone();
        if let Some(v) = b.get(&label) {
            if vals.is_empty() {
                vals.push(v.to_string());
            } else {
                vals[0] = v.to_string();
            }
        }
        for v in vals {
            query.push((name.clone(), v));
        }
    }
    for l in b.iter() {
        if let Some(name) = l.name.strip_prefix(PARAM_PREFIX) {
            if !cfg.params.contains_key(name) {
                query.push((name.to_string(), l.value.clone()));
            }
        }
    }
    let mut scrape_url = format!("{scheme}://{address}{path}");
    if !query.is_empty() {
        scrape_url.push(if path.contains('?') { '&' } else { '?' });
        let enc: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect();
        scrape_url.push_str(&enc.join("&"));
    }
    if b.get("instance").is_none() {
        b.set("instance", address.as_str());
    }
    // Everything reserved is dropped from the final set.
    b.retain(|l| !l.name.starts_with(RESERVED_PREFIX));
    let labels = b.build();
    Ok(Some(Target {
        job: labels.get("job").unwrap_or(&cfg.job_name).to_string(),
        labels,
        discovered_labels: discovered,
        scrape_url,
        interval,
        timeout,
        status: Mutex::new(ScrapeStatus {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_scrape_duration: Duration::ZERO,
        }),
        metadata: Mutex::new(BTreeMap::new()),
    }))
}

fn parse_label_duration(b: &LabelsBuilder, label: &'static str) -> Result<Duration, TargetError> {
    let v = b.get(label).unwrap_or("");
    crate::config::parse_duration(v).map_err(|e| TargetError::InvalidLabel {
        label,
        value: v.to_string(),
        reason: e.to_string(),
    })
}

/// Prometheus spreads scrapes of a pool across the interval by a hash of the
/// target, so a restart does not make every target scrape at the same instant.
/// Returns the delay from `now_nanos` to this target's first scrape slot.
pub fn scrape_offset(target_hash: u64, interval: Duration, now_nanos: u128) -> Duration {
    let iv = interval.as_nanos().max(1);
    let base = iv - now_nanos % iv;
    let offset = (target_hash as u128) % iv;
    let mut next = base + offset;
    if next >= iv {
        next -= iv;
    }
    Duration::from_nanos(next as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_within_interval_and_stable_slot() {
        let iv = Duration::from_secs(10);
        for h in [0u64, 1, 12345, u64::MAX] {
            for now in [0u128, 3_000_000_000, 9_999_999_999] {
                let d = scrape_offset(h, iv, now);
                assert!(d < iv);
                // The slot (now + delay) mod interval depends only on the hash.
                let slot = (now + d.as_nanos()) % iv.as_nanos();
                assert_eq!(slot, (h as u128) % iv.as_nanos());
            }
        }
    }

    /// The first job of `scrape_configs:` entries, resolved as the file
    /// loader does (global defaults, validation).
    fn scrape_config(yaml_job: &str) -> ScrapeConfig {
        crate::scrape::config::first_for_test(&format!("scrape_configs:\n{yaml_job}"))
    }

    #[test]
    fn target_labels_and_url_like_prometheus() {
        let cfg = scrape_config(
            "  - job_name: j\n    scheme: https\n    metrics_path: /probe\n    params:\n      module: [http_2xx, extra]\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - target_label: __address__\n        replacement: exporter:9115\n      - source_labels: [__meta_x]\n        target_label: meta_copied\n",
        );
        let mut group = BTreeMap::new();
        group.insert("__meta_x".to_string(), "m".to_string());
        group.insert("env".to_string(), "prod".to_string());
        let t = populate("example.org:443", &group, &cfg)
            .expect("valid target")
            .expect("kept");
        // __param_* overrides the first value of a configured param and adds
        // the others; the address is the relabeled one.
        assert_eq!(
            t.scrape_url,
            "https://exporter:9115/probe?module=http_2xx&module=extra&target=example.org%3A443"
        );
        assert_eq!(t.labels.get("instance"), Some("exporter:9115"));
        assert_eq!(t.labels.get("job"), Some("j"));
        assert_eq!(t.labels.get("env"), Some("prod"));
        assert_eq!(t.labels.get("meta_copied"), Some("m"));
        // Reserved labels are gone from the final set, kept in the discovered one.
        assert!(t.labels.iter().all(|l| !l.name.starts_with("__")));
        assert_eq!(
            t.discovered_labels.get("__address__"),
            Some("example.org:443")
        );
        assert_eq!(t.discovered_labels.get("__scheme__"), Some("https"));
        assert_eq!(t.discovered_labels.get("__param_module"), Some("http_2xx"));
        assert_eq!(t.interval, cfg.scrape_interval);
    }

    #[test]
    fn relabel_drop_and_bad_targets() {
        let cfg = scrape_config(
            "  - job_name: j\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: 'drop.*'\n        action: drop\n",
        );
        let none = BTreeMap::new();
        assert!(populate("drop-me:1", &none, &cfg).unwrap().is_none());
        assert!(populate("keep:1", &none, &cfg).unwrap().is_some());
        assert_eq!(
            populate("", &none, &cfg).unwrap_err(),
            TargetError::NoAddress
        );
        assert!(matches!(
            populate("host:1/path", &none, &cfg),
            Err(TargetError::InvalidLabel {
                label: ADDRESS_LABEL,
                ..
            })
        ));
        // An instance label set by discovery is kept.
        let mut g = BTreeMap::new();
        g.insert("instance".to_string(), "named".to_string());
        let t = populate("h:1", &g, &cfg).unwrap().unwrap();
        assert_eq!(t.labels.get("instance"), Some("named"));
    }

    #[test]
    fn escape() {
        assert_eq!(query_escape("a b/c"), "a+b%2Fc");
    }
}
