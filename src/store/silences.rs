//! Silences: one row per silence, its JSON body as the API shows
//! it, so a restart keeps every pending, active and recently expired silence.

use super::pg::col;
use super::{Store, StoreError};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);";

/// The same, as PostgreSQL migration 5.
pub(crate) const PG_SCHEMA: &str = "CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);";

const PUT: &str = "INSERT INTO silences (id, body) VALUES (?1, ?2)
    ON CONFLICT (id) DO UPDATE SET body = excluded.body";
const DELETE: &str = "DELETE FROM silences WHERE id = ?1";
const LOAD: &str = "SELECT id, body FROM silences ORDER BY id";

/// Inserts or replaces one silence.
pub fn put(store: &Store, id: &str, body: &str) -> Result<(), StoreError> {
    let (i, b) = (id.to_string(), body.to_string());
    store.dispatch(
        |c| {
            c.execute(PUT, (id, body))?;
            Ok(())
        },
        move |c| {
            Box::pin(async move {
                c.execute(&super::pg::sql(PUT), &[&i, &b]).await?;
                Ok(())
            })
        },
    )
}

/// Removes silences past retention.
pub fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    let i = id.to_string();
    store.dispatch(
        |c| {
            c.execute(DELETE, [id])?;
            Ok(())
        },
        move |c| {
            Box::pin(async move {
                c.execute(&super::pg::sql(DELETE), &[&i]).await?;
                Ok(())
            })
        },
    )
}

/// Every stored silence as `(id, body)`.
pub fn load_all(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    store.dispatch(
        |c| {
            let mut st = c.prepare(LOAD)?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        },
        |c| {
            Box::pin(async move {
                c.query(LOAD, &[])
                    .await?
                    .iter()
                    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
                    .collect()
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_replace_delete() {
        let s = Store::open_in_memory().unwrap();
        put(&s, "a", "1").unwrap();
        put(&s, "a", "2").unwrap();
        put(&s, "b", "3").unwrap();
        assert_eq!(
            load_all(&s).unwrap(),
            [("a".into(), "2".into()), ("b".into(), "3".into())]
        );
        delete(&s, "a").unwrap();
        assert_eq!(load_all(&s).unwrap().len(), 1);
    }
}
