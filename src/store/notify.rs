//! The notification outbox and delivery log (issue 5): one row per
//! notification × integration, written before the first attempt, and one
//! row per attempt.
//!
//! The row's status is the outbox's state machine:
//! `pending` → `sending` (claimed by this process) → `success` | `failed`,
//! or back to `pending` with a later `next_attempt_at`; a `pending` row
//! becomes `superseded` once a newer notification of the same group exists
//! for the same integration. Only an update
//! `WHERE status = 'sending'` can record a success, so a row is never
//! marked delivered twice; rows left `sending` by a crash are put back to
//! `pending` at start (at-least-once: the receiver may see that attempt
//! again, PagerDuty dedups it by `dedup_key`).

use super::{Store, StoreError};
use rusqlite::{params, OptionalExtension, Row};

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notify_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    integration_index INTEGER NOT NULL,
    group_key TEXT NOT NULL,
    alertnames TEXT NOT NULL,
    firing INTEGER NOT NULL,
    resolved INTEGER NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    deadline_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS notify_deliveries_due ON notify_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS notify_deliveries_created ON notify_deliveries (created_at, id);
CREATE INDEX IF NOT EXISTS notify_deliveries_group ON notify_deliveries (group_key, receiver, integration_index, status);
CREATE TABLE IF NOT EXISTS notify_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES notify_deliveries (id),
    at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    replay INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notify_attempts_delivery ON notify_attempts (delivery_id);
";

/// A delivery to write: everything but the id and attempt state.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub receiver: String,
    pub integration: String,
    pub integration_index: usize,
    pub group_key: String,
    /// Alert names of the notification, for filtering the history.
    pub alertnames: Vec<String>,
    pub firing: usize,
    pub resolved: usize,
    /// The rendered payload (JSON of `receivers::Payload`).
    pub payload: String,
    pub created_at: i64,
    pub deadline_at: i64,
    /// The payload could not be rendered: the row is written as already
    /// claimed (`sending`), so no worker ever sends it, and the outbox then
    /// records the failure.
    pub unsendable: bool,
}

/// One row of the delivery log.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub receiver: String,
    pub integration: String,
    pub integration_index: usize,
    pub group_key: String,
    pub alertnames: Vec<String>,
    pub firing: usize,
    pub resolved: usize,
    pub payload: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_attempt_at: i64,
    pub deadline_at: i64,
    pub delivered_at: Option<i64>,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub at: i64,
    pub duration_ms: i64,
    pub ok: bool,
    pub error: Option<String>,
    pub replay: bool,
}

/// What an attempt ended in.
#[derive(Clone, Debug)]
pub enum Outcome {
    Success,
    /// Try again at `next_at`.
    Retry {
        error: String,
        reason: String,
        next_at: i64,
    },
    /// Give up: a permanent error or the deadline passed.
    Failed {
        error: String,
        reason: String,
    },
}

/// Filters of the history API; all optional.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub status: Option<String>,
    pub receiver: Option<String>,
    pub alertname: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Return rows with `id` below this (newest first pagination).
    pub before_id: Option<i64>,
    pub limit: usize,
}

const COLS: &str = "id, receiver, integration, integration_index, group_key, alertnames, firing, resolved, payload, status, attempts, last_error, last_reason, created_at, updated_at, next_attempt_at, deadline_at, delivered_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    let names: String = r.get(5)?;
    Ok(Delivery {
        id: r.get(0)?,
        receiver: r.get(1)?,
        integration: r.get(2)?,
        integration_index: r.get::<_, i64>(3)?.max(0) as usize,
        group_key: r.get(4)?,
        alertnames: names
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        firing: r.get::<_, i64>(6)?.max(0) as usize,
        resolved: r.get::<_, i64>(7)?.max(0) as usize,
        payload: r.get(8)?,
        status: r.get(9)?,
        attempts: r.get::<_, i64>(10)?.max(0) as u32,
        last_error: r.get(11)?,
        last_reason: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        next_attempt_at: r.get(15)?,
        deadline_at: r.get(16)?,
        delivered_at: r.get(17)?,
    })
}

