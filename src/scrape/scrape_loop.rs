//! One target's scrape loop: fetch, parse, attach target labels, relabel,
//! append to the head, write staleness markers and the synthetic series.
//!
//! The hot path is a cache hit: the raw series text of a sample seen in an
//! earlier scrape maps straight to its head reference, so steady-state scrapes
//! decode no labels and allocate nothing per sample (Prometheus' scrape cache
//! does the same).

use crate::config::names::NameValidation;
use crate::model::{is_stale_nan, Labels, LabelsBuilder, STALE_NAN};
use crate::scrape::client::{FetchError, Scraper};
use crate::scrape::config::ScrapeConfig;
use crate::scrape::parser::protobuf::{self, NativeSample, ScrapedExemplar};
use crate::scrape::parser::{Entry, Format, Parser, Validation};
use crate::scrape::pool::Pool;
use crate::scrape::target::{Health, ScrapeStatus, Target};
use crate::scrape::ScrapeMetrics;
use crate::tsdb::head::PREFETCH_AHEAD;
use crate::tsdb::{
    AppendError, CommitError, Head, HeadAppender, HistValue, SeriesHandle, SeriesRef,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tracing::Instrument;

/// Why a payload was rejected as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("parse error at {0}")]
    Parse(crate::scrape::parser::ParseError),
    #[error("{0}")]
    Protobuf(crate::scrape::parser::protobuf::ProtoError),
    #[error("sample limit exceeded (limit: {0})")]
    SampleLimit(u64),
    /// A native histogram over `native_histogram_bucket_limit` even at the
    /// lowest resolution.
    #[error("histogram bucket limit exceeded (limit: {limit}, series: {series})")]
    BucketLimit { limit: u64, series: String },
    #[error("{0}")]
    LabelLimit(String),
    #[error("duplicate sample for timestamp in one scrape: {0}")]
    Duplicate(String),
    #[error("invalid series {series:?}: {reason}")]
    InvalidSeries { series: String, reason: String },
    /// A series (after target labels and metric relabeling) with a metric
    /// or label name outside `metric_name_validation_scheme: legacy`; the
    /// labels as Go prints them.
    #[error("invalid metric name or label names: {0}")]
    InvalidNames(String),
    /// The batch could not be stored (WAL write failed: disk full,
    /// read-only file system...). Nothing of it is in the head.
    #[error("storing the scrape failed: {0}")]
    Commit(#[from] CommitError),
}

impl ScrapeError {
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Fetch(f) => f.reason(),
            ScrapeError::Parse(_) | ScrapeError::Protobuf(_) => "parse",
            ScrapeError::SampleLimit(_) => "sample_limit",
            ScrapeError::BucketLimit { .. } => "bucket_limit",
            ScrapeError::LabelLimit(_) => "label_limit",
            ScrapeError::Duplicate(_) => "duplicate",
            ScrapeError::InvalidSeries { .. } => "invalid_series",
            ScrapeError::InvalidNames(_) => "invalid_names",
            ScrapeError::Commit(_) => "storage",
        }
    }
}

/// What the cache knows of one series text.
#[derive(Clone)]
pub enum CacheEntry {
    /// Dropped by metric_relabel_configs: remembered so it is not relabeled
    /// again.
    Dropped,
    Series(SeriesHandle),
}

/// One sample position of a scrape: the hash of its series text and what it
/// resolved to (`None`: not cached, e.g. lost to a retention race).
pub type Slot = (u128, Option<CacheEntry>);

/// Largest body buffer the pool keeps for the next scrape.
const KEEP_BODY_BYTES: usize = 8 << 20;
/// Largest per-sample buffer (pending samples, slots) the pool keeps.
const KEEP_ENTRIES: usize = 256 << 10;

/// Buffers shared by every loop (see [`crate::scrape::pool`]).
pub struct ScrapePools {
    bodies: Pool<u8>,
    pending: Pool<Pending>,
    slots: Pool<Slot>,
    /// The appender's batch of checked samples.
    samples: Pool<crate::tsdb::storage::PendingSample>,
}

impl ScrapePools {
    pub fn new() -> Arc<Self> {
        // Two cores run at most a few scrapes at once; a few spare buffers
        // absorb bursts without keeping one per target. Buffers a rare huge
        // scrape grew are freed (at most ~4 × 8 MiB of bodies and
        // ~4 × 256k entries stay).
        Arc::new(ScrapePools {
            bodies: Pool::new(4, KEEP_BODY_BYTES),
            pending: Pool::new(4, KEEP_ENTRIES),
            slots: Pool::new(4, KEEP_ENTRIES),
            samples: Pool::new(4, KEEP_ENTRIES),
        })
    }
}

/// A sample parsed and labelled, waiting for the payload to prove good.
pub struct Pending {
    /// Position of the sample in this scrape's `order`, which holds its handle.
    slot: u32,
    series: SeriesRef,
    t: i64,
    v: f64,
    /// Sample carried its own timestamp: Prometheus writes no staleness
    /// marker for such series.
    explicit_ts: bool,
}

