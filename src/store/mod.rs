//! The store: the state that must survive a restart — alert state, the
//! notification outbox and delivery log, the notification log, silences,
//! the audit trail — in one embedded SQLite file (`klaxon.db` under
//! `storage.path`, the default) or in PostgreSQL (`storage.backend:
//! postgres`), which two replicas share for an HA pair (see [`leader`]).
//!
//! Why SQLite (rusqlite, bundled): durable single commits at a few thousand
//! per second with WAL + `synchronous=FULL`, inspectable with the `sqlite3`
//! CLI. Why PostgreSQL for HA: the replicas need one shared, transactional
//! outbox and notification log and a lock to elect the sender; a database
//! users already run gives all three without a home-made cluster protocol.
//!
//! Each concern owns a submodule with its schema and typed functions; no SQL
//! leaves this module. Each function dispatches on the backend; SQL text is
//! shared where the dialects agree (`pg::sql` turns `?N` into `$N`).
//! Calls are synchronous and short: async callers use `spawn_blocking` for
//! anything that may touch many rows (see `pg` for how the PostgreSQL
//! backend serves synchronous callers).

use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

pub mod alerts;
pub mod audit;
pub mod autoheal;
pub mod config;
mod gate;
pub mod health;
mod keyed;
pub mod leader;
pub mod notify;
pub mod notify_log;
pub mod pg;
pub mod posted;
mod row;
pub mod silences;

/// File name of the database inside `storage.path`.
pub const DB_FILE: &str = "klaxon.db";

/// Every SQLite schema, applied in order at open. Statements use
/// `CREATE ... IF NOT EXISTS`, so applying them to an existing file is a
/// no-op (PostgreSQL uses the versioned [`pg::MIGRATIONS`] instead, since
/// two replicas may start at once and a schema change must apply once).
const SCHEMAS: &[(&str, &str)] = &[
    ("alerts", alerts::SCHEMA),
    ("notify", notify::SCHEMA),
    ("audit", audit::SCHEMA),
    ("notify_log", notify_log::SCHEMA),
    ("silences", silences::SCHEMA),
    ("posted_alerts", posted::SCHEMA),
    ("autoheal_rules", autoheal::SCHEMA),
];

