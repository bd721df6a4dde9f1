//! The whole file as written: one field per top-level section, each
//! section's raw shape owned by its stage. All structs deny unknown fields.

use crate::config::raw::{RawGlobal, S};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub global: Option<RawGlobal>,
    pub scrape_configs: Option<Vec<S<crate::scrape::config::RawScrapeConfig>>>,
    pub rule_files: Option<Vec<S<String>>>,
    pub alerting: Option<crate::notifier::config::RawAlerting>,
    pub remote_write: Option<Vec<S<crate::remote::config::RawRemoteWrite>>>,
    pub remote_read: Option<S<serde_json::Value>>,
    pub otlp: Option<S<crate::otlp::config::RawOtlp>>,
    pub storage: Option<crate::store::config::RawStorage>,
    pub exporters: Option<crate::exporters::config::RawExporters>,
    pub auth: Option<crate::ops::config::RawAuth>,
    pub command_center: Option<crate::ops::config::RawCommandCenter>,
    pub probes: Option<Vec<S<crate::probe::config::RawProbe>>>,
    /// Alert routing, in `alertmanager.yml`'s shape (see `notify::config`).
    pub notify: Option<crate::notify::config::RawNotifyConfig>,
    /// Where rules are evaluated (local head or a remote datasource).
    pub rule_evaluation: Option<crate::rules::datasource::config::RawRuleEvaluation>,
    /// Remediation rules and the receiver circuit breaker.
    pub autoheal: Option<crate::ops::autoheal::config::RawAutoheal>,
}
