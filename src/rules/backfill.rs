//! Backfill of recording rules, as `promtool tsdb create-blocks-from
//! rules`: every recording rule of the files is evaluated over
//! `[start, end]` with range queries against a Prometheus-compatible API
//! (klaxon's own, Prometheus, Thanos, ...), one query per rule and block
//! range, at the group's evaluation slots (Prometheus' `EvalTimestamp`, so
//! the samples land where a running rule group would have put them), and
//! each answer is written as a block. Output series carry the result's
//! labels, then the rule's labels (which override), then `__name__` = the
//! record name. Alerting rules are skipped, as promtool does.

use crate::model::Labels;
use crate::rules::file::{load_rule_file, RuleKind};
use crate::tsdb::backfill::compatible_block_duration;
use crate::tsdb::block::{self, BlockError, BlockMeta, BlockSeries, SAMPLES_PER_CHUNK};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to backfill.
#[derive(Clone, Debug)]
pub struct RulesBackfill {
    /// Base URL of the API the rules' queries go to.
    pub url: String,
    /// Unix seconds (promtool truncates its times to seconds).
    pub start: i64,
    pub end: i64,
    /// Evaluation interval of groups that set none.
    pub eval_interval: Duration,
    /// `--max-block-duration` in milliseconds (0: 2 h).
    pub max_block_duration_ms: i64,
    pub output: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesBackfillError {
    #[error("rule importer parse error: {0}")]
    Parse(String),
    #[error("{file}: group {group:?}, rule {record:?}: query range: {msg}")]
    Query {
        file: String,
        group: String,
        record: String,
        msg: String,
    },
    #[error("{file}: group {group:?}, rule {record:?}: {source}")]
    Block {
        file: String,
        group: String,
        record: String,
        #[source]
        source: BlockError,
    },
}

/// Go's `strconv.FormatFloat(x, 'f', -1, 64)` of `secs + nanos/1e9`, the
/// way Prometheus' Go client sends times and steps.
fn go_seconds(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let f = secs as f64 + nanos as f64 / 1e9;
    format!("{f}")
}

/// One range query's answer: series labels and samples (ms, value).
type Matrix = Vec<(Labels, Vec<(i64, f64)>)>;

/// A `query_range` answer's series; anything but a matrix is an error.
fn decode_matrix(body: &[u8]) -> Result<Matrix, String> {
    use crate::rules::datasource::response::{decode, Decoded, QueryData};
    match decode(body).map_err(|e| format!("decoding the answer: {e}"))? {
        Decoded::Error { error_type, error } => Err(format!("{error_type}: {error}")),
        Decoded::Success {
            data: QueryData::Matrix(m),
            ..
        } => Ok(m),
        Decoded::Success { data, .. } => Err(format!(
            "rule result is wrong type {}",
            match data {
                QueryData::Vector(_) => "vector",
                _ => "string",
            }
        )),
    }
}

/// The output series of a rule: result labels, the rule's labels over
/// them, `__name__` = record.
fn output_labels(result: &Labels, rule_labels: &Labels, record: &str) -> Labels {
    let mut pairs: std::collections::BTreeMap<String, String> = result
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    for l in rule_labels.iter() {
        pairs.insert(l.name.to_string(), l.value.to_string());
    }
    pairs.insert("__name__".into(), record.into());
    Labels::from_pairs(pairs)
}

/// One range query per block range for a rule: `(start_ns, end_s)` of each,
/// as promtool computes them (the start at the group's first slot in the
/// range, the end at the range's last second or `end`).
fn query_ranges(
    cfg: &RulesBackfill,
    file: &str,
    group: &str,
    interval: Duration,
) -> Vec<(i64, i64)> {
    let block = compatible_block_duration(cfg.max_block_duration_ms);
    let iv_ns = i64::try_from(interval.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1);
    let (start_ms, end_ms) = (cfg.start * 1000, cfg.end * 1000);
    let mut out = Vec::new();
    let mut sob = block * (start_ms / block);
    while sob <= end_ms {
        let eob = sob + block - 1;
        let curr = (sob / 1000).max(cfg.start);
        let mut aligned =
            crate::rules::group::eval_timestamp(file, group, interval, curr * 1_000_000_000);
        while aligned.div_euclid(1_000_000_000) < curr {
            aligned += iv_ns;
        }
        let end = (eob / 1000).min(cfg.end);
        if end * 1_000_000_000 < aligned {
            break;
        }
        out.push((aligned, end));
        sob += block;
    }
    out
}

/// Evaluates every recording rule of `files` and writes the blocks under
/// `cfg.output`. Rules that fail are reported and the others still run;
/// the metas of the blocks written come back with the errors.
pub async fn create_blocks_from_rules(
    files: &[PathBuf],
    cfg: &RulesBackfill,
) -> Result<(Vec<BlockMeta>, Vec<RulesBackfillError>), RulesBackfillError> {
    let _span = tracing::info_span!("backfill_rules", url = %cfg.url).entered();
    let mut loaded = Vec::new();
    for f in files {
        let rf = load_rule_file(f).map_err(|e| RulesBackfillError::Parse(e.to_string()))?;
        loaded.push((f.display().to_string(), rf));
    }
    std::fs::create_dir_all(&cfg.output)
        .map_err(|e| RulesBackfillError::Parse(format!("{}: {e}", cfg.output.display())))?;
    let client = reqwest::Client::new();
    let endpoint = format!("{}/api/v1/query_range", cfg.url.trim_end_matches('/'));
    let mut metas = Vec::new();
    let mut errors = Vec::new();
    for (file, rf) in &loaded {
        for g in &rf.groups {
            let interval = g.interval.unwrap_or(cfg.eval_interval);
            for r in &g.rules {
                let RuleKind::Record(record) = &r.kind else {
                    continue;
                };
                let fail = |msg: String| RulesBackfillError::Query {
                    file: file.clone(),
                    group: g.name.clone(),
                    record: record.clone(),
                    msg,
                };
                let res =
                    backfill_rule(&client, &endpoint, cfg, file, &g.name, interval, r, record)
                        .await;
                match res {
                    Ok(m) => metas.extend(m),
                    Err(RuleFailure::Query(msg)) => errors.push(fail(msg)),
                    Err(RuleFailure::Block(source)) => errors.push(RulesBackfillError::Block {
                        file: file.clone(),
                        group: g.name.clone(),
                        record: record.clone(),
                        source,
                    }),
                }
            }
        }
    }
    Ok((metas, errors))
}

enum RuleFailure {
    Query(String),
    Block(BlockError),
}

#[allow(clippy::too_many_arguments)]
async fn backfill_rule(
    client: &reqwest::Client,
    endpoint: &str,
    cfg: &RulesBackfill,
    file: &str,
    group: &str,
    interval: Duration,
    rule: &crate::rules::file::Rule,
    record: &str,
) -> Result<Vec<BlockMeta>, RuleFailure> {
    let step = go_seconds(i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX));
    let mut metas = Vec::new();
    for (start_ns, end_s) in query_ranges(cfg, file, group, interval) {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &rule.expr_text)
            .append_pair("start", &go_seconds(start_ns))
            .append_pair("end", &end_s.to_string())
            .append_pair("step", &step)
            .finish();
        let resp = client
            .post(endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| RuleFailure::Query(format!("{endpoint}: {e}")))?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| RuleFailure::Query(format!("{endpoint}: {e}")))?;
        let matrix = decode_matrix(&body).map_err(RuleFailure::Query)?;
        let series: Vec<BlockSeries> = matrix
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(l, s)| BlockSeries {
                labels: output_labels(&l, &rule.labels, record),
                chunks: block::encode_chunks(&s, SAMPLES_PER_CHUNK),
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let out = cfg.output.clone();
        let meta = tokio::task::spawn_blocking(move || {
            block::write_block(&out, series, Default::default())
        })
        .await
        .map_err(|e| RuleFailure::Query(e.to_string()))?
        .map_err(RuleFailure::Block)?;
        metas.push(meta);
    }
    Ok(metas)
}

