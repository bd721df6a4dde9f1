//! `klaxon_remote_storage_*`: the families of Prometheus'
//! `prometheus_remote_storage_*`, labelled `remote_name` and `url` the same
//! way, so existing remote-write dashboards and alerts work after a rename.

use crate::metrics::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, Registry};
use std::sync::Arc;

/// Buckets of `sent_batch_duration_seconds`: client_golang's defaults plus
/// the long tail Prometheus adds for slow endpoints.
const BATCH_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0,
];

/// Why samples were dropped before being sent (`reason` label, which
/// Prometheus' family lacks: klaxon has more ways to drop, see
/// docs/compatibility.md).
pub const DROP_REASONS: [&str; 4] = ["dropped_series", "queue_full", "unknown_series", "shutdown"];
/// Indexes into [`DROP_REASONS`] and [`KindMetrics::dropped`].
pub const DROPPED_SERIES: usize = 0;
pub const QUEUE_FULL: usize = 1;
pub const UNKNOWN_SERIES: usize = 2;
pub const SHUTDOWN: usize = 3;

/// What a queue sends, each with its own families as in Prometheus
/// (`samples_*`, `histograms_*`, `exemplars_*`).
pub const KINDS: [&str; 3] = ["samples", "histograms", "exemplars"];
/// Indexes into [`KINDS`], [`QueueMetrics::kind`] and [`Counts`].
pub const SAMPLES: usize = 0;
pub const HISTOGRAMS: usize = 1;
pub const EXEMPLARS: usize = 2;

/// Items of each kind (indexed like [`KINDS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts(pub [usize; 3]);

impl Counts {
    pub fn total(&self) -> usize {
        self.0.iter().sum()
    }
}

/// The per-kind families of one kind.
struct KindFamilies {
    total: Arc<CounterVec>,
    failed: Arc<CounterVec>,
    retried: Arc<CounterVec>,
    dropped: Arc<CounterVec>,
    pending: Arc<GaugeVec>,
}

/// One queue's children of one kind's families.
#[derive(Clone)]
pub struct KindMetrics {
    pub total: Counter,
    pub failed: Counter,
    pub retried: Counter,
    /// Indexed like [`DROP_REASONS`].
    pub dropped: [Counter; 4],
    pub pending: Gauge,
}

/// The registered families. Counter names are registered without
/// `_total`, which the exposition writer appends.
pub struct RemoteMetrics {
    kinds: [KindFamilies; 3],
    shards: Arc<GaugeVec>,
    desired: Arc<GaugeVec>,
    min: Arc<GaugeVec>,
    max: Arc<GaugeVec>,
    capacity: Arc<GaugeVec>,
    duration: Arc<HistogramVec>,
    bytes: Arc<CounterVec>,
    highest_sent: Arc<GaugeVec>,
    enqueue_retries: Arc<CounterVec>,
    /// Not per queue: every sample the head stored, as Prometheus' own.
    pub samples_in: Counter,
    /// Native-histogram samples and exemplars stored, likewise.
    pub histograms_in: Counter,
    pub exemplars_in: Counter,
    pub highest_in: Gauge,
}

/// One queue's children, resolved once so the hot path never looks up a
/// family by label values.
#[derive(Clone)]
pub struct QueueMetrics {
    /// Indexed like [`KINDS`].
    pub kind: [KindMetrics; 3],
    pub shards: Gauge,
    pub desired: Gauge,
    pub min: Gauge,
    pub max: Gauge,
    pub capacity: Gauge,
    pub duration: Histogram,
    pub bytes: Counter,
    pub highest_sent: Gauge,
    pub enqueue_retries: Counter,
}

/// Registers one kind's families; names and help texts as Prometheus'
/// `prometheus_remote_storage_<kind>_*`.
macro_rules! kind_families {
    ($r:expr, $kind:literal) => {{
        const L: &[&str] = &["remote_name", "url"];
        KindFamilies {
            total: $r.counter_vec(
                concat!("klaxon_remote_storage_", $kind),
                concat!("Total number of ", $kind, " sent to remote storage."),
                L,
            ),
            failed: $r.counter_vec(
                concat!("klaxon_remote_storage_", $kind, "_failed"),
                concat!(
                    "Total number of ",
                    $kind,
                    " which failed on send to remote storage, non-recoverable errors."
                ),
                L,
            ),
            retried: $r.counter_vec(
                concat!("klaxon_remote_storage_", $kind, "_retried"),
                concat!(
                    "Total number of ",
                    $kind,
                    " which failed on send to remote storage but were retried because the send error was recoverable."
                ),
                L,
            ),
            dropped: $r.counter_vec(
                concat!("klaxon_remote_storage_", $kind, "_dropped"),
                concat!(
                    "Total number of ",
                    $kind,
                    " which were dropped before being sent to remote storage, by reason."
                ),
                &["remote_name", "url", "reason"],
            ),
            pending: $r.gauge_vec(
                concat!("klaxon_remote_storage_", $kind, "_pending"),
                concat!(
                    "The number of ",
                    $kind,
                    " pending in the queues shards to be sent to the remote storage."
                ),
                L,
            ),
        }
    }};
}

