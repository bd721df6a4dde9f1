//! The built-in queries: postgres_exporter 0.11's default families (same
//! names, types and label names) plus the replication, postmaster and
//! saturation gauges klaxon adds. Each query is independent so one that
//! fails (a view missing on some version, a permission) loses only its
//! own families.

use super::fams::Fams;
use super::row::{text, val};
use tokio_postgres::SimpleQueryRow;

/// What a query's rows become.
pub type Handler = fn(&str, &[SimpleQueryRow], &mut Fams);

/// One built-in query. `collector` is postgres_exporter's collector name
/// where it has one (`pg_scrape_collector_*{collector}`).
pub struct Builtin {
    pub name: &'static str,
    pub collector: Option<&'static str>,
    pub sql: &'static str,
    pub handler: Handler,
}

pub const VERSION_SQL: &str = "SELECT version() AS version";

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "settings",
        collector: None,
        sql: super::settings::SQL,
        handler: super::settings::handle,
    },
    Builtin {
        name: "stat_database",
        collector: None,
        sql: "SELECT * FROM pg_stat_database",
        handler: stat_database,
    },
    Builtin {
        name: "stat_database_conflicts",
        collector: None,
        sql: "SELECT * FROM pg_stat_database_conflicts",
        handler: conflicts,
    },
    Builtin {
        name: "stat_activity",
        collector: None,
        sql: "SELECT d.datname, s.state, COALESCE(a.n, 0) AS count, \
              COALESCE(a.longest, 0) AS max_tx_duration \
              FROM pg_database d \
              CROSS JOIN (VALUES ('active'), ('idle'), ('idle in transaction'), \
                ('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) \
                AS s(state) \
              LEFT JOIN (SELECT datname, state, count(*) AS n, \
                  max(EXTRACT(EPOCH FROM now() - xact_start))::float8 AS longest \
                  FROM pg_stat_activity GROUP BY datname, state) a \
                ON a.datname = d.datname AND a.state = s.state",
        handler: activity,
    },
    Builtin {
        name: "locks",
        collector: None,
        sql: "SELECT d.datname, m.mode, COALESCE(l.n, 0) AS count \
              FROM pg_database d \
              CROSS JOIN (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), \
                ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), \
                ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) \
              LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS n FROM pg_locks \
                  WHERE database IS NOT NULL GROUP BY database, lower(mode)) l \
                ON l.database = d.oid AND l.mode = m.mode",
        handler: locks,
    },
    Builtin {
        name: "database_size",
        collector: Some("database"),
        sql: "SELECT datname, pg_database_size(oid) AS size FROM pg_database",
        handler: database_size,
    },
    Builtin {
        name: "bgwriter",
        collector: Some("bgwriter"),
        sql: "SELECT *, EXTRACT(EPOCH FROM stats_reset) AS stats_reset_epoch FROM pg_stat_bgwriter",
        handler: bgwriter,
    },
    Builtin {
        name: "stat_archiver",
        collector: None,
        sql: "SELECT archived_count, failed_count, \
              EXTRACT(EPOCH FROM now() - last_archived_time) AS last_archive_age \
              FROM pg_stat_archiver",
        handler: archiver,
    },
    Builtin {
        name: "replication",
        collector: None,
        sql: "SELECT pg_is_in_recovery() AS is_replica, \
              CASE WHEN NOT pg_is_in_recovery() THEN 0 \
                ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())) \
              END AS lag, \
              EXTRACT(EPOCH FROM pg_postmaster_start_time()) AS start_time",
        handler: replication,
    },
    Builtin {
        name: "stat_replication",
        collector: None,
        sql: "SELECT application_name, COALESCE(host(client_addr), '') AS client_addr, \
              COALESCE(state, '') AS state, \
              pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS lsn_diff, \
              COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) AS replay_lag \
              FROM pg_stat_replication WHERE NOT pg_is_in_recovery()",
        handler: stat_replication,
    },
];

/// `pg_static{short_version, version}` from `version()`.
pub fn version(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let v = text(r, "version");
        out.untyped(
            "pg_static",
            "Version string as reported by postgres",
            &[
                ("server", server),
                ("short_version", &short_version(v)),
                ("version", v),
            ],
            1.0,
        );
    }
}

/// `PostgreSQL 15.18 (Debian ...)` → `15.18.0` (postgres_exporter's
/// semver form: three parts, missing ones 0).
pub fn short_version(v: &str) -> String {
    let num = v.split_whitespace().nth(1).unwrap_or("");
    let num: String = num
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts: Vec<&str> = num.split('.').filter(|p| !p.is_empty()).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    parts.truncate(3);
    parts.join(".")
}

