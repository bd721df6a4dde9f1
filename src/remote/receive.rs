//! Remote write in (`POST /api/v1/write`, mounted by `api::remote_write`):
//! klaxon as a remote-write receiver, so a Prometheus
//! that scrapes can feed klaxon's head and klaxon evaluates rules over the
//! very samples Prometheus stored (sidecar mode).
//!
//! Semantics follow Prometheus 2.42's receiver where it is defined, and the
//! remote-write 1.0 spec where 2.42 is lax:
//! - Off unless `--web.enable-remote-write-receiver`; then 404 with
//!   Prometheus' message, as 2.42 does.
//! - Headers are not checked (2.42 does not either): a body that is not a
//!   snappy block of a `WriteRequest` is a 400 with the decode error.
//! - Label sets must be valid as the spec requires (names sorted, unique,
//!   non-empty, `__name__` present; UTF-8 names are valid, as in Prometheus
//!   3). 2.42 sorted silently and accepted the rest; klaxon answers 400 naming the series,
//!   and checks every series before appending anything, so a request
//!   refused for its labels stored nothing.
//! - Out-of-order, duplicate-timestamp and out-of-bounds (older than
//!   retention) samples make the answer a 400, as in 2.42 ("bad request to
//!   prevent retries"). Unlike 2.42, whose appender rolled back the whole
//!   request, the head has no transaction: the other samples of the request
//!   are kept. The sender does not retry a 400, so keeping them loses less.
//! - Native histograms (integer and float, custom buckets included) are
//!   appended like floats and count as samples. Exemplars go to the head's
//!   exemplar store after the samples, as in 2.42: one whose series is not in
//!   the head, or that is out of order or a duplicate, is dropped without
//!   failing the request (counted in
//!   `klaxon_remote_write_rejected_exemplars_total{reason}`). Metadata is
//!   ignored (klaxon's `/api/v1/metadata` comes from scrape targets).

use super::proto::{decode_snappy_with_stats, DecodeError, TimeSeries};
use crate::metrics::{Counter, CounterVec, Registry};
use crate::model::labels::METRIC_NAME;
use crate::model::{Label, Labels};
use crate::tsdb::exemplars::{Exemplar, ExemplarError};
use crate::tsdb::{AppendError, Head};
use axum::http::StatusCode;
use std::sync::Arc;

/// Largest decompressed request accepted. Prometheus sends batches of a
/// few thousand samples at most (well under 1 MiB); 32 MiB leaves room for
/// other senders while bounding what one request can make klaxon allocate.
pub const MAX_DECOMPRESSED: usize = 32 << 20;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReceiveError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// An invalid label set, with the index of its series in the request.
    #[error("timeseries[{index}] {labels}: {reason}")]
    InvalidLabels {
        index: usize,
        labels: String,
        reason: String,
    },
    /// Some samples were not appendable (the others were stored).
    #[error("{first} for series {series} (and {more} more rejected samples)")]
    Rejected {
        first: AppendError,
        series: String,
        more: u64,
    },
    /// The request could not be stored (WAL write failed); nothing of it
    /// was kept, and the sender should retry.
    #[error("{0}")]
    Storage(#[from] crate::tsdb::CommitError),
}

