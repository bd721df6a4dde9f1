//! Remote write out: one queue per `remote_write` entry, drained by shards
//! (`shards.rs`).
//!
//! With a WAL (klaxon run) each queue reads it, as Prometheus' queues do
//! (`watcher.rs`): a full shard makes the reader wait, nothing is dropped
//! for lack of room, an outage loses nothing while the WAL holds the data,
//! and a restart resumes where the queue's sends had got to.
//!
//! A head without a WAL (library use, tests) feeds the queues through its
//! append observer ([`AppendObserver`]); blocking there would stall the
//! appender, so such a queue is sized for its largest shard count up front
//! (`ShardSet::buffer`) and a sample that still finds its shard full is
//! dropped and counted in
//! `klaxon_remote_storage_samples_dropped_total{reason="queue_full"}`.
//!
//! Native-histogram samples go the same way (WAL records or the observer)
//! when the entry has `send_native_histograms: true`. Exemplars are not in
//! klaxon's WAL: the exemplar store tells the queues of each one it keeps
//! (`send_exemplars: true`); a WAL-fed queue holds it until its reader has
//! handed the shards the samples written before it, so it is sent after
//! them. Held exemplars are bounded and lost on a restart.

use super::client::WriteClient;
use super::config::RemoteWriteConfig;
use super::metrics::{RemoteMetrics, EXEMPLARS, QUEUE_FULL, SHUTDOWN};
use super::shards::{Item, QueueShared, ShardSet, Value};
use super::watcher::Cursor;
use crate::metrics::Registry;
use crate::model::Labels;
use crate::tsdb::exemplars::{Exemplar, ExemplarObserver};
use crate::tsdb::head::AppendObserver;
use crate::tsdb::wal::Wal;
use crate::tsdb::{Head, HistValue, SeriesRef};
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc::error::TrySendError, watch};
use tokio::task::JoinHandle;

/// How often the shard count is recomputed (Prometheus' `shardUpdateDuration`).
const SHARD_UPDATE: Duration = Duration::from_secs(10);
/// Weight of the newest interval in the rate averages.
const EWMA_WEIGHT: f64 = 0.2;
/// How long a shutdown waits for queued samples to be sent (Prometheus'
/// `--storage.remote.flush-deadline` default).
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(60);
/// The same for a queue that reads the WAL (the rest is sent after restart).
const WAL_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Rates, per second, that the shard count is derived from.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Samples entering the queue.
    pub samples_in: f64,
    /// Samples leaving it by a send (accepted or refused for good).
    pub samples_out: f64,
    /// Samples dropped before sending (relabeling, full queue...).
    pub samples_dropped: f64,
    /// Seconds spent in send calls per second, summed over shards.
    pub send_seconds: f64,
}

/// The shard count that keeps up with the input, in Prometheus' spirit:
/// time per sample (from the send rate) times the rate of samples that
/// must go out, plus 5% of the backlog (`delay_s` seconds of input) per
/// interval; a change within 30% of `current` is not worth a reshard.
/// Clamped to `[min, max]`.
pub fn desired_shards(current: usize, r: Rates, delay_s: f64, min: usize, max: usize) -> usize {
    let clamp = |n: usize| n.clamp(min.max(1), max.max(min).max(1));
    if r.samples_out <= 0.0 || !r.send_seconds.is_finite() {
        return clamp(current);
    }
    let kept = r.samples_out / (r.samples_out + r.samples_dropped.max(0.0));
    let time_per_sample = r.send_seconds / r.samples_out;
    let backlog = delay_s.max(0.0) * r.samples_in * kept;
    let desired = time_per_sample * (r.samples_in * kept + 0.05 * backlog);
    let cur = current as f64;
    if desired >= cur * 0.7 && desired <= cur * 1.3 {
        return clamp(current);
    }
    if !desired.is_finite() {
        return clamp(current);
    }
    clamp(desired.ceil().max(1.0).min(usize::MAX as f64) as usize)
}

