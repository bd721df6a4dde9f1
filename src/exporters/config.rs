//! The `exporters:` config section: which built-in exporters run as
//! in-process scrape jobs (`job="host"`, `job="postgres"`) and how the
//! PostgreSQL one connects. Parsed here rather than in `config/` so the
//! exporters own their whole configuration surface.

use crate::config::errors::{Pos, Sink};
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExporters {
    pub host: Option<S<RawHost>>,
    pub postgres: Option<S<RawPostgres>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub enabled: Option<bool>,
    pub instance: Option<S<String>>,
    pub scrape_interval: Option<S<String>>,
    pub scrape_timeout: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPostgres {
    pub enabled: Option<bool>,
    pub instance: Option<S<String>>,
    pub scrape_interval: Option<S<String>>,
    pub scrape_timeout: Option<S<String>>,
    pub dsns: Option<Vec<S<String>>>,
    pub dsn_file: Option<S<String>>,
    pub auto_discover_databases: Option<bool>,
    pub include_databases: Option<Vec<String>>,
    pub exclude_databases: Option<Vec<String>>,
    pub query_timeout: Option<S<String>>,
    pub queries_file: Option<S<String>>,
    pub statements: Option<S<RawStatements>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatements {
    pub enabled: Option<bool>,
    pub limit: Option<u64>,
    pub include_query: Option<bool>,
    pub query_length: Option<u64>,
}

/// The resolved section; an exporter that is absent or `enabled: false`
/// is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportersConfig {
    pub host: Option<JobConfig>,
    pub postgres: Option<PostgresConfig>,
}

/// How an exporter's in-process scrape job is run; unset fields fall back
/// to `global` and to klaxon's listen address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobConfig {
    pub instance: Option<String>,
    pub scrape_interval: Option<Duration>,
    pub scrape_timeout: Option<Duration>,
}

/// A connection string. Its `Debug` never shows it: DSNs carry passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn(pub String);

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dsn(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PostgresConfig {
    pub job: JobConfig,
    /// Empty: `dsn_file`, else the `DATA_SOURCE_NAME` environment variable.
    pub dsns: Vec<Dsn>,
    /// Resolved against the config file's directory.
    pub dsn_file: Option<String>,
    pub auto_discover_databases: bool,
    pub include_databases: Vec<String>,
    pub exclude_databases: Vec<String>,
    pub query_timeout: Duration,
    pub queries_file: Option<String>,
    pub statements: StatementsConfig,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            job: JobConfig::default(),
            dsns: Vec::new(),
            dsn_file: None,
            auto_discover_databases: false,
            include_databases: Vec::new(),
            exclude_databases: Vec::new(),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            queries_file: None,
            statements: StatementsConfig::default(),
        }
    }
}

/// A query slower than this is abandoned (and its connection dropped): a
/// stuck database must not hold the scrape past its own timeout (10 s).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// pg_stat_statements top-N.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementsConfig {
    pub enabled: bool,
    pub limit: u64,
    /// The query text is opt-in: it may carry literals (personal data) and
    /// makes label values long.
    pub include_query: bool,
    pub query_length: u64,
}

impl Default for StatementsConfig {
    fn default() -> Self {
        StatementsConfig {
            enabled: true,
            limit: 20,
            include_query: false,
            query_length: 120,
        }
    }
}

use crate::config::common::opt_duration as duration;

fn job(
    instance: &Option<S<String>>,
    interval: &Option<S<String>>,
    timeout: &Option<S<String>>,
    sink: &mut Sink,
) -> JobConfig {
    let j = JobConfig {
        instance: instance.as_ref().map(|s| s.value.clone()),
        scrape_interval: duration(interval, sink),
        scrape_timeout: duration(timeout, sink),
    };
    if let (Some(i), Some(t), Some(at)) = (j.scrape_interval, j.scrape_timeout, timeout) {
        if t > i {
            sink.push(Pos::of(at), "scrape_timeout greater than scrape_interval");
        }
    }
    j
}

/// The in-process job names; a `scrape_configs` job of the same name
/// would mix two sources in one job.
pub const HOST_JOB: &str = "host";
pub const POSTGRES_JOB: &str = "postgres";

pub(crate) fn resolve(
    raw: Option<RawExporters>,
    dir: Option<&std::path::Path>,
    jobs: &[&str],
    sink: &mut Sink,
) -> ExportersConfig {
    let Some(raw) = raw else {
        return ExportersConfig::default();
    };
    for (job, node) in [
        (
            HOST_JOB,
            raw.host.as_ref().map(|h| (Pos::of(h), h.value.enabled)),
        ),
        (
            POSTGRES_JOB,
            raw.postgres.as_ref().map(|p| (Pos::of(p), p.value.enabled)),
        ),
    ] {
        if let Some((at, enabled)) = node {
            if enabled != Some(false) && jobs.contains(&job) {
                sink.push(
                    at,
                    format!(
                        "exporters.{job} runs as job {job:?}, which scrape_configs already has"
                    ),
                );
            }
        }
    }
    let host = raw.host.as_ref().and_then(|h| {
        let h = &h.value;
        (h.enabled != Some(false))
            .then(|| job(&h.instance, &h.scrape_interval, &h.scrape_timeout, sink))
    });
    let postgres = raw
        .postgres
        .as_ref()
        .and_then(|p| resolve_postgres(&p.value, dir, sink));
    ExportersConfig { host, postgres }
}

fn resolve_postgres(
    p: &RawPostgres,
    dir: Option<&std::path::Path>,
    sink: &mut Sink,
) -> Option<PostgresConfig> {
    if p.enabled == Some(false) {
        return None;
    }
    let mut dsns = Vec::new();
    for d in p.dsns.iter().flatten() {
        // The message never repeats the DSN: it may hold a password.
        if let Err(e) = crate::net::pg_dsn::parse(&d.value) {
            sink.push(Pos::of(d), format!("exporters.postgres.dsns: {e}"));
        }
        dsns.push(Dsn(d.value.clone()));
    }
    let st = p.statements.as_ref().map(|s| &s.value);
    let d = StatementsConfig::default();
    Some(PostgresConfig {
        job: job(&p.instance, &p.scrape_interval, &p.scrape_timeout, sink),
        dsns,
        dsn_file: p
            .dsn_file
            .as_ref()
            .map(|f| crate::config::join_dir(dir, &f.value)),
        auto_discover_databases: p.auto_discover_databases.unwrap_or(false),
        include_databases: p.include_databases.clone().unwrap_or_default(),
        exclude_databases: p.exclude_databases.clone().unwrap_or_default(),
        query_timeout: duration(&p.query_timeout, sink).unwrap_or(DEFAULT_QUERY_TIMEOUT),
        queries_file: p
            .queries_file
            .as_ref()
            .map(|f| crate::config::join_dir(dir, &f.value)),
        statements: StatementsConfig {
            enabled: st.and_then(|s| s.enabled).unwrap_or(d.enabled),
            limit: st.and_then(|s| s.limit).unwrap_or(d.limit),
            include_query: st.and_then(|s| s.include_query).unwrap_or(d.include_query),
            query_length: st.and_then(|s| s.query_length).unwrap_or(d.query_length),
        },
    })
}
