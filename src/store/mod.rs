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
pub mod config;
pub mod leader;
pub mod notify;
pub mod notify_log;
pub mod pg;
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
}

impl Store {
    /// Opens the backend `cfg` names: SQLite under `cfg.path`, or
    /// PostgreSQL (migrated, not yet leader).
    pub fn open_config(cfg: &crate::config::StorageConfig) -> Result<Store, StoreError> {
        match &cfg.db.backend {
            config::Backend::Sqlite => Self::open(&cfg.path),
            config::Backend::Postgres(dsn) => Self::open_postgres(&dsn.read()?),
        }
    }

    /// Connects to PostgreSQL and applies missing migrations. The store
    /// starts as a follower: [`leader::spawn`] elects.
    pub fn open_postgres(dsn: &str) -> Result<Store, StoreError> {
        let pg = pg::Pg::new(dsn)?;
        let applied = pg::migrate(&pg)?;
        tracing::info!(server = %pg.label, ?applied, "store: postgres ready");
        Ok(Store {
            backend: Backend::Postgres(Box::new(pg)),
            path: None,
            leader: tokio::sync::watch::Sender::new(false),
            election: Default::default(),
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

    /// Failed PostgreSQL connects and statements (0 with SQLite).
    pub fn errors_total(&self) -> u64 {
        self.pg().map_or(0, pg::Pg::errors)
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
            "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
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
            Backend::Sqlite(m) => f(&mut m.lock()),
            Backend::Postgres(_) => Err(StoreError::Unavailable(
                "this operation needs the sqlite backend".into(),
            )),
        }
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
            Backend::Sqlite(m) => lite(&mut m.lock()),
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
