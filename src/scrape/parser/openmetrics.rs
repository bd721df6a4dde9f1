//! OpenMetrics 1.0 text format, validated strictly.
//!
//! Line syntax (single spaces, no blanks in label sets, float timestamps,
//! exemplars, `# EOF`) is checked here; the cross-line rules live in
//! [`State`](super::om_state::State).

use std::borrow::Cow;

use super::om_state::{Meta, State};
use super::sample::{Exemplar, Sample};
use super::scan::{self, Dialect, LabelSpan, ScanResult};
use super::{Entry, MetricType};

const DIALECT: Dialect = Dialect { lenient: false };

/// Maximum combined length, in code points, of an exemplar's label names and values.
const EXEMPLAR_MAX_RUNES: usize = 128;

/// Parses one OpenMetrics line; `Ok(None)` for `# EOF`.
pub(super) fn line<'a>(
    st: &mut State,
    buf: &'a [u8],
    start: usize,
    end: usize,
    spans: &mut Vec<LabelSpan>,
    ex_spans: &mut Vec<LabelSpan>,
) -> ScanResult<Option<Entry<'a>>> {
    let l = buf.get(start..end).unwrap_or(&[]);
    if l.is_empty() {
        return Err((start, "blank line".into()));
    }
    if l.first() == Some(&b'#') {
        if l == b"# EOF" {
            st.finish_family().map_err(|m| (start, m))?;
            st.eof = true;
            return Ok(None);
        }
        return metadata(st, buf, start, end).map(Some);
    }
    let s = sample(buf, start, end, spans, ex_spans)?;
    let name = buf.get(s.name_range.0..s.name_range.1).unwrap_or(&[]);
    st.sample(
        buf,
        name,
        spans,
        s.sample.value,
        s.ts_secs,
        s.sample.exemplar.is_some(),
    )
    .map_err(|m| (start, m))?;
    Ok(Some(Entry::Sample(s.sample)))
}

fn metadata<'a>(st: &mut State, buf: &'a [u8], start: usize, end: usize) -> ScanResult<Entry<'a>> {
    let kw = buf.get(start..(start + 7).min(end)).unwrap_or(&[]);
    let kind = match kw {
        b"# HELP " => Meta::Help,
        b"# TYPE " => Meta::Type,
        b"# UNIT " => Meta::Unit,
        _ => {
            return Err((
                start,
                "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\"".into(),
            ))
        }
    };
    let j = start + 7;
    let (name_raw, name, after) = if buf.get(j) == Some(&b'"') && j < end {
        let q = scan::quoted(buf, j, end)?;
        let raw = buf.get(q.content.0..q.content.1).unwrap_or(&[]);
        let s = scan::as_str(raw);
        let name = if q.escaped {
            scan::unescape(s, true)
        } else {
            Cow::Borrowed(s)
        };
        (raw, name, q.next)
    } else {
        let n = scan::metric_name_len(buf, j, end);
        if n == 0 {
            return Err((j, "expected metric name".into()));
        }
        let raw = buf.get(j..j + n).unwrap_or(&[]);
        (raw, Cow::Borrowed(scan::as_str(raw)), j + n)
    };
    if after >= end || buf.get(after) != Some(&b' ') {
        return Err((
            after,
            "expected a single space after the metric name".into(),
        ));
    }
    let text = buf.get(after + 1..end).unwrap_or(&[]);
    let text_str = std::str::from_utf8(text).map_err(|e| {
        (
            after + 1 + e.valid_up_to(),
            "invalid UTF-8 in metadata".to_string(),
        )
    })?;
    let entry = match kind {
        Meta::Help => Entry::Help {
            family: name,
            text: scan::unescape(text_str, true),
        },
        Meta::Unit => Entry::Unit {
            family: name,
            unit: Cow::Borrowed(text_str),
        },
        Meta::Type => {
            let kind = match text {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"gaugehistogram" => MetricType::GaugeHistogram,
                b"summary" => MetricType::Summary,
                b"info" => MetricType::Info,
                b"stateset" => MetricType::StateSet,
                b"unknown" => MetricType::Unknown,
                _ => return Err((after + 1, format!("invalid metric type {text_str:?}"))),
            };
            Entry::Type { family: name, kind }
        }
    };
    st.metadata(kind, name_raw, &entry)
        .map_err(|m| (start, m))?;
    Ok(entry)
}

struct ParsedSample<'a> {
    sample: Sample<'a>,
    name_range: (usize, usize),
    ts_secs: Option<f64>,
}

/// End of the token starting at `i`: the next space or the line end.
fn token_end(buf: &[u8], i: usize, end: usize) -> usize {
    let rest = buf.get(i..end).unwrap_or(&[]);
    i + memchr::memchr(b' ', rest).unwrap_or(rest.len())
}

