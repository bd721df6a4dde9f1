//! Alerts accepted by `POST /api/v2/alerts`: one row per alert (keyed by its
//! fingerprint) holding the dispatcher's merged state, written in one
//! transaction per request before the request is answered, and loaded back
//! at start, so a 200 survives a crash as rule alerts do.

use super::pg::sql;
use super::row::{lite_rows, pg_rows};
use super::{Store, StoreError};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS posted_alerts (
    fingerprint TEXT PRIMARY KEY,
    updated_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    body TEXT NOT NULL
);";

/// The same, as a PostgreSQL migration.
pub(crate) const PG_SCHEMA: &str = "CREATE TABLE posted_alerts (
    fingerprint TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    body TEXT NOT NULL
);";

/// An older state never replaces a newer one (two requests racing).
const PUT: &str = "INSERT INTO posted_alerts (fingerprint, updated_at, ends_at, body)
    VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (fingerprint) DO UPDATE SET updated_at = excluded.updated_at,
        ends_at = excluded.ends_at, body = excluded.body
    WHERE excluded.updated_at >= posted_alerts.updated_at";
const LOAD: &str = "SELECT body FROM posted_alerts ORDER BY fingerprint";
const GC: &str = "DELETE FROM posted_alerts WHERE ends_at < ?1";

/// One alert's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 16 hex digits.
    pub fingerprint: String,
    pub updated_at: i64,
    pub ends_at: i64,
    /// The alert as JSON (the dispatcher's format).
    pub body: String,
}

/// Writes `rows` in one transaction.
pub fn put(store: &Store, rows: &[Row]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let owned = rows.to_vec();
    store.dispatch(
        |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(PUT)?;
                for r in rows {
                    st.execute((&r.fingerprint, r.updated_at, r.ends_at, &r.body))?;
                }
            }
            tx.commit()?;
            Ok(())
        },
        move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                let st = tx.prepare(&sql(PUT)).await?;
                for r in &owned {
                    tx.execute(&st, &[&r.fingerprint, &r.updated_at, &r.ends_at, &r.body])
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            })
        },
    )
}

/// Every stored alert's JSON.
pub fn load_all(store: &Store) -> Result<Vec<String>, StoreError> {
    store.dispatch(
        |c| lite_rows(&mut c.prepare(LOAD)?, []),
        |c| Box::pin(async move { pg_rows(&c.query(LOAD, &[]).await?) }),
    )
}

/// Forgets alerts that ended before `cutoff` (ms).
pub fn gc(store: &Store, cutoff: i64) -> Result<usize, StoreError> {
    store.dispatch(
        |c| Ok(c.execute(GC, [cutoff])?),
        move |c| Box::pin(async move { Ok(c.execute(&sql(GC), &[&cutoff]).await? as usize) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fp: &str, updated_at: i64, ends_at: i64) -> Row {
        Row {
            fingerprint: fp.into(),
            updated_at,
            ends_at,
            body: format!("{fp}@{updated_at}"),
        }
    }

    #[test]
    fn newer_state_wins_and_gc_drops_ended() {
        let s = Store::open_in_memory().unwrap();
        put(&s, &[row("a", 2, 100), row("b", 1, 10)]).unwrap();
        put(&s, &[row("a", 1, 100)]).unwrap();
        assert_eq!(load_all(&s).unwrap(), ["a@2", "b@1"]);
        put(&s, &[row("a", 3, 100)]).unwrap();
        assert_eq!(gc(&s, 50).unwrap(), 1);
        assert_eq!(load_all(&s).unwrap(), ["a@3"]);
    }
}
