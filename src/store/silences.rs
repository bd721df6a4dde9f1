//! Silences: one row per silence, its JSON body as the API shows
//! it, so a restart keeps every pending, active and recently expired silence.

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
    super::keyed::put(store, PUT, id, body)
}

/// Removes silences past retention.
pub fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    super::keyed::delete(store, DELETE, id)
}

/// Every stored silence as `(id, body)`.
pub fn load_all(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    super::keyed::load(store, LOAD)
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
