//! The sending side of one queue: shards, each a task with a bounded
//! channel, that cut batches (`max_samples_per_send` items, samples,
//! histograms and exemplars counted together as Prometheus does, or
//! whatever arrived within `batch_send_deadline`), resolve each series' labels
//! (cached per ref, with `external_labels` and `write_relabel_configs`
//! applied, as Prometheus' `StoreSeries` does), encode them and send them
//! with retries.
//!
//! A series always maps to the same shard, so its samples leave in order.
//! When the shard count changes, the new shards hold their samples until
//! every old shard has flushed (the `gate`), for the same reason.

use super::client::{SendError, WriteClient};
use super::config::RemoteWriteConfig;
use super::metrics::{
    Counts, QueueMetrics, DROPPED_SERIES, EXEMPLARS, HISTOGRAMS, SAMPLES, SHUTDOWN, UNKNOWN_SERIES,
};
use super::proto::{Exemplar, Sample, TimeSeries, WriteRequest};
use super::proto_hist::HistogramSample;
use crate::model::{Label, Labels};
use crate::tsdb::{Head, HistValue, SeriesRef};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// One queued item: the head's series ref, time (ms), value, and the
/// sequence number of the WAL record it came from (0 when fed by appends).
pub(crate) type Item = (u64, i64, Value, u64);

/// What an item carries: a float sample (kept inline: the common case
/// moves no heap memory), a native-histogram sample or an exemplar.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Float(f64),
    Histogram(Box<HistValue>),
    /// The exemplar's labels (as sent) and value; its time is the item's.
    Exemplar(Box<(Vec<Label>, f64)>),
}

impl Value {
    /// Index into [`super::metrics::KINDS`].
    pub fn kind(&self) -> usize {
        match self {
            Value::Float(_) => SAMPLES,
            Value::Histogram(_) => HISTOGRAMS,
            Value::Exemplar(_) => EXEMPLARS,
        }
    }
}

/// How far one shard got, for the WAL reader's resume position: `enqueued`
/// is the highest record sequence handed to the shard, `done` the highest
/// whose samples it has sent (or refused for good). A shard's samples are
/// sent in the order they arrive, so everything up to `done` is out.
#[derive(Debug, Default)]
pub(crate) struct ShardProgress {
    pub enqueued: AtomicU64,
    pub done: AtomicU64,
}

impl ShardProgress {
    fn finished(&self) -> bool {
        self.done.load(Relaxed) == u64::MAX
    }
}

/// What every shard of one queue shares.
pub(crate) struct QueueShared {
    pub cfg: RemoteWriteConfig,
    pub external_labels: Labels,
    pub client: WriteClient,
    pub metrics: QueueMetrics,
    pub head: Weak<Head>,
    /// Becomes true when the flush deadline of a shutdown has passed:
    /// retries stop and what is left is dropped.
    pub hard_stop: watch::Receiver<bool>,
    /// Throughput accounting for resharding (see `queue::desired_shards`);
    /// `samples_dropped` counts only samples that never needed sending
    /// (relabeled away, unknown series), not those a full queue lost.
    pub samples_in: AtomicU64,
    pub samples_out: AtomicU64,
    pub samples_dropped: AtomicU64,
    pub send_nanos: AtomicU64,
    pub highest_in_ms: AtomicI64,
    pub highest_sent_ms: AtomicI64,
    /// Milliseconds since the epoch of the last successful send.
    pub last_ok_ms: AtomicI64,
    /// Every shard not yet finished, across reshards.
    pub progress: parking_lot::Mutex<Vec<Arc<ShardProgress>>>,
    /// Fed by the WAL reader (shards sized as Prometheus sizes them).
    pub wal_fed: bool,
    /// `klaxon_remote_storage_highest_timestamp_in_seconds`.
    pub highest_in: crate::metrics::Gauge,
}

impl QueueShared {
    fn drop_items(&self, reason: usize, n: Counts) {
        for (kind, &n) in n.0.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let m = &self.metrics.kind[kind];
            // A WAL-fed queue left at a stop resumes from the WAL: not
            // dropped (exemplars are not in the WAL: they are).
            let kept_in_wal = reason == SHUTDOWN && self.wal_fed && kind != EXEMPLARS;
            if let (Some(c), false) = (m.dropped.get(reason), kept_in_wal) {
                c.inc_by(n as f64);
            }
            m.pending.add(-(n as f64));
            if reason == DROPPED_SERIES || reason == UNKNOWN_SERIES {
                self.samples_dropped.fetch_add(n as u64, Relaxed);
            }
        }
    }

    fn stopping_hard(&self) -> bool {
        *self.hard_stop.borrow()
    }

    /// The highest record sequence whose samples have all been sent, given
    /// that `last` is the highest handed to any shard: the lowest `done` of
    /// the shards still holding samples, or `last` when none does.
    pub fn sent_through(&self, last: u64) -> u64 {
        let mut all = self.progress.lock();
        all.retain(|p| !p.finished());
        all.iter()
            .filter(|p| p.done.load(Relaxed) < p.enqueued.load(Relaxed))
            .map(|p| p.done.load(Relaxed))
            .min()
            .unwrap_or(last)
            .min(last)
    }
}

