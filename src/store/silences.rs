//! Silences (issue 5): one row per silence, its JSON body as the API shows
//! it, so a restart keeps every pending, active and recently expired silence.

use super::{Store, StoreError};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);";

/// Inserts or replaces one silence.
pub fn put(store: &Store, id: &str, body: &str) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "INSERT OR REPLACE INTO silences (id, body) VALUES (?1, ?2)",
            (id, body),
        )?;
        Ok(())
    })
}

/// Removes silences past retention.
pub fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute("DELETE FROM silences WHERE id = ?1", [id])?;
        Ok(())
    })
}

/// Every stored silence as `(id, body)`.
pub fn load_all(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    store.with_conn(|c| {
        let mut st = c.prepare("SELECT id, body FROM silences ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
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
