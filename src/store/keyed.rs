//! Tables of `(key TEXT PRIMARY KEY, body TEXT)` rows (silences, the API's
//! auto-healing rules): put, delete and load by the owning module's SQL.

use super::pg::{col, sql};
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
        |c| {
            let mut st = c.prepare(load)?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        },
        move |c| {
            Box::pin(async move {
                c.query(load, &[])
                    .await?
                    .iter()
                    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                    .collect()
            })
        },
    )
}