/// One `remote_write` entry's queue.
pub struct Queue {
    shared: Arc<QueueShared>,
    shards: RwLock<ShardSet>,
    hard_tx: watch::Sender<bool>,
    resharder: Mutex<Option<JoinHandle<()>>>,
    rt: tokio::runtime::Handle,
    /// The WAL reader, when the queue is fed from the WAL.
    reader: Mutex<Option<(watch::Sender<u8>, JoinHandle<Cursor>)>>,
    /// Exemplars waiting for the WAL reader (a WAL-fed queue): each is
    /// handed to the shards once the reader has passed the WAL position
    /// its samples were written before, so it leaves after them (a
    /// receiver drops an exemplar of a series it does not have yet).
    held: Mutex<VecDeque<HeldExemplar>>,
}

/// An exemplar held for the WAL reader: the WAL's end when it was stored.
pub(crate) struct HeldExemplar {
    pub pos: (u64, u64),
    pub r: u64,
    pub t: i64,
    pub v: Value,
}

/// Exemplars a WAL-fed queue holds for its reader, per unit of
/// `capacity`; beyond that new ones are dropped (`reason="queue_full"`).
const HELD_EXEMPLARS_PER_CAPACITY: usize = 4;

/// Counter values at the last shard update.
#[derive(Default)]
struct Last {
    inn: u64,
    out: u64,
    dropped: u64,
    nanos: u64,
    rates: Option<Rates>,
}

impl Queue {
    fn start(
        cfg: &RemoteWriteConfig,
        external_labels: &Labels,
        head: Weak<Head>,
        metrics: &RemoteMetrics,
        rt: &tokio::runtime::Handle,
        wal: Option<Arc<Wal>>,
    ) -> Result<Arc<Queue>, String> {
        let client = WriteClient::new(cfg)?;
        let (hard_tx, hard_rx) = watch::channel(false);
        // The label must not carry a password from the URL's userinfo.
        let m = metrics.queue(&cfg.name, &crate::model::url::redact_userinfo(&cfg.url));
        let q = &cfg.queue;
        m.min.set(q.min_shards as f64);
        m.max.set(q.max_shards as f64);
        m.capacity.set(q.capacity as f64);
        m.shards.set(q.min_shards as f64);
        m.desired.set(q.min_shards as f64);
        for k in &m.kind {
            k.pending.set(0.0);
        }
        let shared = Arc::new(QueueShared {
            cfg: cfg.clone(),
            external_labels: external_labels.clone(),
            client,
            metrics: m,
            head,
            hard_stop: hard_rx,
            samples_in: AtomicU64::new(0),
            samples_out: AtomicU64::new(0),
            samples_dropped: AtomicU64::new(0),
            send_nanos: AtomicU64::new(0),
            highest_in_ms: AtomicI64::new(i64::MIN),
            highest_sent_ms: AtomicI64::new(i64::MIN),
            last_ok_ms: AtomicI64::new(crate::model::now_millis()),
            progress: Default::default(),
            wal_fed: wal.is_some(),
            highest_in: metrics.highest_in.clone(),
        });
        let shards = ShardSet::spawn(&shared, rt, q.min_shards, None);
        let queue = Arc::new(Queue {
            shared,
            shards: RwLock::new(shards),
            hard_tx,
            resharder: Mutex::new(None),
            rt: rt.clone(),
            reader: Mutex::new(None),
            held: Mutex::new(VecDeque::new()),
        });
        if let Some(wal) = wal {
            let cursor = Cursor::open(wal, &cfg.name);
            let (tx, rx) = watch::channel(super::watcher::RUN);
            let h = rt.spawn(super::watcher::run(Arc::downgrade(&queue), cursor, rx));
            *queue.reader.lock() = Some((tx, h));
        }
        let weak = Arc::downgrade(&queue);
        *queue.resharder.lock() = Some(rt.spawn(async move {
            let mut tick = tokio::time::interval(SHARD_UPDATE);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut last = Last::default();
            loop {
                tick.tick().await;
                let Some(q) = weak.upgrade() else { return };
                q.update_shards(&mut last);
            }
        }));
        tracing::info!(remote_name = %cfg.name, url = %cfg.url, "remote write queue started");
        Ok(queue)
    }