/// The per-target cache from raw series text to head reference.
///
/// Keyed by a 128-bit hash of the text rather than the text itself: the
/// text is 50-200 bytes per series, the hash 16, and that difference is a
/// large share of klaxon's memory per series. A collision needs about 2^64
/// distinct series in one target before it becomes likely.
///
/// Exporters write the same series in the same order every scrape, so the
/// first lookup is positional: sample *i* is checked against sample *i* of
/// the previous scrape, a sequential read. The hash map is the fallback for
/// series that moved, and costs a random memory access per lookup, which on a
/// large target is most of the price of a sample.
#[derive(Default)]
struct ScrapeCache {
    entries: HashMap<u128, CacheEntry, foldhash::fast::RandomState>,
    /// The last successful scrape's samples in payload order.
    order: Vec<Slot>,
    /// Series appended by the last successful scrape (sorted): the ones that
    /// get a staleness marker when they are missing from the next.
    prev: Vec<SeriesRef>,
    /// The `prev` before last, kept for its capacity.
    spare: Vec<SeriesRef>,
}

/// Counts one scrape reports in its synthetic series.
#[derive(Default, Debug, Clone, Copy)]
pub struct AppendStats {
    pub scraped: u64,
    pub post_relabel: u64,
    pub series_added: u64,
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// State of one target's loop.
pub struct ScrapeLoop {
    target: Arc<Target>,
    cfg: Arc<ScrapeConfig>,
    scraper: Arc<Result<Scraper, String>>,
    head: Arc<Head>,
    metrics: Arc<ScrapeMetrics>,
    cache: ScrapeCache,
    /// Successful scrapes so far; iteration numbers in the cache refer to it.
    iter: u64,
    pools: Arc<ScrapePools>,
    pending: Vec<Pending>,
    report_refs: Option<[SeriesRef; 5]>,
    /// Timestamp of the last scrape, for end-of-run staleness.
    last_scrape_ts: Option<i64>,
    /// In-process body source replacing the HTTP fetch.
    local: Option<Arc<dyn crate::scrape::local::LocalSource>>,
    /// Exemplars of a protobuf payload by sample position, consumed by
    /// the append of its converted text.
    proto_exemplars: Vec<(u32, ScrapedExemplar)>,
    /// Exemplars of the payload being appended, stored once it commits.
    ex_pending: Vec<(SeriesRef, ScrapedExemplar)>,
    /// Native histograms of the payload (protobuf, or classic histograms
    /// converted to NHCB), appended with its floats.
    natives_in: Vec<NativeSample>,
    /// Histogram series of the last successful scrape by the hash of their
    /// scraped labels (histograms are few; a plain map is enough).
    hist_cache: HashMap<u128, CacheEntry, foldhash::fast::RandomState>,
}

/// A native histogram checked and labelled, waiting for the payload.
struct PendingHist {
    handle: SeriesHandle,
    t: i64,
    v: HistValue,
}

impl ScrapeLoop {
    pub fn new(
        target: Arc<Target>,
        cfg: Arc<ScrapeConfig>,
        scraper: Arc<Result<Scraper, String>>,
        head: Arc<Head>,
        metrics: Arc<ScrapeMetrics>,
        pools: Arc<ScrapePools>,
    ) -> Self {
        ScrapeLoop {
            target,
            cfg,
            scraper,
            head,
            metrics,
            cache: ScrapeCache::default(),
            iter: 0,
            pools,
            pending: Vec::new(),
            report_refs: None,
            last_scrape_ts: None,
            local: None,
            proto_exemplars: Vec::new(),
            ex_pending: Vec::new(),
            natives_in: Vec::new(),
            hist_cache: HashMap::default(),
        }
    }

    /// Takes bodies from `local` instead of HTTP (in-process exporters).
    pub fn with_local(mut self, local: Option<Arc<dyn crate::scrape::local::LocalSource>>) -> Self {
        self.local = local;
        self
    }