/// The running shards of a queue.
pub(crate) struct ShardSet {
    pub senders: Vec<mpsc::Sender<Item>>,
    pub handles: Vec<JoinHandle<()>>,
    pub progress: Vec<Arc<ShardProgress>>,
}

impl ShardSet {
    pub fn empty() -> Self {
        ShardSet {
            senders: Vec::new(),
            handles: Vec::new(),
            progress: Vec::new(),
        }
    }

    /// Starts `n` shards (at least one). With a `gate`, they buffer but do
    /// not send until it turns true.
    pub fn spawn(
        shared: &Arc<QueueShared>,
        rt: &tokio::runtime::Handle,
        n: usize,
        gate: Option<watch::Receiver<bool>>,
    ) -> ShardSet {
        let n = n.max(1);
        let mut set = ShardSet::empty();
        let per_shard = if shared.wal_fed {
            Self::buffer_wal(&shared.cfg.queue)
        } else {
            Self::buffer(&shared.cfg.queue, n)
        };
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(per_shard);
            let progress = Arc::new(ShardProgress::default());
            shared.progress.lock().push(progress.clone());
            set.senders.push(tx);
            set.progress.push(progress.clone());
            set.handles
                .push(rt.spawn(run_shard(shared.clone(), rx, gate.clone(), progress)));
        }
        set
    }

    /// Samples each of `n` shards may hold: `capacity × max_shards` in
    /// all, whatever the current count. Prometheus holds `capacity` per
    /// running shard, but its WAL absorbs a scrape's burst while shards
    /// are added; without a WAL the burst has to fit in memory from the
    /// first scrape, so the queue is sized for the most shards it may run
    /// (2500 × 200 × 24 bytes ≈ 12 MB at the defaults, allocated only as
    /// samples wait).
    pub fn buffer(q: &super::config::QueueConfig, n: usize) -> usize {
        (q.capacity.saturating_mul(q.max_shards.max(1)) / n.max(1)).max(1)
    }

    /// Prometheus' sizing, for queues that read the WAL: `capacity` per
    /// shard (a full shard makes the reader wait; nothing is dropped).
    pub fn buffer_wal(q: &super::config::QueueConfig) -> usize {
        q.capacity.max(1)
    }

    /// The shard a series goes to: stable for a ref and a shard count.
    pub fn index(r: u64, n: usize) -> usize {
        // Refs carry the label hash in their low bits and a counter above;
        // mixing spreads both.
        let h = r.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        (h % n.max(1) as u64) as usize
    }
}

/// A series' labels as sent, `None` when relabeling dropped it; `seen` is
/// the GC epoch of its last sample.
struct Cached {
    labels: Option<Vec<Label>>,
    seen: u32,
}

/// Per-shard label cache (no lock: only this shard's task uses it).
#[derive(Default)]
struct SeriesCache {
    map: HashMap<u64, Cached>,
    epoch: u32,
    last_gc: Option<Instant>,
}

/// How often unused cache entries are dropped, and after how many periods
/// without a sample an entry goes. Series the head has removed stop
/// getting samples and leave the cache this way, without a call into the
/// head.
const GC_EVERY: Duration = Duration::from_secs(60);
const GC_KEEP_EPOCHS: u32 = 10;

impl SeriesCache {
    fn gc(&mut self) {
        let now = Instant::now();
        let due = self
            .last_gc
            .is_none_or(|t| now.duration_since(t) >= GC_EVERY);
        if !due {
            return;
        }
        self.last_gc = Some(now);
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;
        self.map
            .retain(|_, c| epoch.wrapping_sub(c.seen) <= GC_KEEP_EPOCHS);
    }
}

/// The labels a series is sent with: external labels added where the
/// series lacks them, then `write_relabel_configs`.
fn outgoing_labels(shared: &QueueShared, labels: &Labels) -> Option<Vec<Label>> {
    let with_external = if shared.external_labels.is_empty() {
        labels.clone()
    } else {
        let mut b = labels.builder();
        for l in shared.external_labels.iter() {
            if labels.get(&l.name).is_none() {
                b.set(l.name.clone(), l.value.clone());
            }
        }
        b.build()
    };
    let out = crate::config::relabel::process(&with_external, &shared.cfg.write_relabel_configs)?;
    (!out.is_empty()).then(|| out.into_vec())
}

