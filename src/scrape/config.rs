//! A scrape job's section (`scrape_configs:` entries): defaults applied,
//! global values inherited, validated with the same rules (and messages) as
//! Prometheus.

use crate::config::common::{opt_duration, opt_size, resolve_protocols, FileSdConfig};
use crate::config::errors::{Pos, Sink};
use crate::config::file_sd::TargetGroup;
use crate::config::http::{reject_unsupported, resolve_http_fields, unsupported_http_fields};
use crate::config::raw::{RawFileSdConfig, RawRelabelConfig, RawStaticConfig, S};
use crate::config::relabel::{resolve_relabel_configs, RelabelConfig};
use crate::config::{GlobalConfig, HttpClientConfig, Scheme, ScrapeProtocol};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

crate::config::raw::raw_http_client_struct! {
    unsupported;
    pub(crate) struct RawScrapeConfig {
        job_name: Option<S<String>>,
        scrape_interval: Option<S<String>>,
        scrape_timeout: Option<S<String>>,
        metrics_path: Option<String>,
        scheme: Option<S<String>>,
        params: Option<std::collections::BTreeMap<String, Vec<String>>>,
        honor_labels: Option<bool>,
        honor_timestamps: Option<bool>,
        static_configs: Option<Vec<S<RawStaticConfig>>>,
        file_sd_configs: Option<Vec<S<RawFileSdConfig>>>,
        http_sd_configs: Option<Vec<S<crate::discovery::config::RawHttpSdConfig>>>,
        dns_sd_configs: Option<Vec<S<crate::discovery::config::RawDnsSdConfig>>>,
        consul_sd_configs: Option<Vec<S<crate::discovery::config::RawConsulSdConfig>>>,
        docker_sd_configs: Option<Vec<S<crate::discovery::config::RawDockerSdConfig>>>,
        kubernetes_sd_configs: Option<Vec<S<crate::discovery::config::RawKubernetesSdConfig>>>,
        relabel_configs: Option<Vec<S<RawRelabelConfig>>>,
        metric_relabel_configs: Option<Vec<S<RawRelabelConfig>>>,
        sample_limit: Option<u64>,
        label_limit: Option<u64>,
        label_name_length_limit: Option<u64>,
        label_value_length_limit: Option<u64>,
        target_limit: Option<u64>,
        body_size_limit: Option<S<String>>,
        scrape_protocols: Option<S<Vec<S<String>>>>,
        enable_compression: Option<bool>,
        metric_name_validation_scheme: Option<S<String>>,
        metric_name_escaping_scheme: Option<S<String>>,
        scrape_native_histograms: Option<bool>,
        always_scrape_classic_histograms: Option<bool>,
        convert_classic_histograms_to_nhcb: Option<bool>,
        native_histogram_bucket_limit: Option<u64>,
        native_histogram_min_bucket_factor: Option<S<f64>>,
    }
}

impl ScrapeConfig {
    /// Every SD entry of the job, for the discovery manager: the static
    /// entries, the file_sd entries, then the others.
    pub fn sd_configs(&self) -> Vec<crate::discovery::SdConfig> {
        crate::discovery::config::join_sd(
            &self.static_configs,
            &self.file_sd_configs,
            &self.service_discovery,
        )
    }
}

/// Limits are 0 for "unlimited", as in Prometheus.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: Scheme,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    /// The other service discovery entries (http, dns, consul, docker,
    /// kubernetes), in the order of their fields.
    pub service_discovery: Vec<crate::discovery::SdConfig>,
    pub http_client: HttpClientConfig,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
    pub target_limit: u64,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    pub enable_compression: bool,
    /// `metric_name_validation_scheme`, `metric_name_escaping_scheme`
    /// (the global ones unless set).
    pub names: crate::config::names::NameSchemes,
    /// Native histograms and classic-histogram conversion.
    pub histograms: crate::config::HistogramScrape,
}

