//! Leader election for an HA pair sharing a PostgreSQL store.
//!
//! Why an advisory lock: PostgreSQL frees a session-level advisory lock the
//! moment the session ends, and a SIGKILLed process's socket is closed by
//! the kernel, so the server sees the disconnect at once; for a host that
//! vanishes silently, the TCP keepalives set on the connection (both ends,
//! see `pg::Pg::new`) end the session within about 15 s. No lease table,
//! no clock comparisons between replicas.
//!
//! One `klaxon-leader` thread owns a dedicated connection. Every `lease/3`
//! it asks, in one statement, "does this session hold the lock, else can it
//! take it": a leader whose connection broke (and silently reconnected)
//! sees it no longer holds the lock and steps down; a follower takes the
//! lock within `lease/3` of the old session ending. A check that fails or
//! takes longer than `lease/3` drops the connection (freeing the lock if
//! the server still had it) and steps down: a leader that cannot reach the
//! database must not keep sending. So a leader whose session ended stops
//! within two periods; a replica that takes the lock therefore waits two
//! periods more before it sends, so the two never send at once (takeover
//! within `lease` of the old session's end).
//!
//! On taking over, rows the previous leader left `sending` are put back to
//! `pending` before this process starts claiming (its session is gone, so
//! it is no longer sending; a send it made just before dying may have
//! reached the receiver: at-least-once for that window, see
//! docs/operations.md).

use super::pg::{col, Slot};
use super::Store;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The advisory lock key of a cluster name (FNV-1a, stable across builds
/// and replicas).
pub fn lock_key(cluster: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "klaxon-ha:".bytes().chain(cluster.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// What the election thread reports on a change of role.
#[derive(Clone, Debug)]
pub struct RoleChange {
    pub leader: bool,
    /// Rows a previous leader left `sending`, put back to `pending`.
    pub requeued: usize,
    pub reason: String,
}

/// Shared view of the election for `/meta` and metrics.
#[derive(Default)]
pub struct Election {
    since_ms: AtomicI64,
    takeovers: AtomicI64,
    stop: AtomicBool,
}

impl Election {
    /// Milliseconds since the epoch of the last role change.
    pub fn since_ms(&self) -> i64 {
        self.since_ms.load(Ordering::Relaxed)
    }

    /// Times this process became leader.
    pub fn takeovers(&self) -> i64 {
        self.takeovers.load(Ordering::Relaxed)
    }

    /// Stops the thread (it releases the lock by closing its connection).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the election when `store` is PostgreSQL (with SQLite the process
/// is always leader and `None` is returned). `on_change` runs on the
/// election thread after each change of role.
pub fn spawn(
    store: Arc<Store>,
    cluster: &str,
    lease: Duration,
    on_change: impl Fn(RoleChange) + Send + 'static,
) -> Option<Arc<Election>> {
    store.pg()?;
    let key = lock_key(cluster);
    let period = (lease / 3).max(Duration::from_millis(100));
    let el = Arc::new(Election {
        since_ms: AtomicI64::new(crate::model::now_millis()),
        ..Default::default()
    });
    let _ = store.election.set(el.clone());
    let el2 = el.clone();
    let cluster = cluster.to_string();
    let spawned = std::thread::Builder::new()
        .name("klaxon-leader".into())
        .spawn(move || run(store, key, &cluster, period, el2, on_change));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "ha: starting the election thread failed; staying follower");
    }
    Some(el)
}

/// One check: true when this session holds the lock (taking it if free).
/// 64-bit advisory keys show in `pg_locks` as classid (high half), objid
/// (low half), objsubid 1.
const HOLD_OR_TAKE: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
    AND classid::bigint = $1 AND objid::bigint = $2) THEN TRUE ELSE pg_try_advisory_lock($3) END";

fn run(
    store: Arc<Store>,
    key: i64,
    cluster: &str,
    period: Duration,
    el: Arc<Election>,
    on_change: impl Fn(RoleChange),
) {
    let Some(pg) = store.pg() else { return };
    let slot = Arc::new(Slot::default());
    let hi = (key as u64 >> 32) as i64;
    let lo = (key as u64 & 0xffff_ffff) as i64;
    let mut leader = false;
    // When this session took the lock: the previous leader may still be
    // sending until its own next check fails (one period, plus a check
    // that may take another), so this replica waits that long (`fence`)
    // before it sends. A fence by elapsed time on this replica's own clock:
    // no comparison between the replicas' clocks.
    let fence = period * 2;
    let mut acquired: Option<Instant> = None;
    loop {
        if el.stop.load(Ordering::Relaxed) {
            pg.disconnect(&slot);
            store.set_leader(false);
            return;
        }
        let t0 = Instant::now();
        let r = pg.run_on(&slot, move |c| {
            Box::pin(async move {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&hi, &lo, &key];
                let q = c.query_one(HOLD_OR_TAKE, &params);
                match tokio::time::timeout(period, q).await {
                    Ok(r) => col::<bool>(&r?, 0),
                    Err(_) => Err(super::StoreError::Unavailable(format!(
                        "ha: lock check took over {period:?}"
                    ))),
                }
            })
        });
        let (held, reason) = match r {
            Ok(h) => (h, String::new()),
            Err(e) => {
                // Closing the connection frees the lock if the server still
                // counts this session: never two leaders by our doing.
                pg.disconnect(&slot);
                (false, e.to_string())
            }
        };
        if !held {
            acquired = None;
        } else if !leader {
            let since = *acquired.get_or_insert(t0);
            if since.elapsed() < fence {
                std::thread::sleep(period.saturating_sub(t0.elapsed()));
                continue;
            }
        }
        if held != leader {
            leader = held;
            let mut requeued = 0;
            if held {
                match store.requeue_in_flight_deliveries(crate::model::now_millis()) {
                    Ok(n) => requeued = n,
                    Err(e) => {
                        tracing::error!(error = %e, "ha: requeueing the previous leader's in-flight deliveries failed; staying follower");
                        pg.disconnect(&slot);
                        leader = false;
                        std::thread::sleep(period);
                        continue;
                    }
                }
                el.takeovers.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cluster, requeued, "ha: this replica is now the leader");
            } else {
                tracing::warn!(cluster, reason = %reason, "ha: this replica is no longer the leader");
            }
            el.since_ms
                .store(crate::model::now_millis(), Ordering::Relaxed);
            store.set_leader(held);
            on_change(RoleChange {
                leader: held,
                requeued,
                reason,
            });
        }
        std::thread::sleep(period.saturating_sub(t0.elapsed()));
    }
}