/// Groups a batch into `TimeSeries` (one per series, samples, histograms
/// and exemplars each in arrival order). Returns the request, the items
/// kept per kind and their highest time.
fn build_request(
    shared: &QueueShared,
    cache: &mut SeriesCache,
    batch: &mut Vec<Item>,
) -> (WriteRequest, Counts, i64) {
    let head = shared.head.upgrade();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut req = WriteRequest {
        timeseries: Vec::new(),
        metadata: Vec::new(),
    };
    let (mut kept, mut highest) = (Counts::default(), i64::MIN);
    let (mut dropped, mut unknown) = (Counts::default(), Counts::default());
    let epoch = cache.epoch;
    for (r, t, v, _) in batch.drain(..) {
        let kind = v.kind();
        let slot = match index.get(&r) {
            Some(i) => Some(*i),
            None => {
                let entry = match cache.map.get_mut(&r) {
                    Some(c) => {
                        c.seen = epoch;
                        Some(c)
                    }
                    None => match head.as_ref().and_then(|h| h.series_labels(SeriesRef(r))) {
                        Some(l) => {
                            let labels = outgoing_labels(shared, &l);
                            Some(cache.map.entry(r).or_insert(Cached {
                                labels,
                                seen: epoch,
                            }))
                        }
                        None => None,
                    },
                };
                match entry {
                    None => None,
                    Some(Cached { labels: None, .. }) => {
                        dropped.0[kind] += 1;
                        continue;
                    }
                    Some(Cached {
                        labels: Some(l), ..
                    }) => {
                        req.timeseries.push(TimeSeries {
                            labels: l.clone(),
                            samples: Vec::new(),
                            histograms: Vec::new(),
                            exemplars: Vec::new(),
                        });
                        let i = req.timeseries.len() - 1;
                        index.insert(r, i);
                        Some(i)
                    }
                }
            }
        };
        let Some(ts) = slot.and_then(|i| req.timeseries.get_mut(i)) else {
            unknown.0[kind] += 1;
            continue;
        };
        match v {
            Value::Float(value) => ts.samples.push(Sample {
                value,
                timestamp: t,
            }),
            Value::Histogram(h) => ts.histograms.push(HistogramSample {
                timestamp: t,
                value: *h,
            }),
            Value::Exemplar(e) => {
                let (labels, value) = *e;
                ts.exemplars.push(Exemplar {
                    labels,
                    value,
                    timestamp: t,
                })
            }
        }
        kept.0[kind] += 1;
        if kind != EXEMPLARS {
            highest = highest.max(t);
        }
    }
    shared.drop_items(DROPPED_SERIES, dropped);
    shared.drop_items(UNKNOWN_SERIES, unknown);
    (req, kept, highest)
}

async fn run_shard(
    shared: Arc<QueueShared>,
    rx: mpsc::Receiver<Item>,
    gate: Option<watch::Receiver<bool>>,
    progress: Arc<ShardProgress>,
) {
    shard_loop(&shared, rx, gate, &progress).await;
    // A shard cut short by the shutdown deadline left samples unsent: its
    // `done` keeps bounding the saved WAL position.
    if !shared.stopping_hard() {
        progress.done.store(u64::MAX, Relaxed);
    }
}

async fn shard_loop(
    shared: &QueueShared,
    mut rx: mpsc::Receiver<Item>,
    gate: Option<watch::Receiver<bool>>,
    progress: &ShardProgress,
) {
    if let Some(mut g) = gate {
        // An error means the resharder is gone: nothing left to wait for.
        let _ = g.wait_for(|open| *open).await;
    }
    let max = shared.cfg.queue.max_samples_per_send.max(1);
    let deadline = shared.cfg.queue.batch_send_deadline;
    let mut cache = SeriesCache::default();
    let mut batch: Vec<Item> = Vec::with_capacity(max);
    let timer = tokio::time::sleep(deadline);
    tokio::pin!(timer);
    loop {
        let room = max.saturating_sub(batch.len()).max(1);
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, room) => {
                if n == 0 {
                    // Channel closed and drained: flush and end.
                    if !batch.is_empty() {
                        send_batch(shared, &mut cache, &mut batch, progress).await;
                    }
                    return;
                }
                if batch.len() >= max {
                    send_batch(shared, &mut cache, &mut batch, progress).await;
                    timer.as_mut().reset(tokio::time::Instant::now() + deadline);
                }
            }
            _ = &mut timer => {
                if !batch.is_empty() {
                    send_batch(shared, &mut cache, &mut batch, progress).await;
                }
                timer.as_mut().reset(tokio::time::Instant::now() + deadline);
            }
        }
    }
}

