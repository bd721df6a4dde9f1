//! The PostgreSQL backend's connection handling.
//!
//! Why a dedicated runtime thread: the store API is synchronous (it is
//! called from plain threads, `spawn_blocking` closures and — for short
//! calls, as with SQLite — directly from async handlers), while
//! tokio-postgres is async. `Handle::block_on` panics when called from
//! inside any runtime, so instead every call is *spawned* onto a
//! current-thread runtime owned by one `klaxon-store` thread and the caller
//! waits on a std channel. Waiting on a std channel never panics; it blocks
//! the calling thread for the length of one short statement, exactly what a
//! contended SQLite mutex did before. The store's own runtime never calls
//! back into the synchronous API, so it cannot deadlock on itself.
//!
//! Each [`Slot`] is one connection, used by one request at a time (like the
//! SQLite mutex): the store's queries share one slot, leader election holds
//! its advisory lock on another. A slot whose connection closed or failed
//! reconnects on next use, after a backoff that doubles up to 5 s (calls
//! fail fast meanwhile); every failure is counted in
//! `klaxon_store_errors_total` and the last one is kept for the heartbeat.

use super::StoreError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// The future a store query returns, borrowing the connection.
pub type PgFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Longest any one call may take, connect included: a hung server must not
/// hold a caller (or the leader's renewal) forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One connection, re-established on demand.
#[derive(Default)]
pub struct Slot {
    inner: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    client: Option<Client>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

/// The backend: connection settings, the runtime thread and counters.
pub struct Pg {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
    config: tokio_postgres::Config,
    /// `host:port/db`, the only part of the DSN ever logged.
    pub label: String,
    pub main: Arc<Slot>,
    /// Recording delivery outcomes: a connection of its own, so a
    /// receiver's acknowledgement is committed without waiting behind the
    /// other statements on `main`.
    pub deliveries: Arc<Slot>,
    /// The store's counters: every failure is counted there.
    health: Arc<super::health::Health>,
}

impl Pg {
    /// Parses `dsn` (never shown in errors or logs) and starts the runtime
    /// thread; does not connect yet.
    pub fn new(dsn: &str, health: Arc<super::health::Health>) -> Result<Pg, StoreError> {
        let parsed = crate::net::pg_dsn::parse(dsn)
            .map_err(|e| StoreError::Config(format!("storage.dsn: {e}")))?;
        let mut config = parsed.config;
        let db = config
            .get_dbname()
            .map(str::to_string)
            .or_else(|| config.get_user().map(str::to_string))
            .unwrap_or_default();
        // Client side: notice a dead server within about 15 s.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .connect_timeout(Duration::from_secs(5))
            .tcp_user_timeout(Duration::from_secs(15));
        // Server side: the same, so a half-dead leader's session (and its
        // advisory lock) is dropped by the server too.
        config.options(
            "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3",
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (htx, hrx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("klaxon-store".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = htx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = htx.send(Ok(rt.handle().clone()));
                rt.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| StoreError::Unavailable(format!("store thread: {e}")))?;
        let handle = hrx
            .recv()
            .map_err(|_| StoreError::Unavailable("store thread died".into()))?
            .map_err(|e| StoreError::Unavailable(format!("store runtime: {e}")))?;
        Ok(Pg {
            handle,
            _stop: stop,
            label: format!("{}/{}", parsed.server, db),
            config,
            main: Arc::new(Slot::default()),
            deliveries: Arc::new(Slot::default()),
            health,
        })
    }

    /// Runs `f` on the main connection.
    pub fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Client) -> PgFut<'a, T> + Send + 'static,
    {
        self.run_on(&self.main.clone(), f)
    }

    /// Runs `f` on `slot`'s connection (connecting first if needed) on the
    /// store runtime and waits for it. A connection that failed is dropped,
    /// so the next call reconnects.
    pub fn run_on<T, F>(&self, slot: &Arc<Slot>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Client) -> PgFut<'a, T> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let slot = slot.clone();
        let config = self.config.clone();
        let label = self.label.clone();
        let health = self.health.clone();
        let timeout = health.timeout().max(CALL_TIMEOUT);
        self.handle.spawn(async move {
            let mut st = slot.inner.lock().await;
            if let Err(e) = health.fault_point() {
                health.record_error(&e);
                let _ = tx.send(Err(e));
                return;
            }
            let r =
                match tokio::time::timeout(CALL_TIMEOUT, call(&mut st, &config, &label, f)).await {
                    Ok(r) => r,
                    Err(_) => {
                        st.client = None;
                        Err(StoreError::Unavailable(format!(
                            "postgres {label}: timed out after {CALL_TIMEOUT:?}"
                        )))
                    }
                };
            if let Err(e) = &r {
                health.record_error(e);
            }
            let _ = tx.send(r);
        });
        match rx.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let e = StoreError::Stalled(timeout);
                self.health.record_error(&e);
                Err(e)
            }
            Err(_) => Err(StoreError::Unavailable("store runtime stopped".into())),
        }
    }

    /// Drops `slot`'s connection (the server then frees its session locks).
    pub fn disconnect(&self, slot: &Arc<Slot>) {
        let slot = slot.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            slot.inner.lock().await.client = None;
            let _ = tx.send(());
        });
        let _ = rx.recv();
    }
}

