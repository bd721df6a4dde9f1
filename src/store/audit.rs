//! Operations events and the audit trail: one append-only table
//! whose ids are the SSE event ids (so `Last-Event-ID` resumes from here),
//! plus the command correlation ids seen, for replay protection.

use super::pg::{col, sql};
use super::row::{lite_rows, pg_rows, FromRow, Row};
use super::{Store, StoreError};
use rusqlite::params;

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

/// The same, as PostgreSQL migration 3 (ids from one sequence, so both
/// replicas' events share one `Last-Event-ID` order).
pub(crate) const PG_SCHEMA: &str = "
CREATE TABLE ops_events (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX ops_events_at ON ops_events (at_ms);
CREATE TABLE ops_command_ids (
    correlation_id TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
";

const INSERT: &str = "INSERT INTO ops_events (at_ms, kind, data) VALUES (?1, ?2, ?3)";
const QUERY: &str = "SELECT id, at_ms, kind, data FROM ops_events
    WHERE id > ?1 AND at_ms >= ?2 AND at_ms <= ?3 AND (CAST(?4 AS TEXT) IS NULL OR kind = ?4)
    ORDER BY id LIMIT ?5";
const PRUNE: &str = "DELETE FROM ops_events WHERE at_ms < ?1";
const FORGET_IDS: &str = "DELETE FROM ops_command_ids WHERE seen_ms < ?1";
const REMEMBER_ID: &str = "INSERT INTO ops_command_ids (correlation_id, seen_ms) VALUES (?1, ?2)
    ON CONFLICT (correlation_id) DO NOTHING";

/// One stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    /// JSON text.
    pub data: String,
}

impl FromRow for EventRow {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        Ok(EventRow {
            id: r.col(0)?,
            at_ms: r.col(1)?,
            kind: r.col(2)?,
            data: r.col(3)?,
        })
    }
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
        self.insert_events(&[(at_ms, kind, data)])?
            .first()
            .copied()
            .ok_or_else(|| StoreError::Data("event insert returned no id".into()))
    }

    /// Several events in one commit (one fsync for a burst); their ids in
    /// order.
    pub fn insert_events(&self, evs: &[(i64, &str, &str)]) -> Result<Vec<i64>, StoreError> {
        let owned: Vec<(i64, String, String)> = evs
            .iter()
            .map(|(t, k, d)| (*t, k.to_string(), d.to_string()))
            .collect();
        self.dispatch(
            |c| {
                let tx = c.transaction()?;
                let mut ids = Vec::with_capacity(evs.len());
                {
                    let mut st = tx.prepare_cached(INSERT)?;
                    for (at_ms, kind, data) in evs {
                        st.execute(params![at_ms, kind, data])?;
                        ids.push(tx.last_insert_rowid());
                    }
                }
                tx.commit()?;
                Ok(ids)
            },
            move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let st = tx.prepare(&format!("{} RETURNING id", sql(INSERT))).await?;
                    let mut ids = Vec::with_capacity(owned.len());
                    for (at_ms, kind, data) in &owned {
                        let r = tx.query_one(&st, &[at_ms, kind, data]).await?;
                        ids.push(col(&r, 0)?);
                    }
                    tx.commit().await?;
                    Ok(ids)
                })
            },
        )
    }

    /// Events in id order, filtered.
    pub fn query_events(&self, q: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        let after = q.after_id.unwrap_or(0);
        let since = q.since_ms.unwrap_or(i64::MIN);
        let until = q.until_ms.unwrap_or(i64::MAX);
        let kind = q.kind.clone();
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let kind2 = kind.clone();
        self.dispatch(
            |c| {
                let mut st = c.prepare_cached(QUERY)?;
                lite_rows(&mut st, params![after, since, until, kind, limit])
            },
            move |c| {
                Box::pin(async move {
                    pg_rows(
                        &c.query(&sql(QUERY), &[&after, &since, &until, &kind2, &limit])
                            .await?,
                    )
                })
            },
        )
    }

    /// Deletes events older than `before_ms`; returns how many.
    pub fn prune_events(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.dispatch(
            |c| Ok(c.execute(PRUNE, [before_ms])?),
            move |c| {
                Box::pin(async move { Ok(c.execute(&sql(PRUNE), &[&before_ms]).await? as usize) })
            },
        )
    }

    /// Records a command correlation id; `false` when it was seen before
    /// (a replay). Ids older than `forget_before_ms` are dropped first. The
    /// insert itself decides (`ON CONFLICT DO NOTHING`), so two replicas
    /// sharing a store cannot both accept one id.
    pub fn remember_command_id(
        &self,
        id: &str,
        now_ms: i64,
        forget_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let id2 = id.to_string();
        self.dispatch(
            |c| {
                c.execute(FORGET_IDS, [forget_before_ms])?;
                Ok(c.execute(REMEMBER_ID, params![id, now_ms])? == 1)
            },
            move |c| {
                Box::pin(async move {
                    c.execute(&sql(FORGET_IDS), &[&forget_before_ms]).await?;
                    Ok(c.execute(&sql(REMEMBER_ID), &[&id2, &now_ms]).await? == 1)
                })
            },
        )
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