async fn send_batch(
    shared: &QueueShared,
    cache: &mut SeriesCache,
    batch: &mut Vec<Item>,
    progress: &ShardProgress,
) {
    if shared.stopping_hard() {
        let mut n = Counts::default();
        for (_, _, v, _) in batch.drain(..) {
            n.0[v.kind()] += 1;
        }
        shared.drop_items(SHUTDOWN, n);
        return;
    }
    cache.gc();
    let seq = batch.iter().map(|i| i.3).max().unwrap_or(0);
    let (req, kept, highest) = build_request(shared, cache, batch);
    let out = kept.total() == 0 || {
        let body = super::proto::encode_snappy(&req);
        let out = send_with_backoff(shared, body, kept, highest).await;
        for (m, n) in shared.metrics.kind.iter().zip(kept.0) {
            if n > 0 {
                m.pending.add(-(n as f64));
            }
        }
        out
    };
    // Dropped by the shutdown deadline: not out, so a restart resends it.
    if out {
        progress.done.fetch_max(seq, Relaxed);
    }
}

/// Sends one encoded batch until it is accepted, refused for good, or the
/// shutdown deadline passes. The wait after a recoverable error is the
/// server's `Retry-After` when given, else our backoff, which doubles up to
/// `max_backoff` (the next wait is twice the last, as upstream).
async fn send_with_backoff(
    shared: &QueueShared,
    body: Vec<u8>,
    counts: Counts,
    highest: i64,
) -> bool {
    let q = &shared.cfg.queue;
    let n = counts.total();
    let each = |f: fn(&super::metrics::KindMetrics) -> &crate::metrics::Counter| {
        for (m, k) in shared.metrics.kind.iter().zip(counts.0) {
            if k > 0 {
                f(m).inc_by(k as f64);
            }
        }
    };
    let mut backoff = q.min_backoff;
    let mut hard = shared.hard_stop.clone();
    loop {
        let start = Instant::now();
        let res = shared.client.store(body.clone()).await;
        let took = start.elapsed();
        shared
            .send_nanos
            .fetch_add(took.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
        match res {
            Ok(()) => {
                let m = &shared.metrics;
                each(|k| &k.total);
                m.bytes.inc_by(body.len() as f64);
                m.duration.observe(took.as_secs_f64());
                let prev = shared.highest_sent_ms.fetch_max(highest, Relaxed);
                if highest > prev {
                    m.highest_sent.set(highest as f64 / 1000.0);
                }
                shared.samples_out.fetch_add(n as u64, Relaxed);
                shared.last_ok_ms.store(crate::model::now_millis(), Relaxed);
                return true;
            }
            Err(SendError::Fatal(msg)) => {
                tracing::error!(remote_name = %shared.cfg.name, samples = n, error = %msg,
                    "non-recoverable error sending to remote storage; dropping the batch");
                each(|k| &k.failed);
                shared.samples_out.fetch_add(n as u64, Relaxed);
                return true;
            }
            Err(SendError::Recoverable {
                message,
                retry_after,
            }) => {
                let wait = retry_after.filter(|d| !d.is_zero()).unwrap_or(backoff);
                tracing::warn!(remote_name = %shared.cfg.name, samples = n, error = %message,
                    wait_ms = wait.as_millis() as u64, "failed to send batch, retrying");
                each(|k| &k.retried);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = hard.wait_for(|stop| *stop) => {}
                }
                if shared.stopping_hard() {
                    for (kind, (m, k)) in shared.metrics.kind.iter().zip(counts.0).enumerate() {
                        // What the WAL holds is sent after a restart.
                        if k > 0 && (!shared.wal_fed || kind == EXEMPLARS) {
                            m.dropped[SHUTDOWN].inc_by(k as f64);
                        }
                    }
                    return false;
                }
                backoff = (wait * 2).min(q.max_backoff).max(q.min_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_sized_for_max_shards() {
        let q = crate::remote::config::QueueConfig::default();
        assert_eq!(ShardSet::buffer(&q, 1), 2500 * 200);
        assert_eq!(ShardSet::buffer(&q, 200), 2500);
        assert_eq!(ShardSet::buffer(&q, 0), 2500 * 200);
        let tiny = crate::remote::config::QueueConfig {
            capacity: 1,
            max_shards: 1,
            ..q
        };
        assert_eq!(ShardSet::buffer(&tiny, 7), 1);
    }

    #[test]
    fn shard_index_is_stable_and_in_range() {
        for n in [1, 2, 7, 200] {
            for r in [0u64, 1, 512, 1 << 40, u64::MAX] {
                let i = ShardSet::index(r, n);
                assert!(i < n);
                assert_eq!(i, ShardSet::index(r, n));
            }
        }
        // Spread: 1000 consecutive refs over 4 shards hit every shard.
        let mut hit = [0; 4];
        for r in 0..1000u64 {
            hit[ShardSet::index(r << 9 | (r * 31 % 512), 4)] += 1;
        }
        assert!(hit.iter().all(|h| *h > 150), "{hit:?}");
    }
}
