//! The notification outbox and delivery log: one row per
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

use super::pg::{col, sql};
use super::row::{lite_rows, pg_rows, FromRow, Row};
use super::{Store, StoreError};
use rusqlite::params;

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

/// The same, as PostgreSQL migration 2.
pub(crate) const PG_SCHEMA: &str = "
CREATE TABLE notify_deliveries (
    id BIGSERIAL PRIMARY KEY,
    receiver TEXT NOT NULL,
    integration TEXT NOT NULL,
    integration_index BIGINT NOT NULL,
    group_key TEXT NOT NULL,
    alertnames TEXT NOT NULL,
    firing BIGINT NOT NULL,
    resolved BIGINT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (status, next_attempt_at);
CREATE INDEX notify_deliveries_created ON notify_deliveries (created_at, id);
CREATE INDEX notify_deliveries_group ON notify_deliveries (group_key, receiver, integration_index, status);
CREATE TABLE notify_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES notify_deliveries (id),
    at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    ok BOOLEAN NOT NULL,
    error TEXT,
    replay BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX notify_attempts_delivery ON notify_attempts (delivery_id);
";

// SQL shared by both backends (`?N` becomes `$N` for PostgreSQL).
const SUPERSEDE: &str = "UPDATE notify_deliveries SET status = 'superseded', updated_at = ?1
    WHERE status = 'pending' AND EXISTS (SELECT 1 FROM notify_deliveries n
      WHERE n.group_key = notify_deliveries.group_key AND n.receiver = notify_deliveries.receiver
      AND n.integration_index = notify_deliveries.integration_index AND n.id > notify_deliveries.id)";
const DUE_WHERE: &str = "status = 'pending' AND next_attempt_at <= ?1 AND d.id >= ?3
    AND NOT EXISTS (SELECT 1 FROM notify_deliveries p WHERE p.group_key = d.group_key AND p.receiver = d.receiver AND p.integration_index = d.integration_index AND p.status IN ('pending', 'sending') AND p.id < d.id)
    ORDER BY next_attempt_at, id LIMIT ?2";
const MARK_SENDING: &str = "UPDATE notify_deliveries SET status = 'sending', updated_at = ?2 WHERE id = ?1 AND status = 'pending'";
const INSERT: &str = "INSERT INTO notify_deliveries (receiver, integration, integration_index, group_key, alertnames, firing, resolved, payload, status, attempts, created_at, updated_at, next_attempt_at, deadline_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?11, 0, ?9, ?9, ?9, ?10)";
const FINISH_SUCCESS: &str = "UPDATE notify_deliveries SET status = 'success', attempts = attempts + 1, updated_at = ?2, delivered_at = ?2, last_error = NULL, last_reason = NULL WHERE id = ?1 AND status = 'sending'";
const FINISH_RETRY: &str = "UPDATE notify_deliveries SET status = 'pending', attempts = attempts + 1, updated_at = ?2, last_error = ?3, last_reason = ?4, next_attempt_at = ?5 WHERE id = ?1 AND status = 'sending'";
const FINISH_FAILED: &str = "UPDATE notify_deliveries SET status = 'failed', attempts = attempts + 1, updated_at = ?2, last_error = ?3, last_reason = ?4 WHERE id = ?1 AND status = 'sending'";
const DEFER: &str = "UPDATE notify_deliveries SET status = 'pending', updated_at = ?2, next_attempt_at = ?3 WHERE id = ?1 AND status = 'sending'";
const RELEASE_DEFERRED: &str = "UPDATE notify_deliveries SET next_attempt_at = ?3, updated_at = ?3 WHERE status = 'pending' AND receiver = ?1 AND integration_index = ?2 AND next_attempt_at > ?3";
const INSERT_ATTEMPT: &str = "INSERT INTO notify_attempts (delivery_id, at, duration_ms, ok, error, replay) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const REPLAY_OK: &str = "UPDATE notify_deliveries SET attempts = attempts + 1, updated_at = ?2, status = CASE WHEN status = 'failed' THEN 'success' ELSE status END, delivered_at = COALESCE(delivered_at, ?2) WHERE id = ?1";
const REPLAY_ERR: &str = "UPDATE notify_deliveries SET attempts = attempts + 1, updated_at = ?2, last_error = ?3 WHERE id = ?1";
const REQUEUE: &str = "UPDATE notify_deliveries SET status = 'pending', next_attempt_at = CASE WHEN next_attempt_at < ?1 THEN next_attempt_at ELSE ?1 END, updated_at = ?1 WHERE status = 'sending'";
const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) FROM notify_deliveries d WHERE status = 'pending'
    AND NOT EXISTS (SELECT 1 FROM notify_deliveries p WHERE p.group_key = d.group_key AND p.receiver = d.receiver AND p.integration_index = d.integration_index AND p.status IN ('pending', 'sending') AND p.id < d.id)";
