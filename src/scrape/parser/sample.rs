//! Samples and exemplars as handed out by the parser, with lazy label decoding.
//!
//! A sample keeps borrowed slices of its line; the label set was validated while
//! scanning, so decoding here only walks it again and unescapes. That work is
//! done only when the scrape cache misses.

use std::borrow::Cow;

use super::scan;
use crate::model::{Labels, LabelsBuilder};

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// Raw bytes of the metric name + label set exactly as written in the payload: the scrape
    /// loop's cache key, so a series seen in the previous scrape costs no label decoding.
    pub series: &'a [u8],
    pub value: f64,
    /// Milliseconds; OpenMetrics float seconds are converted (truncated like Prometheus).
    pub timestamp: Option<i64>,
    /// Parsed and validated; the scraper may drop it.
    pub exemplar: Option<Exemplar<'a>>,
    pub(super) name: &'a [u8],
    pub(super) name_escaped: bool,
    /// Label-set content between the braces (may hold a quoted metric name).
    pub(super) labels: &'a [u8],
    pub(super) label_count: usize,
}

impl<'a> Sample<'a> {
    /// The metric name, unescaped when it was written as a quoted string.
    pub fn metric_name(&self) -> Cow<'a, str> {
        let s = scan::as_str(self.name);
        if self.name_escaped {
            scan::unescape(s, true)
        } else {
            Cow::Borrowed(s)
        }
    }

    /// Decodes labels (unescaped) into the builder, including `__name__`. Only
    /// called on a cache miss. Empty values are dropped by the builder, which is
    /// how Prometheus treats them.
    pub fn labels_into(&self, b: &mut LabelsBuilder) {
        b.set(
            crate::model::labels::METRIC_NAME,
            self.metric_name().into_owned(),
        );
        for (n, v) in self.label_pairs() {
            b.set(n.into_owned(), v.into_owned());
        }
    }

    /// The decoded label set, `__name__` included.
    pub fn labels(&self) -> Labels {
        let mut b = LabelsBuilder::new();
        self.labels_into(&mut b);
        b.build()
    }

    /// Number of label pairs written in the label set, not counting the metric
    /// name; known from scanning, so `label_limit` checks need no decoding.
    pub fn label_count(&self) -> usize {
        self.label_count
    }

    /// The label pairs as written (name order of the payload), unescaped.
    pub fn label_pairs(&self) -> LabelPairs<'a> {
        LabelPairs {
            buf: self.labels,
            i: 0,
        }
    }
}

/// An OpenMetrics exemplar attached to a counter or histogram-bucket sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    /// Label-set content between the braces.
    pub(super) labels: &'a [u8],
    pub value: f64,
    /// Milliseconds.
    pub timestamp: Option<i64>,
}

impl<'a> Exemplar<'a> {
    pub fn label_pairs(&self) -> LabelPairs<'a> {
        LabelPairs {
            buf: self.labels,
            i: 0,
        }
    }

    /// The exemplar's labels (no `__name__`).
    pub fn labels(&self) -> Labels {
        let mut b = LabelsBuilder::new();
        for (n, v) in self.label_pairs() {
            b.set(n.into_owned(), v.into_owned());
        }
        b.build()
    }
}

/// Iterator over the `name="value"` pairs of an already validated label set.
/// A quoted metric name inside the braces is skipped. Should the bytes not be
/// a valid set after all, iteration simply stops: this path must never panic.
#[derive(Clone, Debug)]
pub struct LabelPairs<'a> {
    buf: &'a [u8],
    i: usize,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        let end = buf.len();
        loop {
            while matches!(buf.get(self.i), Some(b' ' | b'\t' | b',')) {
                self.i += 1;
            }
            if self.i >= end {
                return None;
            }
            let name = if buf.get(self.i) == Some(&b'"') {
                let q = scan::quoted(buf, self.i, end).ok()?;
                self.i = q.next;
                decode(buf, q.content, q.escaped)
            } else {
                let n = scan::label_name_len(buf, self.i, end);
                if n == 0 {
                    self.i = end;
                    return None;
                }
                let s = Cow::Borrowed(scan::as_str(buf.get(self.i..self.i + n)?));
                self.i += n;
                s
            };
            while matches!(buf.get(self.i), Some(b' ' | b'\t')) {
                self.i += 1;
            }
            if buf.get(self.i) != Some(&b'=') {
                // A quoted metric name: not a label pair.
                continue;
            }
            self.i += 1;
            while matches!(buf.get(self.i), Some(b' ' | b'\t')) {
                self.i += 1;
            }
            let q = match scan::quoted(buf, self.i, end) {
                Ok(q) => q,
                Err(_) => {
                    self.i = end;
                    return None;
                }
            };
            self.i = q.next;
            return Some((name, decode(buf, q.content, q.escaped)));
        }
    }
}

fn decode(buf: &[u8], (s, e): (usize, usize), escaped: bool) -> Cow<'_, str> {
    let raw = scan::as_str(buf.get(s..e).unwrap_or(&[]));
    if escaped {
        scan::unescape(raw, true)
    } else {
        Cow::Borrowed(raw)
    }
}
