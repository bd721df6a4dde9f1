//! The `rule_evaluation:` section: where rule expressions are evaluated
//! (the local head, or a remote Prometheus-compatible API) and how alert
//! `for` state is restored at start.
//!
//! ```yaml
//! rule_evaluation:
//!   for_grace_period: 10m      # Prometheus' --rules.alert.for-grace-period
//!   for_outage_tolerance: 1h   # Prometheus' --rules.alert.for-outage-tolerance
//!   datasource:
//!     url: http://prometheus:9090
//!     method: POST             # or GET
//!     timeout: 30s
//!     query_offset: 0s
//!     headers: {X-Scope-OrgID: team-a}
//!     basic_auth: {username: u, password: p}   # or authorization / bearer_token
//!     tls_config: {ca_file: ca.pem}
//! ```

use crate::config::errors::{Pos, Sink};
use crate::config::http::resolve_http_fields;
use crate::config::raw::SpannedMap;
use crate::config::{parse_duration, HttpClientConfig, Secret};
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::path::Path;
use std::time::Duration;

/// Prometheus' `--rules.alert.for-grace-period` default.
pub const DEFAULT_FOR_GRACE_PERIOD: Duration = Duration::from_secs(600);
/// Prometheus' `--rules.alert.for-outage-tolerance` default.
pub const DEFAULT_FOR_OUTAGE_TOLERANCE: Duration = Duration::from_secs(3600);
/// Default datasource query timeout. vmalert's `-datasource.queryTimeout`
/// is 30s too; a query that takes longer than its group's interval makes
/// the group miss iterations, so most setups want it below the interval.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuleEvaluation {
    pub datasource: Option<S<RawDatasource>>,
    pub for_grace_period: Option<S<String>>,
    pub for_outage_tolerance: Option<S<String>>,
}

crate::config::raw::raw_http_client_struct! {
    pub(crate) struct RawDatasource {
        url: Option<S<String>>,
        method: Option<S<String>>,
        headers: Option<SpannedMap>,
        timeout: Option<S<String>>,
        query_offset: Option<S<String>>,
    }
}

/// How a query is sent. POST (form-encoded, as Grafana and vmalert do) is
/// the default: long expressions do not hit URL length limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueryMethod {
    Get,
    #[default]
    Post,
}

/// A remote Prometheus-compatible query API.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasourceConfig {
    /// Base URL; `/api/v1/query` is appended (so a Mimir or Thanos prefix
    /// such as `http://mimir/prometheus` works).
    pub url: String,
    pub method: QueryMethod,
    /// Extra request headers (e.g. a tenant id). Values may be API keys,
    /// hence kept as secrets.
    pub headers: Vec<(String, Secret)>,
    pub http: HttpClientConfig,
    pub timeout: Duration,
    /// Default query offset of groups that set none: queries run at
    /// `evaluation time - query_offset` (Prometheus 3's
    /// `rule_query_offset`, vmalert's `-rule.evalDelay`).
    pub query_offset: Duration,
}

/// The resolved `rule_evaluation:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleEvaluationConfig {
    /// `None`: rules run on the local PromQL engine over the head.
    pub datasource: Option<DatasourceConfig>,
    pub for_grace_period: Duration,
    pub for_outage_tolerance: Duration,
}

impl Default for RuleEvaluationConfig {
    fn default() -> Self {
        RuleEvaluationConfig {
            datasource: None,
            for_grace_period: DEFAULT_FOR_GRACE_PERIOD,
            for_outage_tolerance: DEFAULT_FOR_OUTAGE_TOLERANCE,
        }
    }
}

/// A duration where an explicit `0s` means zero (unlike scrape settings,
/// where Prometheus reads 0 as "unset").
fn duration(v: &Option<S<String>>, sink: &mut Sink) -> Option<Duration> {
    let v = v.as_ref()?;
    match parse_duration(&v.value) {
        Ok(d) => Some(d),
        Err(e) => {
            sink.push(Pos::of(v), e);
            None
        }
    }
}

/// Headers klaxon sets itself; configuring them would be ambiguous.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "host",
    "user-agent",
];