/// `klaxon_ha_leader`, `klaxon_store_errors_total`,
/// `klaxon_store_stalls_total` and `klaxon_store_healthy` for `/metrics`
/// (counter names are given without `_total`: the writer appends it).
pub fn register_metrics(registry: &crate::metrics::Registry, store: Arc<Store>) {
    use crate::metrics::{FamilySnapshot, Kind};
    registry.collector(move |out| {
        for (name, help, kind, v) in [
            (
                "klaxon_ha_leader",
                "1 when this replica sends notifications (always with the sqlite store).",
                Kind::Gauge,
                f64::from(u8::from(store.is_leader())),
            ),
            (
                "klaxon_store_errors",
                "Failed store calls (SQLite or PostgreSQL statements and connects, stalls included).",
                Kind::Counter,
                store.errors_total() as f64,
            ),
            (
                "klaxon_store_stalls",
                "Store calls that gave up after the call timeout (a stalled disk or database).",
                Kind::Counter,
                store.health().stalls() as f64,
            ),
            (
                "klaxon_store_healthy",
                "0 while the store is failing or stalled (until a probe write commits again), else 1.",
                Kind::Gauge,
                f64::from(u8::from(store.health().failure().is_none())),
            ),
        ] {
            out.push(FamilySnapshot::single(name, help, kind, v));
        }
    });
}

/// The `ha` object of `/meta`.
pub fn status(store: &Store) -> serde_json::Value {
    let el = store.election();
    serde_json::json!({
        "backend": store.backend_name(),
        "role": if store.is_leader() { "leader" } else { "follower" },
        "since": el.map(|e| crate::model::time::rfc3339_millis(e.since_ms())),
        "takeovers": el.map(|e| e.takeovers()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct_per_cluster() {
        assert_eq!(lock_key("klaxon"), lock_key("klaxon"));
        assert_ne!(lock_key("klaxon"), lock_key("klaxon2"));
    }

    #[test]
    fn sqlite_is_always_leader_and_has_no_election() {
        let s = Arc::new(Store::open_in_memory().unwrap());
        assert!(s.is_leader());
        assert!(spawn(s.clone(), "k", Duration::from_secs(3), |_| {}).is_none());
        assert_eq!(status(&s)["role"], "leader");
    }
}
