//! Datasource mode (like vmalert): rule expressions are sent as instant
//! queries to a remote Prometheus-compatible API (Prometheus, Mimir, Thanos,
//! VictoriaMetrics) instead of the local engine. Outputs are still appended
//! to the local head, from where remote write ships them.
//!
//! Group evaluation runs synchronously on tokio's blocking pool; the HTTP
//! request itself is async (reqwest), so [`Datasource::instant`] spawns it
//! on the runtime and waits on a plain channel. That never nests a runtime
//! (`block_on` inside a worker would panic) and keeps the async workers
//! free while a slow query is outstanding.

pub mod config;
pub mod response;
pub mod restore;

use std::time::Duration;

use crate::config::format_duration;
use crate::model::{Labels, Timestamp};
use crate::promql::Expr;
use crate::rules::group::RuleError;
use crate::rules::querier::Querier;
use config::{DatasourceConfig, QueryMethod};
use response::{decode, Decoded, QueryData};

/// Why a datasource query failed; the text ends up in the rules API's
/// `lastError`, so it says what happened without echoing credentials.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DatasourceError {
    #[error("datasource unreachable: {0}")]
    Connect(String),
    #[error("datasource query timed out after {0}")]
    Timeout(String),
    #[error("datasource request failed: {0}")]
    Request(String),
    /// A non-2xx answer without a Prometheus error body.
    #[error("datasource returned HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// `{status:"error", errorType, error}`, with the HTTP status.
    #[error("datasource query failed with HTTP {status} ({error_type}): {error}")]
    Api {
        status: u16,
        error_type: String,
        error: String,
    },
    #[error("decoding datasource response: {0}")]
    Decode(String),
    /// The client could not be set up (TLS files, credentials files).
    #[error("datasource: {0}")]
    Config(String),
}

/// Most bytes of an unexpected error body kept in the error text.
const BODY_SNIPPET: usize = 256;

/// A client for one configured datasource.
pub struct Datasource {
    cfg: DatasourceConfig,
    /// `{url}/api/v1/query`, keeping a query string of `url`.
    endpoint: reqwest::Url,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

/// Prometheus' API time parameter: Unix seconds with millisecond decimals.
pub fn format_time(t: Timestamp) -> String {
    let sign = if t < 0 { "-" } else { "" };
    let a = t.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

impl Datasource {
    /// A client for `cfg`, whose requests run on `runtime`.
    pub fn new(
        cfg: &DatasourceConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Datasource, DatasourceError> {
        let client = crate::scrape::tls::client_builder(&cfg.http)
            .map_err(DatasourceError::Config)?
            .build()
            .map_err(|e| DatasourceError::Config(format!("building HTTP client: {e}")))?;
        let mut endpoint = reqwest::Url::parse(&cfg.url)
            .map_err(|_| DatasourceError::Config("url: invalid URL".into()))?;
        let path = format!("{}/api/v1/query", endpoint.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        Ok(Datasource {
            endpoint,
            cfg: cfg.clone(),
            client,
            runtime,
        })
    }

    pub fn config(&self) -> &DatasourceConfig {
        &self.cfg
    }

    fn request(
        &self,
        expr: &str,
        t: Timestamp,
    ) -> Result<reqwest::RequestBuilder, DatasourceError> {
        let time = format_time(t);
        let mut req = match self.cfg.method {
            QueryMethod::Get => {
                let mut u = self.endpoint.clone();
                u.query_pairs_mut()
                    .append_pair("query", expr)
                    .append_pair("time", &time);
                self.client.get(u)
            }
            QueryMethod::Post => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", expr)
                    .append_pair("time", &time)
                    .finish();
                self.client
                    .post(self.endpoint.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form)
            }
        };
        req = req.timeout(self.cfg.timeout);
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.expose());
        }
        // Read per request so a rotated credentials file needs no reload.
        match crate::scrape::tls::authorization_header(&self.cfg.http) {
            Ok(Some(h)) => req = req.header(reqwest::header::AUTHORIZATION, h),
            Ok(None) => {}
            Err(e) => return Err(DatasourceError::Config(e)),
        }
        Ok(req)
    }

    /// Runs one instant query and decodes the answer (async).
    pub async fn query_async(
        &self,
        expr: &str,
        t: Timestamp,
    ) -> Result<QueryData, DatasourceError> {
        let req = self.request(expr, t)?;
        send(req, self.cfg.timeout, expr.to_string()).await
    }

    /// Runs one instant query from synchronous code (the blocking pool),
    /// waiting for the answer at most the configured timeout (plus a margin
    /// for the runtime to schedule the request).
    pub fn query(&self, expr: &str, t: Timestamp) -> Result<QueryData, DatasourceError> {
        let req = self.request(expr, t)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.cfg.timeout;
        let owned = expr.to_string();
        self.runtime.spawn(async move {
            let _ = tx.send(send(req, timeout, owned).await);
        });
        match rx.recv_timeout(timeout + Duration::from_secs(5)) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(DatasourceError::Timeout(format_duration(timeout)))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(DatasourceError::Request(
                "the runtime is shutting down".into(),
            )),
        }
    }
}

