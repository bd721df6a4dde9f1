//! `alerting:`: alert relabeling and the Alertmanagers the notifier sends
//! to, with Prometheus 3.x's fields, defaults and validation messages.

use crate::config::common::{opt_duration, FileSdConfig};
use crate::config::errors::{Pos, Sink};
use crate::config::file_sd::TargetGroup;
use crate::config::http::{reject_unsupported, resolve_http_fields, HttpClientConfig};
use crate::config::raw::{RawFileSdConfig, RawRelabelConfig, RawStaticConfig, S};
use crate::config::relabel::{resolve_relabel_configs, RelabelConfig};
use crate::discovery::SdConfig;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerting {
    /// `Option` per entry: a null entry gets Prometheus' own message.
    pub alert_relabel_configs: Option<Vec<S<Option<RawRelabelConfig>>>>,
    pub alertmanagers: Option<Vec<S<RawAlertmanager>>>,
}

crate::config::raw::raw_http_client_struct! {
    unsupported;
    /// One `alerting.alertmanagers` entry: how a set of Alertmanagers is found
    /// and talked to. HTTP client settings are inline, as upstream.
    pub(crate) struct RawAlertmanager {
        scheme: Option<S<String>>,
        path_prefix: Option<String>,
        timeout: Option<S<String>>,
        api_version: Option<S<String>>,
        static_configs: Option<Vec<S<RawStaticConfig>>>,
        file_sd_configs: Option<Vec<S<RawFileSdConfig>>>,
        http_sd_configs: Option<Vec<S<crate::discovery::config::RawHttpSdConfig>>>,
        dns_sd_configs: Option<Vec<S<crate::discovery::config::RawDnsSdConfig>>>,
        consul_sd_configs: Option<Vec<S<crate::discovery::config::RawConsulSdConfig>>>,
        docker_sd_configs: Option<Vec<S<crate::discovery::config::RawDockerSdConfig>>>,
        kubernetes_sd_configs: Option<Vec<S<crate::discovery::config::RawKubernetesSdConfig>>>,
        relabel_configs: Option<Vec<S<Option<RawRelabelConfig>>>>,
        alert_relabel_configs: Option<Vec<S<Option<RawRelabelConfig>>>>,
        sigv4: Option<S<IgnoredAny>>,
    }
}

/// What the notifier reads from the configuration: `alerting:` and the
/// external labels of `global:` (the whole file converts into it, in
/// `crate::settings`).
#[derive(Clone, Copy, Debug)]
pub struct NotifierSection<'a> {
    pub alerting: &'a AlertingConfig,
    pub global: &'a crate::config::GlobalConfig,
}

/// The only Alertmanager API version Prometheus 3 (and klaxon) speaks.
pub const API_VERSION_V2: &str = "v2";

/// `alerting:`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertingConfig {
    /// Applied to every alert, after the external labels are added.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One `alerting.alertmanagers` entry: a set of Alertmanagers sharing how
/// they are found and how alerts are sent to them.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertmanagerConfig {
    pub http_client: HttpClientConfig,
    /// `__scheme__` before relabeling (default `http`).
    pub scheme: String,
    /// Put before `/api/v2/alerts` in `__alerts_path__`.
    pub path_prefix: String,
    /// Per request (default 10s).
    pub timeout: Duration,
    pub api_version: String,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    /// The other service discovery entries (http, dns, consul, docker,
    /// kubernetes), in the order of their fields, as for a scrape job.
    pub service_discovery: Vec<SdConfig>,
    /// Applied to each discovered Alertmanager.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Applied to alerts sent to this set only, after the global ones.
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

impl AlertmanagerConfig {
    /// Every SD entry of the set, for the discovery manager.
    pub fn sd_configs(&self) -> Vec<SdConfig> {
        crate::discovery::config::join_sd(
            &self.static_configs,
            &self.file_sd_configs,
            &self.service_discovery,
        )
    }

    /// `__alerts_path__` before relabeling: `path.Join("/", prefix,
    /// "/api/v2/alerts")` upstream.
    pub fn alerts_path(&self) -> String {
        let mut out = String::from("/");
        for part in self
            .path_prefix
            .split('/')
            .chain(["api", &self.api_version, "alerts"])
        {
            if part.is_empty() || part == "." {
                continue;
            }
            if part == ".." {
                // Clean like Go's path.Join: `..` removes the previous
                // element and never climbs above the root.
                let cut = out.trim_end_matches('/').rfind('/').unwrap_or(0);
                out.truncate(cut + 1);
                continue;
            }
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(part);
        }
        out
    }
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            http_client: HttpClientConfig::default(),
            scheme: "http".to_string(),
            path_prefix: String::new(),
            timeout: Duration::from_secs(10),
            api_version: API_VERSION_V2.to_string(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            service_discovery: Vec::new(),
            relabel_configs: Vec::new(),
            alert_relabel_configs: Vec::new(),
        }
    }
}

