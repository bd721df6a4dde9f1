//! Golden signals of klaxon's own API: traffic, errors and latency per
//! route *pattern* (never the raw path, which would let any client create
//! unbounded series).

use crate::metrics::{Counter, CounterVec, Histogram, HistogramVec, Registry, DEFAULT_BUCKETS};
use std::sync::Arc;

/// The three exposed families, plus all-routes totals for the heartbeat's
/// p95 and error rate (not exposed: a Prometheus user gets the same from
/// the families with `histogram_quantile` and `sum`).
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Arc<CounterVec>,
    pub duration: Arc<HistogramVec>,
    pub errors: Arc<CounterVec>,
    all: Histogram,
    all_errors: Counter,
}

impl HttpMetrics {
    pub fn register(r: &Registry) -> Self {
        HttpMetrics {
            requests: r.counter_vec(
                "http_requests",
                "HTTP requests served by klaxon's API, by method, route pattern and status code.",
                &["method", "route", "status"],
            ),
            duration: r.histogram_vec(
                "http_request_duration_seconds",
                "Time to answer HTTP requests (until the response head), by method and route pattern.",
                &["method", "route"],
                DEFAULT_BUCKETS,
            ),
            errors: r.counter_vec(
                "http_errors",
                "HTTP requests answered with an error, by route pattern and error type.",
                &["route", "error_type"],
            ),
            all: Histogram::with_buckets(DEFAULT_BUCKETS),
            all_errors: Counter::default(),
        }
    }

    /// Records one answered request.
    pub fn observe(
        &self,
        method: &str,
        route: &str,
        status: u16,
        seconds: f64,
        error_type: Option<&str>,
    ) {
        self.requests
            .with(&[method, route, &status.to_string()])
            .inc();
        self.duration.with(&[method, route]).observe(seconds);
        self.all.observe(seconds);
        if let Some(t) = error_type {
            self.errors.with(&[route, t]).inc();
            self.all_errors.inc();
        }
    }

    /// 95th percentile latency over all requests so far, in ms.
    pub fn p95_ms(&self) -> f64 {
        self.all.quantile(0.95).map(|s| s * 1000.0).unwrap_or(0.0)
    }

    /// (requests, of which errors) so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.all.count(), self.all_errors.get() as u64)
    }
}
