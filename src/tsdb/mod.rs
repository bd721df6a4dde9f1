//! The TSDB: the in-memory head (series with interned labels, an inverted index
//! for label matchers, and samples in Gorilla/XOR chunks laid out as
//! Prometheus lays them out) and persisted blocks.
//!
//! * [`chunk`]: the XOR codec (delta-of-delta timestamps, XOR floats).
//! * [`chunk_histogram`]: the integer and float native-histogram chunk
//!   codecs; `series_hist` keeps a series' histogram chunks.
//! * `intern`: the symbol table for label strings.
//! * `index`: postings (label name → value → series refs) and matcher logic.
//! * `series`: one series' chunks and the append rules.
//! * [`head`]: the sharded, concurrent [`Head`] tying them together.
//! * [`storage`]: the seam every writer and reader goes through
//!   ([`Appender`] per batch, [`Queryable`]/[`Querier`] over a range,
//!   [`Fanout`] to merge sources).
//! * [`wal`]: the write-ahead log (segments, records, checkpoints);
//!   `replay` rebuilds the head from it at start.
//! * [`block`]: persisted blocks in Prometheus' on-disk format (writer,
//!   checked reader, a block as a [`Queryable`]); [`backfill`]: what the
//!   backfill commands (`scrape::backfill`, `rules::backfill`) share.
//! * [`compact`]: head → block compaction, block merges and block
//!   retention over the served [`compact::BlockSet`].

pub mod admin;
pub mod backfill;
pub mod block;
pub mod chunk;
pub mod chunk_histogram;
pub mod compact;
pub mod head;
pub mod head_chunks;
mod head_hist;
pub(crate) mod index;
pub(crate) mod intern;
mod mem;
mod replay;
pub(crate) mod series;
pub mod series_hist;
pub mod storage;
pub mod wal;
pub mod wal_hist;

pub use head::{Head, SeriesHandle};
pub use replay::ReplayStats;
pub use series_hist::HistValue;
pub use storage::{Appendable, Appender, CommitError, Fanout, HeadAppender, Querier, Queryable};

use crate::model::Labels;

/// Head settings.
#[derive(Clone, Debug)]
pub struct HeadOptions {
    /// Samples per chunk before a new one is cut (Prometheus' target is 120).
    /// Clamped to `1..=65535`, the range the chunk's 16-bit count can hold.
    pub samples_per_chunk: usize,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            samples_per_chunk: 120,
        }
    }
}

/// A stable handle to a series, cached by scrapers to skip label lookups.
/// Refs are never reused: after retention drops a series, appending with its
/// old ref fails with [`AppendError::UnknownSeries`] and the caller re-creates it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(pub u64);

/// Why a sample or series was rejected. Messages are Prometheus' wording, as
/// scrape reports and logs show them.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("unknown series ref")]
    UnknownSeries,
    #[error("empty labelset")]
    EmptyLabels,
    /// A native histogram failing Prometheus' validation (negative or
    /// inconsistent counts, bad spans or schema).
    #[error("invalid histogram")]
    InvalidHistogram,
}

/// One selected series with its samples in the requested range, oldest
/// first: float samples in `samples`, native-histogram samples in
/// `histograms` (a series may hold both, at different timestamps, when its
/// sample type changed; each list is in time order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
    pub histograms: Vec<(i64, HistValue)>,
}

impl SeriesData {
    /// A series with float samples only.
    pub fn floats(labels: Labels, samples: Vec<(i64, f64)>) -> SeriesData {
        SeriesData {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.histograms.is_empty()
    }
}

/// Cardinality figures from [`Head::cardinality`], largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cardinality {
    pub num_label_pairs: u64,
    pub series_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_name: Vec<(String, u64)>,
    pub memory_by_label_name: Vec<(String, u64)>,
    pub series_by_label_pair: Vec<(String, u64)>,
}

/// What [`Head::truncate`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TruncateStats {
    pub chunks_removed: usize,
    pub series_removed: usize,
    /// Label strings freed because no remaining series uses them.
    pub symbols_freed: usize,
    /// Head chunk files deleted (all their chunks out of retention).
    pub chunk_files_removed: usize,
    /// Nothing could be dropped (no sample older than the cutoff, no empty
    /// series), so the walk over the series was skipped.
    pub skipped: bool,
}

impl TruncateStats {
    /// Whether the truncation freed anything.
    pub fn freed(&self) -> bool {
        self.chunks_removed + self.series_removed + self.symbols_freed + self.chunk_files_removed
            > 0
    }
}

/// A snapshot of the head's size and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadStats {
    pub num_series: usize,
    /// Samples stored since start (exact duplicates are not counted).
    pub samples_appended: u64,
    pub chunks: usize,
    /// Encoded chunk bytes in use in the heap.
    pub chunk_bytes: usize,
    /// Chunks in the head chunk files (part of `chunks`), and the files' size.
    pub mmapped_chunks: usize,
    pub mmapped_chunk_bytes: u64,
    /// Estimate of every heap and inline byte the head holds (capacities
    /// included, allocator overhead excluded).
    pub memory_bytes: usize,
    pub symbols: usize,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub out_of_bounds: u64,
    pub series_created: u64,
    pub series_removed: u64,
    /// Oldest sample time, `i64::MAX` when the head has never held a sample
    /// (Prometheus' convention for an empty head).
    pub min_time: i64,
    /// Newest sample time ever appended, `i64::MIN` when none.
    pub max_time: i64,
}