impl RemoteMetrics {
    pub fn register(r: &Registry) -> RemoteMetrics {
        const L: &[&str] = &["remote_name", "url"];
        RemoteMetrics {
            kinds: [
                kind_families!(r, "samples"),
                kind_families!(r, "histograms"),
                kind_families!(r, "exemplars"),
            ],
            shards: r.gauge_vec(
                "klaxon_remote_storage_shards",
                "The number of shards used for parallel sending to the remote storage.",
                L,
            ),
            desired: r.gauge_vec(
                "klaxon_remote_storage_shards_desired",
                "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
                L,
            ),
            min: r.gauge_vec(
                "klaxon_remote_storage_shards_min",
                "The minimum number of shards that the queue is allowed to run.",
                L,
            ),
            max: r.gauge_vec(
                "klaxon_remote_storage_shards_max",
                "The maximum number of shards that the queue is allowed to run.",
                L,
            ),
            capacity: r.gauge_vec(
                "klaxon_remote_storage_shard_capacity",
                "The capacity of each shard of the queue used for parallel sending to the remote storage.",
                L,
            ),
            duration: r.histogram_vec(
                "klaxon_remote_storage_sent_batch_duration_seconds",
                "Duration of send calls to the remote storage.",
                L,
                BATCH_BUCKETS,
            ),
            bytes: r.counter_vec(
                "klaxon_remote_storage_bytes",
                "The total number of bytes of data (not metadata) sent by the queue after compression.",
                L,
            ),
            highest_sent: r.gauge_vec(
                "klaxon_remote_storage_queue_highest_sent_timestamp_seconds",
                "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
                L,
            ),
            enqueue_retries: r.counter_vec(
                "klaxon_remote_storage_enqueue_retries",
                "Total number of times enqueue has failed because a shards queue was full (always 0: klaxon drops instead, see samples_dropped_total{reason=\"queue_full\"}).",
                L,
            ),
            samples_in: r.counter(
                "klaxon_remote_storage_samples_in",
                "Samples stored in the head while remote write is configured.",
            ),
            histograms_in: r.counter(
                "klaxon_remote_storage_histograms_in",
                "Native-histogram samples stored in the head while remote write is configured.",
            ),
            exemplars_in: r.counter(
                "klaxon_remote_storage_exemplars_in",
                "Exemplars stored while remote write is configured.",
            ),
            highest_in: r.gauge(
                "klaxon_remote_storage_highest_timestamp_in_seconds",
                "Highest timestamp that has come into the remote storage via the head's appends, in seconds since epoch.",
            ),
        }
    }

    pub fn queue(&self, name: &str, url: &str) -> QueueMetrics {
        let l = [name, url];
        let kind = |f: &KindFamilies| KindMetrics {
            total: f.total.with(&l),
            failed: f.failed.with(&l),
            retried: f.retried.with(&l),
            dropped: DROP_REASONS.map(|reason| f.dropped.with(&[name, url, reason])),
            pending: f.pending.with(&l),
        };
        QueueMetrics {
            kind: [
                kind(&self.kinds[0]),
                kind(&self.kinds[1]),
                kind(&self.kinds[2]),
            ],
            shards: self.shards.with(&l),
            desired: self.desired.with(&l),
            min: self.min.with(&l),
            max: self.max.with(&l),
            capacity: self.capacity.with(&l),
            duration: self.duration.with(&l),
            bytes: self.bytes.with(&l),
            highest_sent: self.highest_sent.with(&l),
            enqueue_retries: self.enqueue_retries.with(&l),
        }
    }

    /// Forgets a stopped queue's gauges, so a renamed or removed entry does
    /// not keep reporting its last values. Counters stay, as a restarted
    /// Prometheus queue's would not, but removing a counter child would make
    /// a rate over the reload jump.
    pub fn forget(&self, name: &str, url: &str) {
        let l = [name, url];
        for k in &self.kinds {
            k.pending.remove(&l);
        }
        for g in [
            &self.shards,
            &self.desired,
            &self.min,
            &self.max,
            &self.capacity,
        ] {
            g.remove(&l);
        }
    }
}
