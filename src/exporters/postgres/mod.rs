//! PostgreSQL metrics under postgres_exporter 0.11's names (see
//! docs/exporters.md), collected with `tokio-postgres` over reused
//! connections. All servers are collected concurrently and, within a
//! server, all queries are pipelined on its one connection, each bounded
//! by `query_timeout`: a down or stuck database yields `pg_up 0` and an
//! error count, never a slow scrape.

pub mod builtin;
pub mod custom;
use crate::net::pg_dsn as dsn;
pub mod fams;
mod row;
pub mod server;
pub mod settings;
pub mod statements;

use crate::exporters::config::PostgresConfig;
use custom::CustomQuery;
pub use fams::{encode_text, Fams, PgFamily};
use futures_util::future::join_all;
use parking_lot::Mutex;
use server::{QueryError, Server};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("exporters.postgres: DSN #{index} ({origin}): {source}")]
    Dsn {
        index: usize,
        origin: &'static str,
        #[source]
        source: dsn::DsnError,
    },
    #[error("exporters.postgres.dsn_file {path}: {source}")]
    DsnFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exporters.postgres: no DSN (set dsns, dsn_file or DATA_SOURCE_NAME)")]
    NoDsn,
    #[error("exporters.postgres.queries_file: {0}")]
    Queries(#[from] custom::CustomError),
}

/// The exporter: configured servers plus the self metrics.
pub struct PostgresExporter {
    servers: Vec<Arc<Server>>,
    cfg: PostgresConfig,
    custom: Vec<CustomQuery>,
    scrapes: AtomicU64,
    last: Mutex<(f64, bool)>,
    /// Servers that could not be reached in the last collection (`None`
    /// before the first one), for the heartbeat's health check.
    unreachable: Mutex<Option<Vec<String>>>,
}

/// One work item pipelined on a connection.
#[derive(Clone, Copy)]
enum Job {
    Version,
    Builtin(usize),
    Statements,
    Custom(usize),
    Discover,
}

struct ServerOutcome {
    fams: Fams,
    up: bool,
    error: bool,
    /// postgres_exporter collector name → (ok, seconds).
    collectors: Vec<(&'static str, bool, f64)>,
}

const DISCOVER_SQL: &str =
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname";

impl PostgresExporter {
    /// Builds the exporter from the config; DSNs come from `dsns`, else
    /// `dsn_file`, else `DATA_SOURCE_NAME` (comma-separated, as upstream).
    pub fn new(cfg: &PostgresConfig) -> Result<Self, PostgresError> {
        let (dsns, origin): (Vec<String>, &'static str) = if !cfg.dsns.is_empty() {
            (cfg.dsns.iter().map(|d| d.0.clone()).collect(), "dsns")
        } else if let Some(p) = &cfg.dsn_file {
            let t = std::fs::read_to_string(p).map_err(|source| PostgresError::DsnFile {
                path: p.clone(),
                source,
            })?;
            (dsn::split_file(&t), "dsn_file")
        } else {
            let env = std::env::var("DATA_SOURCE_NAME").unwrap_or_default();
            (dsn::split_env(&env), "DATA_SOURCE_NAME")
        };
        if dsns.is_empty() {
            return Err(PostgresError::NoDsn);
        }
        let mut servers = Vec::with_capacity(dsns.len());
        for (i, d) in dsns.iter().enumerate() {
            let parsed = dsn::parse(d).map_err(|source| PostgresError::Dsn {
                index: i + 1,
                origin,
                source,
            })?;
            servers.push(Arc::new(Server::new(parsed)));
        }
        let custom = match &cfg.queries_file {
            Some(p) => custom::load_file(p)?,
            None => Vec::new(),
        };
        Ok(PostgresExporter {
            servers,
            cfg: cfg.clone(),
            custom,
            scrapes: AtomicU64::new(0),
            last: Mutex::new((0.0, false)),
            unreachable: Mutex::new(None),
        })
    }

    /// Whether every server answered the last collection: `None` before the
    /// first one, else the unreachable servers' labels as the error.
    pub fn reachable(&self) -> Option<Result<(), String>> {
        let down = self.unreachable.lock().clone()?;
        Some(if down.is_empty() {
            Ok(())
        } else {
            Err(format!("PostgreSQL unreachable: {}", down.join(", ")))
        })
    }

    /// The `server` labels, in configuration order.
    pub fn servers(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.label.clone()).collect()
    }

    /// The exposition text (format 0.0.4).
    pub async fn render(&self) -> String {
        let fams = self.collect().await;
        let mut s = String::with_capacity(64 * 1024);
        encode_text(&fams, &mut s);
        s
    }