impl ReceiveError {
    pub fn status(&self) -> StatusCode {
        match self {
            ReceiveError::Decode(DecodeError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// What one accepted request did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub series: usize,
    pub samples: u64,
    /// Exemplars stored.
    pub exemplars: u64,
}

/// Decodes requests and appends them to the head.
pub struct Receiver {
    head: Arc<Head>,
    max_len: usize,
    received: Counter,
    rejected: Arc<CounterVec>,
    received_exemplars: Counter,
    rejected_exemplars: Arc<CounterVec>,
}

impl Receiver {
    /// Registers the receiver's counters in `registry`; build one per
    /// registry (a second would register the families twice).
    pub fn new(head: Arc<Head>, registry: &Registry) -> Self {
        Receiver {
            head,
            max_len: MAX_DECOMPRESSED,
            received: registry.counter(
                "klaxon_remote_write_received_samples",
                "Samples received by the remote-write receiver and appended to the head.",
            ),
            rejected: registry.counter_vec(
                "klaxon_remote_write_rejected_samples",
                "Samples received by the remote-write receiver and not appended, by reason.",
                &["reason"],
            ),
            received_exemplars: registry.counter(
                "klaxon_remote_write_received_exemplars",
                "Exemplars received by the remote-write receiver and stored.",
            ),
            rejected_exemplars: registry.counter_vec(
                "klaxon_remote_write_rejected_exemplars",
                "Exemplars received by the remote-write receiver and not stored, by reason.",
                &["reason"],
            ),
        }
    }

    /// Handles one request body (snappy-compressed protobuf).
    pub fn receive(&self, body: &[u8]) -> Result<Summary, ReceiveError> {
        self.receive_admitting(body, &|_| Ok(()))
    }

    /// [`Receiver::receive`] where every series must pass `admit` (for a
    /// sender scoped to tenants: the tenant label holds one of them), or
    /// nothing is stored; `admit`'s `Err` says why a series may not.
    pub fn receive_admitting(
        &self,
        body: &[u8],
        admit: &(dyn Fn(&Labels) -> Result<(), String> + Sync),
    ) -> Result<Summary, ReceiveError> {
        let (req, _) = decode_snappy_with_stats(body, self.max_len)?;
        // Every label set is checked before anything is appended.
        let mut sets = Vec::with_capacity(req.timeseries.len());
        for (index, ts) in req.timeseries.iter().enumerate() {
            let checked = validate(ts).and_then(|l| admit(&l).map(|()| l));
            match checked {
                Ok(l) => sets.push(l),
                Err(reason) => {
                    let samples = req
                        .timeseries
                        .iter()
                        .map(|t| t.samples.len())
                        .sum::<usize>();
                    self.rejected
                        .with(&["invalid_labels"])
                        .inc_by(samples as f64);
                    return Err(ReceiveError::InvalidLabels {
                        index,
                        labels: display_raw(&ts.labels),
                        reason,
                    });
                }
            }
        }
        let mut summary = Summary::default();
        let mut first: Option<(AppendError, String)> = None;
        let mut rejected = 0u64;
        // The whole request is one batch: one WAL write.
        let mut app = self.head.appender();
        for (ts, labels) in req.timeseries.iter().zip(&sets) {
            let n = (ts.samples.len() + ts.histograms.len()) as u64;
            if n == 0 {
                continue;
            }
            // Validated above: never empty, so this cannot fail; handled
            // anyway rather than unwrapped.
            let r = match app.get_or_create(labels) {
                Ok((r, _)) => r,
                Err(e) => {
                    self.reject(e, n);
                    rejected += n;
                    first.get_or_insert((e, labels.to_string()));
                    continue;
                }
            };
            summary.series += 1;
            for s in &ts.samples {
                match app.append_ref(r, s.timestamp, s.value) {
                    Ok(()) => summary.samples += 1,
                    Err(e) => {
                        self.reject(e, 1);
                        rejected += 1;
                        first.get_or_insert_with(|| (e, labels.to_string()));
                    }
                }
            }
            for h in &ts.histograms {
                match app.append_histogram_ref(r, h.timestamp, &h.value) {
                    Ok(()) => summary.samples += 1,
                    Err(e) => {
                        self.reject(e, 1);
                        rejected += 1;
                        first.get_or_insert_with(|| (e, labels.to_string()));
                    }
                }
            }
        }
        app.commit()?;
        self.received.inc_by(summary.samples as f64);
        summary.exemplars = self.store_exemplars(&req.timeseries, &sets);
        match first {
            None => Ok(summary),
            Some((first, series)) => {
                tracing::warn!(error = %first, %series, rejected, "remote write: samples rejected");
                Err(ReceiveError::Rejected {
                    first,
                    series,
                    more: rejected - 1,
                })
            }
        }
    }

    /// Stores the request's exemplars (after its samples, so a series the
    /// request created is there); returns how many were stored.
    fn store_exemplars(&self, series: &[TimeSeries], sets: &[Labels]) -> u64 {
        let store = self.head.exemplars();
        let mut stored = 0;
        for (ts, labels) in series.iter().zip(sets) {
            if ts.exemplars.is_empty() {
                continue;
            }
            if self.head.lookup(labels).is_none() {
                self.rejected_exemplars
                    .with(&["unknown_series"])
                    .inc_by(ts.exemplars.len() as f64);
                tracing::debug!(series = %labels, "remote write: exemplars of a series not in the head dropped");
                continue;
            }
            for e in &ts.exemplars {
                let ex = Exemplar {
                    labels: Labels::from_pairs(
                        e.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                    ),
                    value: e.value,
                    ts: e.timestamp,
                };
                match store.add(labels, ex) {
                    Ok(()) => stored += 1,
                    Err(err) => {
                        let reason = match err {
                            ExemplarError::Duplicate => "duplicate",
                            ExemplarError::OutOfOrder => "out_of_order",
                            ExemplarError::LabelLength => "label_length",
                            ExemplarError::Disabled => "disabled",
                        };
                        self.rejected_exemplars.with(&[reason]).inc();
                        tracing::debug!(series = %labels, error = %err, "remote write: exemplar not stored");
                    }
                }
            }
        }
        self.received_exemplars.inc_by(stored as f64);
        stored
    }

    fn reject(&self, e: AppendError, n: u64) {
        self.rejected.with(&[reject_reason(e)]).inc_by(n as f64);
    }
}

/// The `reason` label of a sample the head refused (shared with the OTLP
/// receiver).
pub(crate) fn reject_reason(e: AppendError) -> &'static str {
    match e {
        AppendError::OutOfOrder => "out_of_order",
        AppendError::DuplicateTimestamp => "duplicate_timestamp",
        AppendError::OutOfBounds => "out_of_bounds",
        AppendError::UnknownSeries | AppendError::EmptyLabels => "invalid_labels",
        AppendError::InvalidHistogram => "invalid_histogram",
    }
}

/// The label set of one series as the head keeps it, or why it is invalid.
/// Empty values are dropped, as Prometheus' head does.
fn validate(ts: &TimeSeries) -> Result<Labels, String> {
    let mut prev: Option<&str> = None;
    for l in &ts.labels {
        // UTF-8 names are valid (Prometheus 3's default); the decoder has
        // checked the UTF-8.
        if l.name.is_empty() {
            return Err(format!("invalid label name {:?}", l.name));
        }
        if let Some(p) = prev {
            if p == l.name {
                return Err(format!("duplicate label name {:?}", l.name));
            }
            if p > l.name.as_str() {
                return Err(format!("labels not sorted: {:?} after {:?}", l.name, p));
            }
        }
        prev = Some(&l.name);
    }
    let name = ts
        .labels
        .iter()
        .find(|l| l.name == METRIC_NAME)
        .map(|l| l.value.as_str())
        .unwrap_or("");
    if name.is_empty() {
        return Err("missing metric name (__name__ label)".into());
    }
    Ok(Labels::from_sorted_unchecked(
        ts.labels
            .iter()
            .filter(|l| !l.value.is_empty())
            .cloned()
            .collect(),
    ))
}

/// Labels in the order sent, for error messages.
fn display_raw(labels: &[Label]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Matcher;
    use crate::remote::proto::{encode_snappy, Sample, WriteRequest};
    use crate::tsdb::HeadOptions;

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            histograms: Vec::new(),
            exemplars: Vec::new(),
            labels: labels.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }
    }

