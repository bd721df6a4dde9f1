//! `klaxon tsdb create-blocks-from {openmetrics,rules}`: promtool's
//! backfill commands, with its checks, messages and exit codes.

use crate::rules::cli::error_chain;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Why a backfill command failed; printed as `klaxon: error: cause...`.
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
    OpenMetrics(#[from] super::backfill::BackfillError),
    #[error(transparent)]
    Print(std::io::Error),
    #[error("error parsing {what} time: {message}")]
    Time { what: &'static str, message: String },
    #[error("start time is not before end time")]
    StartNotBeforeEnd,
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Rules(#[from] super::backfill_rules::RulesBackfillError),
    #[error("error importing rules")]
    RulesFailed,
}

/// `klaxon tsdb create-blocks-from openmetrics`.
#[derive(Clone, Debug)]
pub struct OpenMetricsArgs {
    pub input: PathBuf,
    pub output: PathBuf,
    pub human_readable: bool,
    pub quiet: bool,
    /// As given (`2h`, `1d`; `0s`: the default).
    pub max_block_duration: String,
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

/// Runs `openmetrics`; the exit code.
pub fn create_blocks_from_openmetrics(
    a: &OpenMetricsArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    exit(openmetrics(a, out), err)
}

/// Runs `rules`; the exit code.
pub fn create_blocks_from_rules(a: &RulesArgs, err: &mut dyn Write) -> u8 {
    exit(rules(a, err), err)
}

fn exit(r: Result<(), CliError>, err: &mut dyn Write) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "klaxon: {}", error_chain(&e));
            1
        }
    }
}

fn max_block_ms(s: &str) -> Result<i64, CliError> {
    let max = crate::config::duration::parse_duration(s).map_err(CliError::MaxBlockDuration)?;
    Ok(i64::try_from(max.as_millis()).unwrap_or(i64::MAX))
}

fn openmetrics(a: &OpenMetricsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let max = max_block_ms(&a.max_block_duration)?;
    let data = std::fs::read(&a.input).map_err(|source| CliError::Read {
        path: a.input.display().to_string(),
        source,
    })?;
    let metas = super::backfill::create_blocks_from_openmetrics(
        &data,
        &a.input.display().to_string(),
        &a.output,
        max,
    )?;
    if !a.quiet {
        super::backfill::print_blocks(&a.output, &metas, a.human_readable, out)
            .map_err(CliError::Print)?;
    }
    Ok(())
}

fn rules(a: &RulesArgs, err: &mut dyn Write) -> Result<(), CliError> {
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
    let cfg = super::backfill_rules::RulesBackfill {
        url: a.url.clone(),
        start,
        end,
        eval_interval: a.eval_interval,
        max_block_duration_ms: max_block_ms(&a.max_block_duration)?,
        output: a.output_dir.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let (metas, errors) = rt.block_on(super::backfill_rules::create_blocks_from_rules(
        &a.rule_files,
        &cfg,
    ))?;
    for e in &errors {
        let _ = writeln!(err, "rule importer error: {e}");
    }
    if !errors.is_empty() {
        return Err(CliError::RulesFailed);
    }
    let _ = writeln!(
        err,
        "{}",
        super::backfill_rules::describe(&cfg.output, &metas)
    );
    Ok(())
}
