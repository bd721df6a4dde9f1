//! Helpers shared by the integration tests (each test file is its own crate
//! and pulls this in with `mod common;`, so not every file uses every item).
#![allow(dead_code)]

use std::path::PathBuf;

/// A path under `../shared/` beside the checkout, where Prometheus' test
/// data and the corpora live.
pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/")).join(rel)
}

/// The shared directory `rel`, or `None` when it is absent outside CI (the
/// caller reports the skip). Under `CI=true` a missing directory is a
/// failure, never a silent skip.
pub fn data_dir(rel: &str) -> Option<PathBuf> {
    let p = shared(rel);
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("shared test data missing: {}", p.display());
    }
    eprintln!("SKIPPED: shared test data missing: {}", p.display());
    None
}

pub mod postgres;
pub mod webdriver;