fn resolve_http_client(
    r: &RawScrapeConfig,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> HttpClientConfig {
    reject_unsupported(&unsupported_http_fields!(r), sink);
    resolve_http_fields(crate::config::http::http_fields!(r), dir, sink)
}

/// Resolves every scrape config; reports duplicates of `job_name` at the
/// later occurrence, like upstream (which names the job).
pub(crate) fn resolve_scrape_configs(
    raw: &[S<RawScrapeConfig>],
    global: &GlobalConfig,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> Vec<ScrapeConfig> {
    let mut seen: HashMap<String, Pos> = HashMap::new();
    let mut out = Vec::new();
    for r in raw {
        let before = sink.len();
        let sc = resolve_one(r, global, dir, sink);
        if let Some(j) = &r.value.job_name {
            if !j.value.is_empty() {
                if seen.contains_key(&j.value) {
                    sink.push(
                        Pos::of(j),
                        format!("found multiple scrape configs with job name {:?}", j.value),
                    );
                } else {
                    seen.insert(j.value.clone(), Pos::of(j));
                }
            }
        }
        if sink.len() == before {
            out.push(sc);
        }
    }
    out
}

fn resolve_one(
    raw: &S<RawScrapeConfig>,
    g: &GlobalConfig,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> ScrapeConfig {
    let at = Pos::of(raw);
    let r = &raw.value;
    let job_name = r
        .job_name
        .as_ref()
        .map(|j| j.value.clone())
        .unwrap_or_default();
    if job_name.is_empty() {
        sink.push(
            r.job_name.as_ref().map(Pos::of).unwrap_or(at),
            "job_name is empty",
        );
    }
    let scrape_interval = opt_duration(&r.scrape_interval, sink).unwrap_or(g.scrape_interval);
    let explicit_timeout = opt_duration(&r.scrape_timeout, sink);
    let scrape_timeout = match explicit_timeout {
        Some(t) => {
            if t > scrape_interval {
                let p = r.scrape_timeout.as_ref().map(Pos::of).unwrap_or(at);
                sink.push(
                    p,
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {job_name:?}"
                    ),
                );
            }
            t
        }
        // Upstream clamps the inherited timeout to this job's interval.
        None => g.scrape_timeout.min(scrape_interval),
    };
    let scheme = match r.scheme.as_ref() {
        None => Scheme::Http,
        Some(s) => match s.value.as_str() {
            "http" | "" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                sink.push(
                    Pos::of(s),
                    format!("invalid scheme {other:?}: must be \"http\" or \"https\""),
                );
                Scheme::Http
            }
        },
    };
    // Prometheus' CheckTargetAddress: a target is host:port, never a URL
    // (scheme and path have their own fields). With relabel_configs the
    // address may still be rewritten; `check config` tests it after
    // relabeling (settings::check).
    let check_hosts = r.relabel_configs.as_ref().is_none_or(|v| v.is_empty());
    let (static_configs, file_sd_configs, service_discovery) =
        crate::discovery::config::split_sd(crate::discovery::config::resolve_sd_fields(
            crate::discovery::config::sd_fields!(r),
            dir,
            check_hosts,
            sink,
        ));
    let http_client = resolve_http_client(r, dir, sink);
    let relabel_configs =
        resolve_relabel_configs(r.relabel_configs.as_deref().unwrap_or(&[]), sink);
    let metric_relabel_configs =
        resolve_relabel_configs(r.metric_relabel_configs.as_deref().unwrap_or(&[]), sink);
    let histograms = crate::config::HistogramScrape {
        native: r.scrape_native_histograms.unwrap_or(g.histograms.native),
        always_classic: r
            .always_scrape_classic_histograms
            .unwrap_or(g.histograms.always_classic),
        convert_to_nhcb: r
            .convert_classic_histograms_to_nhcb
            .unwrap_or(g.histograms.convert_to_nhcb),
        bucket_limit: r.native_histogram_bucket_limit.unwrap_or(0),
        min_bucket_factor: match &r.native_histogram_min_bucket_factor {
            Some(f) if !f.value.is_finite() || f.value < 0.0 => {
                sink.push(
                    Pos::of(f),
                    format!(
                        "native_histogram_min_bucket_factor must be a finite number >= 0, got {}",
                        f.value
                    ),
                );
                0.0
            }
            Some(f) => f.value,
            None => 0.0,
        },
    };
    // Prometheus: an explicit list wins (the job's, then the global one);
    // without one, protobuf comes first when native histograms are scraped.
    let scrape_protocols = r
        .scrape_protocols
        .as_ref()
        .and_then(|p| resolve_protocols(p, sink))
        .unwrap_or_else(|| {
            if !g.scrape_protocols_set && histograms.native {
                ScrapeProtocol::PROTO_FIRST.to_vec()
            } else if !g.scrape_protocols_set {
                ScrapeProtocol::DEFAULT.to_vec()
            } else {
                g.scrape_protocols.clone()
            }
        });
    let or_global = |v: Option<u64>, d: u64| v.filter(|x| *x != 0).unwrap_or(d);
    ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path: r
            .metrics_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/metrics".to_string()),
        scheme,
        params: r.params.clone().unwrap_or_default(),
        honor_labels: r.honor_labels.unwrap_or(false),
        honor_timestamps: r.honor_timestamps.unwrap_or(true),
        static_configs,
        file_sd_configs,
        service_discovery,
        http_client,
        relabel_configs,
        metric_relabel_configs,
        sample_limit: or_global(r.sample_limit, g.sample_limit),
        label_limit: or_global(r.label_limit, g.label_limit),
        label_name_length_limit: or_global(r.label_name_length_limit, g.label_name_length_limit),
        label_value_length_limit: or_global(r.label_value_length_limit, g.label_value_length_limit),
        body_size_limit: or_global(opt_size(&r.body_size_limit, sink), g.body_size_limit),
        target_limit: or_global(r.target_limit, g.target_limit),
        scrape_protocols,
        enable_compression: r.enable_compression.unwrap_or(true),
        names: crate::config::names::resolve(
            &r.metric_name_validation_scheme,
            &r.metric_name_escaping_scheme,
            Some(&g.names),
            "scrape config",
            sink,
        ),
        histograms,
    }
}

/// The first scrape config of `yaml` (a file holding only
/// `scrape_configs:`), resolved as the file loader does (global defaults,
/// validation); for tests, which must not reach up to `settings`.
#[cfg(test)]
pub(crate) fn first_for_test(yaml: &str) -> ScrapeConfig {
    #[derive(Default, serde::Deserialize)]
    struct File {
        scrape_configs: Vec<S<RawScrapeConfig>>,
    }
    let f: File = crate::config::parse_yaml(yaml, "t.yml").expect("test config parses");
    let mut sink = crate::config::errors::Sink::new("t.yml");
    let c = resolve_scrape_configs(&f.scrape_configs, &Default::default(), None, &mut sink);
    let mut c = sink.into_result(c).expect("test config loads");
    c.remove(0)
}