    /// Runs until `stop` changes. `true` in the channel means the target went
    /// away (write end-of-run staleness markers); `false` means shutdown.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let interval = self.target.interval;
        let now_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let offset = crate::scrape::target::scrape_offset(self.target.key(), interval, now_nanos);
        let start = tokio::time::Instant::now() + offset;
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                r = stop.changed() => {
                    let removed = r.is_ok() && *stop.borrow();
                    if removed {
                        self.end_of_run_staleness().await;
                    }
                    return;
                }
                _ = ticker.tick() => {
                    let span = tracing::debug_span!(
                        "scrape", job = %self.target.job, url = %self.target.scrape_url
                    );
                    self.scrape_once().instrument(span).await;
                }
            }
        }
    }

    /// One scrape: the whole sequence, including the report series.
    pub async fn scrape_once(&mut self) {
        let ts = crate::model::now_millis();
        let started = Instant::now();
        // As Prometheus' scrape_duration_seconds: the fetch (request and
        // body), which the scrape timeout bounds; appending comes after.
        let fetch_duration;
        let result = if let Some(src) = self.local.clone() {
            let mut buf = self.pools.bodies.get();
            let timeout = self.target.timeout;
            let fetched = tokio::time::timeout(timeout, src.scrape(&mut buf)).await;
            fetch_duration = started.elapsed();
            let out = match fetched {
                Ok(Ok(())) => self.append_payload(&buf, Format::PrometheusText, ts),
                Ok(Err(reason)) => Err(ScrapeError::Fetch(FetchError::Http {
                    url: self.target.scrape_url.clone(),
                    reason,
                })),
                Err(_) => Err(ScrapeError::Fetch(FetchError::Timeout {
                    url: self.target.scrape_url.clone(),
                    timeout,
                })),
            };
            self.pools.bodies.put(buf);
            out
        } else {
            let (r, d) = self.fetch_http(ts, started).await;
            fetch_duration = d;
            r
        };
        let duration = fetch_duration;
        self.pools.pending.put(std::mem::take(&mut self.pending));
        let (stats, err) = match result {
            Ok(s) => (s, None),
            Err(e) => {
                // As Prometheus: a failed scrape counts as an empty one, so every
                // series of the previous scrape gets a staleness marker.
                self.stale_all(ts);
                (AppendStats::default(), Some(e))
            }
        };
        self.report(ts, duration, err.is_none(), stats);
        self.last_scrape_ts = Some(ts);
        let job = self.target.job.as_str();
        self.metrics.scrapes.with(&[job]).inc();
        if let Some(e) = &err {
            self.metrics.failures.with(&[job, e.reason()]).inc();
            match e {
                ScrapeError::SampleLimit(_) => self.metrics.exceeded_sample_limit.inc(),
                ScrapeError::BucketLimit { .. } => self.metrics.exceeded_bucket_limit.inc(),
                ScrapeError::Fetch(FetchError::BodySizeLimit(_)) => {
                    self.metrics.exceeded_body_size_limit.inc()
                }
                _ => {}
            }
            tracing::debug!(job, url = %self.target.scrape_url, error = %e, "scrape failed");
        }
        let health = if err.is_none() {
            Health::Up
        } else {
            Health::Down
        };
        let before = self.target.health();
        // Going down is news from the first scrape on; coming up only after
        // having been down.
        if health != before && (before != Health::Unknown || health == Health::Down) {
            if let Some(ev) = self.metrics.events.as_ref() {
                ev.publish_later(
                    crate::events::KIND_TARGET,
                    serde_json::json!({
                        "job": job,
                        "instance": self.target.labels.get("instance").unwrap_or(""),
                        // The target's labels, so a tenant-scoped reader
                        // of the event stream sees its own targets.
                        "labels": self.target.labels.to_json(),
                        "scrape_url": self.target.scrape_url.as_str(),
                        "health": health.as_str(),
                        "error": err.as_ref().map(|e| e.to_string()),
                    }),
                );
            }
        }
        self.target.set_status(ScrapeStatus {
            health,
            last_error: err.map(|e| e.to_string()).unwrap_or_default(),
            last_scrape: Some(ts),
            last_scrape_duration: duration,
        });
    }

    /// The HTTP fetch of one scrape, parsed and appended.
    /// Also answers how long the fetch took (up to the end of the body).
    async fn fetch_http(
        &mut self,
        ts: i64,
        started: Instant,
    ) -> (Result<AppendStats, ScrapeError>, Duration) {
        match self.scraper.as_ref() {
            Ok(s) => {
                let mut buf = self.pools.bodies.get();
                let r = s
                    .fetch(
                        &self.target.scrape_url,
                        self.target.timeout,
                        self.cfg.body_size_limit,
                        &mut buf,
                    )
                    .await;
                let fetched = started.elapsed();
                let out = match r {
                    Ok(format) => self.append_payload(&buf, format, ts),
                    Err(e) => Err(ScrapeError::Fetch(e)),
                };
                self.pools.bodies.put(buf);
                (out, fetched)
            }
            Err(e) => (
                Err(ScrapeError::Fetch(FetchError::Config(e.clone()))),
                started.elapsed(),
            ),
        }
    }

    /// Parses a payload and appends it. Nothing reaches the head unless the
    /// whole payload is good.
    pub fn append_payload(
        &mut self,
        buf: &[u8],
        format: Format,
        ts: i64,
    ) -> Result<AppendStats, ScrapeError> {
        if format == Format::Protobuf {
            return self.append_protobuf(buf, ts);
        }
        let h = self.cfg.histograms;
        if h.convert_to_nhcb {
            if let Some(n) = crate::scrape::histograms::text_to_nhcb(buf, format) {
                if !n.lines.is_empty() {
                    self.natives_in = n.histograms;
                    let r = if h.always_classic {
                        self.append_text(buf, format, ts)
                    } else {
                        let rest = crate::scrape::histograms::without_lines(buf, &n.lines);
                        self.append_text(&rest, format, ts)
                    };
                    self.natives_in.clear();
                    return r;
                }
            }
        }
        self.append_text(buf, format, ts)
    }

    /// [`Self::append_payload`] of a text payload, with the native
    /// histograms in `natives_in` (protobuf, NHCB) in the same batch.
    fn append_text(
        &mut self,
        buf: &[u8],
        format: Format,
        ts: i64,
    ) -> Result<AppendStats, ScrapeError> {
        let proto_exemplars = std::mem::take(&mut self.proto_exemplars);
        let mut proto_ex = proto_exemplars.into_iter().peekable();
        self.ex_pending.clear();
        let iter = self.iter + 1;
        let mut stats = AppendStats::default();
        self.pending = self.pools.pending.get();
        // One batch per payload: nothing of it is visible (or logged)
        // unless all of it is good and the commit succeeds.
        let head = self.head.clone();
        let mut app = head.appender_with(self.pools.samples.get());
        // Syntax and OpenMetrics structure are enforced; value rules that
        // Prometheus does not check at scrape time (negative buckets, say) are
        // not, so a target Prometheus ingests is not failed here.
        let mut parser = Parser::with_validation(buf, format, Validation::PrometheusCompatible);
        let honor_ts = self.cfg.honor_timestamps;
        let sample_limit = self.cfg.sample_limit;
        // Both are taken out: an error below leaves them empty, and the next
        // scrape falls back to the hash map, which is always complete.
        let mut prev_order = std::mem::take(&mut self.cache.order);
        let mut order = self.pools.slots.get();
        loop {
            let pos = order.len();
            // A series text the cache knows was validated when it was first
            // seen: only the value and timestamp are read.
            let known = parser.peek_series().and_then(|series| {
                let key = xxhash_rust::xxh3::xxh3_128(series);
                let cached = prev_order
                    .get(pos)
                    .is_some_and(|e| e.0 == key && e.1.is_some())
                    || self.cache.entries.contains_key(&key);
                if !cached {
                    return None;
                }
                let (value, timestamp) = parser.next_known()?;
                Some((key, value, timestamp))
            });
            let mut exemplar = None;
            let (key, value, timestamp, entry) = match known {
                Some((key, value, timestamp)) => {
                    let hit = prev_order
                        .get_mut(pos)
                        .filter(|e| e.0 == key)
                        .and_then(|e| e.1.take());
                    let entry = hit.or_else(|| self.cache.entries.get(&key).cloned());
                    (key, value, timestamp, entry)
                }
                None => {
                    let entry = match parser.next() {
                        Ok(Some(e)) => e,
                        Ok(None) => break,
                        Err(e) => return Err(ScrapeError::Parse(e)),
                    };
                    let s = match entry {
                        Entry::Sample(s) => s,
                        Entry::Type { family, kind } => {
                            let k = kind.as_str();
                            self.target
                                .note_metadata(&family, |m| set_if_changed(&mut m.kind, k));
                            continue;
                        }
                        Entry::Help { family, text } => {
                            self.target
                                .note_metadata(&family, |m| set_if_changed(&mut m.help, &text));
                            continue;
                        }
                        Entry::Unit { family, unit } => {
                            self.target
                                .note_metadata(&family, |m| set_if_changed(&mut m.unit, &unit));
                            continue;
                        }
                    };
                    let key = xxhash_rust::xxh3::xxh3_128(s.series);
                    exemplar = s.exemplar.as_ref().map(|e| ScrapedExemplar {
                        labels: e.labels(),
                        value: e.value,
                        timestamp: e.timestamp,
                    });
                    let hit = prev_order
                        .get_mut(pos)
                        .filter(|e| e.0 == key)
                        .and_then(|e| e.1.take());
                    let entry = match hit {
                        Some(e) => Some(e),
                        None => match self.cache.entries.get(&key) {
                            Some(e) => Some(e.clone()),
                            None => self.resolve(&mut app, &s, key, &mut stats)?,
                        },
                    };
                    (key, s.value, s.timestamp, entry)
                }
            };
            stats.scraped += 1;
            let t = if honor_ts {
                timestamp.unwrap_or(ts)
            } else {
                ts
            };
            let series = match &entry {
                Some(CacheEntry::Series(h)) => Some(h.series_ref()),
                _ => None,
            };
            order.push((key, entry));
            while proto_ex.peek().is_some_and(|(i, _)| (*i as usize) < pos) {
                proto_ex.next();
            }
            if proto_ex.peek().is_some_and(|(i, _)| *i as usize == pos) {
                exemplar = proto_ex.next().map(|(_, e)| e);
            }
            let Some(series) = series else {
                continue;
            };
            if let Some(e) = exemplar {
                self.ex_pending.push((series, e));
            }
            self.pending.push(Pending {
                slot: pos as u32,
                series,
                t,
                v: value,
                explicit_ts: honor_ts && timestamp.is_some(),
            });
            if sample_limit > 0 && self.pending.len() as u64 > sample_limit {
                return Err(ScrapeError::SampleLimit(sample_limit));
            }
        }
        let (hists, hist_refs, hist_cache) = self.check_histograms(&mut app, ts, &mut stats)?;
        stats.post_relabel = self.pending.len() as u64 + hists.len() as u64;
        // Sorting by series (stable, so each series keeps its time order) puts
        // two spellings of one series side by side. Payload order is nearly
        // the creation order of the references, so this is close to linear.
        self.pending.sort_by_key(|p| p.series.0);
        if let Some(w) = self
            .pending
            .windows(2)
            .find(|w| w[0].series == w[1].series && w[0].t == w[1].t)
        {
            let name = self
                .head
                .series_labels(w[0].series)
                .map(|l| l.to_string())
                .unwrap_or_default();
            return Err(ScrapeError::Duplicate(name));
        }
        self.iter = iter;
        let mut cur = std::mem::take(&mut self.cache.spare);
        cur.clear();
        cur.extend(
            self.pending
                .iter()
                .filter(|p| !p.explicit_ts)
                .map(|p| p.series),
        );
        if !hist_refs.is_empty() {
            cur.extend(hist_refs);
            cur.sort_unstable_by_key(|r| r.0);
        }
        cur.dedup();
        // Histograms first: the batch checks a float against the floats
        // before it cheaply while their references ascend.
        self.hist_cache = hist_cache;
        if !hists.is_empty() {
            self.commit_histograms(&mut app, hists);
        }
        let complete = self.commit_pending(&mut app, &order);
        self.write_staleness(&mut app, &cur, ts);
        let (committed, samples) = app.commit_reuse();
        self.pools.samples.put(samples);
        self.cache.prev = cur;
        self.pools.slots.put(prev_order);
        if complete {
            self.cache.order = order;
        }
        self.cache_gc();
        committed?;
        self.store_exemplars(ts);
        Ok(stats)
    }

    /// A protobuf payload: converted to text lines plus side data
    /// (metadata, exemplars), then appended as text.
    fn append_protobuf(&mut self, buf: &[u8], ts: i64) -> Result<AppendStats, ScrapeError> {
        let h = self.cfg.histograms;
        let opts = protobuf::Options {
            native_histograms: h.native,
            always_classic: h.always_classic,
            convert_to_nhcb: h.convert_to_nhcb,
        };
        let conv = protobuf::convert(buf, opts).map_err(ScrapeError::Protobuf)?;
        for m in &conv.metadata {
            let k = m.kind.as_str();
            self.target.note_metadata(&m.name, |md| {
                let a = set_if_changed(&mut md.kind, k);
                let b = set_if_changed(&mut md.help, &m.help);
                let c = set_if_changed(&mut md.unit, &m.unit);
                a || b || c
            });
        }
        self.proto_exemplars = conv.exemplars;
        self.natives_in = conv.histograms;
        let r = self.append_text(&conv.text, Format::PrometheusText, ts);
        self.natives_in.clear();
        r
    }

    /// Stores the exemplars of a committed payload (Prometheus' rules: no
    /// timestamp means the scrape's; duplicates of the newest are dropped
    /// silently, older ones counted as out of order).
    fn store_exemplars(&mut self, ts: i64) {
        if self.ex_pending.is_empty() {
            return;
        }
        let store = self.head.exemplars();
        for (r, e) in self.ex_pending.drain(..) {
            let Some(series) = self.head.series_labels(r) else {
                continue;
            };
            let ex = crate::tsdb::exemplars::Exemplar {
                labels: e.labels,
                value: e.value,
                ts: e.timestamp.unwrap_or(ts),
            };
            if let Err(err) = store.add(&series, ex) {
                tracing::trace!(series = %series, error = %err, "exemplar not stored");
            }
        }
    }

    /// A series text not in the cache: decode its labels, attach the
    /// target's, relabel, check limits, find or create the head series, and
    /// cache the outcome.
    fn resolve(
        &mut self,
        app: &mut HeadAppender<'_>,
        s: &crate::scrape::parser::Sample<'_>,
        key: u128,
        stats: &mut AppendStats,
    ) -> Result<Option<CacheEntry>, ScrapeError> {
        let mut b = LabelsBuilder::new();
        s.labels_into(&mut b);
        let e = self.resolve_labels(app, b, s.series, stats)?;
        if let Some(e) = &e {
            self.cache.entries.insert(key, e.clone());
        }
        Ok(e)
    }

    /// Scraped labels to a head series: the target's labels attached,
    /// metric relabeling, limits; `Dropped` when relabeling drops it.
    fn resolve_labels(
        &mut self,
        app: &mut HeadAppender<'_>,
        mut b: LabelsBuilder,
        series: &[u8],
        stats: &mut AppendStats,
    ) -> Result<Option<CacheEntry>, ScrapeError> {
        merge_target_labels(&mut b, &self.target.labels, self.cfg.honor_labels);
        if !crate::config::relabel::process_builder(&mut b, &self.cfg.metric_relabel_configs) {
            return Ok(Some(CacheEntry::Dropped));
        }
        let labels = b.build();
        if labels.metric_name().is_empty() {
            return Err(ScrapeError::InvalidSeries {
                series: String::from_utf8_lossy(series).into_owned(),
                reason: "metric name is empty after relabeling".into(),
            });
        }
        // As Prometheus, before the label limits: under legacy names every
        // new series is checked once (a cached one is not resolved again);
        // under utf8 the parsers' own checks are all there is.
        if self.cfg.names.validation == NameValidation::Legacy
            && !NameValidation::Legacy.labels_valid(&labels)
        {
            return Err(ScrapeError::InvalidNames(labels.go_string()));
        }
        check_limits(&labels, &self.cfg)?;
        let (r, created) = app
            .get_or_create(&labels)
            .map_err(|e| ScrapeError::InvalidSeries {
                series: labels.to_string(),
                reason: e.to_string(),
            })?;
        if created {
            stats.series_added += 1;
        }
        // Retention may remove the series right after creation: then nothing
        // is cached and the next scrape retries.
        Ok(self.head.handle(r).map(CacheEntry::Series))
    }

    /// The native histograms of the payload: labelled (through their own
    /// cache), relabeled, limited and validated, counted against
    /// `sample_limit` with the floats. Returns them with the series that get
    /// a staleness marker when missing next time, and the cache to keep if
    /// the payload commits. Nothing is appended yet.
    #[allow(clippy::type_complexity)]
    fn check_histograms(
        &mut self,
        app: &mut HeadAppender<'_>,
        ts: i64,
        stats: &mut AppendStats,
    ) -> Result<
        (
            Vec<PendingHist>,
            Vec<SeriesRef>,
            HashMap<u128, CacheEntry, foldhash::fast::RandomState>,
        ),
        ScrapeError,
    > {
        let mut out = Vec::new();
        let mut refs = Vec::new();
        let mut next = HashMap::default();
        let natives = std::mem::take(&mut self.natives_in);
        if natives.is_empty() {
            return Ok((out, refs, next));
        }
        let h = self.cfg.histograms;
        let limits = crate::scrape::histograms::Limits::new(h.bucket_limit, h.min_bucket_factor);
        let honor_ts = self.cfg.honor_timestamps;
        let sample_limit = self.cfg.sample_limit;
        for n in natives {
            stats.scraped += 1;
            let key = n.labels.hash128();
            let entry = match self.hist_cache.get(&key) {
                Some(e) => Some(e.clone()),
                None => {
                    let text = n.labels.to_string();
                    self.resolve_labels(app, n.labels.builder(), text.as_bytes(), stats)?
                }
            };
            let Some(entry) = entry else {
                continue;
            };
            next.insert(key, entry.clone());
            let CacheEntry::Series(handle) = entry else {
                continue;
            };
            let mut v = n.value;
            limits.apply(&mut v).map_err(|_| ScrapeError::BucketLimit {
                limit: h.bucket_limit,
                series: n.labels.to_string(),
            })?;
            if let Err(e) = v.validate() {
                return Err(ScrapeError::InvalidSeries {
                    series: n.labels.to_string(),
                    reason: e.to_string(),
                });
            }
            let t = match n.timestamp {
                Some(t) if honor_ts => t,
                _ => ts,
            };
            let r = handle.series_ref();
            if !(honor_ts && n.timestamp.is_some()) {
                refs.push(r);
            }
            // Oldest first, so that none of one scrape is refused as out
            // of order by an earlier one of the same scrape (Prometheus
            // sorts them too).
            let mut exemplars = n.exemplars;
            exemplars.sort_by_key(|e| e.timestamp);
            self.ex_pending
                .extend(exemplars.into_iter().map(|e| (r, e)));
            out.push(PendingHist { handle, t, v });
            if sample_limit > 0 && (self.pending.len() + out.len()) as u64 > sample_limit {
                return Err(ScrapeError::SampleLimit(sample_limit));
            }
        }
        Ok((out, refs, next))
    }

    /// Appends the payload's histograms to its batch; rejected ones are
    /// counted as the floats are.
    fn commit_histograms(&mut self, app: &mut HeadAppender<'_>, hists: Vec<PendingHist>) {
        for p in hists {
            match app.append_histogram_owned(&p.handle, p.t, std::borrow::Cow::Owned(p.v)) {
                Ok(()) => {}
                Err(AppendError::OutOfOrder) => self.metrics.sample_out_of_order.inc(),
                Err(AppendError::DuplicateTimestamp) => {
                    self.metrics.sample_duplicate_timestamp.inc()
                }
                Err(AppendError::OutOfBounds) => self.metrics.sample_out_of_bounds.inc(),
                // Retention removed the series: the next scrape resolves it
                // again. Validation ran before.
                Err(_) => {
                    let r = p.handle.series_ref();
                    self.hist_cache.retain(|_, e| match e {
                        CacheEntry::Series(h) => h.series_ref() != r,
                        CacheEntry::Dropped => true,
                    });
                }
            }
        }
    }

    /// Appends the batch; returns false when a cached series turned out to
    /// be gone (the positional cache must then not be reused).
    fn commit_pending(&mut self, app: &mut HeadAppender<'_>, order: &[Slot]) -> bool {
        let (mut ooo, mut dup, mut oob) = (0u64, 0u64, 0u64);
        let mut complete = true;
        let series = |p: &Pending| match order.get(p.slot as usize) {
            Some((_, Some(CacheEntry::Series(h)))) => Some(h),
            _ => None,
        };
        for (i, p) in self.pending.iter().enumerate() {
            if let Some(ahead) = self.pending.get(i + PREFETCH_AHEAD).and_then(series) {
                ahead.prefetch();
            }
            let Some(h) = series(p) else {
                continue;
            };
            match app.append_handle(h, p.t, p.v) {
                Ok(()) => {}
                Err(AppendError::OutOfOrder) => ooo += 1,
                Err(AppendError::DuplicateTimestamp) => dup += 1,
                Err(AppendError::OutOfBounds) => oob += 1,
                Err(AppendError::UnknownSeries) => {
                    // Retention removed the series between scrapes: forget the
                    // cached reference so the next scrape recreates it.
                    let r = p.series;
                    self.cache.entries.retain(|_, e| match e {
                        CacheEntry::Series(h) => h.series_ref() != r,
                        CacheEntry::Dropped => true,
                    });
                    complete = false;
                }
                // Labels were checked non-empty before the series was
                // created; float samples are never invalid histograms.
                Err(AppendError::EmptyLabels | AppendError::InvalidHistogram) => {}
            }
        }
        if ooo > 0 {
            self.metrics.sample_out_of_order.inc_by(ooo as f64);
        }
        if dup > 0 {
            self.metrics.sample_duplicate_timestamp.inc_by(dup as f64);
        }
        if oob > 0 {
            self.metrics.sample_out_of_bounds.inc_by(oob as f64);
        }
        complete
    }

    /// Series of the previous successful scrape that are not in `cur` (both
    /// sorted) get a staleness marker at `ts`; `cur` empty means the target
    /// produced nothing (failed or removed).
    fn write_staleness(&mut self, app: &mut HeadAppender<'_>, cur: &[SeriesRef], ts: i64) {
        let prev = std::mem::take(&mut self.cache.prev);
        let mut j = 0;
        for &r in &prev {
            while j < cur.len() && cur[j].0 < r.0 {
                j += 1;
            }
            if j < cur.len() && cur[j] == r {
                continue;
            }
            let _ = app.append_ref(r, ts, STALE_NAN);
        }
        self.cache.spare = prev;
    }

    /// Staleness markers for every series of the last scrape, in a batch
    /// of their own (failed scrape, or the target went away).
    fn stale_all(&mut self, ts: i64) {
        let head = self.head.clone();
        let mut app = head.appender();
        self.write_staleness(&mut app, &[], ts);
        if let Err(e) = app.commit() {
            tracing::warn!(job = %self.target.job, error = %e, "staleness markers not stored");
        }
    }

    /// Every few scrapes, forgets the series texts the last scrape did not
    /// contain, so a target whose series churn does not grow the cache
    /// without bound.
    fn cache_gc(&mut self) {
        // Nothing to forget while the cache holds no more texts than the
        // last scrape had samples (the steady state): the walk below hashes
        // every one of them.
        if !self.iter.is_multiple_of(4) || self.cache.entries.len() <= self.cache.order.len() {
            return;
        }
        let live: std::collections::HashSet<u128, foldhash::fast::RandomState> =
            self.cache.order.iter().map(|e| e.0).collect();
        if live.is_empty() {
            return;
        }
        self.cache.entries.retain(|k, _| live.contains(k));
    }

    fn report_refs(&mut self, app: &mut HeadAppender<'_>) -> Option<[SeriesRef; 5]> {
        if let Some(r) = self.report_refs {
            return Some(r);
        }
        let mut refs = [SeriesRef(0); 5];
        for (slot, name) in refs.iter_mut().zip(REPORT_NAMES) {
            let mut b = self.target.labels.builder();
            b.set(crate::model::labels::METRIC_NAME, name);
            *slot = app.get_or_create(&b.build()).ok()?.0;
        }
        self.report_refs = Some(refs);
        Some(refs)
    }

    fn report(&mut self, ts: i64, duration: Duration, up: bool, s: AppendStats) {
        let head = self.head.clone();
        let mut app = head.appender();
        let Some(refs) = self.report_refs(&mut app) else {
            return;
        };
        let values = [
            if up { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            s.scraped as f64,
            s.post_relabel as f64,
            s.series_added as f64,
        ];
        for (r, v) in refs.iter().zip(values) {
            if let Err(AppendError::UnknownSeries) = app.append_ref(*r, ts, v) {
                self.report_refs = None;
            }
        }
        if let Err(e) = app.commit() {
            tracing::debug!(job = %self.target.job, error = %e, "scrape report not stored");
        }
    }

    /// When a target disappears, Prometheus waits until the next scrape would
    /// have happened, then one more interval (in case the target came back in a
    /// new loop), and writes staleness markers at the time of that missed scrape.
    async fn end_of_run_staleness(&mut self) {
        let Some(last) = self.last_scrape_ts else {
            return;
        };
        let interval = self.target.interval;
        let next = last + interval.as_millis() as i64;
        let wait = (next - crate::model::now_millis()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let stale_ts = crate::model::now_millis();
        tokio::time::sleep(interval).await;
        let head = self.head.clone();
        let mut app = head.appender();
        self.write_staleness(&mut app, &[], stale_ts);
        if let Some(refs) = self.report_refs(&mut app) {
            for r in refs {
                let _ = app.append_ref(r, stale_ts, STALE_NAN);
            }
        }
        if let Err(e) = app.commit() {
            tracing::warn!(job = %self.target.job, error = %e, "end-of-run staleness markers not stored");
        }
    }
}

/// Sets `field` to `v` unless equal; returns whether it changed.
fn set_if_changed(field: &mut String, v: &str) -> bool {
    if field != v {
        v.clone_into(field);
        true
    } else {
        false
    }
}

/// Attaches the target's labels to a scraped series. With `honor_labels` the
/// scraped value wins; otherwise the target's wins and the scraped one is kept
/// as `exported_<name>` (repeating the prefix until the name is free).
pub fn merge_target_labels(b: &mut LabelsBuilder, target: &Labels, honor_labels: bool) {
    if honor_labels {
        for l in target {
            if b.get(&l.name).is_none() {
                b.set(l.name.as_str(), l.value.as_str());
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target {
        if let Some(v) = b.get(&l.name) {
            conflicts.push((l.name.clone(), v.to_string()));
        }
        b.set(l.name.as_str(), l.value.as_str());
    }
    for (name, value) in conflicts {
        let mut new_name = format!("exported_{name}");
        while b.get(&new_name).is_some() {
            new_name = format!("exported_{new_name}");
        }
        b.set(new_name, value);
    }
}

fn check_limits(labels: &Labels, cfg: &ScrapeConfig) -> Result<(), ScrapeError> {
    let name = labels.metric_name();
    let short = |s: &str| s.chars().take(50).collect::<String>();
    if cfg.label_limit > 0 && labels.len() as u64 > cfg.label_limit {
        return Err(ScrapeError::LabelLimit(format!(
            "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
            short(name),
            labels.len(),
            cfg.label_limit
        )));
    }
    for l in labels {
        if cfg.label_name_length_limit > 0 && l.name.len() as u64 > cfg.label_name_length_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {})",
                short(name),
                short(&l.name),
                l.name.len(),
                cfg.label_name_length_limit
            )));
        }
        if cfg.label_value_length_limit > 0 && l.value.len() as u64 > cfg.label_value_length_limit {
            return Err(ScrapeError::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {}, label name: {}, value: {:?}, length: {}, limit: {})",
                short(name),
                short(&l.name),
                short(&l.value),
                l.value.len(),
                cfg.label_value_length_limit
            )));
        }
    }
    Ok(())
}