pub(crate) fn resolve(
    raw: Option<RawRuleEvaluation>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> RuleEvaluationConfig {
    let d = RuleEvaluationConfig::default();
    let Some(raw) = raw else { return d };
    RuleEvaluationConfig {
        for_grace_period: duration(&raw.for_grace_period, sink).unwrap_or(d.for_grace_period),
        for_outage_tolerance: duration(&raw.for_outage_tolerance, sink)
            .unwrap_or(d.for_outage_tolerance),
        datasource: raw
            .datasource
            .as_ref()
            .and_then(|ds| resolve_datasource(ds, dir, sink)),
    }
}

fn resolve_datasource(
    raw: &S<RawDatasource>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Option<DatasourceConfig> {
    let at = Pos::of(raw);
    let r = &raw.value;
    let errors_before = sink.len();
    let url = match &r.url {
        None => {
            sink.push(at, "rule_evaluation.datasource.url is required");
            String::new()
        }
        Some(u) => {
            match reqwest::Url::parse(&u.value) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.has_host() => {}
                // The URL may hold credentials: name the field, not the value.
                _ => sink.push(
                    Pos::of(u),
                    "rule_evaluation.datasource.url: unsupported scheme or invalid URL",
                ),
            }
            u.value.clone()
        }
    };
    let method = match &r.method {
        None => QueryMethod::default(),
        Some(m) => match m.value.to_ascii_uppercase().as_str() {
            "GET" => QueryMethod::Get,
            "POST" => QueryMethod::Post,
            _ => {
                sink.push(
                    Pos::of(m),
                    format!(
                        "rule_evaluation.datasource.method: {:?} is neither GET nor POST",
                        m.value
                    ),
                );
                QueryMethod::default()
            }
        },
    };
    let mut headers = Vec::new();
    for (k, v) in r.headers.iter().flat_map(|m| &m.0) {
        let name_ok = reqwest::header::HeaderName::from_bytes(k.value.as_bytes()).is_ok();
        if !name_ok {
            sink.push(Pos::of(k), format!("invalid header name {:?}", k.value));
            continue;
        }
        if RESERVED_HEADERS.contains(&k.value.to_ascii_lowercase().as_str()) {
            sink.push(
                Pos::of(k),
                format!(
                    "header {:?} is set by klaxon and cannot be configured",
                    k.value
                ),
            );
            continue;
        }
        if reqwest::header::HeaderValue::from_str(&v.value).is_err() {
            sink.push(
                Pos::of(v),
                format!("invalid value for header {:?}", k.value),
            );
            continue;
        }
        headers.push((k.value.clone(), Secret::new(v.value.clone())));
    }
    let http = resolve_http_fields(crate::config::http::http_fields!(r), dir, sink);
    if http.tls_config.server_name.is_some() {
        if let Some(t) = &r.tls_config {
            sink.push(
                Pos::of(t),
                "tls_config.server_name is not supported yet (see docs/compatibility.md)",
            );
        }
    }
    let timeout = match duration(&r.timeout, sink) {
        Some(t) if t.is_zero() => {
            if let Some(v) = &r.timeout {
                sink.push(Pos::of(v), "rule_evaluation.datasource.timeout must be > 0");
            }
            DEFAULT_TIMEOUT
        }
        Some(t) => t,
        None => DEFAULT_TIMEOUT,
    };
    let query_offset = duration(&r.query_offset, sink).unwrap_or(Duration::ZERO);
    (sink.len() == errors_before).then_some(DatasourceConfig {
        url,
        method,
        headers,
        http,
        timeout,
        query_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]

    struct Loaded {
        rule_evaluation: RuleEvaluationConfig,
    }

    /// `rule_evaluation:` resolved alone, as the file loader does.
    fn load_str(y: &str, origin: &str) -> Result<Loaded, crate::config::ConfigErrors> {
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            rule_evaluation: Option<RawRuleEvaluation>,
        }
        let f: File = crate::config::parse_yaml(y, origin)?;
        let mut sink = Sink::new(origin);
        let rule_evaluation = resolve(f.rule_evaluation, None, &mut sink);
        sink.into_result(Loaded { rule_evaluation })
    }

    #[test]
    fn defaults_and_a_full_datasource() {
        let c = load_str("", "<t>").unwrap();
        assert_eq!(c.rule_evaluation, RuleEvaluationConfig::default());
        let c = load_str(
            "rule_evaluation:\n  for_grace_period: 0s\n  datasource:\n    url: http://p:9090/prom\n    method: get\n    timeout: 5s\n    query_offset: 1m\n    headers: {X-Scope-OrgID: t1}\n    basic_auth: {username: u, password: pw}\n",
            "<t>",
        )
        .unwrap();
        let re = &c.rule_evaluation;
        assert_eq!(re.for_grace_period, Duration::ZERO);
        assert_eq!(re.for_outage_tolerance, DEFAULT_FOR_OUTAGE_TOLERANCE);
        let ds = re.datasource.as_ref().unwrap();
        assert_eq!(ds.url, "http://p:9090/prom");
        assert_eq!(ds.method, QueryMethod::Get);
        assert_eq!(ds.timeout, Duration::from_secs(5));
        assert_eq!(ds.query_offset, Duration::from_secs(60));
        assert_eq!(ds.headers[0].0, "X-Scope-OrgID");
        assert_eq!(ds.headers[0].1.expose(), "t1");
        let ba = ds.http.basic_auth.as_ref().unwrap();
        assert_eq!(
            (ba.username.as_str(), ba.password.as_ref().unwrap().expose()),
            ("u", "pw")
        );
        // Secrets stay out of Debug output.
        assert!(!format!("{ds:?}").contains("pw") && !format!("{ds:?}").contains("t1"));
    }

    #[test]
    fn errors_name_their_line() {
        let e = load_str(
            "rule_evaluation:\n  datasource:\n    url: ftp://x\n    method: PUT\n    timeout: 0s\n    headers: {Authorization: x}\n",
            "<t>",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("<t>:3:") && e.contains("unsupported scheme"),
            "{e}"
        );
        assert!(
            e.contains("<t>:4:") && e.contains("neither GET nor POST"),
            "{e}"
        );
        assert!(
            e.contains("<t>:5:") && e.contains("timeout must be > 0"),
            "{e}"
        );
        assert!(e.contains("<t>:6:") && e.contains("set by klaxon"), "{e}");
        let e = load_str("rule_evaluation:\n  datasource: {timeout: 5s}\n", "<t>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("url is required"), "{e}");
        let e = load_str(
            "rule_evaluation:\n  datasource:\n    url: http://x\n    basic_auth: {username: u}\n    bearer_token: t\n",
            "<t>",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("at most one of basic_auth"), "{e}");
        let e = load_str(
            "rule_evaluation:\n  datasource:\n    uri: http://x\n",
            "<t>",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `uri`"), "{e}");
    }
}