    pub fn config(&self) -> &RemoteWriteConfig {
        &self.shared.cfg
    }

    /// Number of running shards.
    pub fn num_shards(&self) -> usize {
        self.shards.read().senders.len()
    }

    fn note_in(&self, t: i64) {
        let s = &self.shared;
        s.samples_in.fetch_add(1, Relaxed);
        if t > s.highest_in_ms.load(Relaxed) {
            s.highest_in_ms.fetch_max(t, Relaxed);
        }
    }

    /// Whether this queue sends native histograms / exemplars.
    pub(crate) fn sends_histograms(&self) -> bool {
        self.shared.cfg.send_native_histograms
    }

    fn sends_exemplars(&self) -> bool {
        self.shared.cfg.send_exemplars
    }

    /// Holds an exemplar for the WAL reader (see [`Queue::held`]).
    fn hold_exemplar(&self, pos: (u64, u64), r: u64, t: i64, v: Value) {
        let mut held = self.held.lock();
        let max = self
            .shared
            .cfg
            .queue
            .capacity
            .saturating_mul(HELD_EXEMPLARS_PER_CAPACITY);
        if held.len() >= max {
            drop(held);
            self.shared.metrics.kind[EXEMPLARS].dropped[QUEUE_FULL].inc();
            return;
        }
        held.push_back(HeldExemplar { pos, r, t, v });
    }

    /// The WAL reader's hand-off of held exemplars: those stored when the
    /// WAL ended at or before `upto` (the reader has enqueued everything
    /// before it). False when the queue is stopping.
    pub(crate) async fn release_exemplars(
        &self,
        upto: (u64, u64),
        seq: u64,
        stop: &mut watch::Receiver<u8>,
    ) -> bool {
        loop {
            let next = {
                let mut held = self.held.lock();
                match held.front() {
                    Some(h) if h.pos <= upto => held.pop_front(),
                    _ => None,
                }
            };
            let Some(h) = next else { return true };
            if !self.enqueue_wait(h.r, h.t, h.v, seq, stop).await {
                return false;
            }
        }
    }

    /// The WAL reader's enqueue: waits while the series' shard is full.
    /// False when the queue is stopping (the item was not taken).
    pub(crate) async fn enqueue_wait(
        &self,
        r: u64,
        t: i64,
        v: Value,
        seq: u64,
        stop: &mut watch::Receiver<u8>,
    ) -> bool {
        self.note_in(t);
        let kind = v.kind();
        let mut item = (r, t, v, seq);
        loop {
            let (tx, progress) = {
                let set = self.shards.read();
                let i = ShardSet::index(r, set.senders.len());
                match (set.senders.get(i), set.progress.get(i)) {
                    (Some(tx), Some(p)) => (tx.clone(), p.clone()),
                    _ => return false,
                }
            };
            progress.enqueued.fetch_max(seq, Relaxed);
            let pending = &self.shared.metrics.kind[kind].pending;
            pending.add(1.0);
            let sent = tokio::select! {
                r = tx.send(item) => r,
                _ = stop.wait_for(|s| *s == super::watcher::HALT) => {
                    pending.add(-1.0);
                    return false;
                }
            };
            match sent {
                Ok(()) => return true,
                // The shard closed under us (a reshard): take the new set.
                Err(tokio::sync::mpsc::error::SendError(back)) => item = back,
            }
            pending.add(-1.0);
            tokio::task::yield_now().await;
        }
    }