pub(crate) fn resolve(raw: RawAlerting, dir: Option<&Path>, sink: &mut Sink) -> AlertingConfig {
    let alert_relabel_configs = non_null_relabel(
        raw.alert_relabel_configs,
        "empty or null alert relabeling rule",
        sink,
    );
    AlertingConfig {
        alert_relabel_configs,
        alertmanagers: raw
            .alertmanagers
            .unwrap_or_default()
            .into_iter()
            .map(|am| resolve_alertmanager(am, dir, sink))
            .collect(),
    }
}

/// Relabel rules with a null entry reported (Prometheus' message for the
/// list), the others validated.
fn non_null_relabel(
    raw: Option<Vec<S<Option<RawRelabelConfig>>>>,
    null_message: &str,
    sink: &mut Sink,
) -> Vec<RelabelConfig> {
    let mut present = Vec::new();
    for r in raw.unwrap_or_default() {
        match r.value {
            Some(value) => present.push(S {
                value,
                referenced: r.referenced,
                defined: r.defined,
            }),
            None => sink.push(Pos::of(&r), null_message),
        }
    }
    resolve_relabel_configs(&present, sink)
}

fn resolve_alertmanager(
    raw: S<RawAlertmanager>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> AlertmanagerConfig {
    let r = raw.value;
    let d = AlertmanagerConfig::default();
    reject_unsupported(&crate::config::http::unsupported_http_fields!(r), sink);
    reject_unsupported(&[("sigv4", &r.sigv4)], sink);
    let http_client = resolve_http_fields(crate::config::http::http_fields!(r), dir, sink);
    let api_version = match &r.api_version {
        None => d.api_version.clone(),
        Some(v) if v.value == API_VERSION_V2 => v.value.clone(),
        Some(v) => {
            sink.push(
                Pos::of(v),
                format!(
                    "expected Alertmanager api version to be one of [{API_VERSION_V2}] but got {}",
                    v.value
                ),
            );
            d.api_version.clone()
        }
    };
    let relabel_configs = non_null_relabel(
        r.relabel_configs,
        "empty or null Alertmanager target relabeling rule",
        sink,
    );
    let alert_relabel_configs = non_null_relabel(
        r.alert_relabel_configs,
        "empty or null Alertmanager alert relabeling rule",
        sink,
    );
    // The same SD entries, checks and messages as a scrape job's; static
    // targets must be host:port unless relabeling may repair them.
    let (static_configs, file_sd_configs, service_discovery) =
        crate::discovery::config::split_sd(crate::discovery::config::resolve_sd_fields(
            crate::discovery::config::sd_fields!(r),
            dir,
            relabel_configs.is_empty(),
            sink,
        ));
    AlertmanagerConfig {
        http_client,
        scheme: r
            .scheme
            .map(|s| s.value)
            .filter(|s| !s.is_empty())
            .unwrap_or(d.scheme),
        path_prefix: r.path_prefix.unwrap_or_default(),
        timeout: opt_duration(&r.timeout, sink).unwrap_or(d.timeout),
        api_version,
        static_configs,
        file_sd_configs,
        service_discovery,
        relabel_configs,
        alert_relabel_configs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(prefix: &str) -> String {
        AlertmanagerConfig {
            path_prefix: prefix.into(),
            ..Default::default()
        }
        .alerts_path()
    }

    #[test]
    fn alerts_path_is_joined_and_cleaned_like_go() {
        assert_eq!(path(""), "/api/v2/alerts");
        assert_eq!(path("/"), "/api/v2/alerts");
        assert_eq!(path("am"), "/am/api/v2/alerts");
        assert_eq!(path("/am/"), "/am/api/v2/alerts");
        assert_eq!(path("a//b/./c"), "/a/b/c/api/v2/alerts");
        assert_eq!(path("a/../b"), "/b/api/v2/alerts");
        assert_eq!(path("../.."), "/api/v2/alerts");
    }
}
