//! How the store is doing, for `/-/ready`, the heartbeat and `/metrics`:
//! every failed call of either backend is counted
//! (`klaxon_store_errors_total`), every call that waited longer than the
//! call timeout is counted as a stall (`klaxon_store_stalls_total`), and a
//! failed or stalled store stays "failing" until a probe write commits
//! again ([`monitor`]).
//!
//! [`Store::call`] is the way async code reaches the store: the call runs on
//! the store's own threads (never on the async workers) and the caller gets
//! [`StoreError::Stalled`] after the timeout instead of waiting on a frozen
//! disk. Synchronous callers (already on blocking threads) wait for the
//! connection lock at most the same timeout.
//!
//! A fault hook ([`Store::inject_fault`]) makes every call fail or hang
//! until cleared, so tests exercise a full or frozen disk deterministically.

use super::{Store, StoreError};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default longest wait for a store call (the connection lock included).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Threads that run async callers' store calls: more would only wait on the
/// one connection; two let a short call pass while another is slow.
const THREADS: usize = 2;

/// A fault the test hook injects into every store call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Calls fail with SQLite's "database or disk is full".
    DiskFull,
    /// Calls hang, holding the connection, until the fault is cleared.
    Stall,
}

/// Counters and state shared by the store's backends.
pub struct Health {
    errors: AtomicU64,
    stalls: AtomicU64,
    /// Set by a failed or stalled call; cleared by a probe write.
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    timeout_ms: AtomicU64,
    fault: Mutex<Option<Fault>>,
    fault_cleared: Condvar,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            errors: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            timeout_ms: AtomicU64::new(DEFAULT_CALL_TIMEOUT.as_millis() as u64),
            fault: Mutex::new(None),
            fault_cleared: Condvar::new(),
        }
    }
}

impl Health {
    /// Failed calls so far, both backends.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Calls that gave up after the call timeout.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// The failure that made the store unhealthy, while it is.
    pub fn failure(&self) -> Option<String> {
        if self.failing.load(Ordering::Acquire) {
            Some(
                self.last_error
                    .lock()
                    .clone()
                    .unwrap_or_else(|| "store failing".into()),
            )
        } else {
            None
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    pub fn set_timeout(&self, d: Duration) {
        self.timeout_ms
            .store(d.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// Counts `e`; faults of the disk or the server mark the store failing.
    pub fn record_error(&self, e: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if matches!(e, StoreError::Stalled(_)) {
            self.stalls.fetch_add(1, Ordering::Relaxed);
        }
        if e.is_fault() {
            *self.last_error.lock() = Some(e.to_string());
            self.failing.store(true, Ordering::Release);
        }
    }

    /// A probe write committed: the store works again.
    pub fn recovered(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("store: writable again");
        }
        *self.last_error.lock() = None;
    }

    /// Passes `r` through, counting an error.
    pub fn track<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r {
            self.record_error(e);
        }
        r
    }

    pub fn set_fault(&self, f: Option<Fault>) {
        *self.fault.lock() = f;
        self.fault_cleared.notify_all();
    }

    /// Where every call passes with the connection held: an injected fault
    /// fails or hangs it here.
    pub fn fault_point(&self) -> Result<(), StoreError> {
        let mut f = self.fault.lock();
        loop {
            match &*f {
                None => return Ok(()),
                Some(Fault::DiskFull) => {
                    return Err(StoreError::Sql(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                        Some("database or disk is full".into()),
                    )))
                }
                Some(Fault::Stall) => self.fault_cleared.wait(&mut f),
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The store's own threads for async callers.
pub(crate) struct Executor {
    tx: Mutex<std::sync::mpsc::Sender<Job>>,
}

impl Executor {
    pub(crate) fn new() -> Executor {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("klaxon-store-io-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "store: cannot start an I/O thread");
            }
        }
        Executor { tx: Mutex::new(tx) }
    }

    fn submit(&self, job: Job) -> bool {
        self.tx.lock().send(job).is_ok()
    }
}

impl Store {
    /// Runs `f` on the store's threads and waits for it without blocking
    /// the async worker; after the call timeout the caller gets
    /// [`StoreError::Stalled`] (counted and logged) while `f` still runs to
    /// completion in the background.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let timeout = self.health.timeout();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let queued = Instant::now();
        let job: Job = Box::new(move || {
            if queued.elapsed() > timeout {
                // The caller gave up while this waited behind a stuck call:
                // do not pile more work onto a stalled store.
                return;
            }
            let r = f(&me);
            let took = queued.elapsed();
            if took > timeout {
                tracing::warn!(
                    took_ms = took.as_millis() as u64,
                    "store: a call completed only after the timeout"
                );
            }
            let _ = tx.send(r);
        });
        if !self.exec.submit(job) {
            return Err(StoreError::Unavailable("store threads stopped".into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(StoreError::Unavailable("store call abandoned".into())),
            Err(_) => {
                let e = StoreError::Stalled(timeout);
                tracing::warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    "store: call stalled"
                );
                self.health.record_error(&e);
                Err(e)
            }
        }
    }

    /// The store's counters and state.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Test hook: every call fails (`DiskFull`) or hangs (`Stall`) until
    /// called again with `None`.
    #[doc(hidden)]
    pub fn inject_fault(&self, f: Option<Fault>) {
        self.health.set_fault(f);
    }
}

/// How often the monitor probes a healthy store; a failing one is probed
/// every second so `/-/ready` turns back soon after the disk recovers.
const PROBE_EVERY: Duration = Duration::from_secs(15);
const PROBE_FAILING_EVERY: Duration = Duration::from_secs(1);

/// Probes the store with a small write on its threads: a stalled disk is
/// noticed even when nothing else writes, and a failing store is declared
/// healthy again once a write commits. Ends when the store is dropped.
pub fn monitor(store: &Arc<Store>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut last: Option<Instant> = None;
        loop {
            let Some(s) = weak.upgrade() else { return };
            let due =
                s.health.failure().is_some() || last.is_none_or(|t| t.elapsed() >= PROBE_EVERY);
            if due {
                last = Some(Instant::now());
                match s.call(|s| s.check_writable()).await {
                    Ok(()) => s.health.recovered(),
                    Err(e) => tracing::warn!(error = %e, "store: probe write failed"),
                }
            }
            drop(s);
            tokio::time::sleep(PROBE_FAILING_EVERY).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn call_times_out_on_a_stall_and_recovers() {
        let s = Arc::new(Store::open_in_memory().unwrap());
        s.health().set_timeout(Duration::from_millis(100));
        s.inject_fault(Some(Fault::Stall));
        let e = s.call(|s| s.check_writable()).await.unwrap_err();
        assert!(matches!(e, StoreError::Stalled(_)), "{e}");
        assert_eq!(s.health().stalls(), 1);
        assert!(s.health().failure().unwrap().contains("stalled"));
        s.inject_fault(None);
        s.call(|s| s.check_writable()).await.unwrap();
        s.health().recovered();
        assert!(s.health().failure().is_none());
    }

    #[tokio::test]
    async fn sqlite_errors_are_counted_and_mark_the_store_failing() {
        let s = Arc::new(Store::open_in_memory().unwrap());
        assert_eq!(s.health().errors(), 0);
        s.inject_fault(Some(Fault::DiskFull));
        let e = s.call(|s| s.check_writable()).await.unwrap_err();
        assert!(e.to_string().contains("disk is full"), "{e}");
        assert_eq!(s.health().errors(), 1);
        assert!(s.health().failure().unwrap().contains("disk is full"));
    }
}