const STAT_DATABASE_COUNTERS: &[(&str, &str)] = &[
    ("xact_commit", "Transactions committed in this database"),
    ("xact_rollback", "Transactions rolled back in this database"),
    ("blks_read", "Disk blocks read in this database"),
    (
        "blks_hit",
        "Disk blocks found in the buffer cache (no read needed)",
    ),
    ("tup_returned", "Rows returned by queries in this database"),
    ("tup_fetched", "Rows fetched by queries in this database"),
    ("tup_inserted", "Rows inserted by queries in this database"),
    ("tup_updated", "Rows updated by queries in this database"),
    ("tup_deleted", "Rows deleted by queries in this database"),
    (
        "conflicts",
        "Queries canceled due to conflicts with recovery in this database",
    ),
    (
        "temp_files",
        "Temporary files created by queries in this database",
    ),
    (
        "temp_bytes",
        "Bytes written to temporary files by queries in this database",
    ),
    ("deadlocks", "Deadlocks detected in this database"),
    (
        "blk_read_time",
        "Time spent reading data file blocks by backends, in milliseconds",
    ),
    (
        "blk_write_time",
        "Time spent writing data file blocks by backends, in milliseconds",
    ),
    (
        "stats_reset",
        "Time at which these statistics were last reset",
    ),
];

fn stat_database(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    per_database_columns(server, rows, out, "pg_stat_database", |col| {
        if col == "numbackends" {
            return Some((
                "Backends currently connected to this database",
                crate::metrics::Kind::Gauge,
            ));
        }
        STAT_DATABASE_COUNTERS
            .iter()
            .find(|(c, _)| *c == col)
            .map(|(_, h)| (*h, crate::metrics::Kind::Counter))
    });
}

fn conflicts(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    per_database_columns(server, rows, out, "pg_stat_database_conflicts", |col| {
        let help = match col {
            "confl_tablespace" => "Queries canceled due to dropped tablespaces",
            "confl_lock" => "Queries canceled due to lock timeouts",
            "confl_snapshot" => "Queries canceled due to old snapshots",
            "confl_bufferpin" => "Queries canceled due to pinned buffers",
            "confl_deadlock" => "Queries canceled due to deadlocks",
            _ => return None,
        };
        Some((help, crate::metrics::Kind::Counter))
    });
}

/// `SELECT *` views keyed by (datid, datname): known columns get their
/// type, columns a newer PostgreSQL added become untyped, as upstream's
/// "Unknown metric from <view>".
fn per_database_columns(
    server: &str,
    rows: &[SimpleQueryRow],
    out: &mut Fams,
    view: &str,
    known: impl Fn(&str) -> Option<(&'static str, crate::metrics::Kind)>,
) {
    let unknown_help = format!("Unknown metric from {view}");
    for r in rows {
        let datid = text(r, "datid");
        let datname = text(r, "datname");
        let labels = [("datid", datid), ("datname", datname), ("server", server)];
        for (i, c) in r.columns().iter().enumerate() {
            let col = c.name();
            if col == "datid" || col == "datname" {
                continue;
            }
            let v = super::row::val_at(r, i);
            let name = format!("{view}_{col}");
            match known(col) {
                Some((help, kind)) => out.push(&name, help, kind, &labels, v),
                None => out.untyped(&name, &unknown_help, &labels, v),
            }
        }
    }
}

fn activity(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let labels = [
            ("datname", text(r, "datname")),
            ("server", server),
            ("state", text(r, "state")),
        ];
        out.gauge(
            "pg_stat_activity_count",
            "number of connections in this state",
            &labels,
            val(r, "count"),
        );
        out.gauge(
            "pg_stat_activity_max_tx_duration",
            "max duration in seconds any active transaction has been running",
            &labels,
            val(r, "max_tx_duration"),
        );
    }
}

fn locks(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        out.gauge(
            "pg_locks_count",
            "Number of locks",
            &[
                ("datname", text(r, "datname")),
                ("mode", text(r, "mode")),
                ("server", server),
            ],
            val(r, "count"),
        );
    }
}

fn database_size(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        out.gauge(
            "pg_database_size_bytes",
            "Disk space used by the database",
            &[("datname", text(r, "datname")), ("server", server)],
            val(r, "size"),
        );
    }
}

