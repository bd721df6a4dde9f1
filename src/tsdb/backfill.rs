//! What both backfill commands (`klaxon tsdb create-blocks-from
//! openmetrics` in `scrape::backfill`, `... rules` in `rules::backfill`)
//! share about blocks: the block duration promtool picks for
//! `--max-block-duration`, and the block table it prints.

use super::block::BlockMeta;
use std::path::Path;

/// Prometheus' default (and smallest) block range: 2 h.
pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 3600 * 1000;

/// The block duration promtool uses for `--max-block-duration`: 2 h, or
/// the largest of 2 h × 3ⁿ (n < 10) not above it.
pub fn compatible_block_duration(max_ms: i64) -> i64 {
    let mut d = DEFAULT_BLOCK_DURATION_MS;
    if max_ms > DEFAULT_BLOCK_DURATION_MS {
        for _ in 1..10 {
            let next = d * 3;
            if next > max_ms {
                break;
            }
            d = next;
        }
    }
    d
}

/// The block table `promtool tsdb list` prints (its columns; times in
/// milliseconds, or UTC and units with `human`).
pub fn print_blocks(
    parent: &Path,
    metas: &[BlockMeta],
    human: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "BLOCK ULID\tMIN TIME\tMAX TIME\tDURATION\tNUM SAMPLES\tNUM CHUNKS\tNUM SERIES\tSIZE"
    )?;
    for m in metas {
        let size = super::block::dir_size(&parent.join(&m.ulid));
        let dur = std::time::Duration::from_millis((m.max_time - m.min_time).max(0) as u64);
        let (mint, maxt, size) = if human {
            (
                crate::model::time::rfc3339_millis(m.min_time),
                crate::model::time::rfc3339_millis(m.max_time),
                format!("{:.1}KiB", size as f64 / 1024.0),
            )
        } else {
            (
                m.min_time.to_string(),
                m.max_time.to_string(),
                size.to_string(),
            )
        };
        writeln!(
            out,
            "{}\t{mint}\t{maxt}\t{dur:?}\t{}\t{}\t{}\t{size}",
            m.ulid, m.stats.num_samples, m.stats.num_chunks, m.stats.num_series
        )?;
    }
    Ok(())
}

/// `--max-block-duration` as promtool takes it, in milliseconds.
pub fn max_block_ms(s: &str) -> Result<i64, String> {
    let max = crate::config::duration::parse_duration(s)?;
    Ok(i64::try_from(max.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_durations_follow_promtool() {
        let h = 3600 * 1000;
        assert_eq!(compatible_block_duration(0), 2 * h);
        assert_eq!(compatible_block_duration(2 * h), 2 * h);
        assert_eq!(compatible_block_duration(5 * h), 2 * h);
        assert_eq!(compatible_block_duration(6 * h), 6 * h);
        assert_eq!(compatible_block_duration(24 * h), 18 * h);
        assert_eq!(compatible_block_duration(i64::MAX), 2 * h * 3i64.pow(9));
    }
}
