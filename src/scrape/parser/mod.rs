//! Exposition-format parser: Prometheus text 0.0.4 and OpenMetrics 1.0 text.
//!
//! Built for the scrape loop's hot path: [`Parser::next`] walks the payload one
//! line at a time and hands out [`Entry`] values that borrow from the input. A
//! sample carries the raw bytes of its series (`name{labels}` as written) so
//! that the scrape cache can look a series up without decoding anything; labels
//! are decoded only on a cache miss via [`Sample::labels_into`]. Validation
//! (label syntax, escapes, UTF-8, values) happens while scanning, without
//! allocating per sample.
//!
//! The text format is parsed as leniently as Prometheus parses it; OpenMetrics
//! is validated strictly (family grouping, suffixes, histogram rules, `# EOF`),
//! following the upstream conformance suite.

mod om_state;
mod openmetrics;
pub mod protobuf;
mod sample;
mod scan;
mod text;

use std::borrow::Cow;

pub use sample::{Exemplar, LabelPairs, Sample};

/// Which exposition format a payload is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    PrometheusText,
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages: not
    /// read by [`Parser`] (which takes it as text) but converted first by
    /// [`protobuf::convert`].
    Protobuf,
}

impl Format {
    /// Picks the format from a response `Content-Type`: OpenMetrics only when
    /// the media type says so, the text format for anything else (Prometheus
    /// falls back the same way for unknown or missing types).
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else if media.eq_ignore_ascii_case("application/vnd.google.protobuf")
            && ct.split(';').skip(1).any(|p| {
                p.trim()
                    .eq_ignore_ascii_case("proto=io.prometheus.client.MetricFamily")
            })
        {
            Format::Protobuf
        } else {
            Format::PrometheusText
        }
    }
}

/// Metric family type as declared by `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The name Prometheus' metadata API uses for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for MetricType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of a payload.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'a> {
    Sample(Sample<'a>),
    Help {
        family: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Type {
        family: Cow<'a, str>,
        kind: MetricType,
    },
    Unit {
        family: Cow<'a, str>,
        unit: Cow<'a, str>,
    },
}

/// How strictly OpenMetrics input is validated (the text format ignores this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validation {
    /// Everything OpenMetrics 1.0 and its conformance suite demand.
    #[default]
    Strict,
    /// Syntax, metadata, family and group rules are still enforced, but not the
    /// value semantics Prometheus does not check at scrape time: negative or NaN
    /// counter-like values, negative quantile values, stateset/info values and the
    /// histogram bucket rules. client_golang exposes histograms with negative
    /// buckets plus `_sum` and summaries with negative quantiles (e.g. the
    /// upstream textparse file `alltypes.5mfs.om.txt`); Prometheus ingests them,
    /// the conformance suite rejects them (`bad_histograms_3`,
    /// `bad_counter_values_19`). A scraper that must not fail on such targets
    /// uses this mode.
    PrometheusCompatible,
}

/// A payload that does not parse. `column` is 1-based and counts bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Streaming parser over one scraped payload.
pub struct Parser<'a> {
    input: &'a [u8],
    format: Format,
    /// Start of the next line to read.
    pos: usize,
    /// 1-based number of the next line to read.
    line: usize,
    /// Set after the end of input or the first error: the parser is fused.
    done: bool,
    /// Label spans of the current line, reused so scanning never allocates.
    spans: Vec<scan::LabelSpan>,
    /// Exemplar label spans (OpenMetrics only).
    ex_spans: Vec<scan::LabelSpan>,
    /// Cross-line OpenMetrics validation state; `None` for the text format.
    om: Option<Box<om_state::State>>,
    /// The line [`Parser::peek_series`] looked at last.
    peeked: Option<Peeked>,
}

/// A line looked at by [`Parser::peek_series`]: its bounds and where its
/// series text would end.
#[derive(Clone, Copy, Debug)]
struct Peeked {
    start: usize,
    end: usize,
    has_nl: bool,
    series_end: usize,
}

impl<'a> Parser<'a> {
    /// A parser with [`Validation::Strict`].
    pub fn new(input: &'a [u8], format: Format) -> Self {
        Self::with_validation(input, format, Validation::Strict)
    }

    /// A parser with the given OpenMetrics validation level.
    pub fn with_validation(input: &'a [u8], format: Format, validation: Validation) -> Self {
        Parser {
            input,
            format,
            pos: 0,
            line: 1,
            done: false,
            spans: Vec::with_capacity(16),
            ex_spans: Vec::new(),
            om: match format {
                Format::OpenMetrics => {
                    let mut st = Box::<om_state::State>::default();
                    st.lenient_values = validation == Validation::PrometheusCompatible;
                    Some(st)
                }
                Format::PrometheusText | Format::Protobuf => None,
            },
            peeked: None,
        }
    }

