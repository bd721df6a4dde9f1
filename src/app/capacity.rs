//! The start-up check that the head fits in memory: the newest samples
//! (the retention, at most about two block ranges before compaction moves
//! them to blocks) live in the in-memory head. Warned once, after the first
//! scrapes show how many series there are.

use std::time::Duration;

/// Compressed bytes per sample in the head, measured on this build
/// (docs/benchmarks.md: ≈ 6 B/sample for noisy values).
pub const BYTES_PER_SAMPLE: f64 = 6.0;
/// Head bytes per series besides its samples (labels, index, chunk
/// headers; docs/benchmarks.md: ≈ 570 B/series with 195 B of samples).
pub const BYTES_PER_SERIES: f64 = 375.0;

/// Bytes the head needs to hold `series` scraped every `interval` for
/// `retention`.
pub fn estimate(series: usize, retention: Duration, interval: Duration) -> f64 {
    let per_series_samples = retention.as_secs_f64() / interval.as_secs_f64().max(0.001);
    series as f64 * (per_series_samples * BYTES_PER_SAMPLE + BYTES_PER_SERIES)
}

/// The warning text when the estimate exceeds `memory` bytes.
pub fn warning(
    series: usize,
    retention: Duration,
    interval: Duration,
    memory: f64,
) -> Option<String> {
    let need = estimate(series, retention, interval);
    (need > memory).then(|| {
        format!(
            "the head's {} (storage.retention, at most two storage.min_block_duration) needs \
             about {} of memory for {series} series scraped every {} \
             ({BYTES_PER_SAMPLE} B/sample, {BYTES_PER_SERIES} B/series), more than the {} this \
             machine has: klaxon keeps them in memory; lower the retention or the block \
             duration, or send the data on with remote_write",
            crate::config::format_duration(retention),
            human_bytes(need),
            crate::config::format_duration(interval),
            human_bytes(memory)
        )
    })
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// Waits for two rounds of the shortest scrape interval, then warns once
/// if the retention cannot fit.
pub fn spawn_check(
    head: std::sync::Arc<crate::tsdb::Head>,
    retention: Duration,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(interval * 2 + Duration::from_secs(1)).await;
        let series = head.stats().num_series;
        if let Some(mem) = crate::exporters::host::total_memory() {
            if let Some(w) = warning(series, retention, interval, mem) {
                tracing::warn!("{w}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_only_when_retention_does_not_fit() {
        let gib = 1024.0 * 1024.0 * 1024.0;
        let day = Duration::from_secs(86_400);
        let s15 = Duration::from_secs(15);
        // 100k series, 15s, 3 days: 17,280 samples each ≈ 9.7 GiB.
        let w = warning(100_000, day * 3, s15, 4.0 * gib).expect("warn");
        assert!(
            w.contains("the head's 3d (storage.retention, at most two storage.min_block_duration) needs about 9.7 GiB"),
            "{w}"
        );
        assert!(w.contains("100000 series scraped every 15s"), "{w}");
        assert!(w.contains("4.0 GiB"), "{w}");
        assert!(warning(100_000, day * 3, s15, 16.0 * gib).is_none());
        // The default 6h with a self-scrape is nothing.
        assert!(warning(2_000, Duration::from_secs(6 * 3600), s15, gib).is_none());
    }
}
