//! Auto-healing rules created through the API: one row per rule, its JSON
//! body as the admin sent it (secrets included: the store is as private as
//! the config file), so a restart keeps them.

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
    super::keyed::put(store, PUT, name, body)
}

/// Removes one rule.
pub fn delete(store: &Store, name: &str) -> Result<(), StoreError> {
    super::keyed::delete(store, DELETE, name)
}

/// Every stored rule as `(name, body)`.
pub fn load_all(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    super::keyed::load(store, LOAD)
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