    fn body(ts: Vec<TimeSeries>) -> Vec<u8> {
        encode_snappy(&WriteRequest {
            timeseries: ts,
            metadata: vec![],
        })
    }

    fn setup() -> (Arc<Head>, Registry, Receiver) {
        let head = Arc::new(Head::new(HeadOptions::default()));
        let reg = Registry::new();
        let r = Receiver::new(head.clone(), &reg);
        (head, reg, r)
    }

    fn all(head: &Head) -> Vec<crate::tsdb::SeriesData> {
        let m = Matcher::new(crate::model::MatchType::RegexMatch, METRIC_NAME, ".+").unwrap();
        head.select(&[m], i64::MIN, i64::MAX)
    }

    #[test]
    fn native_histograms_round_trip_the_wire_and_land_in_the_head() {
        use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
        use crate::remote::proto_hist::HistogramSample;
        use crate::tsdb::HistValue;
        let int = HistValue::Int(Histogram {
            counter_reset_hint: CounterResetHint::NotReset,
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 1,
            count: 6,
            sum: 12.5,
            positive_spans: vec![Span::new(-1, 2), Span::new(2, 1)],
            negative_spans: vec![Span::new(0, 1)],
            positive_buckets: vec![1, 1, -1],
            negative_buckets: vec![1],
            ..Default::default()
        });
        let nhcb = HistValue::Float(FloatHistogram {
            schema: -53,
            count: 3.0,
            sum: 4.0,
            positive_spans: vec![Span::new(0, 2)],
            positive_buckets: vec![1.0, 2.0],
            custom_values: vec![5.0, 10.0],
            ..Default::default()
        });
        let mut ts = series(&[("__name__", "h"), ("job", "a")], &[]);
        ts.histograms = vec![
            HistogramSample {
                timestamp: 1000,
                value: int.clone(),
            },
            HistogramSample {
                timestamp: 2000,
                value: nhcb.clone(),
            },
        ];
        let req = WriteRequest {
            timeseries: vec![ts],
            metadata: vec![],
        };
        let decoded = crate::remote::proto::decode_snappy(&encode_snappy(&req), 1 << 20).unwrap();
        assert_eq!(decoded, req);
        let (head, reg, r) = setup();
        let s = r.receive(&encode_snappy(&req)).unwrap();
        assert_eq!(s.samples, 2);
        let got = all(&head);
        assert_eq!(got[0].histograms[0].0, 1000);
        assert!(got[0].histograms[0].1.equals(&int));
        assert!(got[0].histograms[1].1.equals(&nhcb));
        // An invalid histogram (count below its buckets) is refused.
        let mut ts = series(&[("__name__", "h"), ("job", "a")], &[]);
        ts.histograms = vec![HistogramSample {
            timestamp: 3000,
            value: HistValue::Int(Histogram {
                count: 1,
                positive_spans: vec![Span::new(0, 1)],
                positive_buckets: vec![5],
                ..Default::default()
            }),
        }];
        let err = r.receive(&body(vec![ts])).unwrap_err();
        assert!(err.to_string().contains("invalid histogram"), "{err}");
        assert!(reg
            .encode(false)
            .contains("reason=\"invalid_histogram\"} 1"));
    }