    /// The highest WAL record sequence (up to `last`) fully sent.
    pub(crate) fn sent_through(&self, last: u64) -> u64 {
        self.shared.sent_through(last)
    }

    /// Sets `highest_timestamp_in_seconds` from the head (WAL-fed queues
    /// do not see appends).
    pub(crate) fn note_highest_in(&self) {
        if let Some(h) = self.shared.head.upgrade() {
            let t = h.max_time();
            if t != i64::MIN {
                self.shared.highest_in.set(t as f64 / 1000.0);
            }
        }
    }

    /// Never blocks: a full shard drops the item (see the module doc).
    fn enqueue(&self, r: u64, t: i64, v: Value) {
        self.note_in(t);
        let s = &self.shared;
        let kind = v.kind();
        let set = self.shards.read();
        let item: Item = (r, t, v, 0);
        let res = match set.senders.get(ShardSet::index(r, set.senders.len())) {
            Some(tx) => tx.try_send(item).map_err(|e| match e {
                TrySendError::Full(_) => QUEUE_FULL,
                TrySendError::Closed(_) => SHUTDOWN,
            }),
            None => Err(SHUTDOWN),
        };
        drop(set);
        let m = &s.metrics.kind[kind];
        match res {
            Ok(()) => m.pending.add(1.0),
            // Not counted in `samples_dropped`: these samples did need
            // sending, so they count for the shard calculation.
            Err(reason) => {
                if let Some(c) = m.dropped.get(reason) {
                    c.inc();
                }
            }
        }
    }

    fn update_shards(&self, last: &mut Last) {
        let s = &self.shared;
        let secs = SHARD_UPDATE.as_secs_f64();
        let (inn, out, dropped, nanos) = (
            s.samples_in.load(Relaxed),
            s.samples_out.load(Relaxed),
            s.samples_dropped.load(Relaxed),
            s.send_nanos.load(Relaxed),
        );
        let now = Rates {
            samples_in: inn.wrapping_sub(last.inn) as f64 / secs,
            samples_out: out.wrapping_sub(last.out) as f64 / secs,
            samples_dropped: dropped.wrapping_sub(last.dropped) as f64 / secs,
            send_seconds: nanos.wrapping_sub(last.nanos) as f64 / 1e9 / secs,
        };
        (last.inn, last.out, last.dropped, last.nanos) = (inn, out, dropped, nanos);
        let avg = |old: f64, new: f64| EWMA_WEIGHT * new + (1.0 - EWMA_WEIGHT) * old;
        let rates = match last.rates {
            None => now,
            Some(o) => Rates {
                samples_in: avg(o.samples_in, now.samples_in),
                samples_out: avg(o.samples_out, now.samples_out),
                samples_dropped: avg(o.samples_dropped, now.samples_dropped),
                send_seconds: avg(o.send_seconds, now.send_seconds),
            },
        };
        last.rates = Some(rates);
        let hi_in = s.highest_in_ms.load(Relaxed);
        let hi_sent = s.highest_sent_ms.load(Relaxed);
        let delay_s = if hi_in == i64::MIN || hi_sent == i64::MIN {
            0.0
        } else {
            hi_in.saturating_sub(hi_sent) as f64 / 1000.0
        };
        let q = &s.cfg.queue;
        let current = self.num_shards();
        let desired = desired_shards(current, rates, delay_s, q.min_shards, q.max_shards);
        s.metrics.desired.set(desired as f64);
        // Resharding while sends fail only piles more shards onto a sick
        // endpoint (Prometheus holds off too).
        let healthy = crate::model::now_millis() - s.last_ok_ms.load(Relaxed)
            < 2 * SHARD_UPDATE.as_millis() as i64;
        if desired != current && healthy {
            tracing::info!(remote_name = %s.cfg.name, from = current, to = desired, "remote write resharding");
            self.reshard(desired);
        }
    }