/// Where the blocks are written, for messages.
pub fn describe(out: &Path, metas: &[BlockMeta]) -> String {
    format!("{} blocks written to {}", metas.len(), out.display())
}

/// `klaxon tsdb create-blocks-from rules`.
#[derive(Clone, Debug)]
pub struct RulesArgs {
    pub url: String,
    /// RFC 3339 or Unix timestamp.
    pub start: String,
    /// Default: 3 hours ago.
    pub end: Option<String>,
    pub output_dir: PathBuf,
    pub eval_interval: Duration,
    pub max_block_duration: String,
    pub rule_files: Vec<PathBuf>,
}

/// Why `create-blocks-from rules` failed; printed as `klaxon: cause: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("--max-block-duration: {0}")]
    MaxBlockDuration(String),
    #[error("error parsing {what} time: {message}")]
    Time { what: &'static str, message: String },
    #[error("start time is not before end time")]
    StartNotBeforeEnd,
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Rules(#[from] Box<RulesBackfillError>),
    #[error("error importing rules")]
    RulesFailed,
}

/// Runs `klaxon tsdb create-blocks-from rules` (promtool's checks,
/// messages and exit codes); the exit code.
pub fn run_cli(a: &RulesArgs, err: &mut dyn std::io::Write) -> u8 {
    match cli(a, err) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "klaxon: {}", crate::rules::cli::error_chain(&e));
            1
        }
    }
}

