//! Scraping: discovery → targets (relabeling) → HTTP fetch → exposition
//! parser → the TSDB head.

pub mod backfill;
pub mod client;
pub mod config;
pub mod histograms;
pub mod local;
pub mod manager;
pub mod parser;
pub mod pool;
pub mod scrape_loop;
pub mod target;

use crate::metrics::{Counter, CounterVec, GaugeVec, Registry};
use std::sync::Arc;

/// The counters scrape loops bump, named after Prometheus' `prometheus_target_*`.
pub struct ScrapeMetrics {
    pub scrapes: Arc<CounterVec>,
    pub failures: Arc<CounterVec>,
    pub exceeded_sample_limit: Counter,
    pub exceeded_body_size_limit: Counter,
    pub exceeded_bucket_limit: Counter,
    pub sample_out_of_order: Counter,
    pub sample_duplicate_timestamp: Counter,
    pub sample_out_of_bounds: Counter,
    pub target_limit_exceeded: Counter,
    pub pool_targets: Arc<GaugeVec>,
    /// Where `target` events (a target went up or down) go.
    pub events: Option<crate::events::Events>,
}

impl ScrapeMetrics {
    /// Registers the counters on `r`; target up/down events go to `events`.
    pub fn register(r: &Registry, events: Option<crate::events::Events>) -> Arc<Self> {
        Arc::new(ScrapeMetrics {
            scrapes: r.counter_vec(
                "klaxon_target_scrapes",
                "Scrapes attempted, by job.",
                &["job"],
            ),
            failures: r.counter_vec(
                "klaxon_target_scrape_failures",
                "Scrapes that failed (the target reported up 0), by job and reason.",
                &["job", "reason"],
            ),
            exceeded_sample_limit: r.counter(
                "klaxon_target_scrapes_exceeded_sample_limit",
                "Scrapes that hit the sample limit and were rejected.",
            ),
            exceeded_body_size_limit: r.counter(
                "klaxon_target_scrapes_exceeded_body_size_limit",
                "Scrapes whose body was larger than body_size_limit.",
            ),
            exceeded_bucket_limit: r.counter(
                "klaxon_target_scrapes_exceeded_native_histogram_bucket_limit",
                "Scrapes that had a native histogram over native_histogram_bucket_limit and were rejected.",
            ),
            sample_out_of_order: r.counter(
                "klaxon_target_scrapes_sample_out_of_order",
                "Samples rejected because they were older than the series' last sample.",
            ),
            sample_duplicate_timestamp: r.counter(
                "klaxon_target_scrapes_sample_duplicate_timestamp",
                "Samples rejected for having the same timestamp as the last one but another value.",
            ),
            sample_out_of_bounds: r.counter(
                "klaxon_target_scrapes_sample_out_of_bounds",
                "Samples rejected because they were older than the retention window.",
            ),
            target_limit_exceeded: r.counter(
                "klaxon_target_scrape_pool_exceeded_target_limit",
                "Times a scrape pool had more targets than its target_limit.",
            ),
            pool_targets: r.gauge_vec(
                "klaxon_target_scrape_pool_targets",
                "Current number of targets in a scrape pool.",
                &["scrape_job"],
            ),
            events,
        })
    }
}