    /// Replaces the shards with `n` new ones. The new ones queue samples at
    /// once but send only after every old shard has flushed, so a series'
    /// samples stay in order across the change.
    pub fn reshard(&self, n: usize) {
        let n = n.max(1);
        let (gate_tx, gate_rx) = watch::channel(false);
        let new = ShardSet::spawn(&self.shared, &self.rt, n, Some(gate_rx));
        let old = std::mem::replace(&mut *self.shards.write(), new);
        self.shared.metrics.shards.set(n as f64);
        let ShardSet {
            senders, handles, ..
        } = old;
        drop(senders);
        self.rt.spawn(async move {
            for h in handles {
                let _ = h.await;
            }
            let _ = gate_tx.send(true);
        });
    }

    /// Stops taking samples and sends what is queued; after `deadline`,
    /// retries stop and the rest is dropped (`reason="shutdown"`).
    pub async fn stop(&self, deadline: Duration) {
        self.stop_keeping(deadline, true).await
    }

    /// [`Queue::stop`]; `keep` false also drops the queue's WAL position
    /// (the entry is gone from the config).
    async fn stop_keeping(&self, deadline: Duration, keep: bool) {
        // What a WAL-fed queue does not send now stays in the WAL and goes
        // out after the restart: no reason to hold the stop for long.
        let deadline = if self.shared.wal_fed {
            deadline.min(WAL_FLUSH_DEADLINE)
        } else {
            deadline
        };
        if let Some(h) = self.resharder.lock().take() {
            h.abort();
        }
        // The reader first: it hands the shards what was written up to
        // now (ingestion has stopped), within the deadline.
        let started = tokio::time::Instant::now();
        let reader = self.reader.lock().take();
        let cursor = match reader {
            Some((tx, mut h)) => {
                let _ = tx.send(super::watcher::DRAIN);
                match tokio::time::timeout(deadline, &mut h).await {
                    Ok(c) => c.ok(),
                    Err(_) => {
                        let _ = tx.send(super::watcher::HALT);
                        h.await.ok()
                    }
                }
            }
            None => None,
        };
        let deadline = deadline.saturating_sub(started.elapsed());
        // Exemplars the reader did not get to are not in the WAL: lost.
        let left = std::mem::take(&mut *self.held.lock()).len();
        if left > 0 {
            self.shared.metrics.kind[EXEMPLARS].dropped[SHUTDOWN].inc_by(left as f64);
        }
        let ShardSet {
            senders, handles, ..
        } = std::mem::replace(&mut *self.shards.write(), ShardSet::empty());
        drop(senders);
        let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
        let mut all = futures_util::future::join_all(handles);
        if tokio::time::timeout(deadline, &mut all).await.is_err() {
            tracing::warn!(remote_name = %self.shared.cfg.name, "remote write flush deadline passed; dropping what is left");
            let _ = self.hard_tx.send(true);
            if tokio::time::timeout(Duration::from_secs(5), all)
                .await
                .is_err()
            {
                for a in aborts {
                    a.abort();
                }
            }
        }
        if let Some(mut c) = cursor {
            // The position after what the flush sent: a restart resumes
            // there.
            c.save(self);
            if !keep {
                c.forget();
            }
        }
        tracing::info!(remote_name = %self.shared.cfg.name, "remote write queue stopped");
    }
}

/// All remote-write queues; the head's append observer. Created once at
/// start; [`RemoteWrite::apply_config`] swaps queues on reload.
pub struct RemoteWrite {
    head: Weak<Head>,
    rt: tokio::runtime::Handle,
    metrics: RemoteMetrics,
    queues: RwLock<Vec<Arc<Queue>>>,
    installed: AtomicBool,
    highest_in_ms: AtomicI64,
}

impl RemoteWrite {
    fn note_highest_in(&self, t: i64) {
        if t > self.highest_in_ms.load(Relaxed) {
            self.highest_in_ms.fetch_max(t, Relaxed);
            self.metrics.highest_in.set(t as f64 / 1000.0);
        }
    }
}

