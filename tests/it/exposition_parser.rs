//! Exposition parser: conformance suites and edge cases.

use std::path::{Path, PathBuf};

use klaxon::scrape::parser::{Entry, Format, MetricType, ParseError, Parser, Validation};

use crate::common;

fn shared_dir() -> Option<PathBuf> {
    common::data_dir("")
}

fn parse_all(input: &[u8], format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    let mut p = Parser::new(input, format);
    let mut out = Vec::new();
    while let Some(e) = p.next()? {
        out.push(e);
    }
    Ok(out)
}

fn samples<'a>(entries: &'a [Entry<'a>]) -> Vec<&'a klaxon::scrape::parser::Sample<'a>> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn one_sample(input: &str) -> klaxon::scrape::parser::Sample<'_> {
    let entries = parse_all(input.as_bytes(), Format::PrometheusText).expect("parses");
    let mut v: Vec<_> = entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(v.len(), 1, "{input:?}");
    v.remove(0)
}

fn err(input: &[u8], format: Format) -> ParseError {
    match parse_all(input, format) {
        Ok(e) => panic!(
            "expected an error for {:?}, got {} entries",
            String::from_utf8_lossy(input),
            e.len()
        ),
        Err(e) => e,
    }
}

fn sorted_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn openmetrics_conformance_suite() {
    let Some(shared) = shared_dir() else { return };
    let root = shared.join("upstream/openmetrics/parsers");
    let (mut good, mut good_ok, mut bad, mut bad_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in sorted_dir(&root) {
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(case.join("test.json")).expect("test.json"))
                .expect("json");
        let should = spec["shouldParse"].as_bool().expect("shouldParse");
        let file = spec["file"].as_str().expect("file");
        let input = std::fs::read(case.join(file)).expect("metrics file");
        let res = parse_all(&input, Format::OpenMetrics);
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if should {
            good += 1;
            match res {
                Ok(_) => good_ok += 1,
                Err(e) => failures.push(format!("{name}: should parse, got error {e}")),
            }
        } else {
            bad += 1;
            match res {
                Err(_) => bad_ok += 1,
                Ok(_) => failures.push(format!("{name}: should be rejected, parsed")),
            }
        }
    }
    println!("openmetrics suite: {good_ok}/{good} good parsed, {bad_ok}/{bad} bad rejected");
    assert_eq!((good, bad), (44, 167), "suite size changed");
    assert!(
        failures.is_empty(),
        "disagreeing cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn reference_payloads_parse_fully() {
    let Some(shared) = shared_dir() else { return };
    let mut files = 0;
    for path in sorted_dir(&shared.join("reference/metrics")) {
        if path.extension().and_then(|e| e.to_str()) != Some("prom") {
            continue;
        }
        files += 1;
        let input = std::fs::read(&path).expect("payload");
        let entries = parse_all(&input, Format::PrometheusText)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8_lossy(&input);
        let expected = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count();
        let got = samples(&entries);
        assert_eq!(got.len(), expected, "{}", path.display());
        // Every sample decodes to labels carrying its name.
        for s in got {
            let l = s.labels();
            assert_eq!(l.metric_name(), s.metric_name(), "{}", path.display());
            assert_eq!(
                l.len(),
                1 + s.label_pairs().filter(|(_, v)| !v.is_empty()).count()
            );
        }
    }
    assert!(files >= 9, "expected the reference payloads, found {files}");
}

#[test]
fn upstream_textparse_files_parse() {
    let Some(shared) = shared_dir() else { return };
    let mut files = 0;
    for path in sorted_dir(&shared.join("upstream/prometheus/textparse")) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let format = if name.ends_with(".om.txt") {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        };
        let input = std::fs::read(&path).expect("file");
        // alltypes.5mfs.om.txt (client_golang output) has a histogram with
        // negative buckets plus _sum and a summary with negative quantiles:
        // Prometheus ingests it, OpenMetrics 1.0 (and its suite) forbid both.
        let strict_rejects = name == "alltypes.5mfs.om.txt";
        let strict = parse_all(&input, format);
        if strict_rejects {
            let e = strict.expect_err("strict OpenMetrics must reject it");
            assert!(e.message.contains("negative"), "{name}: {e}");
        } else {
            strict.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut p = Parser::with_validation(&input, format, Validation::PrometheusCompatible);
        let mut entries = Vec::new();
        while let Some(e) = p
            .next()
            .unwrap_or_else(|e| panic!("{name} (compatible): {e}"))
        {
            entries.push(e);
        }
        let n = samples(&entries).len();
        let expected = String::from_utf8_lossy(&input)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(n, expected, "{name}");
        files += 1;
    }
    assert_eq!(files, 4);
}

#[test]
fn content_type_selects_format() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4"),
        Format::PrometheusText
    );
    assert_eq!(Format::from_content_type(""), Format::PrometheusText);
    assert_eq!(MetricType::GaugeHistogram.as_str(), "gaugehistogram");
    assert_eq!(MetricType::Unknown.as_str(), "unknown");
}

