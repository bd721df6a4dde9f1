//! The `notify:` section / `--notify-config` file, in `alertmanager.yml`'s
//! shape. (Seam stub: parsing of route, inhibit_rules, time_intervals and
//! templates is filled in by the routing work; receivers' fields by the
//! delivery work in `receivers`.)

use std::time::Duration;

/// `global:` resolved, with Alertmanager's defaults. Receivers read their
/// defaults (smtp_*, slack_api_url, pagerduty_url) from here.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub resolve_timeout: Duration,
    pub smtp_from: Option<String>,
    pub smtp_hello: String,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<crate::config::Secret>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_require_tls: bool,
    pub slack_api_url: Option<crate::config::Secret>,
    pub pagerduty_url: String,
    pub http_config: crate::config::HttpClientConfig,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: Duration::from_secs(300),
            smtp_from: None,
            smtp_hello: "localhost".into(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            slack_api_url: None,
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            http_config: Default::default(),
        }
    }
}
