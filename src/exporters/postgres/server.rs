//! One PostgreSQL server: a reused connection, re-established when it
//! closes or a query times out, and every query bounded by a deadline so a
//! hung database never holds up the scrape.

use crate::net::pg_dsn::ParsedDsn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, SimpleQueryRow};

/// Why a query gave no rows. Never carries the DSN.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("connect to {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{what} on {server}: timed out")]
    Timeout { server: String, what: String },
    #[error("{what} on {server}: {source}")]
    Db {
        server: String,
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl QueryError {
    pub fn db_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            QueryError::Db { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub struct Server {
    /// `host:port`, the `server` label.
    pub label: String,
    pub dbname: String,
    config: tokio_postgres::Config,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// Failed connects and queries, `pg_exporter_errors_total{server}`.
    pub errors: AtomicU64,
    /// Whether the last connect worked: a down server is logged once at
    /// warn (then at debug every scrape), not every scrape interval.
    pub reachable: std::sync::atomic::AtomicBool,
    /// Auto-discovered databases of this server, by name.
    pub children: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Server>>>,
}

impl Server {
    pub fn new(dsn: ParsedDsn) -> Self {
        let mut config = dsn.config;
        if config.get_application_name().is_none() {
            config.application_name("klaxon_postgres_exporter");
        }
        // Timestamps are parsed as UTC ISO text (see `row`); set per
        // session at startup, no extra round trip.
        let opts = match config.get_options() {
            Some(o) => format!("{o} -c TimeZone=UTC -c DateStyle=ISO"),
            None => "-c TimeZone=UTC -c DateStyle=ISO".to_string(),
        };
        config.options(opts);
        let dbname = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        Server {
            label: dsn.server,
            dbname,
            config,
            client: tokio::sync::Mutex::new(None),
            errors: AtomicU64::new(0),
            reachable: std::sync::atomic::AtomicBool::new(true),
            children: Default::default(),
        }
    }

    /// The same server, another database (auto-discovery).
    pub fn for_database(&self, db: &str) -> Server {
        let mut config = self.config.clone();
        config.dbname(db);
        Server {
            label: self.label.clone(),
            dbname: db.to_string(),
            config,
            client: tokio::sync::Mutex::new(None),
            errors: AtomicU64::new(0),
            reachable: std::sync::atomic::AtomicBool::new(true),
            children: Default::default(),
        }
    }

    pub fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The live connection, or a new one made before `deadline`.
    pub async fn client(&self, deadline: Instant) -> Result<Arc<Client>, QueryError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        *slot = None;
        let connect = self.config.connect(NoTls);
        let (client, conn) = match timeout_at(deadline, connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(source)) => {
                return Err(QueryError::Connect {
                    server: self.label.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(QueryError::Timeout {
                    server: self.label.clone(),
                    what: "connect".into(),
                })
            }
        };
        let label = self.label.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(server = %label, error = %e, "postgres connection closed");
            }
        });
        let c = Arc::new(client);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection; the next scrape connects afresh. Used after
    /// a timeout: the session may be stuck behind the slow query.
    pub async fn reset(&self) {
        if let Some(c) = self.client.lock().await.take() {
            let token = c.cancel_token();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    token.cancel_query(NoTls),
                )
                .await;
            });
        }
    }

    /// Runs one statement (simple query protocol) before `deadline`.
    pub async fn query(
        &self,
        client: &Client,
        what: &str,
        sql: &str,
        deadline: Instant,
    ) -> Result<Vec<SimpleQueryRow>, QueryError> {
        match timeout_at(deadline, client.simple_query(sql)).await {
            Ok(Ok(msgs)) => Ok(msgs
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some(r),
                    _ => None,
                })
                .collect()),
            Ok(Err(source)) => Err(QueryError::Db {
                server: self.label.clone(),
                what: what.to_string(),
                source,
            }),
            Err(_) => Err(QueryError::Timeout {
                server: self.label.clone(),
                what: what.to_string(),
            }),
        }
    }
}
