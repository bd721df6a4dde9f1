//! Auto-healing rules created through the API: one row per rule, its JSON
//! body as the admin sent it (secrets included: the store is as private as
//! the config file), so a restart keeps them.

use super::pg::col;
use super::{Store, StoreError};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS autoheal_rules (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);";

/// The same, as PostgreSQL migration 8.
pub(crate) const PG_SCHEMA: &str = "CREATE TABLE autoheal_rules (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);";

const PUT: &str = "INSERT INTO autoheal_rules (name, body) VALUES (?1, ?2)
    ON CONFLICT (name) DO UPDATE SET body = excluded.body";
const DELETE: &str = "DELETE FROM autoheal_rules WHERE name = ?1";
const LOAD: &str = "SELECT name, body FROM autoheal_rules ORDER BY name";

/// Inserts or replaces one rule.
pub fn put(store: &Store, name: &str, body: &str) -> Result<(), StoreError> {
    let (i, b) = (name.to_string(), body.to_string());
    store.dispatch(
        |c| {
            c.execute(PUT, (name, body))?;
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

/// Removes one rule.
pub fn delete(store: &Store, name: &str) -> Result<(), StoreError> {
    let i = name.to_string();
    store.dispatch(
        |c| {
            c.execute(DELETE, [name])?;
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

/// Every stored silence as `(name, body)`.
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
    fn rules_survive_reopening() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let s = Store::open(dir.path()).expect("open");
            put(&s, "a", "{\"x\": 1}").expect("put");
            put(&s, "b", "{}").expect("put");
            put(&s, "a", "{\"x\": 2}").expect("replace");
            delete(&s, "b").expect("delete");
        }
        let s = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            load_all(&s).expect("load"),
            [("a".to_string(), "{\"x\": 2}".to_string())]
        );
    }
}