const COUNT_UNFINISHED: &str =
    "SELECT COUNT(*) FROM notify_deliveries WHERE status IN ('pending', 'sending')";
const ATTEMPTS: &str = "SELECT at, duration_ms, ok, error, replay FROM notify_attempts WHERE delivery_id = ?1 ORDER BY id";

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

impl FromRow for Delivery {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        let names: String = r.col(5)?;
        Ok(Delivery {
            id: r.col(0)?,
            receiver: r.col(1)?,
            integration: r.col(2)?,
            integration_index: r.col::<i64>(3)?.max(0) as usize,
            group_key: r.col(4)?,
            alertnames: names_of(&names),
            firing: r.col::<i64>(6)?.max(0) as usize,
            resolved: r.col::<i64>(7)?.max(0) as usize,
            payload: r.col(8)?,
            status: r.col(9)?,
            attempts: r.col::<i64>(10)?.max(0) as u32,
            last_error: r.col(11)?,
            last_reason: r.col(12)?,
            created_at: r.col(13)?,
            updated_at: r.col(14)?,
            next_attempt_at: r.col(15)?,
            deadline_at: r.col(16)?,
            delivered_at: r.col(17)?,
        })
    }
}

impl FromRow for Attempt {
    fn from_row(r: &impl Row) -> Result<Self, StoreError> {
        Ok(Attempt {
            at: r.col(0)?,
            duration_ms: r.col(1)?,
            ok: r.col(2)?,
            error: r.col(3)?,
            replay: r.col(4)?,
        })
    }
}