async fn call<T, F>(
    st: &mut SlotState,
    config: &tokio_postgres::Config,
    label: &str,
    f: F,
) -> Result<T, StoreError>
where
    F: for<'a> FnOnce(&'a mut Client) -> PgFut<'a, T>,
{
    if st.client.as_ref().is_some_and(|c| c.is_closed()) {
        st.client = None;
    }
    if st.client.is_none() {
        if let Some(at) = st.retry_at {
            if Instant::now() < at {
                return Err(StoreError::Unavailable(format!(
                    "postgres {label}: not connected (retrying in {:?})",
                    at - Instant::now()
                )));
            }
        }
        match config.connect(NoTls).await {
            Ok((client, conn)) => {
                let label = label.to_string();
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::warn!(server = %label, error = %e, "store: postgres connection closed");
                    }
                });
                st.client = Some(client);
                st.backoff = Duration::ZERO;
                st.retry_at = None;
            }
            Err(e) => {
                st.backoff = (st.backoff * 2).clamp(Duration::from_millis(200), MAX_BACKOFF);
                st.retry_at = Some(Instant::now() + st.backoff);
                tracing::warn!(server = %label, error = %e, "store: connecting to postgres failed");
                return Err(StoreError::Unavailable(format!(
                    "postgres {label}: connect: {e}"
                )));
            }
        }
    }
    let Some(client) = st.client.as_mut() else {
        return Err(StoreError::Unavailable(format!(
            "postgres {label}: not connected"
        )));
    };
    let r = f(client).await;
    if let Err(StoreError::Pg(e)) = &r {
        // A statement error leaves the session usable; a closed one does not.
        if e.is_closed() || client.is_closed() || e.as_db_error().is_none() {
            st.client = None;
        }
    }
    r
}

/// `?N` placeholders (SQLite) as `$N` (PostgreSQL), so one SQL text serves
/// both where the dialects agree.
pub fn sql(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A typed column of a row, as an error (not a panic) when the type is off.
pub fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    r: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T, StoreError> {
    r.try_get(i).map_err(StoreError::Pg)
}

/// Versioned migrations: `(version, name, sql)`, applied in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "alerts", super::alerts::PG_SCHEMA),
    (2, "notify", super::notify::PG_SCHEMA),
    (3, "audit", super::audit::PG_SCHEMA),
    (4, "notify_log", super::notify_log::PG_SCHEMA),
    (5, "silences", super::silences::PG_SCHEMA),
    (
        6,
        "store_probe",
        "CREATE TABLE store_probe (id BIGINT PRIMARY KEY, at BIGINT NOT NULL);",
    ),
    (7, "posted_alerts", super::posted::PG_SCHEMA),
    (8, "autoheal_rules", super::autoheal::PG_SCHEMA),
];

/// Advisory lock key serialising migrations across replicas ("klaxonmg").
const MIGRATION_LOCK: i64 = 0x6b6c_6178_6f6e_6d67;

/// Applies the missing migrations in one transaction under a transaction
/// advisory lock: two replicas starting together take turns, and the second
/// finds everything applied. Returns the versions it applied.
pub fn migrate(pg: &Pg) -> Result<Vec<i64>, StoreError> {
    pg.run(|c| {
        Box::pin(async move {
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS klaxon_schema_migrations (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
            let have: Vec<i64> = tx
                .query("SELECT version FROM klaxon_schema_migrations", &[])
                .await?
                .iter()
                .map(|r| col::<i64>(r, 0))
                .collect::<Result<_, _>>()?;
            let mut applied = Vec::new();
            for (version, name, body) in MIGRATIONS {
                if have.contains(version) {
                    continue;
                }
                tx.batch_execute(body)
                    .await
                    .map_err(|e| StoreError::Migration {
                        version: *version,
                        name,
                        source: e,
                    })?;
                tx.execute(
                    "INSERT INTO klaxon_schema_migrations (version, name) VALUES ($1, $2)",
                    &[version, name],
                )
                .await?;
                applied.push(*version);
            }
            tx.commit().await?;
            Ok(applied)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_not_question_marks() {
        assert_eq!(
            sql("a = ?1 AND b = ?12 AND c = '?' OR ?"),
            "a = $1 AND b = $12 AND c = '?' OR ?"
        );
    }

    #[test]
    fn a_bad_dsn_is_an_error_that_does_not_echo_it() {
        let e = Pg::new("postgresql://u:hunter2@h:notaport/db", Default::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("storage.dsn"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let v: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
        let mut sorted = v.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(v, sorted);
    }
}