/// Why the store could not be opened or used. Never carries the DSN.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: creating directory: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store schema {schema}: {source}")]
    Schema {
        schema: &'static str,
        source: rusqlite::Error,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("store (postgres): {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("store migration {version} ({name}): {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("store: {0}")]
    Unavailable(String),
    #[error("store: {0}")]
    Config(String),
    #[error("store: {0}")]
    Data(String),
    #[error("store stalled: no answer within {0:?} (disk or database not responding)")]
    Stalled(std::time::Duration),
}

impl StoreError {
    /// A fault of the disk, the database or the server (as opposed to a
    /// row the store could not decode): what makes the store unhealthy.
    pub fn is_fault(&self) -> bool {
        !matches!(self, StoreError::Config(_) | StoreError::Data(_))
    }
}

/// Where the rows live.
pub(crate) enum Backend {
    Sqlite(Mutex<Connection>),
    Postgres(Box<pg::Pg>),
}

/// A handle on the database; cheap to share behind an `Arc`.
pub struct Store {
    backend: Backend,
    path: Option<PathBuf>,
    /// Whether this process may send notifications: always with SQLite,
    /// while holding the election lock with PostgreSQL.
    leader: tokio::sync::watch::Sender<bool>,
    /// Set once [`leader::spawn`] runs.
    election: std::sync::OnceLock<std::sync::Arc<leader::Election>>,
    /// Error and stall counters, the failing flag, the fault hook.
    health: std::sync::Arc<health::Health>,
    /// Threads serving [`Store::call`].
    exec: health::Executor,
    /// Who uses the SQLite connection next (see [`gate`]).
    gate: gate::Gate,
}

impl Store {
    /// Opens the backend `cfg` names: SQLite under `cfg.path`, or
    /// PostgreSQL (migrated, not yet leader).
    pub fn open_config(cfg: &crate::store::config::StorageConfig) -> Result<Store, StoreError> {
        match &cfg.db.backend {
            config::Backend::Sqlite => Self::open(&cfg.path),
            config::Backend::Postgres(dsn) => Self::open_postgres(&dsn.read()?),
        }
    }

    /// Connects to PostgreSQL and applies missing migrations. The store
    /// starts as a follower: [`leader::spawn`] elects.
    pub fn open_postgres(dsn: &str) -> Result<Store, StoreError> {
        let health = std::sync::Arc::new(health::Health::default());
        let pg = pg::Pg::new(dsn, health.clone())?;
        let applied = pg::migrate(&pg)?;
        tracing::info!(server = %pg.label, ?applied, "store: postgres ready");
        Ok(Store {
            backend: Backend::Postgres(Box::new(pg)),
            path: None,
            leader: tokio::sync::watch::Sender::new(false),
            election: Default::default(),
            health,
            exec: health::Executor::new(),
            gate: Default::default(),
        })
    }

    /// The PostgreSQL backend, if that is the one in use.
    pub(crate) fn pg(&self) -> Option<&pg::Pg> {
        match &self.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// True when replicas share this store (PostgreSQL): only the elected
    /// leader sends.
    pub fn is_shared(&self) -> bool {
        self.pg().is_some()
    }

    /// Whether this process is the one that sends notifications.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Watches leadership changes.
    pub fn leader_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leader.subscribe()
    }

    pub(crate) fn set_leader(&self, on: bool) {
        self.leader.send_replace(on);
    }

    /// The election, when one runs.
    pub fn election(&self) -> Option<&std::sync::Arc<leader::Election>> {
        self.election.get()
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Failed store calls of either backend (connects and statements with
    /// PostgreSQL), stalls included.
    pub fn errors_total(&self) -> u64 {
        self.health.errors()
    }

    /// Opens (creating if needed) `dir/klaxon.db` with WAL journaling and
    /// `synchronous=FULL`: a committed alert state or outbox row survives a
    /// crash of the process and of the machine.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let shown = path.display().to_string();
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: shown.clone(),
            source,
        })?;
        conn.execute_batch(
            // busy_timeout first: switching a new file to WAL while another
            // process opens it too would otherwise fail at once as "locked".
            // wal_autocheckpoint: the WAL restarts from its beginning only
            // after a checkpoint; SQLite's default (1000 pages, 4 MB) lets
            // it take a whole small volume, and a checkpoint needs room in
            // the database file, so a full disk would stay full for good
            // even once space is freed. 100 pages (400 kB) keep the WAL
            // small; journal_size_limit gives back what a burst grew.
            "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             PRAGMA wal_autocheckpoint=100; PRAGMA journal_size_limit=4194304;",
        )
        .map_err(|source| StoreError::Open {
            path: shown,
            source,
        })?;
        Self::init(conn, Some(path))
    }

    /// A private database in memory, for tests and `klaxon test rules`.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".into(),
            source,
        })?;
        Self::init(conn, None)
    }

    fn init(conn: Connection, path: Option<PathBuf>) -> Result<Store, StoreError> {
        for (schema, sql) in SCHEMAS {
            conn.execute_batch(sql)
                .map_err(|source| StoreError::Schema { schema, source })?;
        }
        Ok(Store {
            backend: Backend::Sqlite(Mutex::new(conn)),
            path,
            leader: tokio::sync::watch::Sender::new(true),
            election: Default::default(),
            health: Default::default(),
            exec: health::Executor::new(),
            gate: Default::default(),
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on the SQLite connection under the store's lock (an error
    /// with PostgreSQL). Keep `f` short, other stages wait on the same lock.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(m) => self.health.track(self.on_sqlite(m, f)),
            Backend::Postgres(_) => Err(StoreError::Unavailable(
                "this operation needs the sqlite backend".into(),
            )),
        }
    }

    /// [`Store::with_conn`] ahead of the queue: the caller takes the
    /// connection as soon as the current holder releases it, before callers
    /// already waiting. For short writes whose delay costs correctness
    /// (recording a delivery the receiver acknowledged).
    pub fn with_conn_first<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(m) => self.health.track(self.on_sqlite_as(true, m, f)),
            Backend::Postgres(_) => Err(StoreError::Unavailable(
                "this operation needs the sqlite backend".into(),
            )),
        }
    }

    /// Runs `f` with the SQLite connection once it is free: behind a call
    /// stuck on a frozen disk (nobody got the connection for the call
    /// timeout) the others give up with [`StoreError::Stalled`] instead of
    /// queueing for good.
    fn on_sqlite<T>(
        &self,
        m: &Mutex<Connection>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.on_sqlite_as(false, m, f)
    }

    fn on_sqlite_as<T>(
        &self,
        priority: bool,
        m: &Mutex<Connection>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let timeout = self.health.timeout();
        let Some(_pass) = self.gate.enter(priority, timeout) else {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "store: nobody got the connection for the call timeout (a call is stuck)"
            );
            return Err(StoreError::Stalled(timeout));
        };
        // Uncontended: only the gate's pass holder locks it.
        let mut c = m.lock();
        self.health.fault_point()?;
        let r = f(&mut c);
        if r.as_ref().err().is_some_and(is_disk_full) {
            reclaim_wal(&c);
        }
        r
    }

    /// Runs one of two implementations of the same operation, by backend.
    pub(crate) fn dispatch<T, P>(
        &self,
        lite: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
        pg: P,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        P: for<'a> FnOnce(&'a mut tokio_postgres::Client) -> pg::PgFut<'a, T> + Send + 'static,
    {
        match &self.backend {
            Backend::Sqlite(m) => self.health.track(self.on_sqlite(m, lite)),
            // The PostgreSQL backend counts its own failures (connects too).
            Backend::Postgres(p) => p.run(pg),
        }
    }

    /// True when a trivial write commits: the heartbeat's "store writable".
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.dispatch(
            |c| {
                c.execute_batch(
                    "CREATE TABLE IF NOT EXISTS store_probe (id INTEGER PRIMARY KEY, at INTEGER);
                     INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, strftime('%s','now'));",
                )?;
                Ok(())
            },
            |c| {
                Box::pin(async move {
                    c.batch_execute(
                        "INSERT INTO store_probe (id, at) VALUES (1, extract(epoch from now())::bigint)
                         ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at",
                    )
                    .await?;
                    Ok(())
                })
            },
        )
    }
}

/// SQLite's "database or disk is full".
fn is_disk_full(e: &StoreError) -> bool {
    matches!(e, StoreError::Sql(rusqlite::Error::SqliteFailure(f, _))
        if f.code == rusqlite::ErrorCode::DiskFull)
}

/// After a full disk: copies the WAL into the database and truncates it.
/// The WAL only restarts from its beginning at a checkpoint, which runs
/// every 1000 pages (4 MB); on a small volume it would otherwise keep the
/// disk full for good, even after space was freed.
fn reclaim_wal(c: &Connection) {
    if let Err(e) = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::debug!(error = %e, "store: checkpoint after a full disk failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_twice_and_is_writable() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.check_writable().unwrap();
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.path().unwrap(), dir.path().join(DB_FILE));
        s.check_writable().unwrap();
    }

    #[test]
    fn unusable_dir_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = Store::open(&file.join("sub")).err().unwrap().to_string();
        assert!(e.contains("creating directory"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
    }
}
