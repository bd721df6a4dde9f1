//! Small resolvers shared by the sections: optional durations and sizes,
//! label maps, rule and SD file globs, `static_configs` and
//! `file_sd_configs` entries, and the scrape protocols that `global:` and
//! every scrape job may name.

use super::duration::{parse_duration, parse_size};
use super::errors::{Pos, Sink};
use super::file_sd::TargetGroup;
use super::join_dir;
use super::raw::{RawFileSdConfig, RawStaticConfig, SpannedMap, S};
use super::relabel::is_valid_label_name;
use std::collections::BTreeMap;
use std::time::Duration;

/// Exposition formats a scrape may negotiate, with Prometheus' names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
}

impl ScrapeProtocol {
    pub const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
    ];

    /// Prometheus 3.x's default preference order.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// Prometheus' order when native histograms are scraped and
    /// `scrape_protocols` is not set: protobuf first.
    pub const PROTO_FIRST: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Prometheus 3.x's native-histogram scrape settings (`global:` and per
/// scrape config).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HistogramScrape {
    /// `scrape_native_histograms`: store native histograms (and prefer the
    /// protobuf format when `scrape_protocols` is not set).
    pub native: bool,
    /// `always_scrape_classic_histograms`: also the classic series of a
    /// histogram that is exposed as native too.
    pub always_classic: bool,
    /// `convert_classic_histograms_to_nhcb`.
    pub convert_to_nhcb: bool,
    /// `native_histogram_bucket_limit` (0: no limit; scrape configs only).
    pub bucket_limit: u64,
    /// `native_histogram_min_bucket_factor` (0 or 1: none; scrape configs only).
    pub min_bucket_factor: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FileSdConfig {
    /// Globs, already joined to the config file's directory.
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

/// Parses an optional duration, reporting at its node; `None` when absent,
/// zero (Prometheus treats an explicit 0 as "not set") or invalid.
pub(crate) fn opt_duration(v: &Option<S<String>>, sink: &mut Sink) -> Option<Duration> {
    let v = v.as_ref()?;
    match parse_duration(&v.value) {
        Ok(d) if d.is_zero() => None,
        Ok(d) => Some(d),
        Err(e) => {
            sink.push(Pos::of(v), e);
            None
        }
    }
}

pub(crate) fn opt_size(v: &Option<S<String>>, sink: &mut Sink) -> Option<u64> {
    let v = v.as_ref()?;
    match parse_size(&v.value) {
        Ok(n) => Some(n),
        Err(e) => {
            sink.push(Pos::of(v), e);
            None
        }
    }
}

pub(crate) fn resolve_protocols(
    v: &S<Vec<S<String>>>,
    sink: &mut Sink,
) -> Option<Vec<ScrapeProtocol>> {
    if v.value.is_empty() {
        sink.push(Pos::of(v), "scrape_protocols cannot be empty");
        return None;
    }
    let mut out: Vec<ScrapeProtocol> = Vec::new();
    let mut ok = true;
    for p in &v.value {
        match ScrapeProtocol::parse(&p.value) {
            Some(x) if out.contains(&x) => {
                sink.push(
                    Pos::of(p),
                    format!("duplicated protocol in scrape_protocols, got {}", p.value),
                );
                ok = false;
            }
            Some(x) => out.push(x),
            None => {
                let all: Vec<&str> = ScrapeProtocol::ALL.iter().map(|p| p.as_str()).collect();
                sink.push(
                    Pos::of(p),
                    format!(
                        "unknown scrape protocol {}, supported: [{}]",
                        p.value,
                        all.join(" ")
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Validates label names of a `labels:` mapping; returns the valid pairs.
pub(crate) fn resolve_label_map(m: &SpannedMap, sink: &mut Sink) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in &m.0 {
        if !is_valid_label_name(&k.value) {
            sink.push(
                Pos::of(k),
                format!("{:?} is not a valid label name", k.value),
            );
            continue;
        }
        out.insert(k.value.clone(), v.value.clone());
    }
    out
}

/// At most one `*`, and no `/` after it (upstream's rule for rule and SD
/// file globs: only the last path element may be a pattern).
pub fn is_single_star_glob(s: &str) -> bool {
    match s.find('*') {
        None => true,
        Some(i) => !s[i + 1..].contains('*') && !s[i + 1..].contains('/'),
    }
}

/// `static_configs` entries as target groups (source: the entry's index),
/// for scrape configs and `alerting.alertmanagers` alike.
pub(crate) fn resolve_static_configs(
    raw: &[S<RawStaticConfig>],
    check_hosts: bool,
    sink: &mut Sink,
) -> Vec<TargetGroup> {
    let mut out = Vec::new();
    for (i, sc) in raw.iter().enumerate() {
        let labels = sc
            .value
            .labels
            .as_ref()
            .map(|m| resolve_label_map(m, sink))
            .unwrap_or_default();
        let targets = sc
            .value
            .targets
            .iter()
            .flatten()
            .map(|t| {
                // A target is host:port; without relabeling to repair it, a
                // URL is a mistake (upstream's checkStaticTargets).
                if check_hosts && t.value.contains('/') {
                    sink.push(Pos::of(t), format!("{:?} is not a valid hostname", t.value));
                }
                t.value.clone()
            })
            .collect();
        out.push(TargetGroup {
            targets,
            labels,
            source: i.to_string(),
            target_labels: Vec::new(),
        });
    }
    out
}

/// `file_sd_configs` entries: file names checked as Prometheus does and
/// joined to the config's directory, refresh defaulting to 5m.
pub(crate) fn resolve_file_sd_configs(
    raw: &[S<RawFileSdConfig>],
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> Vec<FileSdConfig> {
    let mut out = Vec::new();
    for f in raw {
        let mut files = Vec::new();
        for name in f.value.files.iter().flatten() {
            if !is_valid_file_sd_name(&name.value) {
                sink.push(
                    Pos::of(name),
                    format!("path name {:?} is not valid for file discovery", name.value),
                );
            }
            files.push(join_dir(dir, &name.value));
        }
        let refresh_interval =
            opt_duration(&f.value.refresh_interval, sink).unwrap_or(Duration::from_secs(300));
        out.push(FileSdConfig {
            files,
            refresh_interval,
        });
    }
    out
}

/// The SD fields klaxon implements, in the order a config lists them.
pub const SUPPORTED_FIELDS: [&str; 7] = [
    "static_configs",
    "file_sd_configs",
    "http_sd_configs",
    "dns_sd_configs",
    "consul_sd_configs",
    "docker_sd_configs",
    "kubernetes_sd_configs",
];

/// Prometheus' SD mechanisms klaxon does not implement: a config using one
/// gets "not supported by klaxon" at the field rather than "unknown field".
pub const UNSUPPORTED_FIELDS: [&str; 25] = [
    "azure_sd_configs",
    "digitalocean_sd_configs",
    "dockerswarm_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "ionos_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "oci_sd_configs",
    "openstack_sd_configs",
    "outscale_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "stackit_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// The message for an unsupported mechanism's field.
pub fn unsupported_message(field: &str) -> String {
    format!(
        "`{field}` is a Prometheus service discovery mechanism not supported by klaxon (supported: {})",
        SUPPORTED_FIELDS.join(", ")
    )
}

/// Upstream's `^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$`.
pub fn is_valid_file_sd_name(s: &str) -> bool {
    let ext_ok = ["json", "yml", "yaml", "JSON", "YML", "YAML"]
        .iter()
        .any(|e| s.strip_suffix(e).is_some_and(|r| r.ends_with('.')));
    ext_ok && is_single_star_glob(s)
}
