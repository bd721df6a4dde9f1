//! Prometheus text format 0.0.4, parsed the way Prometheus' own lexer does:
//! blanks may separate any two tokens, `#` lines other than `# HELP`/`# TYPE`
//! are comments, blank lines are skipped, label sets may end with a comma, and
//! names may be quoted UTF-8 strings (Prometheus 3). Like Prometheus, a sample
//! line must end with a newline and `\r` is not a line terminator.

use std::borrow::Cow;

use super::sample::Sample;
use super::scan::{self, Dialect, LabelSpan, ScanResult};
use super::{Entry, MetricType};

const DIALECT: Dialect = Dialect { lenient: true };

#[inline]
fn skip_blanks(buf: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && matches!(buf.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// Parses the line `buf[start..end]`; `Ok(None)` for blank and comment lines.
#[inline]
pub(super) fn line<'a>(
    buf: &'a [u8],
    start: usize,
    end: usize,
    has_nl: bool,
    spans: &mut Vec<LabelSpan>,
) -> ScanResult<Option<Entry<'a>>> {
    let i = skip_blanks(buf, start, end);
    match buf.get(i) {
        _ if i >= end => Ok(None),
        Some(b'#') => comment(buf, i, end),
        _ => sample(buf, i, end, has_nl, spans).map(|s| Some(Entry::Sample(s))),
    }
}

fn comment<'a>(buf: &'a [u8], hash: usize, end: usize) -> ScanResult<Option<Entry<'a>>> {
    let i = skip_blanks(buf, hash + 1, end);
    if i == hash + 1 {
        return Ok(None); // "#foo": a plain comment
    }
    let kw = buf.get(i..(i + 4).min(end)).unwrap_or(&[]);
    let is_help = kw == b"HELP";
    if !(is_help || kw == b"TYPE") {
        return Ok(None);
    }
    let j = skip_blanks(buf, i + 4, end);
    if j == i + 4 {
        return Ok(None); // "# HELPER ...": a comment
    }
    let (name, after) = if buf.get(j) == Some(&b'"') && j < end {
        let q = scan::quoted(buf, j, end)?;
        let raw = scan::as_str(buf.get(q.content.0..q.content.1).unwrap_or(&[]));
        let name = if q.escaped {
            scan::unescape(raw, true)
        } else {
            Cow::Borrowed(raw)
        };
        (name, q.next)
    } else {
        let n = scan::metric_name_len(buf, j, end);
        if n == 0 {
            return Err((
                j,
                format!("expected metric name after {}", scan::as_str(kw)),
            ));
        }
        (
            Cow::Borrowed(scan::as_str(buf.get(j..j + n).unwrap_or(&[]))),
            j + n,
        )
    };
    // One blank separates name and text; the text is the rest of the line.
    let text = match buf.get(after) {
        _ if after >= end => &[][..],
        Some(b' ' | b'\t') => buf.get(after + 1..end).unwrap_or(&[]),
        _ => return Err((after, "expected blank after metric name".into())),
    };
    if is_help {
        let s = std::str::from_utf8(text).map_err(|e| {
            (
                after + 1 + e.valid_up_to(),
                "invalid UTF-8 in HELP text".to_string(),
            )
        })?;
        return Ok(Some(Entry::Help {
            family: name,
            text: scan::unescape(s, false),
        }));
    }
    let kind = match text {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"summary" => MetricType::Summary,
        b"untyped" => MetricType::Unknown,
        _ => {
            return Err((
                after + 1,
                format!("invalid metric type {:?}", String::from_utf8_lossy(text)),
            ))
        }
    };
    Ok(Some(Entry::Type { family: name, kind }))
}

/// The value and optional timestamp of a sample line `buf[..end]` whose
/// series text ends at `series_end`.
#[inline]
pub(super) fn value_and_timestamp(
    buf: &[u8],
    series_end: usize,
    end: usize,
    has_nl: bool,
) -> ScanResult<(f64, Option<i64>)> {
    let vstart = skip_blanks(buf, series_end, end);
    let mut i = vstart;
    while i < end && !matches!(buf.get(i), Some(b' ' | b'\t' | b'{')) {
        i += 1;
    }
    if i == vstart {
        return Err((vstart, "expected value after metric".into()));
    }
    let tok = buf.get(vstart..i).unwrap_or(&[]);
    let value = scan::parse_float(tok).ok_or_else(|| {
        (
            vstart,
            format!("invalid value {:?}", String::from_utf8_lossy(tok)),
        )
    })?;
    let tstart = skip_blanks(buf, i, end);
    let mut timestamp = None;
    if tstart < end {
        let mut k = tstart;
        while k < end && !matches!(buf.get(k), Some(b' ' | b'\t')) {
            k += 1;
        }
        let tok = buf.get(tstart..k).unwrap_or(&[]);
        timestamp = Some(scan::parse_int_timestamp(tok).ok_or_else(|| {
            (
                tstart,
                format!("invalid timestamp {:?}", String::from_utf8_lossy(tok)),
            )
        })?);
        let rest = skip_blanks(buf, k, end);
        if rest < end {
            return Err((rest, "unexpected text after timestamp".into()));
        }
    }
    if !has_nl {
        return Err((end, "sample line does not end with a newline".into()));
    }
    Ok((value, timestamp))
}

/// Where the series text of the line `buf[start..end]` would end if the
/// line is a sample, found without validating anything: at the first
/// blank, or just after the first `}` when a `{` comes first. Right for a
/// series text the caller has seen validated before (the same bytes parse
/// the same way); anything else is only a guess. `None` for lines that
/// start with a blank or `#` or have no such end.
#[inline]
pub(super) fn quick_series_end(buf: &[u8], start: usize, end: usize) -> Option<usize> {
    let line = buf.get(start..end)?;
    if matches!(line.first()?, b' ' | b'\t' | b'#') {
        return None;
    }
    let i = line.iter().position(|c| matches!(c, b' ' | b'\t' | b'{'))?;
    if line.get(i) == Some(&b'{') {
        let j = memchr::memchr(b'}', line.get(i..)?)?;
        Some(start + i + j + 1)
    } else {
        Some(start + i)
    }
}

#[inline]
fn sample<'a>(
    buf: &'a [u8],
    start: usize,
    end: usize,
    has_nl: bool,
    spans: &mut Vec<LabelSpan>,
) -> ScanResult<Sample<'a>> {
    let s = scan::series(buf, start, end, DIALECT, spans)?;
    let (value, timestamp) = value_and_timestamp(buf, s.end, end, has_nl)?;
    Ok(Sample {
        series: buf.get(start..s.end).unwrap_or(&[]),
        value,
        timestamp,
        exemplar: None,
        name: buf.get(s.name.0..s.name.1).unwrap_or(&[]),
        name_escaped: s.name_escaped,
        labels: buf.get(s.labels.clone()).unwrap_or(&[]),
        label_count: spans.len(),
    })
}