async fn send(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    expr: String,
) -> Result<QueryData, DatasourceError> {
    let resp = req.send().await.map_err(|e| classify(e, timeout))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| classify(e, timeout))?;
    match decode(&body) {
        Ok(Decoded::Success { data, warnings }) if status.is_success() => {
            if !warnings.is_empty() {
                tracing::warn!(query = %expr, ?warnings, "datasource returned warnings");
            }
            Ok(data)
        }
        Ok(Decoded::Error { error_type, error }) => Err(DatasourceError::Api {
            status: status.as_u16(),
            error_type,
            error,
        }),
        Err(e) if status.is_success() => Err(DatasourceError::Decode(e)),
        // A proxy's HTML page, or a success body with an error status.
        _ => {
            let text = String::from_utf8_lossy(&body);
            let mut snippet: String = text.trim().chars().take(BODY_SNIPPET).collect();
            if text.trim().chars().count() > BODY_SNIPPET {
                snippet.push('…');
            }
            Err(DatasourceError::Status {
                status: status.as_u16(),
                body: snippet,
            })
        }
    }
}

fn classify(e: reqwest::Error, timeout: Duration) -> DatasourceError {
    // The URL may carry credentials; it is in the config, not the error.
    let e = e.without_url();
    if e.is_timeout() {
        DatasourceError::Timeout(format_duration(timeout))
    } else if e.is_connect() {
        DatasourceError::Connect(crate::net::error_chain(&e))
    } else {
        DatasourceError::Request(e.to_string())
    }
}

impl Querier for Datasource {
    fn instant(
        &self,
        expr: &str,
        _parsed: Option<&Expr>,
        t: Timestamp,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        match self.query(expr, t)? {
            QueryData::Vector(v) => Ok(v),
            QueryData::Matrix(_) | QueryData::String => Err(RuleError::NotVector),
        }
    }

    fn default_query_offset(&self) -> Duration {
        self.cfg.query_offset
    }
}

/// Datasource mode at start: the client for `cfg.datasource` (`None`
/// when rules run locally), after restoring the groups' `for` state from
/// the datasource's `ALERTS_FOR_STATE` (call it after the local store's
/// restore, which it defers to; see [`restore`]).
pub async fn start(
    cfg: &config::RuleEvaluationConfig,
    rules: &crate::rules::manager::RuleManager,
) -> Result<Option<std::sync::Arc<dyn Querier>>, DatasourceError> {
    let Some(dc) = &cfg.datasource else {
        return Ok(None);
    };
    let ds = std::sync::Arc::new(Datasource::new(dc, tokio::runtime::Handle::current())?);
    let opts = restore::RestoreOptions {
        grace_period: cfg.for_grace_period,
        outage_tolerance: cfg.for_outage_tolerance,
    };
    let groups = rules.groups();
    let d = ds.clone();
    let now = crate::model::now_millis();
    // Blocking queries: off the async workers.
    let r = tokio::task::spawn_blocking(move || {
        restore::restore_all(&groups, &|q: &str, t| d.query(q, t), now, opts)
    })
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "restoring 'for' state from the datasource");
    }
    tracing::info!(url = %redacted_url(&dc.url), "rules evaluate against a remote datasource");
    Ok(Some(ds))
}

/// The URL without user info or query (either may hold credentials).
fn redacted_url(u: &str) -> String {
    match reqwest::Url::parse(u) {
        Ok(mut p) => {
            let _ = p.set_username("");
            let _ = p.set_password(None);
            p.set_query(None);
            p.to_string()
        }
        Err(_) => "<invalid>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_parameter_has_millisecond_decimals() {
        assert_eq!(format_time(1_700_000_000_123), "1700000000.123");
        assert_eq!(format_time(5), "0.005");
        assert_eq!(format_time(-1_500), "-1.500");
    }
}
