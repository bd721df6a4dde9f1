//! Tables of `(key TEXT PRIMARY KEY, body TEXT)` rows (silences, the API's
//! auto-healing rules): put, delete and load by the owning module's SQL.

use super::pg::sql;
use super::row::{lite_rows, pg_rows};
use super::{Store, StoreError};

/// Runs `put` (`INSERT ... VALUES (?1, ?2) ON CONFLICT ... DO UPDATE`).
pub(crate) fn put(
    store: &Store,
    put: &'static str,
    key: &str,
    body: &str,
) -> Result<(), StoreError> {
    let (k, b) = (key.to_string(), body.to_string());
    store.dispatch(
        |c| {
            c.execute(put, (key, body))?;
            Ok(())
        },
        move |c| {
            Box::pin(async move {
                c.execute(&sql(put), &[&k, &b]).await?;
                Ok(())
            })
        },
    )
}

/// Runs `delete` (`DELETE ... WHERE key = ?1`).
pub(crate) fn delete(store: &Store, delete: &'static str, key: &str) -> Result<(), StoreError> {
    let k = key.to_string();
    store.dispatch(
        |c| {
            c.execute(delete, [key])?;
            Ok(())
        },
        move |c| {
            Box::pin(async move {
                c.execute(&sql(delete), &[&k]).await?;
                Ok(())
            })
        },
    )
}

/// Runs `load` (`SELECT key, body ...`, no parameters).
pub(crate) fn load(store: &Store, load: &'static str) -> Result<Vec<(String, String)>, StoreError> {
    store.dispatch(
        |c| lite_rows(&mut c.prepare(load)?, []),
        move |c| Box::pin(async move { pg_rows(&c.query(load, &[]).await?) }),
    )
}