fn cli(a: &RulesArgs, err: &mut dyn std::io::Write) -> Result<(), CliError> {
    let secs = |what: &'static str, s: &str| {
        crate::model::time::parse_time(s)
            .map(|ms| ms.div_euclid(1000))
            .map_err(|e| CliError::Time {
                what,
                message: e.to_string(),
            })
    };
    let end = match &a.end {
        Some(e) => secs("end", e)?,
        None => crate::model::now_millis().div_euclid(1000) - 3 * 3600,
    };
    let start = secs("start", &a.start)?;
    if start >= end {
        return Err(CliError::StartNotBeforeEnd);
    }
    let cfg = RulesBackfill {
        url: a.url.clone(),
        start,
        end,
        eval_interval: a.eval_interval,
        max_block_duration_ms: crate::tsdb::backfill::max_block_ms(&a.max_block_duration)
            .map_err(CliError::MaxBlockDuration)?,
        output: a.output_dir.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let (metas, errors) = rt
        .block_on(create_blocks_from_rules(&a.rule_files, &cfg))
        .map_err(Box::new)?;
    for e in &errors {
        let _ = writeln!(err, "rule importer error: {e}");
    }
    if !errors.is_empty() {
        return Err(CliError::RulesFailed);
    }
    let _ = writeln!(err, "{}", describe(&cfg.output, &metas));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(start: i64, end: i64) -> RulesBackfill {
        RulesBackfill {
            url: String::new(),
            start,
            end,
            eval_interval: Duration::from_secs(60),
            max_block_duration_ms: 0,
            output: PathBuf::new(),
        }
    }

    #[test]
    fn times_are_formatted_as_the_go_client_does() {
        assert_eq!(go_seconds(1_700_000_000_000_000_000), "1700000000");
        assert_eq!(go_seconds(1_700_000_000_250_000_000), "1700000000.25");
        assert_eq!(go_seconds(60_000_000_000), "60");
        assert_eq!(go_seconds(1_500_000_000), "1.5");
    }

    #[test]
    fn one_query_per_block_range_starting_at_the_group_slot() {
        // 5 h from a 2 h boundary: three block ranges.
        let start = 7200 * 400_000;
        let r = query_ranges(
            &cfg(start, start + 5 * 3600),
            "f.yml",
            "g",
            Duration::from_secs(60),
        );
        assert_eq!(r.len(), 3);
        for (i, (s_ns, e)) in r.iter().enumerate() {
            let block_start = start + i as i64 * 7200;
            assert!(*s_ns >= block_start * 1_000_000_000);
            assert!(*s_ns < (block_start + 60) * 1_000_000_000);
            let slot =
                crate::rules::group::eval_timestamp("f.yml", "g", Duration::from_secs(60), *s_ns);
            assert_eq!(slot, *s_ns, "on the group's slot");
            assert_eq!(*e, (block_start + 7199).min(start + 5 * 3600));
        }
    }

    #[test]
    fn rule_labels_override_result_labels_and_name_is_the_record() {
        let got = output_labels(
            &Labels::from_pairs([("__name__", "x"), ("job", "a"), ("env", "dev")]),
            &Labels::from_pairs([("env", "prod")]),
            "job:x:rate5m",
        );
        assert_eq!(
            got,
            Labels::from_pairs([("__name__", "job:x:rate5m"), ("env", "prod"), ("job", "a")])
        );
    }

    #[test]
    fn answers_other_than_a_matrix_are_errors() {
        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1700000000.5,"1"],[1700000060.5,"NaN"]]}]}}"#;
        let got = decode_matrix(m).unwrap();
        assert_eq!(got[0].1[0], (1_700_000_000_500, 1.0));
        assert!(got[0].1[1].1.is_nan());
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(
            decode_matrix(v).unwrap_err(),
            "rule result is wrong type vector"
        );
        let e = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(decode_matrix(e).unwrap_err(), "bad_data: parse error");
    }
}
