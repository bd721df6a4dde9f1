//! The notification log (Alertmanager's nflog, issue 5): for each receiver
//! and group key, which alerts were firing and resolved at the last
//! notification and when it was sent. The dispatcher consults it before every
//! flush, so a restarted klaxon does not page again for a firing set it
//! already notified within `repeat_interval`.

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
    store.with_conn(|c| {
        c.execute(
            "INSERT OR REPLACE INTO notify_log
             (receiver, group_key, firing, resolved, sent_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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
    })
}

/// Every entry not expired at `now`.
pub fn load_live(store: &Store, now: i64) -> Result<Vec<LogEntry>, StoreError> {
    store.with_conn(|c| {
        let mut st = c.prepare(
            "SELECT receiver, group_key, firing, resolved, sent_at, expires_at
             FROM notify_log WHERE expires_at > ?1",
        )?;
        let rows = st.query_map([now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (receiver, group_key, f, r, sent_at, expires_at) = row?;
            out.push(LogEntry {
                receiver,
                group_key,
                firing: decode(&f)?,
                resolved: decode(&r)?,
                sent_at,
                expires_at,
            });
        }
        Ok(out)
    })
}

/// Drops entries expired at `now`; returns how many.
pub fn gc(store: &Store, now: i64) -> Result<usize, StoreError> {
    store.with_conn(|c| Ok(c.execute("DELETE FROM notify_log WHERE expires_at <= ?1", [now])?))
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
        assert!(load_live(&s, 100).unwrap().is_empty());
        assert_eq!(gc(&s, 100).unwrap(), 1);
    }
}
