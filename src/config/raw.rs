//! The configuration as written: serde shapes mirroring `prometheus.yml`,
//! with source positions (`Spanned`) on every node a semantic check may have
//! to point at. Nothing here is defaulted or validated; see `resolve`.
//!
//! All structs deny unknown fields: a misspelt key silently ignored is a
//! config that does something else than the user thinks.

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;
use std::fmt;

pub(crate) type S<T> = Spanned<T>;

/// A string-to-string mapping that keeps each key's and value's position
/// (serde-saphyr's `Spanned` is not `Ord`, so it cannot key a map).
#[derive(Debug, Default)]
pub(crate) struct SpannedMap(pub Vec<(S<String>, S<String>)>);

impl<'de> Deserialize<'de> for SpannedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpannedMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SpannedMap, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<S<String>, S<String>>()? {
                    v.push((k, val));
                }
                Ok(SpannedMap(v))
            }
            fn visit_unit<E>(self) -> Result<SpannedMap, E> {
                Ok(SpannedMap::default())
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub global: Option<RawGlobal>,
    pub scrape_configs: Option<Vec<S<RawScrapeConfig>>>,
    pub rule_files: Option<Vec<S<String>>>,
    pub alerting: Option<RawAlerting>,
    pub remote_write: Option<Vec<S<crate::remote::config::RawRemoteWrite>>>,
    pub remote_read: Option<S<serde_json::Value>>,
    pub storage: Option<RawStorage>,
    pub exporters: Option<crate::exporters::config::RawExporters>,
    pub auth: Option<crate::ops::config::RawAuth>,
    pub command_center: Option<crate::ops::config::RawCommandCenter>,
    pub probes: Option<Vec<S<crate::probe::schedule::RawProbe>>>,
    /// Alert routing, in `alertmanager.yml`'s shape (see `notify::config`).
    pub notify: Option<crate::notify::config::RawNotifyConfig>,
    /// Where rules are evaluated (local head or a remote datasource).
    pub rule_evaluation: Option<crate::rules::datasource::config::RawRuleEvaluation>,
    /// Remediation rules and the receiver circuit breaker.
    pub autoheal: Option<crate::ops::autoheal::config::RawAutoheal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub scrape_interval: Option<S<String>>,
    pub scrape_timeout: Option<S<String>>,
    pub evaluation_interval: Option<S<String>>,
    pub external_labels: Option<SpannedMap>,
    pub query_log_file: Option<S<String>>,
    pub scrape_protocols: Option<S<Vec<S<String>>>>,
    pub body_size_limit: Option<S<String>>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerting {
    /// `Option` per entry: a null entry gets Prometheus' own message.
    pub alert_relabel_configs: Option<Vec<S<Option<RawRelabelConfig>>>>,
    pub alertmanagers: Option<Vec<S<RawAlertmanager>>>,
}

/// One `alerting.alertmanagers` entry: how a set of Alertmanagers is found
/// and talked to. HTTP client settings are inline, as upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlertmanager {
    pub scheme: Option<S<String>>,
    pub path_prefix: Option<String>,
    pub timeout: Option<S<String>>,
    pub api_version: Option<S<String>>,
    pub static_configs: Option<Vec<S<RawStaticConfig>>>,
    pub file_sd_configs: Option<Vec<S<RawFileSdConfig>>>,
    pub http_sd_configs: Option<Vec<S<crate::discovery::config::RawHttpSdConfig>>>,
    pub dns_sd_configs: Option<Vec<S<crate::discovery::config::RawDnsSdConfig>>>,
    pub consul_sd_configs: Option<Vec<S<crate::discovery::config::RawConsulSdConfig>>>,
    pub docker_sd_configs: Option<Vec<S<crate::discovery::config::RawDockerSdConfig>>>,
    pub kubernetes_sd_configs: Option<Vec<S<crate::discovery::config::RawKubernetesSdConfig>>>,
    pub relabel_configs: Option<Vec<S<Option<RawRelabelConfig>>>>,
    pub alert_relabel_configs: Option<Vec<S<Option<RawRelabelConfig>>>>,
    pub basic_auth: Option<S<RawBasicAuth>>,
    pub authorization: Option<S<RawAuthorization>>,
    pub bearer_token: Option<S<String>>,
    pub bearer_token_file: Option<S<String>>,
    pub tls_config: Option<S<RawTlsConfig>>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    // Recognised so they get a clear "not supported" error at their line.
    pub proxy_url: Option<S<IgnoredAny>>,
    pub no_proxy: Option<S<IgnoredAny>>,
    pub proxy_from_environment: Option<S<IgnoredAny>>,
    pub proxy_connect_header: Option<S<IgnoredAny>>,
    pub oauth2: Option<S<IgnoredAny>>,
    pub sigv4: Option<S<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub path: Option<String>,
    pub retention: Option<S<String>>,
    /// `--storage.tsdb.retention.size`: blocks + WAL + head chunks.
    pub retention_size: Option<S<String>>,
    /// `--storage.tsdb.min-block-duration` (hidden there too; tests use
    /// short blocks).
    pub min_block_duration: Option<S<String>>,
    /// Prometheus' own `storage.tsdb` / `storage.exemplars`: accepted so an
    /// existing file loads, ignored with a warning.
    pub tsdb: Option<S<IgnoredAny>>,
    pub exemplars: Option<S<IgnoredAny>>,
    /// The store backend (`store::config`).
    pub backend: Option<S<String>>,
    pub dsn: Option<S<String>>,
    pub dsn_file: Option<S<String>>,
    pub ha: Option<S<crate::store::config::RawHa>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScrapeConfig {
    pub job_name: Option<S<String>>,
    pub scrape_interval: Option<S<String>>,
    pub scrape_timeout: Option<S<String>>,
    pub metrics_path: Option<String>,
    pub scheme: Option<S<String>>,
    pub params: Option<std::collections::BTreeMap<String, Vec<String>>>,
    pub honor_labels: Option<bool>,
    pub honor_timestamps: Option<bool>,
    pub static_configs: Option<Vec<S<RawStaticConfig>>>,
    pub file_sd_configs: Option<Vec<S<RawFileSdConfig>>>,
    pub http_sd_configs: Option<Vec<S<crate::discovery::config::RawHttpSdConfig>>>,
    pub dns_sd_configs: Option<Vec<S<crate::discovery::config::RawDnsSdConfig>>>,
    pub consul_sd_configs: Option<Vec<S<crate::discovery::config::RawConsulSdConfig>>>,
    pub docker_sd_configs: Option<Vec<S<crate::discovery::config::RawDockerSdConfig>>>,
    pub kubernetes_sd_configs: Option<Vec<S<crate::discovery::config::RawKubernetesSdConfig>>>,
    pub relabel_configs: Option<Vec<S<RawRelabelConfig>>>,
    pub metric_relabel_configs: Option<Vec<S<RawRelabelConfig>>>,
    pub sample_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub body_size_limit: Option<S<String>>,
    pub scrape_protocols: Option<S<Vec<S<String>>>>,
    pub enable_compression: Option<bool>,
    // HTTP client settings: inline in the scrape config, as upstream.
    pub basic_auth: Option<S<RawBasicAuth>>,
    pub authorization: Option<S<RawAuthorization>>,
    pub bearer_token: Option<S<String>>,
    pub bearer_token_file: Option<S<String>>,
    pub tls_config: Option<S<RawTlsConfig>>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    // Recognised so they get a clear "not supported" error at their line.
    pub proxy_url: Option<S<IgnoredAny>>,
    pub no_proxy: Option<S<IgnoredAny>>,
    pub proxy_from_environment: Option<S<IgnoredAny>>,
    pub proxy_connect_header: Option<S<IgnoredAny>>,
    pub oauth2: Option<S<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaticConfig {
    pub targets: Option<Vec<S<String>>>,
    pub labels: Option<SpannedMap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSdConfig {
    pub files: Option<Vec<S<String>>>,
    pub refresh_interval: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub username: Option<String>,
    pub username_file: Option<S<String>>,
    pub password: Option<S<String>>,
    pub password_file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    pub kind: Option<S<String>>,
    pub credentials: Option<String>,
    pub credentials_file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsConfig {
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub cert: Option<String>,
    pub cert_file: Option<String>,
    pub key: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub min_version: Option<S<String>>,
    pub max_version: Option<S<String>>,
}

/// An `http_config:` block (Alertmanager's receivers and `global`): the
/// HTTP client settings a scrape config has inline, plus `proxy_url`, which
/// the notifier supports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpClientConfig {
    pub basic_auth: Option<S<RawBasicAuth>>,
    pub authorization: Option<S<RawAuthorization>>,
    pub bearer_token: Option<S<String>>,
    pub bearer_token_file: Option<S<String>>,
    pub tls_config: Option<S<RawTlsConfig>>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub proxy_url: Option<S<String>>,
    pub oauth2: Option<S<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelabelConfig {
    pub source_labels: Option<S<Vec<S<String>>>>,
    pub separator: Option<S<String>>,
    pub regex: Option<S<String>>,
    pub modulus: Option<S<u64>>,
    pub target_label: Option<S<String>>,
    pub replacement: Option<S<String>>,
    pub action: Option<S<String>>,
}