impl AppendObserver for RemoteWrite {
    fn on_append(&self, _head: &Head, r: SeriesRef, t: i64, v: f64) {
        let queues = self.queues.read();
        if queues.is_empty() {
            return;
        }
        self.metrics.samples_in.inc();
        self.note_highest_in(t);
        for q in queues.iter().filter(|q| !q.shared.wal_fed) {
            q.enqueue(r.0, t, Value::Float(v));
        }
    }

    fn on_append_histogram(&self, _head: &Head, r: SeriesRef, t: i64, v: &HistValue) {
        let queues = self.queues.read();
        if queues.is_empty() {
            return;
        }
        self.metrics.histograms_in.inc();
        self.note_highest_in(t);
        for q in queues
            .iter()
            .filter(|q| !q.shared.wal_fed && q.sends_histograms())
        {
            q.enqueue(r.0, t, Value::Histogram(Box::new(v.clone())));
        }
    }
}

impl ExemplarObserver for RemoteWrite {
    fn on_exemplar(&self, series: &Labels, ex: &Exemplar) {
        let queues = self.queues.read();
        if !queues.iter().any(|q| q.sends_exemplars()) {
            return;
        }
        self.metrics.exemplars_in.inc();
        let Some(head) = self.head.upgrade() else {
            return;
        };
        // Exemplars are stored after their samples' commit: the series
        // exists, and the WAL already holds those samples.
        let Some(r) = head.lookup(series) else {
            return;
        };
        let pos = head.wal().map(|w| w.position());
        let value = || Value::Exemplar(Box::new((ex.labels.clone().into_vec(), ex.value)));
        for q in queues.iter().filter(|q| q.sends_exemplars()) {
            match pos.filter(|_| q.shared.wal_fed) {
                Some(pos) => q.hold_exemplar(pos, r.0, ex.ts, value()),
                None => q.enqueue(r.0, ex.ts, value()),
            }
        }
    }
}

