//! The HTTP side of a scrape: one client per scrape config, content
//! negotiation, auth, and a body read that stops at `body_size_limit`.

use crate::config::client::error_chain;
use crate::config::names::NameEscaping;
use crate::config::ScrapeProtocol;
use crate::scrape::config::ScrapeConfig;
use crate::scrape::parser::Format;
use std::time::Duration;

/// Builds the `Accept` header from `scrape_protocols` the way Prometheus
/// does: decreasing q-values in the configured order, then `*/*`. The text
/// formats that can carry UTF-8 names (OpenMetrics 1.0.0, Prometheus text
/// 1.0.0) get the `escaping=` parameter of `metric_name_escaping_scheme`.
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: NameEscaping) -> String {
    let mut weight = 6;
    let mut vals = Vec::new();
    for p in protocols {
        let media = match p {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        };
        let esc = match p {
            ScrapeProtocol::OpenMetricsText1_0_0 | ScrapeProtocol::PrometheusText1_0_0 => {
                format!(";escaping={}", escaping.as_str())
            }
            _ => String::new(),
        };
        vals.push(format!("{media}{esc};q=0.{weight}"));
        weight -= 1;
    }
    vals.push(format!("*/*;q=0.{weight}"));
    vals.join(",")
}

/// Why a scrape produced no payload.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Get {url:?}: context deadline exceeded (timeout {timeout:?})")]
    Timeout { url: String, timeout: Duration },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded: body is larger than {0} bytes")]
    BodySizeLimit(u64),
    #[error("Get {url:?}: {reason}")]
    Http { url: String, reason: String },
    #[error("{0}")]
    Config(String),
}

impl FetchError {
    /// Short machine-readable reason, the `reason` label of the failure counter.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Status(_) => "http_status",
            FetchError::BodySizeLimit(_) => "body_size_limit",
            FetchError::Http { .. } => "http",
            FetchError::Config(_) => "config",
        }
    }
}

/// A scrape config's HTTP client plus the per-request pieces (auth headers
/// whose secrets may live in files that change between scrapes).
pub struct Scraper {
    client: reqwest::Client,
    auth: crate::config::HttpClientConfig,
    accept: String,
}

impl Scraper {
    pub fn new(cfg: &ScrapeConfig) -> Result<Self, FetchError> {
        let h = &cfg.http_client;
        let mut b = crate::config::client::client_builder(h)
            .map_err(|e| FetchError::Config(e.to_string()))?;
        if !cfg.enable_compression {
            b = b.no_gzip();
        }
        let client = b
            .build()
            .map_err(|e| FetchError::Config(format!("building HTTP client: {e}")))?;
        Ok(Scraper {
            client,
            auth: h.clone(),
            accept: accept_header(&cfg.scrape_protocols, cfg.names.escaping),
        })
    }

    /// Fetches `url` into `buf` (cleared first) and returns the payload format.
    pub async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        body_limit: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Format, FetchError> {
        buf.clear();
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(
            deadline,
            self.fetch_inner(url, timeout, deadline, body_limit, buf),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                timeout,
            }),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        timeout: Duration,
        deadline: tokio::time::Instant,
        body_limit: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Format, FetchError> {
        let http_err = |e: reqwest::Error| FetchError::Http {
            url: url.to_string(),
            reason: error_chain(&e),
        };
        let mut req = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, self.accept.as_str())
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            );
        if let Some(v) = crate::config::client::authorization_header(&self.auth)
            .map_err(|e| FetchError::Config(e.to_string()))?
        {
            req = req.header(reqwest::header::AUTHORIZATION, v);
        }
        let mut resp = req.send().await.map_err(http_err)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status(format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )));
        }
        let format = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(Format::from_content_type)
            .unwrap_or(Format::PrometheusText);
        while let Some(chunk) = resp.chunk().await.map_err(http_err)? {
            if body_limit > 0 && (buf.len() + chunk.len()) as u64 > body_limit {
                return Err(FetchError::BodySizeLimit(body_limit));
            }
            buf.extend_from_slice(&chunk);
            // A decompressing body can hand out chunks without ever waiting
            // on the socket, so the timeout around this future would not
            // get a turn: the deadline is checked here too.
            if tokio::time::Instant::now() >= deadline {
                return Err(FetchError::Timeout {
                    url: url.to_string(),
                    timeout,
                });
            }
        }
        Ok(format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_like_prometheus() {
        let h = accept_header(
            &[
                ScrapeProtocol::OpenMetricsText1_0_0,
                ScrapeProtocol::OpenMetricsText0_0_1,
                ScrapeProtocol::PrometheusText1_0_0,
                ScrapeProtocol::PrometheusText0_0_4,
            ],
            NameEscaping::AllowUtf8,
        );
        assert_eq!(
            h,
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        let h = accept_header(
            &[ScrapeProtocol::PrometheusText1_0_0],
            NameEscaping::Underscores,
        );
        assert_eq!(
            h,
            "text/plain;version=1.0.0;escaping=underscores;q=0.6,*/*;q=0.5"
        );
        let h = accept_header(
            &[
                ScrapeProtocol::PrometheusProto,
                ScrapeProtocol::PrometheusText0_0_4,
            ],
            NameEscaping::AllowUtf8,
        );
        assert_eq!(
            h,
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4"
        );
        assert_eq!(
            Format::from_content_type(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            ),
            Format::Protobuf
        );
    }

    /// Prometheus' TestAcceptHeader table (scrape/scrape_test.go): its
    /// default and proto-first protocol lists under each escaping scheme.
    #[test]
    fn accept_header_as_prometheus_test_table() {
        use ScrapeProtocol::*;
        let default = [
            OpenMetricsText1_0_0,
            OpenMetricsText0_0_1,
            PrometheusText1_0_0,
            PrometheusText0_0_4,
        ];
        let proto_first = [
            PrometheusProto,
            OpenMetricsText1_0_0,
            OpenMetricsText0_0_1,
            PrometheusText1_0_0,
            PrometheusText0_0_4,
        ];
        let cases: [(&[ScrapeProtocol], NameEscaping, &str); 5] = [
            (&default, NameEscaping::Underscores, "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            (&proto_first, NameEscaping::Dots, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=dots;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=dots;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"),
            (&default, NameEscaping::AllowUtf8, "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            (&proto_first, NameEscaping::AllowUtf8, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"),
            // Not in upstream's table; the same rule for the fourth scheme.
            (&default, NameEscaping::Values, "application/openmetrics-text;version=1.0.0;escaping=values;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=values;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
        ];
        for (protocols, scheme, want) in cases {
            assert_eq!(accept_header(protocols, scheme), want, "{scheme:?}");
        }
    }
}