fn float_token(buf: &[u8], i: usize, end: usize, what: &str) -> ScanResult<(f64, usize)> {
    let e = token_end(buf, i, end);
    let tok = buf.get(i..e).unwrap_or(&[]);
    if tok.is_empty() {
        return Err((i, format!("expected {what}")));
    }
    match scan::parse_float(tok) {
        Some(v) => Ok((v, e)),
        None => Err((
            i,
            format!("invalid {what} {:?}", String::from_utf8_lossy(tok)),
        )),
    }
}

fn timestamp_token(buf: &[u8], i: usize, end: usize, what: &str) -> ScanResult<(f64, i64, usize)> {
    let (secs, e) = float_token(buf, i, end, what)?;
    match scan::seconds_to_millis(secs) {
        Some(ms) => Ok((secs, ms, e)),
        None => Err((i, format!("invalid {what}: must be finite"))),
    }
}

fn sample<'a>(
    buf: &'a [u8],
    start: usize,
    end: usize,
    spans: &mut Vec<LabelSpan>,
    ex_spans: &mut Vec<LabelSpan>,
) -> ScanResult<ParsedSample<'a>> {
    let s = scan::series(buf, start, end, DIALECT, spans)?;
    if buf.get(s.end) != Some(&b' ') || s.end >= end {
        return Err((s.end, "expected a single space before the value".into()));
    }
    let (value, mut i) = float_token(buf, s.end + 1, end, "value")?;
    let mut ts_secs = None;
    let mut timestamp = None;
    let mut exemplar = None;
    if i < end && !buf.get(i..end).unwrap_or(&[]).starts_with(b" # ") {
        let (secs, ms, e) = timestamp_token(buf, i + 1, end, "timestamp")?;
        ts_secs = Some(secs);
        timestamp = Some(ms);
        i = e;
    }
    if i < end {
        if !buf.get(i..end).unwrap_or(&[]).starts_with(b" # ") {
            return Err((i, "unexpected text after sample".into()));
        }
        let b = i + 3;
        exemplar = Some(parse_exemplar(buf, b, end, ex_spans)?);
    }
    Ok(ParsedSample {
        sample: Sample {
            series: buf.get(start..s.end).unwrap_or(&[]),
            value,
            timestamp,
            exemplar,
            name: buf.get(s.name.0..s.name.1).unwrap_or(&[]),
            name_escaped: s.name_escaped,
            labels: buf.get(s.labels.clone()).unwrap_or(&[]),
            label_count: spans.len(),
        },
        name_range: s.name,
        ts_secs,
    })
}

fn parse_exemplar<'a>(
    buf: &'a [u8],
    b: usize,
    end: usize,
    spans: &mut Vec<LabelSpan>,
) -> ScanResult<Exemplar<'a>> {
    if buf.get(b) != Some(&b'{') || b >= end {
        return Err((b, "expected '{' to start the exemplar label set".into()));
    }
    spans.clear();
    let close = scan::label_set(buf, b + 1, end, DIALECT, spans, None)?;
    let runes: usize = spans
        .iter()
        .map(|s| runes(s.name(buf), false) + runes(s.value(buf), s.value_escaped))
        .sum();
    if runes > EXEMPLAR_MAX_RUNES {
        return Err((
            b,
            format!("exemplar labels have {runes} characters, more than {EXEMPLAR_MAX_RUNES}"),
        ));
    }
    let after = close + 1;
    if buf.get(after) != Some(&b' ') || after >= end {
        return Err((
            after,
            "expected a single space before the exemplar value".into(),
        ));
    }
    let (value, mut i) = float_token(buf, after + 1, end, "exemplar value")?;
    let mut timestamp = None;
    if i < end {
        let (_, ms, e) = timestamp_token(buf, i + 1, end, "exemplar timestamp")?;
        timestamp = Some(ms);
        i = e;
    }
    if i < end {
        return Err((i, "unexpected text after exemplar".into()));
    }
    Ok(Exemplar {
        labels: buf.get(b + 1..close).unwrap_or(&[]),
        value,
        timestamp,
    })
}

/// Code points of a (validated UTF-8) string after unescaping: each escape pair
/// that decodes to one character counts once.
fn runes(raw: &[u8], escaped: bool) -> usize {
    let n = raw.iter().filter(|c| (**c & 0xC0) != 0x80).count();
    if !escaped {
        return n;
    }
    let s = scan::as_str(raw);
    let mut pairs = 0;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                if matches!(n, '\\' | '"' | 'n') {
                    pairs += 1;
                }
            }
        }
    }
    n - pairs
}