fn names_of(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// [`claim_in`] for PostgreSQL. A row another session claimed between the
/// select and the update is left out (the update's count decides), so two
/// replicas briefly both believing they lead cannot both send a row.
async fn pg_claim_in(
    tx: &tokio_postgres::Transaction<'_>,
    now: i64,
    limit: usize,
    min_id: Option<i64>,
) -> Result<Vec<Delivery>, StoreError> {
    tx.execute(&sql(SUPERSEDE), &[&now]).await?;
    let rows = tx
        .query(
            &sql(&format!(
                "SELECT {COLS} FROM notify_deliveries d WHERE {DUE_WHERE}"
            )),
            &[&now, &(limit as i64), &min_id.unwrap_or(i64::MIN)],
        )
        .await?;
    let mark = tx.prepare(&sql(MARK_SENDING)).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut d = Delivery::from_row(r)?;
        if tx.execute(&mark, &[&d.id, &now]).await? == 1 {
            d.status = "sending".into();
            out.push(d);
        }
    }
    Ok(out)
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
    tx.execute(SUPERSEDE, params![now])?;
    let rows = {
        let mut st = tx.prepare_cached(&format!(
            "SELECT {COLS} FROM notify_deliveries d WHERE {DUE_WHERE}"
        ))?;
        lite_rows::<Delivery>(
            &mut st,
            params![now, limit as i64, min_id.unwrap_or(i64::MIN)],
        )?
    };
    let mut out = Vec::with_capacity(rows.len());
    for mut d in rows {
        if tx.execute(MARK_SENDING, params![d.id, now])? == 1 {
            d.status = "sending".into();
            out.push(d);
        }
    }
    Ok(out)
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
        self.insert_deliveries_logged(ds, claim_at, None)
    }

    /// [`Store::insert_deliveries_claiming`], writing the notification log
    /// entry `log` in the same transaction: the log never says "notified"
    /// without the rows, and the rows never exist without the log (after a
    /// crash the restarted dispatcher would otherwise notify again under a
    /// new row).
    pub fn insert_deliveries_logged(
        &self,
        ds: &[NewDelivery],
        claim_at: Option<i64>,
        log: Option<&super::notify_log::LogEntry>,
    ) -> Result<(Vec<i64>, Vec<Delivery>), StoreError> {
        if let Some(pg) = self.pg() {
            let ds = ds.to_vec();
            let log = log.cloned();
            return pg.run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let st = tx.prepare(&format!("{} RETURNING id", sql(INSERT))).await?;
                    let mut ids = Vec::with_capacity(ds.len());
                    for d in &ds {
                        let names = format!("\n{}\n", d.alertnames.join("\n"));
                        let status = if d.unsendable { "sending" } else { "pending" };
                        let r = tx
                            .query_one(
                                &st,
                                &[
                                    &d.receiver,
                                    &d.integration,
                                    &(d.integration_index as i64),
                                    &d.group_key,
                                    &names,
                                    &(d.firing as i64),
                                    &(d.resolved as i64),
                                    &d.payload,
                                    &d.created_at,
                                    &d.deadline_at,
                                    &status,
                                ],
                            )
                            .await?;
                        ids.push(col(&r, 0)?);
                    }
                    let claimed = match claim_at {
                        Some(now) => pg_claim_in(&tx, now, ids.len(), ids.first().copied()).await?,
                        None => Vec::new(),
                    };
                    if let Some(e) = &log {
                        super::notify_log::put_pg(&tx, e).await?;
                    }
                    tx.commit().await?;
                    Ok((ids, claimed))
                })
            });
        }
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let mut ids = Vec::with_capacity(ds.len());
            {
                let mut st = tx.prepare_cached(INSERT)?;
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
            if let Some(e) = log {
                super::notify_log::put_sqlite(&tx, e)?;
            }
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
        self.dispatch(
            |c| {
                let tx = c.transaction()?;
                let rows = claim_in(&tx, now, limit, None)?;
                tx.commit()?;
                Ok(rows)
            },
            move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let rows = pg_claim_in(&tx, now, limit, None).await?;
                    tx.commit().await?;
                    Ok(rows)
                })
            },
        )
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
        let now = at + duration_ms;
        let (ok, err) = match outcome {
            Outcome::Success => (true, None),
            Outcome::Retry { error, .. } | Outcome::Failed { error, .. } => {
                (false, Some(error.clone()))
            }
        };
        if let Some(pg) = self.pg() {
            let outcome = outcome.clone();
            // Its own connection: not queued behind other statements.
            return pg.run_on(&pg.deliveries.clone(), move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let n = match &outcome {
                        Outcome::Success => tx.execute(&sql(FINISH_SUCCESS), &[&id, &now]).await?,
                        Outcome::Retry {
                            error,
                            reason,
                            next_at,
                        } => {
                            tx.execute(&sql(FINISH_RETRY), &[&id, &now, error, reason, next_at])
                                .await?
                        }
                        Outcome::Failed { error, reason } => {
                            tx.execute(&sql(FINISH_FAILED), &[&id, &now, error, reason])
                                .await?
                        }
                    };
                    if n == 1 {
                        tx.execute(
                            &sql(INSERT_ATTEMPT),
                            &[&id, &at, &duration_ms, &ok, &err, &false],
                        )
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(n == 1)
                })
            });
        }
        self.with_conn_first(|c| {
            let tx = c.transaction()?;
            let n = match outcome {
                Outcome::Success => tx.execute(FINISH_SUCCESS, params![id, now])?,
                Outcome::Retry {
                    error,
                    reason,
                    next_at,
                } => tx.execute(FINISH_RETRY, params![id, now, error, reason, next_at])?,
                Outcome::Failed { error, reason } => {
                    tx.execute(FINISH_FAILED, params![id, now, error, reason])?
                }
            };
            if n == 1 {
                tx.execute(INSERT_ATTEMPT, params![id, at, duration_ms, ok, err, false])?;
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
        let now = at + duration_ms;
        let err = error.map(str::to_string);
        let ok = error.is_none();
        let err2 = err.clone();
        self.dispatch(
            |c| {
                let tx = c.transaction()?;
                match &err {
                    None => tx.execute(REPLAY_OK, params![id, now])?,
                    Some(e) => tx.execute(REPLAY_ERR, params![id, now, e])?,
                };
                tx.execute(INSERT_ATTEMPT, params![id, at, duration_ms, ok, err, true])?;
                tx.commit()?;
                Ok(())
            },
            move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    match &err2 {
                        None => tx.execute(&sql(REPLAY_OK), &[&id, &now]).await?,
                        Some(e) => tx.execute(&sql(REPLAY_ERR), &[&id, &now, e]).await?,
                    };
                    tx.execute(
                        &sql(INSERT_ATTEMPT),
                        &[&id, &at, &duration_ms, &ok, &err2, &true],
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                })
            },
        )
    }

    /// Puts a claimed row back to `pending`, due at `next_at`, without an
    /// attempt (its endpoint is in cooldown). False when it was not claimed.
    pub fn defer_delivery(&self, id: i64, now: i64, next_at: i64) -> Result<bool, StoreError> {
        let n = self.dispatch(
            |c| Ok(c.execute(DEFER, params![id, now, next_at])?),
            move |c| {
                Box::pin(async move {
                    Ok(c.execute(&sql(DEFER), &[&id, &now, &next_at]).await? as usize)
                })
            },
        )?;
        Ok(n == 1)
    }

    /// Makes the pending rows of one receiver integration due at `now`
    /// (its endpoint's cooldown was cleared). Returns how many.
    pub fn release_deferred_deliveries(
        &self,
        receiver: &str,
        integration_index: usize,
        now: i64,
    ) -> Result<usize, StoreError> {
        let idx = integration_index as i64;
        let r = receiver.to_string();
        self.dispatch(
            |c| Ok(c.execute(RELEASE_DEFERRED, params![receiver, idx, now])?),
            move |c| {
                Box::pin(async move {
                    Ok(c.execute(&sql(RELEASE_DEFERRED), &[&r, &idx, &now]).await? as usize)
                })
            },
        )
    }

    /// Puts rows a previous process (or a dead HA leader) left `sending`
    /// back to `pending`.
    pub fn requeue_in_flight_deliveries(&self, now: i64) -> Result<usize, StoreError> {
        self.dispatch(
            |c| Ok(c.execute(REQUEUE, params![now])?),
            move |c| Box::pin(async move { Ok(c.execute(&sql(REQUEUE), &[&now]).await? as usize) }),
        )
    }

    /// When the next claimable pending row is due, if any (rows waiting on
    /// an older row of their group do not count: the worker must not spin
    /// on them).
    pub fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        self.dispatch(
            |c| Ok(c.query_row(NEXT_DUE, [], |r| r.get::<_, Option<i64>>(0))?),
            |c| Box::pin(async move { col(&c.query_one(NEXT_DUE, &[]).await?, 0) }),
        )
    }

    /// Rows not finished yet (pending or being sent).
    pub fn count_unfinished_deliveries(&self) -> Result<usize, StoreError> {
        let n = self.dispatch(
            |c| Ok(c.query_row(COUNT_UNFINISHED, [], |r| r.get::<_, i64>(0))?),
            |c| Box::pin(async move { col::<i64>(&c.query_one(COUNT_UNFINISHED, &[]).await?, 0) }),
        )?;
        Ok(n.max(0) as usize)
    }

    pub fn get_delivery(&self, id: i64) -> Result<Option<Delivery>, StoreError> {
        let q = format!("SELECT {COLS} FROM notify_deliveries WHERE id = ?1");
        let q2 = sql(&q);
        self.dispatch(
            |c| Ok(lite_rows(&mut c.prepare(&q)?, params![id])?.pop()),
            move |c| {
                Box::pin(async move {
                    c.query_opt(&q2, &[&id])
                        .await?
                        .as_ref()
                        .map(Delivery::from_row)
                        .transpose()
                })
            },
        )
    }

    pub fn delivery_attempts(&self, id: i64) -> Result<Vec<Attempt>, StoreError> {
        self.dispatch(
            |c| lite_rows(&mut *c.prepare_cached(ATTEMPTS)?, params![id]),
            move |c| Box::pin(async move { pg_rows(&c.query(&sql(ATTEMPTS), &[&id]).await?) }),
        )
    }

    /// The history, newest first (by id), filtered.
    pub fn list_deliveries(&self, q: &Query) -> Result<Vec<Delivery>, StoreError> {
        /// A bound value of either backend.
        enum V {
            T(String),
            I(i64),
        }
        let pg = self.is_shared();
        let mut sql_text = format!("SELECT {COLS} FROM notify_deliveries WHERE 1=1");
        let mut args: Vec<V> = Vec::new();
        let add = |sql_text: &mut String, args: &mut Vec<V>, cond: &str, v: V| {
            args.push(v);
            sql_text.push_str(&format!(" AND {cond} ?{}", args.len()));
        };
        if let Some(s) = &q.status {
            add(&mut sql_text, &mut args, "status =", V::T(s.clone()));
        }
        if let Some(r) = &q.receiver {
            add(&mut sql_text, &mut args, "receiver =", V::T(r.clone()));
        }
        if let Some(a) = &q.alertname {
            // instr()/strpos() avoid LIKE's wildcard characters in names.
            let f = if pg { "strpos" } else { "instr" };
            args.push(V::T(format!("\n{a}\n")));
            sql_text.push_str(&format!(" AND {f}(alertnames, ?{}) > 0", args.len()));
        }
        if let Some(s) = q.since {
            add(&mut sql_text, &mut args, "created_at >=", V::I(s));
        }
        if let Some(u) = q.until {
            add(&mut sql_text, &mut args, "created_at <=", V::I(u));
        }
        if let Some(b) = q.before_id {
            add(&mut sql_text, &mut args, "id <", V::I(b));
        }
        args.push(V::I(q.limit as i64));
        sql_text.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
        if let Some(p) = self.pg() {
            let text = sql(&sql_text);
            return p.run(move |c| {
                Box::pin(async move {
                    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
                        .iter()
                        .map(|v| match v {
                            V::T(s) => s as &(dyn tokio_postgres::types::ToSql + Sync),
                            V::I(i) => i as &(dyn tokio_postgres::types::ToSql + Sync),
                        })
                        .collect();
                    pg_rows(&c.query(&text, &params).await?)
                })
            });
        }
        self.with_conn(|c| {
            let vals: Vec<rusqlite::types::Value> = args
                .into_iter()
                .map(|v| match v {
                    V::T(s) => s.into(),
                    V::I(i) => i.into(),
                })
                .collect();
            let mut st = c.prepare(&sql_text)?;
            lite_rows(&mut st, rusqlite::params_from_iter(vals))
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