/// Whether a value is a staleness marker written by us (re-exported for tests).
pub fn is_stale(v: f64) -> bool {
    is_stale_nan(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash128_tells_label_sets_apart() {
        let a = Labels::from_pairs([("__name__", "h"), ("a", "bc")]);
        let b = Labels::from_pairs([("__name__", "h"), ("ab", "c")]);
        let c = Labels::from_pairs([("__name__", "h"), ("a", "b"), ("c", "")]);
        assert_ne!(Labels::hash128(&a), Labels::hash128(&b));
        assert_ne!(Labels::hash128(&a), Labels::hash128(&c));
        assert_eq!(
            Labels::hash128(&a),
            Labels::hash128(&Labels::from_pairs([("a", "bc"), ("__name__", "h")]))
        );
    }

    #[test]
    fn exported_prefix_repeats_until_free() {
        let mut b = LabelsBuilder::new();
        b.set("__name__", "m")
            .set("job", "scraped")
            .set("exported_job", "x");
        let target = Labels::from_pairs([("job", "j"), ("instance", "i")]);
        merge_target_labels(&mut b, &target, false);
        let l = b.build();
        assert_eq!(l.get("job"), Some("j"));
        assert_eq!(l.get("exported_job"), Some("x"));
        assert_eq!(l.get("exported_exported_job"), Some("scraped"));
        assert_eq!(l.get("instance"), Some("i"));
    }

    /// A loop over a fresh head for the only scrape config of `yaml`.
    fn scrape_loop(yaml: &str) -> ScrapeLoop {
        let sc = crate::scrape::config::first_for_test(yaml);
        let target =
            crate::scrape::target::populate("127.0.0.1:9", &std::collections::BTreeMap::new(), &sc)
                .unwrap()
                .unwrap();
        ScrapeLoop::new(
            Arc::new(target),
            Arc::new(sc),
            Arc::new(Err("no client in tests".into())),
            Arc::new(Head::new(crate::tsdb::HeadOptions::default())),
            ScrapeMetrics::register(&crate::metrics::Registry::new(), None),
            ScrapePools::new(),
        )
    }

    fn names_in(head: &Head) -> Vec<String> {
        let all =
            [
                crate::model::Matcher::new(crate::model::MatchType::RegexMatch, "__name__", ".+")
                    .unwrap(),
            ];
        let mut v: Vec<String> = head
            .select(&all, i64::MIN, i64::MAX)
            .into_iter()
            .map(|s| s.labels.metric_name().to_string())
            .collect();
        v.sort();
        v
    }

    const UTF8_PAYLOAD: &[u8] = b"{\"my.metric\",\"my.label\"=\"a\"} 1\nplain 2\n";

    #[test]
    fn legacy_names_fail_the_scrape_utf8_names_are_stored() {
        let job = "scrape_configs:\n  - job_name: j\n";
        let mut utf8 = scrape_loop(job);
        let s = utf8
            .append_payload(UTF8_PAYLOAD, Format::PrometheusText, 1_000)
            .unwrap();
        assert_eq!(s.post_relabel, 2);
        assert_eq!(names_in(&utf8.head), ["my.metric", "plain"]);

        let mut legacy = scrape_loop(&format!("{job}    metric_name_validation_scheme: legacy\n"));
        let e = legacy
            .append_payload(UTF8_PAYLOAD, Format::PrometheusText, 1_000)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid metric name or label names: {__name__="my.metric", instance="127.0.0.1:9", job="j", "my.label"="a"}"#
        );
        assert_eq!(e.reason(), "invalid_names");
        assert!(names_in(&legacy.head).is_empty(), "nothing stored");
        // Legacy names pass.
        legacy
            .append_payload(b"plain 2\n", Format::PrometheusText, 2_000)
            .unwrap();
        assert_eq!(names_in(&legacy.head), ["plain"]);
    }

    /// The check runs when a series is resolved, not on the cached path:
    /// a series cached before the scheme turned legacy is not checked
    /// again (nor, under utf8, ever).
    #[test]
    fn cached_series_are_not_validated_again() {
        let mut lp = scrape_loop("scrape_configs:\n  - job_name: j\n");
        lp.append_payload(UTF8_PAYLOAD, Format::PrometheusText, 1_000)
            .unwrap();
        lp.cfg = Arc::new(crate::scrape::config::first_for_test(
            "scrape_configs:\n  - job_name: j\n    metric_name_validation_scheme: legacy\n",
        ));
        lp.append_payload(UTF8_PAYLOAD, Format::PrometheusText, 2_000)
            .unwrap();
        // A new series is checked.
        let e = lp
            .append_payload(
                b"{\"other.metric\"} 1\nplain 2\n",
                Format::PrometheusText,
                3_000,
            )
            .unwrap_err();
        assert!(matches!(e, ScrapeError::InvalidNames(_)), "{e}");
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let mut b = LabelsBuilder::new();
        b.set("__name__", "m").set("job", "scraped");
        merge_target_labels(
            &mut b,
            &Labels::from_pairs([("job", "j"), ("instance", "i")]),
            true,
        );
        let l = b.build();
        assert_eq!(l.get("job"), Some("scraped"));
        assert_eq!(l.get("instance"), Some("i"));
        assert_eq!(l.get("exported_job"), None);
    }
}