#[test]
fn text_sample_fields_and_series_bytes() {
    let s = one_sample("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n");
    assert_eq!(
        s.series,
        b"http_requests_total{method=\"post\",code=\"200\"}"
    );
    assert_eq!(s.value, 1027.0);
    assert_eq!(s.timestamp, Some(1395066363000));
    assert_eq!(s.metric_name(), "http_requests_total");
    assert_eq!(s.label_count(), 2);
    let l = s.labels();
    assert_eq!(l.get("method"), Some("post"));
    assert_eq!(l.get("code"), Some("200"));
    assert_eq!(l.get("__name__"), Some("http_requests_total"));
}

#[test]
fn text_label_escapes_are_decoded() {
    let s = one_sample("m{a=\"x\\\\y\",b=\"q\\\"r\",c=\"l1\\nl2\",d=\"\\z\"} 1\n");
    let l = s.labels();
    assert_eq!(l.get("a"), Some("x\\y"));
    assert_eq!(l.get("b"), Some("q\"r"));
    assert_eq!(l.get("c"), Some("l1\nl2"));
    assert_eq!(l.get("d"), Some("\\z"));
}

#[test]
fn text_help_escapes() {
    let e = parse_all(b"# HELP m a\\\\b\\nc \\\"d\n", Format::PrometheusText).expect("parses");
    assert_eq!(
        e,
        vec![Entry::Help {
            family: "m".into(),
            text: "a\\b\nc \\\"d".into()
        }]
    );
}

#[test]
fn text_special_values() {
    assert!(one_sample("m NaN\n").value.is_nan());
    assert_eq!(one_sample("m +Inf\n").value, f64::INFINITY);
    assert_eq!(one_sample("m -Inf\n").value, f64::NEG_INFINITY);
    assert_eq!(one_sample("m Inf\n").value, f64::INFINITY);
    assert_eq!(one_sample("m 1.5e-3\n").value, 0.0015);
    assert_eq!(one_sample("m -0.25\n").value, -0.25);
    assert!(err(b"m 0x1p-3\n", Format::PrometheusText)
        .message
        .contains("invalid value"));
    assert!(err(b"m 1_000\n", Format::PrometheusText)
        .message
        .contains("invalid value"));
}

#[test]
fn text_timestamps() {
    assert_eq!(one_sample("m 1 0\n").timestamp, Some(0));
    assert_eq!(one_sample("m 1\n").timestamp, None);
    assert_eq!(
        one_sample("m 1 9223372036854775807\n").timestamp,
        Some(i64::MAX)
    );
    let e = err(b"m 1 9223372036854775808\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (1, 5));
    let e = err(b"m 1 1.5\n", Format::PrometheusText);
    assert!(e.message.contains("invalid timestamp"), "{e}");
    let e = err(b"m 1 2 3\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (1, 7));
}

#[test]
fn text_lenient_syntax_like_prometheus() {
    let e = parse_all(
        b"\n# a comment\n#no space comment\n  m{a=\"1\",} 1\n m2 { a = \"1\" , b=\"2\" } 2  \n# TYPE x untyped\n",
        Format::PrometheusText,
    )
    .expect("parses");
    let s = samples(&e);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].series, b"m{a=\"1\",}");
    assert_eq!(s[1].labels().get("b"), Some("2"));
    assert_eq!(
        e.last(),
        Some(&Entry::Type {
            family: "x".into(),
            kind: MetricType::Unknown
        })
    );
    assert_eq!(one_sample("m{} 3\n").label_count(), 0);
}

#[test]
fn text_utf8_quoted_names() {
    let s = one_sample("{\"my.metric\", \"a.b\"=\"x\", c=\"y\"} 1\n");
    assert_eq!(s.metric_name(), "my.metric");
    assert_eq!(s.label_count(), 2);
    let l = s.labels();
    assert_eq!(l.get("a.b"), Some("x"));
    assert_eq!(l.get("c"), Some("y"));
    assert_eq!(l.get("__name__"), Some("my.metric"));
    let e = parse_all(b"# TYPE \"my.metric\" gauge\n", Format::PrometheusText).expect("parses");
    assert_eq!(
        e,
        vec![Entry::Type {
            family: "my.metric".into(),
            kind: MetricType::Gauge
        }]
    );
    let e = err(b"m{\"other\"} 1\n", Format::PrometheusText);
    assert!(e.message.contains("metric name given twice"), "{e}");
}

