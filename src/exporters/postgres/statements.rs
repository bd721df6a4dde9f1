//! pg_stat_statements top-N by total execution time (PostgreSQL 13+
//! column names: `total_exec_time`, `mean_exec_time`). Family names are
//! those of the pg_stat_statements query in Debian's postgres_exporter
//! `queries.yaml`, which existing dashboards use. Without the extension
//! there is no family and no error: it is optional.

use super::fams::Fams;
use super::row::{text, val};
use crate::exporters::config::StatementsConfig;
use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryRow;

pub fn sql(cfg: &StatementsConfig) -> String {
    let query = if cfg.include_query {
        format!(", left(s.query, {}) AS query", cfg.query_length)
    } else {
        String::new()
    };
    format!(
        "SELECT d.datname, r.rolname, s.queryid::text AS queryid, s.calls, \
         s.total_exec_time / 1000.0 AS total_seconds, s.mean_exec_time / 1000.0 AS mean_seconds, \
         s.rows, s.shared_blks_hit, s.shared_blks_read{query} \
         FROM pg_stat_statements s \
         JOIN pg_database d ON d.oid = s.dbid \
         JOIN pg_roles r ON r.oid = s.userid \
         WHERE s.queryid IS NOT NULL \
         ORDER BY s.total_exec_time DESC LIMIT {}",
        cfg.limit
    )
}

/// The extension is not installed in this database, or not preloaded:
/// not an error, the families are simply absent.
pub fn is_absent(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNDEFINED_TABLE
            || *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            || *c == SqlState::UNDEFINED_COLUMN
    )
}

pub fn handle(server: &str, include_query: bool, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let mut labels = vec![
            ("datname", text(r, "datname")),
            ("queryid", text(r, "queryid")),
            ("rolname", text(r, "rolname")),
            ("server", server),
        ];
        if include_query {
            labels.push(("query", text(r, "query")));
        }
        out.counter(
            "pg_stat_statements_calls",
            "Number of times executed",
            &labels,
            val(r, "calls"),
        );
        out.counter(
            "pg_stat_statements_total_time_seconds",
            "Total time spent executing the statement, in seconds",
            &labels,
            val(r, "total_seconds"),
        );
        out.gauge(
            "pg_stat_statements_mean_time_seconds",
            "Mean time spent executing the statement, in seconds",
            &labels,
            val(r, "mean_seconds"),
        );
        out.counter(
            "pg_stat_statements_rows",
            "Total number of rows retrieved or affected by the statement",
            &labels,
            val(r, "rows"),
        );
        out.counter(
            "pg_stat_statements_shared_blks_hit",
            "Total number of shared block cache hits by the statement",
            &labels,
            val(r, "shared_blks_hit"),
        );
        out.counter(
            "pg_stat_statements_shared_blks_read",
            "Total number of shared blocks read by the statement",
            &labels,
            val(r, "shared_blks_read"),
        );
    }
}