    #[test]
    fn exemplars_are_stored_after_their_series() {
        use crate::remote::proto::Exemplar as Ex;
        let (head, reg, r) = setup();
        let ex = |t: i64, v: f64, id: &str| Ex {
            labels: vec![Label::new("trace_id", id)],
            value: v,
            timestamp: t,
        };
        let mut a = series(&[("__name__", "req"), ("job", "a")], &[(1000, 1.0)]);
        a.exemplars = vec![ex(900, 0.5, "x"), ex(950, 0.7, "y")];
        // No samples and no series in the head: dropped, as Prometheus does.
        let mut b = series(&[("__name__", "nope")], &[]);
        b.exemplars = vec![ex(900, 1.0, "z")];
        let s = r.receive(&body(vec![a.clone(), b])).unwrap();
        assert_eq!(s.exemplars, 2);
        let m = Matcher::new(crate::model::MatchType::Equal, "__name__", "req").unwrap();
        let got = head.exemplars().select(0, 10_000, &[vec![m]]);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].series,
            Labels::from_pairs([("__name__", "req"), ("job", "a")])
        );
        let ts: Vec<(i64, f64, String)> = got[0]
            .exemplars
            .iter()
            .map(|e| (e.ts, e.value, e.labels.to_string()))
            .collect();
        assert_eq!(
            ts,
            vec![
                (900, 0.5, "{trace_id=\"x\"}".to_string()),
                (950, 0.7, "{trace_id=\"y\"}".to_string())
            ]
        );
        // Exemplars of an existing series, sent alone; an older one is out
        // of order and does not fail the request.
        let mut c = series(&[("__name__", "req"), ("job", "a")], &[]);
        c.exemplars = vec![ex(800, 1.0, "old"), ex(2000, 2.0, "new")];
        assert_eq!(r.receive(&body(vec![c])).unwrap().exemplars, 1);
        let text = reg.encode(false);
        assert!(
            text.contains("klaxon_remote_write_received_exemplars_total 3\n"),
            "{text}"
        );
        assert!(text
            .contains("klaxon_remote_write_rejected_exemplars_total{reason=\"unknown_series\"} 1"));
        assert!(text
            .contains("klaxon_remote_write_rejected_exemplars_total{reason=\"out_of_order\"} 1"));
    }

    #[test]
    fn utf8_names_are_stored_untouched() {
        let (head, _reg, r) = setup();
        r.receive(&body(vec![series(
            &[("__name__", "my.metric"), ("label.name", "ü")],
            &[(1, 1.0)],
        )]))
        .unwrap();
        let got = all(&head);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.metric_name(), "my.metric");
        assert_eq!(got[0].labels.get("label.name"), Some("ü"));
    }

    #[test]
    fn appends_and_drops_empty_values() {
        let (head, reg, r) = setup();
        let s = r
            .receive(&body(vec![
                series(
                    &[("__name__", "up"), ("empty", ""), ("job", "a")],
                    &[(1000, 1.0), (2000, 0.0)],
                ),
                series(&[("__name__", "nothing")], &[]),
            ]))
            .unwrap();
        assert_eq!(
            s,
            Summary {
                series: 1,
                samples: 2,
                exemplars: 0
            }
        );
        let got = all(&head);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].labels,
            Labels::from_pairs([("__name__", "up"), ("job", "a")])
        );
        assert_eq!(got[0].samples, vec![(1000, 1.0), (2000, 0.0)]);
        assert!(reg
            .encode(false)
            .contains("klaxon_remote_write_received_samples_total 2\n"));
    }

    /// A backfill as benches/compare_query.py sends it: consecutive time
    /// slices of many series, each request holding several samples per
    /// series. Every slice after the first is accepted (as Prometheus
    /// 2.42 does); sending the first slice again is out of order.
    #[test]
    fn in_order_slices_across_requests_are_accepted() {
        let (head, _reg, r) = setup();
        let names = ["c", "a", "b"];
        let slice = |k: i64| {
            let ts = names
                .iter()
                .map(|n| {
                    let pts: Vec<(i64, f64)> = (0..60)
                        .map(|i| {
                            let t = (k * 60 + i) * 15_000;
                            (t, t as f64)
                        })
                        .collect();
                    series(&[("__name__", "m"), ("s", n)], &pts)
                })
                .collect();
            body(ts)
        };
        for k in 0..4 {
            let got = r.receive(&slice(k)).unwrap();
            assert_eq!(
                got,
                Summary {
                    series: 3,
                    samples: 180,
                    exemplars: 0
                },
                "slice {k}"
            );
        }
        let err = r.receive(&slice(0)).unwrap_err();
        assert!(
            matches!(
                err,
                ReceiveError::Rejected {
                    first: AppendError::OutOfOrder,
                    more: 179,
                    ..
                }
            ),
            "{err:?}"
        );
        let got = all(&head);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|s| s.samples.len() == 240));
    }

    #[test]
    fn invalid_labels_store_nothing() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("job", "a"), ("__name__", "m")], "not sorted"),
            (&[("job", "a")], "missing metric name"),
            (&[("__name__", ""), ("job", "a")], "missing metric name"),
            (&[("__name__", "m"), ("b", "1"), ("a", "2")], "not sorted"),
            (
                &[("__name__", "m"), ("job", "1"), ("job", "2")],
                "duplicate label name",
            ),
            (&[("", "1"), ("__name__", "m")], "invalid label name"),
        ];
        for (labels, want) in cases {
            let (head, reg, r) = setup();
            let good = series(&[("__name__", "ok")], &[(1, 1.0)]);
            let err = r
                .receive(&body(vec![good, series(labels, &[(1, 1.0)])]))
                .unwrap_err();
            assert!(
                matches!(err, ReceiveError::InvalidLabels { index: 1, .. }),
                "{err}"
            );
            assert!(err.to_string().contains(want), "{labels:?}: {err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert!(all(&head).is_empty(), "{labels:?}: nothing stored");
            assert!(reg.encode(false).contains(
                "klaxon_remote_write_rejected_samples_total{reason=\"invalid_labels\"} 2\n"
            ));
        }
    }

    #[test]
    fn out_of_order_is_400_but_keeps_the_rest() {
        let (head, reg, r) = setup();
        r.receive(&body(vec![series(&[("__name__", "m")], &[(2000, 1.0)])]))
            .unwrap();
        let err = r
            .receive(&body(vec![
                series(
                    &[("__name__", "m")],
                    &[(1000, 5.0), (2000, 2.0), (2000, 1.0), (3000, 3.0)],
                ),
                series(&[("__name__", "n")], &[(1000, 7.0)]),
            ]))
            .unwrap_err();
        assert_eq!(
            err,
            ReceiveError::Rejected {
                first: AppendError::OutOfOrder,
                series: "m".into(),
                more: 1
            }
        );
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let got = all(&head);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples, vec![(2000, 1.0), (3000, 3.0)]);
        assert_eq!(got[1].samples, vec![(1000, 7.0)]);
        let text = reg.encode(false);
        assert!(text.contains("{reason=\"out_of_order\"} 1\n"), "{text}");
        assert!(
            text.contains("{reason=\"duplicate_timestamp\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("klaxon_remote_write_received_samples_total 4\n"),
            "{text}"
        );
    }

    #[test]
    fn garbage_and_size() {
        let (_, _, r) = setup();
        assert!(matches!(
            r.receive(b"definitely not snappy"),
            Err(ReceiveError::Decode(_))
        ));
        let (_, _, mut r) = setup();
        r.max_len = 10;
        let e = r
            .receive(&body(vec![series(
                &[("__name__", "a_long_name")],
                &[(1, 1.0)],
            )]))
            .unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.receive(&body(vec![])), Ok(Summary::default()));
    }
}