#[test]
fn errors_name_line_and_column() {
    let e = err(b"a 1\nb 2\nc{x=1} 3\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (3, 5));
    assert_eq!(e.to_string(), format!("3:5: {}", e.message));
    let e = err(b"a 1\nb{x=\"1\" y=\"2\"} 2\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (2, 9));
    let e = err(b"a 1\n# TYPE a bogus\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (2, 10));
    let e = err(b"a 1\r\n", Format::PrometheusText);
    assert_eq!(e.line, 1);
    // OpenMetrics: missing EOF is reported after the last line.
    let e = err(b"a 1\n", Format::OpenMetrics);
    assert_eq!((e.line, e.column), (2, 1));
    let e = err(b"a 1\n# EOF\nb 2\n", Format::OpenMetrics);
    assert_eq!((e.line, e.column), (3, 1));
}

#[test]
fn invalid_utf8_is_rejected() {
    let e = err(b"m{a=\"x\xff\"} 1\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (1, 7));
    assert!(e.message.contains("UTF-8"), "{e}");
    err(b"{\"\xc3\x28\"} 1\n", Format::PrometheusText);
    err(b"# HELP m \xff\n", Format::PrometheusText);
    err(b"m{a=\"\xe2\x82\"} 1\n# EOF\n", Format::OpenMetrics);
    // Comments are not looked at, as in Prometheus.
    parse_all(b"# whatever \xff\nm 1\n", Format::PrometheusText).expect("comment bytes ignored");
}

#[test]
fn one_megabyte_lines() {
    let mut ok = b"m{a=\"".to_vec();
    ok.extend(std::iter::repeat_n(b'v', 1 << 20));
    ok.extend_from_slice(b"\"} 7\n");
    let e = parse_all(&ok, Format::PrometheusText).expect("1 MB label value parses");
    let s = samples(&e);
    assert_eq!(s[0].value, 7.0);
    assert_eq!(s[0].labels().get("a").map(str::len), Some(1 << 20));

    let mut bad: Vec<u8> = (0..(1u32 << 20))
        .map(|i| b"{}=,\"\\ x#"[(i % 9) as usize])
        .collect();
    bad.push(b'\n');
    err(&bad, Format::PrometheusText);
    err(&bad, Format::OpenMetrics);
}

#[test]
fn empty_and_garbage_input() {
    assert!(parse_all(b"", Format::PrometheusText)
        .expect("empty ok")
        .is_empty());
    assert!(parse_all(b"\n\n  \n", Format::PrometheusText)
        .expect("blank ok")
        .is_empty());
    err(b"", Format::OpenMetrics);
    for g in [
        &b"\x00\x01\x02"[..],
        b"}}}}",
        b"{",
        b"m{",
        b"m{a=\"",
        b"m ",
        b"=1\n",
        b"\xff\xfe 1\n",
    ] {
        err(g, Format::PrometheusText);
        err(g, Format::OpenMetrics);
    }
}

#[test]
fn text_sample_needs_trailing_newline() {
    let e = err(b"m 1", Format::PrometheusText);
    assert_eq!((e.line, e.column), (1, 4));
    parse_all(b"m 1\n# trailing comment", Format::PrometheusText).expect("comment at end ok");
}

#[test]
fn parser_is_fused_after_error() {
    let mut p = Parser::new(b"m{ 1\nok 1\n", Format::PrometheusText);
    assert!(p.next().is_err());
    assert_eq!(p.next(), Ok(None));
}

#[test]
fn openmetrics_entries_and_exemplars() {
    let input = b"# TYPE foo_seconds counter\n# UNIT foo_seconds seconds\n# HELP foo_seconds Some \\\"help\\\"\nfoo_seconds_total{a=\"b\"} 1.5 1520879607.789 # {trace_id=\"abc\"} 0.67 1520879602.5\nfoo_seconds_created{a=\"b\"} 1520430000.123 1520879607.789\n# EOF\n";
    let e = parse_all(input, Format::OpenMetrics).expect("parses");
    assert_eq!(
        e[0],
        Entry::Type {
            family: "foo_seconds".into(),
            kind: MetricType::Counter
        }
    );
    assert_eq!(
        e[1],
        Entry::Unit {
            family: "foo_seconds".into(),
            unit: "seconds".into()
        }
    );
    assert_eq!(
        e[2],
        Entry::Help {
            family: "foo_seconds".into(),
            text: "Some \"help\"".into()
        }
    );
    let s = samples(&e);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].series, b"foo_seconds_total{a=\"b\"}");
    assert_eq!(s[0].timestamp, Some(1520879607789));
    let ex = s[0].exemplar.as_ref().expect("exemplar");
    assert_eq!(ex.value, 0.67);
    assert_eq!(ex.timestamp, Some(1520879602500));
    assert_eq!(ex.labels().get("trace_id"), Some("abc"));
    assert_eq!(s[1].exemplar, None);
    assert_eq!(s[1].timestamp, Some(1520879607789));
    assert_eq!(s[1].value, 1520430000.123);
}

#[test]
fn openmetrics_float_timestamps_truncate_to_millis() {
    let e = parse_all(b"a 1 1.0019\na 2 -1.5\n# EOF\n", Format::OpenMetrics);
    // -1.5 < 1.0019: timestamps went backwards in one group.
    assert!(e.is_err());
    let e = parse_all(b"a 1 1.0019\na 2 2e3\n# EOF", Format::OpenMetrics).expect("parses");
    let s = samples(&e);
    assert_eq!(s[0].timestamp, Some(1001));
    assert_eq!(s[1].timestamp, Some(2_000_000));
}

#[test]
fn openmetrics_rejects_text_format_leniencies() {
    for bad in [
        &b"a{b=\"1\",} 1\n# EOF\n"[..],
        b"a{b=\"1\" } 1\n# EOF\n",
        b"a  1\n# EOF\n",
        b"# some comment\n# EOF\n",
        b"a 1\n\n# EOF\n",
        b"# TYPE a untyped\n# EOF\n",
        b"a 1\n# EOF\n\n",
    ] {
        err(bad, Format::OpenMetrics);
    }
}

#[test]
fn prometheus_compatible_mode_still_checks_structure() {
    let lenient = |b: &[u8]| {
        let mut p =
            Parser::with_validation(b, Format::OpenMetrics, Validation::PrometheusCompatible);
        loop {
            match p.next() {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    let neg = b"# TYPE a histogram\na_bucket{le=\"-1\"} 0\na_bucket{le=\"+Inf\"} 0\na_sum -1\na_count 0\n# EOF\n";
    assert!(parse_all(neg, Format::OpenMetrics).is_err());
    lenient(neg).expect("compatible mode accepts value semantics Prometheus accepts");
    assert!(lenient(b"a 1\n").is_err(), "EOF still required");
    assert!(
        lenient(b"a 1\nb 1\na 1\n# EOF\n").is_err(),
        "interleaving still rejected"
    );
    assert!(
        lenient(b"# TYPE a gauge\na 1 # {x=\"y\"} 1\n# EOF\n").is_err(),
        "exemplar placement still checked"
    );
}

#[test]
fn text_format_does_not_judge_values() {
    // postgres_exporter-style payload: NaN counter, non-cumulative buckets,
    // samples before their TYPE, a repeated family. Prometheus ingests it.
    let input = b"pg_c_total NaN\n# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 2\nh_sum -3\nh_count 1\n# TYPE pg_c_total counter\npg_c_total -1\n";
    let e = parse_all(input, Format::PrometheusText).expect("lenient text format");
    assert_eq!(samples(&e).len(), 6);
    assert!(parse_all(
        b"# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 2\n# EOF\n",
        Format::OpenMetrics
    )
    .is_err());
}

#[test]
fn empty_label_values_count_but_do_not_decode() {
    let s = one_sample("m{a=\"\",b=\"x\"} 1\n");
    assert_eq!(s.label_count(), 2);
    let l = s.labels();
    assert_eq!(l.len(), 2);
    assert_eq!(l.get("a"), None);
    let pairs: Vec<_> = s
        .label_pairs()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("a".to_string(), String::new()),
            ("b".to_string(), "x".to_string())
        ]
    );
}

#[test]
fn duplicate_labels_are_errors() {
    let e = err(b"m{a=\"1\",a=\"2\"} 1\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (1, 9));
    err(b"m{__name__=\"x\"} 1\n", Format::PrometheusText);
    // Large label sets take the sorting path.
    let mut big = String::from("m{");
    for i in 0..40 {
        big.push_str(&format!("l{i}=\"v\","));
    }
    let ok = format!("{big}}} 1\n");
    assert_eq!(one_sample(&ok).label_count(), 40);
    let dup = format!("{big}l3=\"w\"}} 1\n");
    assert!(err(dup.as_bytes(), Format::PrometheusText)
        .message
        .contains("duplicate"));
}

#[test]
fn openmetrics_quoted_utf8_names() {
    let e = parse_all(
        b"# TYPE \"a.b\" gauge\n{\"a.b\",\"c.d\"=\"x\"} 1\n# EOF\n",
        Format::OpenMetrics,
    )
    .expect("parses");
    let s = samples(&e);
    assert_eq!(s[0].metric_name(), "a.b");
    assert_eq!(s[0].labels().get("c.d"), Some("x"));
    // No blanks inside OpenMetrics label sets.
    err(b"{\"a.b\", \"c.d\"=\"x\"} 1\n# EOF\n", Format::OpenMetrics);
}

#[test]
fn float_overflow_is_an_error_like_go() {
    let e = err(b"m 1e400\n", Format::PrometheusText);
    assert_eq!((e.line, e.column), (1, 3));
    err(b"a 1e400\n# EOF\n", Format::OpenMetrics);
}