impl RemoteWrite {
    /// Registers the metrics. Must be called inside a Tokio runtime, which
    /// runs the shards (reloads may then come from any thread).
    pub fn new(head: &Arc<Head>, registry: &Registry) -> Arc<RemoteWrite> {
        Arc::new(RemoteWrite {
            head: Arc::downgrade(head),
            rt: tokio::runtime::Handle::current(),
            metrics: RemoteMetrics::register(registry),
            queues: RwLock::new(Vec::new()),
            installed: AtomicBool::new(false),
            highest_in_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// Makes the running queues match `cfgs`: an entry whose settings (and
    /// the external labels) are unchanged keeps its queue and whatever it
    /// holds; any other is started afresh, and queues no longer configured
    /// flush and stop in the background. Returns one message per entry that
    /// could not start (e.g. an unreadable CA file); the others run.
    pub fn apply_config(
        self: &Arc<Self>,
        cfgs: &[RemoteWriteConfig],
        external_labels: &Labels,
    ) -> Vec<String> {
        let old = self.queues.read().clone();
        let mut keep = Vec::new();
        let mut errors = Vec::new();
        for c in cfgs {
            let same = old
                .iter()
                .find(|q| q.shared.cfg == *c && q.shared.external_labels == *external_labels);
            match same {
                Some(q) => keep.push(q.clone()),
                None => match Queue::start(
                    c,
                    external_labels,
                    self.head.clone(),
                    &self.metrics,
                    &self.rt,
                    self.head.upgrade().and_then(|h| h.wal().cloned()),
                ) {
                    Ok(q) => keep.push(q),
                    Err(e) => {
                        tracing::error!(remote_name = %c.name, error = %e, "remote write queue not started");
                        errors.push(format!("remote_write {}: {e}", c.name));
                    }
                },
            }
        }
        let gone: Vec<Arc<Queue>> = old
            .into_iter()
            .filter(|q| !keep.iter().any(|k| Arc::ptr_eq(k, q)))
            .collect();
        let any = !keep.is_empty();
        *self.queues.write() = keep;
        for q in gone {
            let metrics_name = (q.shared.cfg.name.clone(), q.shared.cfg.url.clone());
            let still_used = self
                .queues
                .read()
                .iter()
                .any(|k| (k.shared.cfg.name.clone(), k.shared.cfg.url.clone()) == metrics_name);
            let me = self.clone();
            self.rt.spawn(async move {
                q.stop_keeping(FLUSH_DEADLINE, still_used).await;
                if !still_used {
                    me.metrics.forget(
                        &metrics_name.0,
                        &crate::model::url::redact_userinfo(&metrics_name.1),
                    );
                }
            });
        }
        if any && !self.installed.swap(true, Relaxed) {
            if let Some(h) = self.head.upgrade() {
                if h.set_append_observer(self.clone()).is_err() {
                    tracing::error!(
                        "the head already has an append observer; remote write gets no samples"
                    );
                }
                if h.exemplars().set_observer(self.clone()).is_err() {
                    tracing::error!(
                        "the exemplar store already has an observer; remote write gets no exemplars"
                    );
                }
            }
        }
        errors
    }

    /// The running queues.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.read().clone()
    }

    /// Samples, histograms and exemplars queued and not yet sent or
    /// dropped, over all queues.
    pub fn pending(&self) -> f64 {
        self.queues
            .read()
            .iter()
            .flat_map(|q| q.shared.metrics.kind.iter().map(|k| k.pending.get()))
            .sum()
    }

    /// Flushes and stops every queue (bounded by `deadline`). Samples
    /// appended afterwards are not sent.
    pub async fn stop(&self, deadline: Duration) {
        let qs = std::mem::take(&mut *self.queues.write());
        futures_util::future::join_all(qs.iter().map(|q| q.stop(deadline))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(inn: f64, out: f64, send_seconds: f64) -> Rates {
        Rates {
            samples_in: inn,
            samples_out: out,
            samples_dropped: 0.0,
            send_seconds,
        }
    }

    #[test]
    fn shards_follow_throughput() {
        // 1000 samples/s in and out, each send-second moves 100 samples:
        // ten shards are needed.
        assert_eq!(
            desired_shards(1, rates(1000.0, 1000.0, 10.0), 0.0, 1, 200),
            10
        );
        // Within 30% of the current count: keep it.
        assert_eq!(
            desired_shards(10, rates(1100.0, 1000.0, 10.0), 0.0, 1, 200),
            10
        );
        // Idle: shrink to the minimum.
        assert_eq!(desired_shards(10, rates(10.0, 10.0, 0.01), 0.0, 1, 200), 1);
        // Clamped to max and min.
        assert_eq!(desired_shards(1, rates(1e6, 1e6, 1e4), 0.0, 1, 50), 50);
        assert_eq!(desired_shards(1, rates(1.0, 1.0, 0.0001), 0.0, 3, 5), 3);
        // Nothing sent yet: no basis for a change.
        assert_eq!(desired_shards(4, rates(1000.0, 0.0, 0.0), 0.0, 1, 200), 4);
        // A backlog asks for more than the input rate alone.
        let no_lag = desired_shards(1, rates(1000.0, 1000.0, 10.0), 0.0, 1, 200);
        let lag = desired_shards(1, rates(1000.0, 1000.0, 10.0), 60.0, 1, 200);
        assert!(lag > no_lag, "{lag} {no_lag}");
        // Dropped samples do not need shards.
        let r = Rates {
            samples_dropped: 1000.0,
            ..rates(2000.0, 1000.0, 10.0)
        };
        assert_eq!(desired_shards(1, r, 0.0, 1, 200), 10);
    }
}