    /// One collection of every server.
    pub async fn collect(&self) -> Vec<PgFamily> {
        let started = std::time::Instant::now();
        let deadline = Instant::now() + self.cfg.query_timeout;
        let outcomes = join_all(
            self.servers
                .iter()
                .map(|s| self.collect_server(s, deadline)),
        )
        .await;
        let mut all = Fams::default();
        let multi = self.servers.len() > 1;
        let mut any_error = false;
        let mut collectors: Vec<(&'static str, bool, f64)> = Vec::new();
        let mut down = Vec::new();
        for (s, o) in self.servers.iter().zip(outcomes) {
            any_error |= o.error || !o.up;
            if !o.up {
                down.push(s.label.clone());
            }
            let up = if o.up { 1.0 } else { 0.0 };
            let help = "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).";
            if multi {
                all.gauge("pg_up", help, &[("server", &s.label)], up);
            } else {
                all.gauge("pg_up", help, &[], up);
            }
            all.counter(
                "pg_exporter_errors_total",
                "Failed connection attempts and queries, by server (klaxon).",
                &[("server", &s.label)],
                s.errors.load(Ordering::Relaxed) as f64,
            );
            for (name, ok, secs) in o.collectors {
                match collectors.iter_mut().find(|c| c.0 == name) {
                    Some(c) => {
                        c.1 &= ok;
                        c.2 = c.2.max(secs);
                    }
                    None => collectors.push((name, ok, secs)),
                }
            }
            all.merge(o.fams);
        }
        for (name, ok, secs) in collectors {
            all.gauge(
                "pg_scrape_collector_duration_seconds",
                "postgres_exporter: Duration of a collector scrape.",
                &[("collector", name)],
                secs,
            );
            all.gauge(
                "pg_scrape_collector_success",
                "postgres_exporter: Whether a collector succeeded.",
                &[("collector", name)],
                if ok { 1.0 } else { 0.0 },
            );
        }
        *self.unreachable.lock() = Some(down);
        let scrapes = self.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let (prev_duration, prev_error) = {
            let mut last = self.last.lock();
            let prev = *last;
            *last = (started.elapsed().as_secs_f64(), any_error);
            prev
        };
        // As upstream, the duration and error of the *previous* scrape:
        // this one is still running while the values are gathered.
        all.gauge(
            "pg_exporter_last_scrape_duration_seconds",
            "Duration of the last scrape of metrics from PostgreSQL.",
            &[],
            prev_duration,
        );
        all.gauge(
            "pg_exporter_last_scrape_error",
            "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).",
            &[],
            if prev_error { 1.0 } else { 0.0 },
        );
        all.counter(
            "pg_exporter_scrapes_total",
            "Total number of times PostgreSQL was scraped for metrics.",
            &[],
            scrapes as f64,
        );
        all.finish()
    }

    async fn collect_server(&self, s: &Arc<Server>, deadline: Instant) -> ServerOutcome {
        let mut out = ServerOutcome {
            fams: Fams::default(),
            up: false,
            error: false,
            collectors: Vec::new(),
        };
        let client = match s.client(deadline).await {
            Ok(c) => c,
            Err(e) => {
                s.count_error();
                if s.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "postgres exporter: server unreachable");
                } else {
                    tracing::debug!(error = %e, "postgres exporter: server still unreachable");
                }
                out.error = true;
                for b in builtin::BUILTINS {
                    if let Some(c) = b.collector {
                        out.collectors.push((c, false, 0.0));
                    }
                }
                return out;
            }
        };
        if !s.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!(server = %s.label, "postgres exporter: server reachable again");
        }
        let mut jobs = vec![Job::Version];
        jobs.extend((0..builtin::BUILTINS.len()).map(Job::Builtin));
        let statements_sql = statements::sql(&self.cfg.statements);
        if self.cfg.statements.enabled {
            jobs.push(Job::Statements);
        }
        jobs.extend(self.custom.iter().enumerate().map(|(i, _)| Job::Custom(i)));
        if self.cfg.auto_discover_databases {
            jobs.push(Job::Discover);
        }
        let sql_of = |j: Job| -> (&str, &str) {
            match j {
                Job::Version => ("version", builtin::VERSION_SQL),
                Job::Builtin(i) => builtin::BUILTINS
                    .get(i)
                    .map(|b| (b.name, b.sql))
                    .unwrap_or(("?", "SELECT 1")),
                Job::Statements => ("pg_stat_statements", statements_sql.as_str()),
                Job::Custom(i) => self
                    .custom
                    .get(i)
                    .map(|q| (q.namespace.as_str(), q.sql.as_str()))
                    .unwrap_or(("?", "SELECT 1")),
                Job::Discover => ("discover databases", DISCOVER_SQL),
            }
        };
        let results = join_all(jobs.iter().map(|&j| {
            let (what, sql) = sql_of(j);
            let client = &client;
            async move {
                let t = std::time::Instant::now();
                let r = s.query(client, what, sql, deadline).await;
                (r, t.elapsed().as_secs_f64())
            }
        }))
        .await;
        let mut timed_out = false;
        let mut discovered = Vec::new();
        for (&job, (res, secs)) in jobs.iter().zip(results) {
            let collector = match job {
                Job::Builtin(i) => builtin::BUILTINS.get(i).and_then(|b| b.collector),
                _ => None,
            };
            if let Some(c) = collector {
                out.collectors.push((c, res.is_ok(), secs));
            }
            let rows = match res {
                Ok(rows) => rows,
                Err(e) => {
                    if matches!(job, Job::Statements)
                        && e.db_error().is_some_and(statements::is_absent)
                    {
                        tracing::debug!(server = %s.label, error = %e,
                            "pg_stat_statements not available; family skipped");
                        continue;
                    }
                    timed_out |= matches!(e, QueryError::Timeout { .. });
                    s.count_error();
                    out.error = true;
                    tracing::warn!(error = %e, "postgres exporter query failed");
                    continue;
                }
            };
            let f = &mut out.fams;
            match job {
                Job::Version => {
                    out.up = true;
                    builtin::version(&s.label, &rows, f);
                }
                Job::Builtin(i) => {
                    if let Some(b) = builtin::BUILTINS.get(i) {
                        (b.handler)(&s.label, &rows, f);
                    }
                }
                Job::Statements => {
                    statements::handle(&s.label, self.cfg.statements.include_query, &rows, f)
                }
                Job::Custom(i) => {
                    if let Some(q) = self.custom.get(i) {
                        custom::handle(q, &s.label, &rows, f);
                    }
                }
                Job::Discover => {
                    discovered = rows
                        .iter()
                        .map(|r| row::text(r, "datname").to_string())
                        .filter(|d| self.wants_database(d, &s.dbname))
                        .collect();
                }
            }
        }
        if timed_out || client.is_closed() {
            s.reset().await;
        }
        builtin::saturation(&s.label, &mut out.fams);
        if !discovered.is_empty() {
            self.collect_discovered(s, &discovered, deadline, &mut out)
                .await;
        }
        out
    }

    /// upstream's `--exclude-databases` / `--include-databases`, applied
    /// to auto-discovery; the DSN's own database is already collected.
    fn wants_database(&self, db: &str, own: &str) -> bool {
        db != own
            && !self.cfg.exclude_databases.iter().any(|x| x == db)
            && (self.cfg.include_databases.is_empty()
                || self.cfg.include_databases.iter().any(|x| x == db))
    }

    /// Non-`master` custom queries on every discovered database.
    async fn collect_discovered(
        &self,
        s: &Arc<Server>,
        dbs: &[String],
        deadline: Instant,
        out: &mut ServerOutcome,
    ) {
        let children: Vec<Arc<Server>> = {
            let mut map = s.children.lock().await;
            map.retain(|k, _| dbs.contains(k));
            dbs.iter()
                .map(|d| {
                    map.entry(d.clone())
                        .or_insert_with(|| Arc::new(s.for_database(d)))
                        .clone()
                })
                .collect()
        };
        let queries: Vec<&CustomQuery> = self.custom.iter().filter(|q| !q.master).collect();
        if queries.is_empty() {
            return;
        }
        let results = join_all(children.iter().map(|c| {
            let queries = &queries;
            async move {
                let client = match c.client(deadline).await {
                    Ok(cl) => cl,
                    Err(e) => return Err(e),
                };
                let rs = join_all(
                    queries
                        .iter()
                        .map(|q| c.query(&client, &q.namespace, &q.sql, deadline)),
                )
                .await;
                Ok(rs)
            }
        }))
        .await;
        for (c, r) in children.iter().zip(results) {
            match r {
                Err(e) => {
                    s.count_error();
                    out.error = true;
                    tracing::warn!(database = %c.dbname, error = %e, "postgres exporter: discovered database");
                }
                Ok(rs) => {
                    for (q, res) in queries.iter().zip(rs) {
                        match res {
                            Ok(rows) => custom::handle(q, &s.label, &rows, &mut out.fams),
                            Err(e) => {
                                s.count_error();
                                out.error = true;
                                tracing::warn!(database = %c.dbname, error = %e, "postgres exporter query failed");
                            }
                        }
                    }
                }
            }
        }
    }
}
