//! In-process scrape sources: a target whose body comes from code inside
//! klaxon (the built-in exporters) instead of an HTTP request. Everything
//! after the fetch is the same as for HTTP targets (parsing, relabeling,
//! limits, staleness, `up` and the other report series), so an in-process
//! job behaves exactly like scraping the exporter's `/metrics/...` path,
//! minus the socket round trip.

use std::future::Future;
use std::pin::Pin;

pub type LocalFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A body producer for one scrape job.
pub trait LocalSource: Send + Sync {
    /// Appends one exposition in the Prometheus text format (0.0.4) to
    /// `buf`; an `Err` is a failed scrape (`up 0`) with that message. The
    /// scrape loop drops the future at the target's scrape timeout.
    fn scrape<'a>(&'a self, buf: &'a mut Vec<u8>) -> LocalFuture<'a>;
}