/// Claims, inside `tx`, up to `limit` pending rows due at `now` with id ≥
/// `min_id` (all when `None`), first marking obsolete pending rows: a pending
/// row with a newer row for the same group, receiver and integration is
/// `superseded`, since the newer one carries the group's current state
/// (Alertmanager, too, stops retrying a flush once the next one is due); this
/// is what drops a held "firing" whose alerts resolved meanwhile, e.g. during
/// maintenance mode. A row waits while an older row of its group and
/// integration is unfinished, so a group's notifications arrive in order.
fn claim_in(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    limit: usize,
    min_id: Option<i64>,
) -> Result<Vec<Delivery>, StoreError> {
    tx.execute(
        "UPDATE notify_deliveries SET status = 'superseded', updated_at = ?1
         WHERE status = 'pending' AND EXISTS (SELECT 1 FROM notify_deliveries n
           WHERE n.group_key = notify_deliveries.group_key AND n.receiver = notify_deliveries.receiver
           AND n.integration_index = notify_deliveries.integration_index AND n.id > notify_deliveries.id)",
        params![now],
    )?;
    let mut rows = {
        let mut st = tx.prepare_cached(&format!(
            "SELECT {COLS} FROM notify_deliveries d WHERE status = 'pending' AND next_attempt_at <= ?1 AND d.id >= ?3
             AND NOT EXISTS (SELECT 1 FROM notify_deliveries p WHERE p.group_key = d.group_key AND p.receiver = d.receiver AND p.integration_index = d.integration_index AND p.status IN ('pending', 'sending') AND p.id < d.id)
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))?;
        let rows = st
            .query_map(params![now, limit as i64, min_id.unwrap_or(i64::MIN)], row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    for d in &mut rows {
        tx.execute(
            "UPDATE notify_deliveries SET status = 'sending', updated_at = ?2 WHERE id = ?1 AND status = 'pending'",
            params![d.id, now],
        )?;
        d.status = "sending".into();
    }
    Ok(rows)
}

impl Store {
    /// Writes deliveries as `pending`, due now, in one transaction; returns
    /// their ids in order.
    pub fn insert_deliveries(&self, ds: &[NewDelivery]) -> Result<Vec<i64>, StoreError> {
        Ok(self.insert_deliveries_claiming(ds, None)?.0)
    }

    /// [`Store::insert_deliveries`], and with `claim_at` the new rows that
    /// may be sent now are claimed (status `sending`) in the same commit:
    /// the outbox makes their first attempt at once, with one durable commit
    /// on the way instead of two.
    pub fn insert_deliveries_claiming(
        &self,
        ds: &[NewDelivery],
        claim_at: Option<i64>,
    ) -> Result<(Vec<i64>, Vec<Delivery>), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let mut ids = Vec::with_capacity(ds.len());
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO notify_deliveries (receiver, integration, integration_index, group_key, alertnames, firing, resolved, payload, status, attempts, created_at, updated_at, next_attempt_at, deadline_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?11, 0, ?9, ?9, ?9, ?10)",
                )?;
                for d in ds {
                    // Newline-separated with guards so `instr(names, '\nname\n')` matches whole names.
                    let names = format!("\n{}\n", d.alertnames.join("\n"));
                    st.execute(params![
                        d.receiver,
                        d.integration,
                        d.integration_index as i64,
                        d.group_key,
                        names,
                        d.firing as i64,
                        d.resolved as i64,
                        d.payload,
                        d.created_at,
                        d.deadline_at,
                        if d.unsendable { "sending" } else { "pending" }
                    ])?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            let claimed = match claim_at {
                Some(now) => claim_in(&tx, now, ids.len(), ids.first().copied())?,
                None => Vec::new(),
            };
            tx.commit()?;
            Ok((ids, claimed))
        })
    }

    /// Claims up to `limit` pending rows due at `now` (status → `sending`).
    /// A row waits while an older row of the same group and integration is
    /// unfinished, so a group's notifications arrive in order (a PagerDuty
    /// `resolve` never overtakes its retried `trigger`).
    pub fn claim_due_deliveries(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let rows = claim_in(&tx, now, limit, None)?;
            tx.commit()?;
            Ok(rows)
        })
    }

    /// Records the end of an attempt of a claimed row. Returns false when
    /// the row was not `sending` (nothing recorded).
    pub fn finish_delivery_attempt(
        &self,
        id: i64,
        at: i64,
        duration_ms: i64,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let now = at + duration_ms;
            let n = match outcome {
                Outcome::Success => tx.execute(
                    "UPDATE notify_deliveries SET status = 'success', attempts = attempts + 1, updated_at = ?2, delivered_at = ?2, last_error = NULL, last_reason = NULL WHERE id = ?1 AND status = 'sending'",
                    params![id, now],
                )?,
                Outcome::Retry { error, reason, next_at } => tx.execute(
                    "UPDATE notify_deliveries SET status = 'pending', attempts = attempts + 1, updated_at = ?2, last_error = ?3, last_reason = ?4, next_attempt_at = ?5 WHERE id = ?1 AND status = 'sending'",
                    params![id, now, error, reason, next_at],
                )?,
                Outcome::Failed { error, reason } => tx.execute(
                    "UPDATE notify_deliveries SET status = 'failed', attempts = attempts + 1, updated_at = ?2, last_error = ?3, last_reason = ?4 WHERE id = ?1 AND status = 'sending'",
                    params![id, now, error, reason],
                )?,
            };
            if n == 1 {
                let (ok, err) = match outcome {
                    Outcome::Success => (true, None),
                    Outcome::Retry { error, .. } | Outcome::Failed { error, .. } => {
                        (false, Some(error.as_str()))
                    }
                };
                tx.execute(
                    "INSERT INTO notify_attempts (delivery_id, at, duration_ms, ok, error, replay) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                    params![id, at, duration_ms, ok, err],
                )?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
    }

    /// Records a replay attempt (an operator re-sending the stored payload).
    /// A successful replay of a failed row marks it `success`.
    pub fn record_replay_attempt(
        &self,
        id: i64,
        at: i64,
        duration_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let now = at + duration_ms;
            match error {
                None => tx.execute(
                    "UPDATE notify_deliveries SET attempts = attempts + 1, updated_at = ?2, status = CASE WHEN status = 'failed' THEN 'success' ELSE status END, delivered_at = COALESCE(delivered_at, ?2) WHERE id = ?1",
                    params![id, now],
                )?,
                Some(e) => tx.execute(
                    "UPDATE notify_deliveries SET attempts = attempts + 1, updated_at = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, now, e],
                )?,
            };
            tx.execute(
                "INSERT INTO notify_attempts (delivery_id, at, duration_ms, ok, error, replay) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                params![id, at, duration_ms, error.is_none(), error],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Puts rows a previous process left `sending` back to `pending`.
    pub fn requeue_in_flight_deliveries(&self, now: i64) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            Ok(c.execute(
                "UPDATE notify_deliveries SET status = 'pending', next_attempt_at = MIN(next_attempt_at, ?1), updated_at = ?1 WHERE status = 'sending'",
                params![now],
            )?)
        })
    }

    /// When the next claimable pending row is due, if any (rows waiting on
    /// an older row of their group do not count: the worker must not spin
    /// on them).
    pub fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT MIN(next_attempt_at) FROM notify_deliveries d WHERE status = 'pending'
                 AND NOT EXISTS (SELECT 1 FROM notify_deliveries p WHERE p.group_key = d.group_key AND p.receiver = d.receiver AND p.integration_index = d.integration_index AND p.status IN ('pending', 'sending') AND p.id < d.id)",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )?)
        })
    }

    /// Rows not finished yet (pending or being sent).
    pub fn count_unfinished_deliveries(&self) -> Result<usize, StoreError> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM notify_deliveries WHERE status IN ('pending', 'sending')",
                [],
                |r| r.get::<_, i64>(0),
            )?
            .max(0) as usize)
        })
    }

    pub fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        self.with_conn(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLS} FROM notify_deliveries WHERE id = ?1"),
                params![id],
                row,
            )
            .optional()?)
        })
    }

    pub fn delivery_attempts(&self, id: i64) -> Result<Vec<Attempt>, StoreError> {
        self.with_conn(|c| {
            let mut st = c.prepare_cached(
                "SELECT at, duration_ms, ok, error, replay FROM notify_attempts WHERE delivery_id = ?1 ORDER BY id",
            )?;
            let v = st
                .query_map(params![id], |r| {
                    Ok(Attempt {
                        at: r.get(0)?,
                        duration_ms: r.get(1)?,
                        ok: r.get(2)?,
                        error: r.get(3)?,
                        replay: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
    }

    /// The history, newest first (by id), filtered.
    pub fn list_deliveries(&self, q: &Query) -> Result<Vec<Delivery>, StoreError> {
        self.with_conn(|c| {
            let mut sql = format!("SELECT {COLS} FROM notify_deliveries WHERE 1=1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut add = |cond: &str, v: rusqlite::types::Value| {
                args.push(v);
                sql.push_str(&format!(" AND {cond} ?{}", args.len()));
            };
            if let Some(s) = &q.status {
                add("status =", s.clone().into());
            }
            if let Some(r) = &q.receiver {
                add("receiver =", r.clone().into());
            }
            if let Some(a) = &q.alertname {
                // instr() avoids LIKE's wildcard characters in names.
                args.push(format!("\n{a}\n").into());
                sql.push_str(&format!(" AND instr(alertnames, ?{}) > 0", args.len()));
            }
            if let Some(s) = q.since {
                args.push(s.into());
                sql.push_str(&format!(" AND created_at >= ?{}", args.len()));
            }
            if let Some(u) = q.until {
                args.push(u.into());
                sql.push_str(&format!(" AND created_at <= ?{}", args.len()));
            }
            if let Some(b) = q.before_id {
                args.push(b.into());
                sql.push_str(&format!(" AND id < ?{}", args.len()));
            }
            args.push((q.limit as i64).into());
            sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
            let mut st = c.prepare(&sql)?;
            let v = st
                .query_map(rusqlite::params_from_iter(args), row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(receiver: &str, name: &str, at: i64) -> NewDelivery {
        NewDelivery {
            receiver: receiver.into(),
            integration: "webhook".into(),
            integration_index: 0,
            group_key: "{}:{}".into(),
            alertnames: vec![name.into()],
            firing: 1,
            resolved: 0,
            payload: "{}".into(),
            created_at: at,
            deadline_at: at + 1000,
            unsendable: false,
        }
    }

    #[test]
    fn an_unsendable_row_is_never_claimed() {
        let s = Store::open_in_memory().unwrap();
        let bad = NewDelivery {
            unsendable: true,
            ..new("r", "A", 10)
        };
        let (ids, claimed) = s.insert_deliveries_claiming(&[bad], Some(20)).unwrap();
        assert!(claimed.is_empty());
        assert!(s.claim_due_deliveries(30, 10).unwrap().is_empty());
        assert_eq!(s.get_delivery(ids[0]).unwrap().unwrap().status, "sending");
    }

    #[test]
    fn lifecycle_records_one_success_only() {
        let s = Store::open_in_memory().unwrap();
        let ids = s.insert_deliveries(&[new("r", "A", 10)]).unwrap();
        let claimed = s.claim_due_deliveries(10, 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(s.claim_due_deliveries(10, 10).unwrap().is_empty());
        assert!(s
            .finish_delivery_attempt(ids[0], 10, 1, &Outcome::Success)
            .unwrap());
        assert!(!s
            .finish_delivery_attempt(ids[0], 12, 1, &Outcome::Success)
            .unwrap());
        let d = s.get_delivery(ids[0]).unwrap().unwrap();
        assert_eq!((d.status.as_str(), d.attempts), ("success", 1));
        assert_eq!(s.delivery_attempts(ids[0]).unwrap().len(), 1);
    }

    #[test]
    fn retry_then_requeue_after_crash() {
        let s = Store::open_in_memory().unwrap();
        let id = s.insert_deliveries(&[new("r", "A", 10)]).unwrap()[0];
        s.claim_due_deliveries(10, 1).unwrap();
        let retry = Outcome::Retry {
            error: "500".into(),
            reason: "http_5xx".into(),
            next_at: 50,
        };
        assert!(s.finish_delivery_attempt(id, 10, 1, &retry).unwrap());
        assert!(s.claim_due_deliveries(20, 1).unwrap().is_empty());
        assert_eq!(s.next_delivery_due().unwrap(), Some(50));
        assert_eq!(s.claim_due_deliveries(50, 1).unwrap().len(), 1);
        assert_eq!(s.requeue_in_flight_deliveries(60).unwrap(), 1);
        assert_eq!(s.count_unfinished_deliveries().unwrap(), 1);
        assert_eq!(s.claim_due_deliveries(60, 1).unwrap().len(), 1);
    }

    #[test]
    fn a_group_is_delivered_in_order_and_newer_supersedes_pending() {
        let s = Store::open_in_memory().unwrap();
        let mut other = new("r", "B", 10);
        other.group_key = "{}:{b}".into();
        let ids = s.insert_deliveries(&[new("r", "A", 10), other]).unwrap();
        let first: Vec<i64> = s
            .claim_due_deliveries(20, 10)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(first, vec![ids[0], ids[1]]);
        // A newer flush of group A while the first is being sent waits for it.
        let newer = s.insert_deliveries(&[new("r", "A", 21)]).unwrap()[0];
        assert!(s.claim_due_deliveries(25, 10).unwrap().is_empty());
        // The first attempt fails and would be retried: the newer row carries
        // the group's current state, so the older one is superseded.
        let retry = Outcome::Retry {
            error: "e".into(),
            reason: "r".into(),
            next_at: 30,
        };
        s.finish_delivery_attempt(ids[0], 26, 1, &retry).unwrap();
        let again: Vec<i64> = s
            .claim_due_deliveries(30, 10)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(again, vec![newer]);
        let old = s.get_delivery(ids[0]).unwrap().unwrap();
        assert_eq!(old.status, "superseded");
        assert_eq!(s.count_unfinished_deliveries().unwrap(), 2);
    }

    #[test]
    fn list_filters_and_pages_newest_first() {
        let s = Store::open_in_memory().unwrap();
        s.insert_deliveries(&[new("a", "X", 1), new("b", "Y", 2), new("a", "Y", 3)])
            .unwrap();
        let q = |f: &dyn Fn(&mut Query)| {
            let mut q = Query {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            s.list_deliveries(&q)
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(q(&|_| {}), vec![3, 2, 1]);
        assert_eq!(q(&|q| q.receiver = Some("a".into())), vec![3, 1]);
        assert_eq!(q(&|q| q.alertname = Some("Y".into())), vec![3, 2]);
        assert_eq!(q(&|q| q.since = Some(2)), vec![3, 2]);
        assert_eq!(q(&|q| q.until = Some(2)), vec![2, 1]);
        assert_eq!(
            q(&|q| {
                q.limit = 1;
                q.before_id = Some(3)
            }),
            vec![2]
        );
        assert_eq!(q(&|q| q.status = Some("failed".into())), Vec::<i64>::new());
    }
}
