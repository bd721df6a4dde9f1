//! Operations events and the audit trail (issue 8): one append-only table
//! whose ids are the SSE event ids (so `Last-Event-ID` resumes from here),
//! plus the command correlation ids seen, for replay protection.

use super::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ops_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_events_at ON ops_events (at_ms);
CREATE TABLE IF NOT EXISTS ops_command_ids (
    correlation_id TEXT PRIMARY KEY,
    seen_ms INTEGER NOT NULL
);
";

/// One stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    /// JSON text.
    pub data: String,
}

/// Filters for [`query_events`]; `after_id` is the pagination cursor.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub kind: Option<String>,
    pub after_id: Option<i64>,
    pub limit: usize,
}

impl Store {
    /// Appends an event and returns its id.
    pub fn insert_event(&self, at_ms: i64, kind: &str, data: &str) -> Result<i64, StoreError> {
        Ok(self.insert_events(&[(at_ms, kind, data)])?[0])
    }

    /// Several events in one commit (one fsync for a burst); their ids in
    /// order.
    pub fn insert_events(&self, evs: &[(i64, &str, &str)]) -> Result<Vec<i64>, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let mut ids = Vec::with_capacity(evs.len());
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO ops_events (at_ms, kind, data) VALUES (?1, ?2, ?3)",
                )?;
                for (at_ms, kind, data) in evs {
                    st.execute(params![at_ms, kind, data])?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    /// Events in id order, filtered.
    pub fn query_events(&self, q: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        self.with_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, at_ms, kind, data FROM ops_events
                 WHERE id > ?1 AND at_ms >= ?2 AND at_ms <= ?3 AND (?4 IS NULL OR kind = ?4)
                 ORDER BY id LIMIT ?5",
            )?;
            let rows = st.query_map(
                params![
                    q.after_id.unwrap_or(0),
                    q.since_ms.unwrap_or(i64::MIN),
                    q.until_ms.unwrap_or(i64::MAX),
                    q.kind,
                    i64::try_from(q.limit).unwrap_or(i64::MAX),
                ],
                |r| {
                    Ok(EventRow {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        kind: r.get(2)?,
                        data: r.get(3)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Deletes events older than `before_ms`; returns how many.
    pub fn prune_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| Ok(c.execute("DELETE FROM ops_events WHERE at_ms < ?1", [before_ms])?))
    }

    /// Records a command correlation id; `false` when it was seen before
    /// (a replay). Ids older than `forget_before_ms` are dropped first.
    pub fn remember_command_id(
        &self,
        id: &str,
        now_ms: i64,
        forget_before_ms: i64,
    ) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM ops_command_ids WHERE seen_ms < ?1",
                [forget_before_ms],
            )?;
            let seen: Option<i64> = c
                .query_row(
                    "SELECT seen_ms FROM ops_command_ids WHERE correlation_id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            if seen.is_some() {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO ops_command_ids (correlation_id, seen_ms) VALUES (?1, ?2)",
                params![id, now_ms],
            )?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_filter_paginate_and_prune() {
        let s = Store::open_in_memory().unwrap();
        for (t, k) in [(10, "command"), (20, "alert"), (30, "command")] {
            s.insert_event(t, k, "{}").unwrap();
        }
        let all = s
            .query_events(&EventQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            vec![10, 20, 30]
        );
        let cmds = s
            .query_events(&EventQuery {
                kind: Some("command".into()),
                limit: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cmds.len(), 1);
        let next = s
            .query_events(&EventQuery {
                kind: Some("command".into()),
                after_id: Some(cmds[0].id),
                limit: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next[0].at_ms, 30);
        assert_eq!(s.prune_events(25).unwrap(), 2);
    }

    #[test]
    fn command_ids_replay_and_expiry() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.remember_command_id("a", 1000, 0).unwrap());
        assert!(!s.remember_command_id("a", 2000, 0).unwrap());
        // Forgotten once older than the window.
        assert!(s.remember_command_id("a", 9000, 5000).unwrap());
    }
}
