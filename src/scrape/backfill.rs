//! Backfill: blocks from an OpenMetrics file, as
//! `promtool tsdb create-blocks-from openmetrics` writes them.
//!
//! Every sample needs a timestamp. Samples are cut into blocks by aligned
//! ranges of the block duration (2 h, or the largest of Prometheus'
//! ranges 2 h × 3ⁿ not above `--max-block-duration`); each block's
//! meta.json spans its samples (max exclusive), as promtool's block
//! writer records it. Within a series, samples are sorted by time; an
//! exact repeat is kept once, two values for one timestamp are an error
//! naming both lines.

use super::parser::{Entry, Format, Parser, Validation};
use crate::model::Labels;
use crate::tsdb::backfill::compatible_block_duration;
use crate::tsdb::block::{self, BlockError, BlockMeta, BlockSeries, SAMPLES_PER_CHUNK};
use std::collections::HashMap;
use std::path::Path;

/// The bits of Go's `math.NaN()`, what Prometheus' parsers return for `NaN`.
const GO_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}: expected timestamp for series {labels}, got none")]
    NoTimestamp {
        file: String,
        line: usize,
        labels: String,
    },
    #[error("{file}:{line}: duplicate sample for timestamp {t} of series {labels} (line {first} has another value)")]
    Duplicate {
        file: String,
        line: usize,
        first: usize,
        t: i64,
        labels: String,
    },
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn labels_text(l: &Labels) -> String {
    let inner: Vec<String> = l
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Writes blocks under `out` from OpenMetrics `input` (`file` names it in
/// errors); returns their metas, oldest first.
pub fn create_blocks_from_openmetrics(
    input: &[u8],
    file: &str,
    out: &Path,
    max_block_duration_ms: i64,
) -> Result<Vec<BlockMeta>, BackfillError> {
    let _span = tracing::info_span!("backfill_openmetrics", file).entered();
    // Series → (t, v, line).
    let mut series: HashMap<Labels, Vec<(i64, f64, usize)>> = HashMap::new();
    let mut p =
        Parser::with_validation(input, Format::OpenMetrics, Validation::PrometheusCompatible);
    loop {
        let e = p.next().map_err(|e| BackfillError::Parse {
            file: file.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let Some(e) = e else { break };
        let Entry::Sample(s) = e else { continue };
        let labels = s.labels();
        let Some(t) = s.timestamp else {
            return Err(BackfillError::NoTimestamp {
                file: file.to_string(),
                line: p.line(),
                labels: labels_text(&labels),
            });
        };
        // A NaN from text is Go's `math.NaN()` in promtool's blocks; the
        // same bits keep klaxon's chunks byte-equal to promtool's.
        let v = if s.value.is_nan() && !crate::model::is_stale_nan(s.value) {
            f64::from_bits(GO_NAN_BITS)
        } else {
            s.value
        };
        series.entry(labels).or_default().push((t, v, p.line()));
    }

    let bd = compatible_block_duration(max_block_duration_ms);
    // Window start → series of that window.
    let mut windows: std::collections::BTreeMap<i64, Vec<BlockSeries>> = Default::default();
    for (labels, mut samples) in series {
        samples.sort_by_key(|s| s.0);
        let mut dedup: Vec<(i64, f64, usize)> = Vec::with_capacity(samples.len());
        for s in samples {
            match dedup.last() {
                Some(prev) if prev.0 == s.0 => {
                    if prev.1.to_bits() != s.1.to_bits() {
                        return Err(BackfillError::Duplicate {
                            file: file.to_string(),
                            line: s.2.max(prev.2),
                            first: s.2.min(prev.2),
                            t: s.0,
                            labels: labels_text(&labels),
                        });
                    }
                }
                _ => dedup.push(s),
            }
        }
        let mut i = 0;
        while i < dedup.len() {
            let w = dedup[i].0.div_euclid(bd) * bd;
            let end = dedup[i..]
                .iter()
                .position(|s| s.0 >= w.saturating_add(bd))
                .map_or(dedup.len(), |k| i + k);
            let part: Vec<(i64, f64)> = dedup[i..end].iter().map(|s| (s.0, s.1)).collect();
            windows.entry(w).or_default().push(BlockSeries {
                labels: labels.clone(),
                chunks: block::encode_chunks(&part, SAMPLES_PER_CHUNK),
            });
            i = end;
        }
    }
    std::fs::create_dir_all(out).map_err(|source| BackfillError::Io {
        path: out.display().to_string(),
        source,
    })?;
    let mut metas = Vec::with_capacity(windows.len());
    for (_, s) in windows {
        metas.push(block::write_block(out, s, Default::default())?);
    }
    Ok(metas)
}

/// `klaxon tsdb create-blocks-from openmetrics`.
#[derive(Clone, Debug)]
pub struct OpenMetricsArgs {
    pub input: std::path::PathBuf,
    pub output: std::path::PathBuf,
    pub human_readable: bool,
    pub quiet: bool,
    /// As given (`2h`, `1d`; `0s`: the default).
    pub max_block_duration: String,
}

/// Why `create-blocks-from openmetrics` failed; printed as
/// `klaxon: cause: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("--max-block-duration: {0}")]
    MaxBlockDuration(String),
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    OpenMetrics(#[from] BackfillError),
    #[error(transparent)]
    Print(std::io::Error),
}

/// Runs `klaxon tsdb create-blocks-from openmetrics` (promtool's checks,
/// messages and exit codes); the exit code.
pub fn run_cli(
    a: &OpenMetricsArgs,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> u8 {
    let r = (|| -> Result<(), CliError> {
        let max = crate::tsdb::backfill::max_block_ms(&a.max_block_duration)
            .map_err(CliError::MaxBlockDuration)?;
        let data = std::fs::read(&a.input).map_err(|source| CliError::Read {
            path: a.input.display().to_string(),
            source,
        })?;
        let metas =
            create_blocks_from_openmetrics(&data, &a.input.display().to_string(), &a.output, max)?;
        if !a.quiet {
            crate::tsdb::backfill::print_blocks(&a.output, &metas, a.human_readable, out)
                .map_err(CliError::Print)?;
        }
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "klaxon: {}", crate::config::client::error_chain(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::storage::Queryable;

    #[test]
    fn samples_are_cut_into_aligned_blocks_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        // 1h, 1h59m59s and 2h0.5s: two 2 h windows.
        let om =
            b"# TYPE m gauge\nm{a=\"1\"} 1 3600\nm{a=\"1\"} 2 7199\nm{a=\"1\"} 3 7200.5\n# EOF\n";
        let metas = create_blocks_from_openmetrics(om, "in.om", dir.path(), 0).unwrap();
        assert_eq!(metas.len(), 2);
        assert_eq!(
            (metas[0].min_time, metas[0].max_time),
            (3_600_000, 7_199_001)
        );
        assert_eq!(
            (metas[1].min_time, metas[1].max_time),
            (7_200_500, 7_200_501)
        );
        let b = block::Block::open(&dir.path().join(&metas[0].ulid)).unwrap();
        let got = b.querier(i64::MIN, i64::MAX).select(&[]);
        assert_eq!(got[0].samples, vec![(3_600_000, 1.0), (7_199_000, 2.0)]);
    }

    #[test]
    fn errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let e = create_blocks_from_openmetrics(b"m 1 1\nn 2\n# EOF\n", "x.om", dir.path(), 0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "x.om:2: expected timestamp for series {__name__=\"n\"}, got none"
        );
        let e = create_blocks_from_openmetrics(b"m 1 1\nm 2 1\n# EOF\n", "x.om", dir.path(), 0)
            .unwrap_err()
            .to_string();
        // The OpenMetrics parser refuses a repeated timestamp in a group.
        assert!(e.starts_with("x.om:2:"), "{e}");
        let e = create_blocks_from_openmetrics(b"m 1 1\n", "x.om", dir.path(), 0)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.om:2:1: missing \"# EOF\""), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