const BGWRITER: &[(&str, &str, &str)] = &[
    (
        "checkpoints_timed",
        "pg_stat_bgwriter_checkpoints_timed_total",
        "Scheduled checkpoints performed",
    ),
    (
        "checkpoints_req",
        "pg_stat_bgwriter_checkpoints_req_total",
        "Requested checkpoints performed",
    ),
    (
        "checkpoint_write_time",
        "pg_stat_bgwriter_checkpoint_write_time_total",
        "Time spent writing files to disk in checkpoints, in milliseconds",
    ),
    (
        "checkpoint_sync_time",
        "pg_stat_bgwriter_checkpoint_sync_time_total",
        "Time spent synchronizing files to disk in checkpoints, in milliseconds",
    ),
    (
        "buffers_checkpoint",
        "pg_stat_bgwriter_buffers_checkpoint_total",
        "Buffers written during checkpoints",
    ),
    (
        "buffers_clean",
        "pg_stat_bgwriter_buffers_clean_total",
        "Buffers written by the background writer",
    ),
    (
        "maxwritten_clean",
        "pg_stat_bgwriter_maxwritten_clean_total",
        "Times the background writer stopped a scan for writing too many buffers",
    ),
    (
        "buffers_backend",
        "pg_stat_bgwriter_buffers_backend_total",
        "Buffers written directly by a backend",
    ),
    (
        "buffers_backend_fsync",
        "pg_stat_bgwriter_buffers_backend_fsync_total",
        "Times a backend had to execute its own fsync call",
    ),
    (
        "buffers_alloc",
        "pg_stat_bgwriter_buffers_alloc_total",
        "Buffers allocated",
    ),
    (
        "stats_reset_epoch",
        "pg_stat_bgwriter_stats_reset_total",
        "Time at which these statistics were last reset",
    ),
];

fn bgwriter(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        for (col, name, help) in BGWRITER {
            out.counter(name, help, &[("server", server)], val(r, col));
        }
    }
}

fn archiver(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let l = [("server", server)];
        out.counter(
            "pg_stat_archiver_archived_count",
            "WAL files successfully archived",
            &l,
            val(r, "archived_count"),
        );
        out.counter(
            "pg_stat_archiver_failed_count",
            "Failed attempts at archiving WAL files",
            &l,
            val(r, "failed_count"),
        );
        out.gauge(
            "pg_stat_archiver_last_archive_age",
            "Seconds since the last WAL segment was archived",
            &l,
            val(r, "last_archive_age"),
        );
    }
}

fn replication(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let l = [("server", server)];
        out.gauge(
            "pg_replication_is_replica",
            "Whether the server is a standby (1) or a primary (0)",
            &l,
            val(r, "is_replica"),
        );
        out.gauge(
            "pg_replication_lag_seconds",
            "Seconds since the last transaction replayed on a standby (0 on a primary)",
            &l,
            val(r, "lag"),
        );
        out.gauge(
            "pg_postmaster_start_time_seconds",
            "Time at which the postmaster started, Unix seconds",
            &l,
            val(r, "start_time"),
        );
    }
}

fn stat_replication(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let l = [
            ("application_name", text(r, "application_name")),
            ("client_addr", text(r, "client_addr")),
            ("server", server),
            ("state", text(r, "state")),
        ];
        out.gauge(
            "pg_stat_replication_pg_wal_lsn_diff",
            "Bytes the standby's replay position is behind the primary's WAL",
            &l,
            val(r, "lsn_diff"),
        );
        out.gauge(
            "pg_stat_replication_replay_lag_seconds",
            "Replay lag of the standby as the primary measures it",
            &l,
            val(r, "replay_lag"),
        );
    }
}

/// `pg_connections_saturation_ratio`: backends over `max_connections`,
/// computed from families already collected (no extra query).
pub fn saturation(server: &str, fams: &mut Fams) {
    let backends = fams.sum("pg_stat_database_numbackends");
    let max = fams.sum("pg_settings_max_connections");
    if let (Some(b), Some(m)) = (backends, max) {
        if m > 0.0 {
            fams.gauge(
                "pg_connections_saturation_ratio",
                "Backends connected over max_connections (1 = no new connection possible)",
                &[("server", server)],
                b / m,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_version_is_three_parts() {
        let v = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu";
        assert_eq!(super::short_version(v), "15.18.0");
        assert_eq!(super::short_version("PostgreSQL 16beta1 on x"), "16.0.0");
        assert_eq!(super::short_version(""), "0.0.0");
    }
}
