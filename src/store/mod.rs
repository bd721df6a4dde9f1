//! The embedded store: one SQLite file (`klaxon.db` under `storage.path`)
//! for the state that must survive a restart — alert state, the notification
//! outbox and delivery log, silences, the audit trail.
//!
//! Why SQLite (rusqlite, bundled): durable single commits at a few thousand
//! per second with WAL + `synchronous=FULL`, inspectable with the `sqlite3`
//! CLI, and the same schema ideas carry over to the PostgreSQL backend the
//! HA mode needs (docs: ../shared/research/crates-and-anchors.md, A.5).
//!
//! Each concern owns a submodule with its schema and typed functions; no SQL
//! leaves this module. Calls are synchronous and short: async callers use
//! `spawn_blocking` for anything that may touch many rows.

use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

pub mod alerts;
pub mod audit;
pub mod notify;
pub mod notify_log;
pub mod silences;

/// File name of the database inside `storage.path`.
pub const DB_FILE: &str = "klaxon.db";

/// Every schema, applied in order at open. Statements use
/// `CREATE ... IF NOT EXISTS`, so applying them to an existing file is a no-op.
const SCHEMAS: &[(&str, &str)] = &[
    ("alerts", alerts::SCHEMA),
    ("notify", notify::SCHEMA),
    ("audit", audit::SCHEMA),
    ("notify_log", notify_log::SCHEMA),
    ("silences", silences::SCHEMA),
];

/// Why the store could not be opened or used.
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
    #[error("store: {0}")]
    Data(String),
}

/// A handle on the database; cheap to share behind an `Arc`.
pub struct Store {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl Store {
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
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on the connection under the store's lock. Submodules use this;
    /// keep `f` short, other stages wait on the same lock.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.conn.lock();
        f(&mut c)
    }

    /// True when a trivial write commits: the heartbeat's "store writable".
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.with_conn(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS store_probe (id INTEGER PRIMARY KEY, at INTEGER);
                 INSERT OR REPLACE INTO store_probe (id, at) VALUES (1, strftime('%s','now'));",
            )?;
            Ok(())
        })
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