    /// For callers that keep the series texts of earlier payloads (the
    /// scrape cache): the series text of the next line if it is a
    /// Prometheus-text sample, found without validating it, so that a
    /// series seen before costs no label scanning. Only a text equal to
    /// one [`Parser::next`] handed out before may be trusted; for such a
    /// line [`Parser::next_known`] reads the rest. `None` (use `next`) for
    /// OpenMetrics, comments, blank lines and the end of input.
    pub fn peek_series(&mut self) -> Option<&'a [u8]> {
        if self.done || self.om.is_some() {
            return None;
        }
        let input = self.input;
        let start = self.pos;
        let rest = input.get(start..)?;
        let (end, has_nl) = match memchr::memchr(b'\n', rest) {
            Some(k) => (start + k, true),
            None => (input.len(), false),
        };
        let series_end = text::quick_series_end(input, start, end)?;
        self.peeked = Some(Peeked {
            start,
            end,
            has_nl,
            series_end,
        });
        input.get(start..series_end)
    }

    /// Consumes the line [`Parser::peek_series`] just looked at as a sample
    /// of that series text (known good), reading only its value and
    /// timestamp. `None`, consuming nothing, when they do not parse:
    /// [`Parser::next`] then reads the line again and reports the error.
    pub fn next_known(&mut self) -> Option<(f64, Option<i64>)> {
        let p = self.peeked.take().filter(|p| p.start == self.pos)?;
        let (value, timestamp) =
            text::value_and_timestamp(self.input, p.series_end, p.end, p.has_nl).ok()?;
        self.pos = if p.has_nl { p.end + 1 } else { p.end };
        self.line += 1;
        Some((value, timestamp))
    }

    /// The 1-based line of the entry [`Parser::next`] returned last.
    pub fn line(&self) -> usize {
        self.line.saturating_sub(1)
    }

    /// The format this parser reads.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next entry. `Ok(None)` at the end of input (for OpenMetrics only
    /// after `# EOF`; a missing `# EOF` is an error). After an error the parser
    /// is finished and returns `Ok(None)`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let r = self.next_inner();
        if r.is_err() {
            self.done = true;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let input = self.input;
        loop {
            if self.done {
                return Ok(None);
            }
            if self.pos >= input.len() {
                self.done = true;
                if let Some(om) = self.om.as_mut() {
                    if !om.eof {
                        return Err(ParseError {
                            line: self.line,
                            column: 1,
                            message: "missing \"# EOF\" at end of OpenMetrics input".into(),
                        });
                    }
                }
                return Ok(None);
            }
            let start = self.pos;
            let line_no = self.line;
            let rest = input.get(start..).unwrap_or(&[]);
            let (end, has_nl) = match memchr::memchr(b'\n', rest) {
                Some(k) => (start + k, true),
                None => (input.len(), false),
            };
            self.pos = if has_nl { end + 1 } else { end };
            self.line += 1;
            let res = match self.om.as_mut() {
                None => text::line(input, start, end, has_nl, &mut self.spans),
                Some(om) => {
                    let r = openmetrics::line(
                        om,
                        input,
                        start,
                        end,
                        &mut self.spans,
                        &mut self.ex_spans,
                    );
                    if om.eof && r.is_ok() && self.pos < input.len() {
                        Err((self.pos, "content after \"# EOF\"".to_string()))
                    } else {
                        r
                    }
                }
            };
            match res {
                Ok(Some(e)) => return Ok(Some(e)),
                Ok(None) => continue,
                Err((off, message)) => {
                    // Offsets at or past this line's end belong to the next line
                    // (only "content after # EOF" does that).
                    let (line, lstart) = if off > end {
                        (line_no + 1, end + 1)
                    } else {
                        (line_no, start)
                    };
                    return Err(ParseError {
                        line,
                        column: off.saturating_sub(lstart) + 1,
                        message,
                    });
                }
            }
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        Parser::next(self).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    type Got = Vec<Result<(Vec<u8>, u64, Option<i64>), String>>;

    /// Every sample (series text, value bits, timestamp) or the error that
    /// ended the parse, reading known series with `peek_series` +
    /// `next_known` as the scrape loop does.
    fn read(input: &[u8], known: &HashSet<Vec<u8>>) -> Got {
        let mut p = Parser::new(input, Format::PrometheusText);
        let mut out = Vec::new();
        loop {
            if let Some(series) = p.peek_series() {
                if known.contains(series) {
                    if let Some((v, ts)) = p.next_known() {
                        out.push(Ok((series.to_vec(), v.to_bits(), ts)));
                        continue;
                    }
                }
            }
            match p.next() {
                Ok(Some(Entry::Sample(s))) => {
                    out.push(Ok((s.series.to_vec(), s.value.to_bits(), s.timestamp)))
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn known_series_read_only_their_value_and_match_a_full_parse() {
        let payloads: &[&[u8]] = &[
            b"# HELP a x\n# TYPE a counter\na 1\na{x=\"1\"} 2 1000\nb{x=\"}\"} 3\n  a 4\na\t5\n",
            b"a {x=\"1\"} 1\na{x=\"1\"} 2\n{\"a\",x=\"1\"} 3\na{x=\"1\",} 4\n",
            b"a{x=\"1\"} 1\na{x=\"1\"} nope\n",
            b"a{x=\"1\"} 1\na{x=\"1\"} 2 3 4\n",
            b"a{x=\"1\"} 1\na{x=\"1\"} 2",
            b"a 1\na{ 2\n",
            b"a{x=\"1\"} 1\na{x=\"1\"}2\na{x=\"1\"} +Inf\na{x=\"1\"} 1e3 -5\n",
        ];
        for input in payloads {
            let full = read(input, &HashSet::new());
            let known: HashSet<Vec<u8>> = full
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|s| s.0.clone()))
                .collect();
            assert_eq!(
                read(input, &known),
                full,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // Guessed texts a full parse never hands out, even if "known".
        let mut known = HashSet::new();
        known.insert(b"b{x=\"}".to_vec());
        known.insert(b"a".to_vec());
        let input = b"b{x=\"}\"} 3\na {x=\"1\"} 4\n";
        assert_eq!(read(input, &known), read(input, &HashSet::new()));
    }
}
