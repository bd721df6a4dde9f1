//! The notification log (Alertmanager's nflog): for each receiver
//! and group key, which alerts were firing and resolved at the last
//! notification and when it was sent. The dispatcher consults it before every
//! flush, so a restarted klaxon does not page again for a firing set it
//! already notified within `repeat_interval`.

use super::pg::sql;
use super::row::{lite_rows, pg_rows, FromRow, Row};
use super::{Store, StoreError};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS notify_log (
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (receiver, group_key)
);";

/// The same, as PostgreSQL migration 4.
pub(crate) const PG_SCHEMA: &str = "CREATE TABLE notify_log (
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (receiver, group_key)
);";

const PUT: &str = "INSERT INTO notify_log
    (receiver, group_key, firing, resolved, sent_at, expires_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (receiver, group_key) DO UPDATE SET firing = excluded.firing,
    resolved = excluded.resolved, sent_at = excluded.sent_at, expires_at = excluded.expires_at";
const LOAD: &str = "SELECT receiver, group_key, firing, resolved, sent_at, expires_at
    FROM notify_log WHERE expires_at > ?1";
const GET: &str = "SELECT receiver, group_key, firing, resolved, sent_at, expires_at
    FROM notify_log WHERE receiver = ?1 AND group_key = ?2";
const GC: &str = "DELETE FROM notify_log WHERE expires_at <= ?1";

impl FromRow for LogEntry {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        Ok(LogEntry {
            receiver: r.col(0)?,
            group_key: r.col(1)?,
            firing: decode(&r.col::<String>(2)?)?,
            resolved: decode(&r.col::<String>(3)?)?,
            sent_at: r.col(4)?,
            expires_at: r.col(5)?,
        })
    }
}

/// One entry: fingerprints as numbers, times in ms since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub receiver: String,
    pub group_key: String,
    pub firing: Vec<u64>,
    pub resolved: Vec<u64>,
    pub sent_at: i64,
    pub expires_at: i64,
}

fn encode(v: &[u64]) -> String {
    v.iter()
        .map(|f| format!("{f:016x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn decode(s: &str) -> Result<Vec<u64>, StoreError> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            u64::from_str_radix(x, 16)
                .map_err(|e| StoreError::Data(format!("notify_log fingerprint {x:?}: {e}")))
        })
        .collect()
}

/// Writes (replaces) the entry of its receiver and group key.
pub fn put(store: &Store, e: &LogEntry) -> Result<(), StoreError> {
    let e2 = e.clone();
    store.dispatch(
        |c| put_sqlite(c, e),
        move |c| Box::pin(async move { put_pg(c, &e2).await }),
    )
}

/// [`put`] on an SQLite connection or transaction.
pub(crate) fn put_sqlite(c: &rusqlite::Connection, e: &LogEntry) -> Result<(), StoreError> {
    c.execute(
        PUT,
        (
            &e.receiver,
            &e.group_key,
            encode(&e.firing),
            encode(&e.resolved),
            e.sent_at,
            e.expires_at,
        ),
    )?;
    Ok(())
}

/// [`put`] on a PostgreSQL client or transaction.
pub(crate) async fn put_pg(
    c: &impl tokio_postgres::GenericClient,
    e: &LogEntry,
) -> Result<(), StoreError> {
    let (f, r) = (encode(&e.firing), encode(&e.resolved));
    c.execute(
        &sql(PUT),
        &[&e.receiver, &e.group_key, &f, &r, &e.sent_at, &e.expires_at],
    )
    .await?;
    Ok(())
}

/// Every entry not expired at `now`.
pub fn load_live(store: &Store, now: i64) -> Result<Vec<LogEntry>, StoreError> {
    store.dispatch(
        |c| lite_rows(&mut c.prepare(LOAD)?, [now]),
        move |c| Box::pin(async move { pg_rows(&c.query(&sql(LOAD), &[&now]).await?) }),
    )
}

/// The current entry of one receiver and group. An HA follower's
/// dispatcher reads this instead of its memory: the leader wrote it.
pub fn get(store: &Store, receiver: &str, group_key: &str) -> Result<Option<LogEntry>, StoreError> {
    let (r2, g2) = (receiver.to_string(), group_key.to_string());
    store.dispatch(
        |c| Ok(lite_rows(&mut c.prepare(GET)?, [receiver, group_key])?.pop()),
        move |c| {
            Box::pin(async move {
                c.query_opt(&sql(GET), &[&r2, &g2])
                    .await?
                    .as_ref()
                    .map(LogEntry::from_row)
                    .transpose()
            })
        },
    )
}

/// Drops entries expired at `now`; returns how many.
pub fn gc(store: &Store, now: i64) -> Result<usize, StoreError> {
    store.dispatch(
        |c| Ok(c.execute(GC, [now])?),
        move |c| Box::pin(async move { Ok(c.execute(&sql(GC), &[&now]).await? as usize) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_gc() {
        let s = Store::open_in_memory().unwrap();
        let e = LogEntry {
            receiver: "r".into(),
            group_key: "{}:{a=\"1\"}".into(),
            firing: vec![1, u64::MAX],
            resolved: vec![],
            sent_at: 10,
            expires_at: 100,
        };
        put(&s, &e).unwrap();
        assert_eq!(load_live(&s, 50).unwrap(), std::slice::from_ref(&e));
        assert_eq!(get(&s, "r", &e.group_key).unwrap().as_ref(), Some(&e));
        assert_eq!(get(&s, "r2", &e.group_key).unwrap(), None);
        assert!(load_live(&s, 100).unwrap().is_empty());
        assert_eq!(gc(&s, 100).unwrap(), 1);
    }
}
