//! The OTLP metrics receiver (`POST /api/v1/otlp/v1/metrics`, mounted by
//! `api::otlp` when `--web.enable-otlp-receiver` is on): an OpenTelemetry
//! SDK or collector pushes `ExportMetricsServiceRequest`s (protobuf,
//! or OTLP/JSON, optionally gzip), which are translated to Prometheus series as
//! Prometheus 3 does ([`translate`]) and appended to the head in one batch.
//!
//! A request whose metrics cannot all be translated (delta temporality,
//! unusable names, exponential histograms of a scale below -4) is answered
//! 400 with every reason; the metrics that could be translated are stored
//! anyway, as Prometheus stores them (it only logs the reasons). Native
//! histograms (exponential histograms, and explicit-bucket ones with
//! `otlp.convert_histograms_to_nhcb`) go through the same batch; exemplars
//! go to the head's exemplar store once the batch is committed.

pub mod config;
pub mod decode;
pub mod json;
pub mod names;
pub mod translate;

pub use config::{OtlpConfig, TranslationStrategy};
use decode::DecodeError;

use crate::metrics::{Counter, CounterVec, Registry};
use crate::tsdb::{AppendError, Head};
use parking_lot::RwLock;
use std::sync::Arc;

/// Largest request body accepted, after decompression.
pub const MAX_REQUEST_BYTES: usize = 32 << 20;

/// Why a request was refused, wholly or in part.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Body(String),
    #[error("request body of more than {max} bytes")]
    TooLarge { max: usize },
    /// Some metrics could not be translated; `stored` samples of the
    /// others were kept.
    #[error("{}; stored {stored} samples of the request", errors.join("; "))]
    Translate { errors: Vec<String>, stored: u64 },
    #[error("{first} for series {series} (and {more} more rejected samples)")]
    Rejected {
        first: AppendError,
        series: String,
        more: u64,
    },
    #[error("{0}")]
    Storage(#[from] crate::tsdb::CommitError),
}

impl ReceiveError {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ReceiveError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReceiveError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Decodes, translates and stores OTLP requests.
pub struct Receiver {
    head: Arc<Head>,
    config: RwLock<Arc<OtlpConfig>>,
    received: Counter,
    rejected: Arc<CounterVec>,
}

impl Receiver {
    /// Registers the receiver's counters in `registry` (one receiver per
    /// registry).
    pub fn new(head: Arc<Head>, config: OtlpConfig, registry: &Registry) -> Self {
        Receiver {
            head,
            config: RwLock::new(Arc::new(config)),
            received: registry.counter(
                "klaxon_otlp_received_samples",
                "Samples received by the OTLP receiver and appended to the head.",
            ),
            rejected: registry.counter_vec(
                "klaxon_otlp_rejected",
                "Metrics (reason translation) and samples (other reasons) the OTLP receiver did not store.",
                &["reason"],
            ),
        }
    }

    /// Replaces the `otlp:` settings (on reload).
    pub fn set_config(&self, config: OtlpConfig) {
        *self.config.write() = Arc::new(config);
    }

    /// Handles one decompressed protobuf body; returns the samples stored.
    pub fn receive(&self, body: &[u8]) -> Result<u64, ReceiveError> {
        self.receive_as(body, false)
    }

    /// Handles one decompressed OTLP/JSON body; returns the samples stored.
    pub fn receive_json(&self, body: &[u8]) -> Result<u64, ReceiveError> {
        self.receive_as(body, true)
    }

    fn receive_as(&self, body: &[u8], json: bool) -> Result<u64, ReceiveError> {
        let _span = tracing::debug_span!("otlp_receive", bytes = body.len(), json).entered();
        if body.len() > MAX_REQUEST_BYTES {
            return Err(ReceiveError::TooLarge {
                max: MAX_REQUEST_BYTES,
            });
        }
        let req = if json {
            json::decode_json(body)?
        } else {
            decode::decode(body)?
        };
        self.store(&req)
    }

    /// Translates and appends a decoded request.
    fn store(&self, req: &decode::ExportRequest) -> Result<u64, ReceiveError> {
        let cfg = self.config.read().clone();
        let translated = translate::translate(req, &cfg);
        if !translated.errors.is_empty() {
            self.rejected
                .with(&["translation"])
                .inc_by(translated.errors.len() as f64);
        }
        for w in &translated.warnings {
            tracing::debug!(warning = %w, "OTLP translation");
        }
        let mut app = self.head.appender();
        let mut stored = 0u64;
        let mut first: Option<(AppendError, String)> = None;
        let mut rejected = 0u64;
        let mut count = |res: Result<(), AppendError>, labels: &crate::model::Labels| match res {
            Ok(()) => stored += 1,
            Err(e) => {
                rejected += 1;
                self.rejected
                    .with(&[crate::remote::receive::reject_reason(e)])
                    .inc();
                first.get_or_insert_with(|| (e, labels.to_string()));
            }
        };
        for s in &translated.samples {
            let res = app
                .get_or_create(&s.labels)
                .and_then(|(r, _)| app.append_ref(r, s.t, s.v));
            count(res, &s.labels);
        }
        for s in &translated.histograms {
            let res = app.append_histogram(&s.labels, s.t, &s.h).map(|_| ());
            count(res, &s.labels);
        }
        app.commit()?;
        let exemplars = self.head.exemplars();
        for e in translated.exemplars {
            if let Err(err) = exemplars.add(&e.series, e.exemplar) {
                tracing::trace!(series = %e.series, error = %err, "exemplar not stored");
            }
        }
        self.received.inc_by(stored as f64);
        if !translated.errors.is_empty() {
            return Err(ReceiveError::Translate {
                errors: translated.errors,
                stored,
            });
        }
        match first {
            None => Ok(stored),
            Some((first, series)) => Err(ReceiveError::Rejected {
                first,
                series,
                more: rejected - 1,
            }),
        }
    }
}

/// Gunzips `body` into at most [`MAX_REQUEST_BYTES`].
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, ReceiveError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(body).take(MAX_REQUEST_BYTES as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| ReceiveError::Body(format!("gzip: {e}")))?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(ReceiveError::TooLarge {
            max: MAX_REQUEST_BYTES,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
