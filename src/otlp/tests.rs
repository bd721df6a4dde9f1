//! Decoding of hand-encoded requests and their translation.

use super::decode::*;
use super::translate::translate;
use super::*;

/// A minimal protobuf writer for building requests.
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(mut self, field: u64, v: u64) -> Self {
        self.key(field, 0);
        self.raw_varint(v);
        self
    }
    fn fixed(mut self, field: u64, v: u64) -> Self {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn double(self, field: u64, v: f64) -> Self {
        self.fixed(field, v.to_bits())
    }
    fn bytes(mut self, field: u64, b: &[u8]) -> Self {
        self.key(field, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u64, m: Msg) -> Self {
        self.bytes(field, &m.0)
    }
    fn key(&mut self, field: u64, wire: u64) {
        self.raw_varint(field << 3 | wire);
    }
    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
}

fn attr(k: &str, v: &str) -> Msg {
    Msg::default().str(1, k).msg(2, Msg::default().str(1, v))
}

const T: u64 = 1_700_000_000_123_000_000;
const T_MS: i64 = 1_700_000_000_123;

fn resource() -> Msg {
    Msg::default()
        .msg(1, attr("service.name", "shop"))
        .msg(1, attr("service.namespace", "prod"))
        .msg(1, attr("service.instance.id", "i-1"))
        .msg(1, attr("host.name", "h1"))
}

fn request(metrics: Vec<Msg>) -> Vec<u8> {
    let mut scope = Msg::default().msg(1, Msg::default().str(1, "my.lib").str(2, "1.0"));
    for m in metrics {
        scope = scope.msg(2, m);
    }
    Msg::default()
        .msg(1, Msg::default().msg(1, resource()).msg(2, scope))
        .0
}

fn number_point(v: f64, attrs: &[(&str, &str)]) -> Msg {
    let mut p = Msg::default().fixed(3, T).double(4, v);
    for (k, val) in attrs {
        p = p.msg(7, attr(k, val));
    }
    p
}

fn series(cfg: &OtlpConfig, body: &[u8]) -> (Vec<String>, Vec<String>) {
    let req = decode(body).unwrap();
    let t = translate(&req, cfg);
    let mut s: Vec<String> = t
        .samples
        .iter()
        .map(|s| {
            assert_eq!(s.t, T_MS);
            format!("{} {}", s.labels, s.v)
        })
        .collect();
    s.sort();
    (s, t.errors)
}

#[test]
fn counters_gauges_and_target_info() {
    let counter = Msg::default().str(1, "http.requests").str(3, "1").msg(
        7,
        Msg::default()
            .msg(1, number_point(7.0, &[("http.method", "GET")]))
            .varint(2, 2)
            .varint(3, 1),
    );
    let gauge = Msg::default().str(1, "cpu.utilization").str(3, "1").msg(
        5,
        Msg::default().msg(
            1,
            Msg::default()
                .fixed(3, T)
                .fixed(6, (-3i64) as u64)
                .msg(7, attr("cpu", "0")),
        ),
    );
    let updown = Msg::default().str(1, "queue.size").str(3, "{items}").msg(
        7,
        Msg::default().msg(1, number_point(4.5, &[])).varint(2, 2),
    );
    let (s, errors) = series(
        &OtlpConfig::default(),
        &request(vec![counter, gauge, updown]),
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        s,
        vec![
            r#"cpu_utilization_ratio{cpu="0", instance="i-1", job="prod/shop"} -3"#,
            r#"http_requests_total{http_method="GET", instance="i-1", job="prod/shop"} 7"#,
            r#"queue_size{instance="i-1", job="prod/shop"} 4.5"#,
            r#"target_info{host_name="h1", instance="i-1", job="prod/shop"} 1"#,
        ]
    );
}

#[test]
fn histograms_summaries_and_promotion() {
    let hist = Msg::default().str(1, "rpc.duration").str(3, "ms").msg(
        9,
        Msg::default()
            .msg(
                1,
                Msg::default()
                    .fixed(3, T)
                    .fixed(4, 6)
                    .double(5, 123.5)
                    // packed bucket counts and bounds
                    .bytes(
                        6,
                        &[1u64, 2, 3]
                            .iter()
                            .flat_map(|v| v.to_le_bytes())
                            .collect::<Vec<_>>(),
                    )
                    .bytes(
                        7,
                        &[0.5f64, 10.0]
                            .iter()
                            .flat_map(|v| v.to_bits().to_le_bytes())
                            .collect::<Vec<_>>(),
                    )
                    .msg(9, attr("rpc.method", "Get")),
            )
            .varint(2, 2),
    );
    let summary = Msg::default().str(1, "lat").msg(
        11,
        Msg::default().msg(
            1,
            Msg::default()
                .fixed(3, T)
                .fixed(4, 2)
                .double(5, 3.0)
                .msg(6, Msg::default().double(1, 0.99).double(2, 2.5)),
        ),
    );
    let cfg = OtlpConfig {
        promote_resource_attributes: vec!["host.name".into()],
        ..Default::default()
    };
    let (s, errors) = series(&cfg, &request(vec![hist, summary]));
    assert!(errors.is_empty(), "{errors:?}");
    let common = r#"host_name="h1", instance="i-1", job="prod/shop""#;
    let mut want: Vec<String> = [
        ("lat", r#", quantile="0.99""#, "2.5"),
        ("lat_count", "", "2"),
        ("lat_sum", "", "3"),
        (
            "rpc_duration_milliseconds_bucket",
            r#", le="+Inf", rpc_method="Get""#,
            "6",
        ),
        (
            "rpc_duration_milliseconds_bucket",
            r#", le="0.5", rpc_method="Get""#,
            "1",
        ),
        (
            "rpc_duration_milliseconds_bucket",
            r#", le="10", rpc_method="Get""#,
            "3",
        ),
        (
            "rpc_duration_milliseconds_count",
            r#", rpc_method="Get""#,
            "6",
        ),
        (
            "rpc_duration_milliseconds_sum",
            r#", rpc_method="Get""#,
            "123.5",
        ),
        // Promoted attributes stay on target_info too.
        ("target_info", "", "1"),
    ]
    .iter()
    .map(|(name, extra, v)| format!("{name}{{{common}{extra}}} {v}"))
    .collect();
    want.sort();
    assert_eq!(s, want);
}

#[test]
fn delta_and_unusable_scales_are_refused_by_name() {
    let delta = Msg::default().str(1, "d").msg(
        7,
        Msg::default()
            .msg(1, number_point(1.0, &[]))
            .varint(2, 1)
            .varint(3, 1),
    );
    // Scale -5 (zigzag 9) is below Prometheus' lowest schema.
    let exp = Msg::default().str(1, "e").msg(
        10,
        Msg::default()
            .msg(1, Msg::default().fixed(3, T).fixed(4, 1).varint(6, 9))
            .varint(2, 2),
    );
    let ok = Msg::default()
        .str(1, "g")
        .msg(5, Msg::default().msg(1, number_point(2.0, &[])));
    let (s, errors) = series(&OtlpConfig::default(), &request(vec![delta, exp, ok]));
    assert_eq!(
        errors,
        vec![
            r#"invalid temporality and type combination for metric "d""#.to_string(),
            "cannot convert exponential to native histogram. Scale must be >= -4, was -5"
                .to_string(),
        ]
    );
    assert_eq!(s.len(), 2, "{s:?}"); // g and target_info
}

#[test]
fn colliding_attribute_keys_join_values_and_stale_points() {
    let g = Msg::default().str(1, "g").msg(
        5,
        Msg::default().msg(
            1,
            number_point(1.0, &[("a.b", "x"), ("a_b", "y")]).varint(8, 1),
        ),
    );
    let req = decode(&request(vec![g])).unwrap();
    let t = translate(&req, &OtlpConfig::default());
    let s = &t.samples[0];
    assert_eq!(s.labels.get("a_b"), Some("x;y"));
    assert!(crate::model::is_stale_nan(s.v));
    let utf8 = OtlpConfig {
        translation_strategy: TranslationStrategy::NoUTF8EscapingWithSuffixes,
        ..Default::default()
    };
    let t = translate(&req, &utf8);
    assert_eq!(t.samples[0].labels.get("a.b"), Some("x"));
    assert_eq!(t.samples[0].labels.get("a_b"), Some("y"));
}

#[test]
fn decode_errors_name_offset_and_field() {
    let good = request(vec![Msg::default()
        .str(1, "g")
        .msg(5, Msg::default().msg(1, number_point(2.0, &[])))]);
    // Every truncation is an error or a shorter valid message, never a panic,
    // and the offset lies within the body.
    for n in 0..good.len() {
        if let Err(e) = decode(&good[..n]) {
            assert!(e.offset <= n, "{e}");
        }
    }
    let e = decode(&good[..good.len() - 3]).unwrap_err();
    assert!(e.to_string().starts_with("protobuf: byte "), "{e}");
    assert!(e.field.starts_with("resource_metrics[0]"), "{e}");
    // A wrong wire type on a known field, in the second metric of the
    // first scope: the path counts the repeated messages.
    let first = Msg::default().str(1, "ok");
    let bad_metric = Msg::default().varint(1, 5);
    let scope = Msg::default().msg(2, first).msg(2, bad_metric);
    let body = Msg::default()
        .msg(1, Msg::default().msg(2, Msg::default()).msg(2, scope))
        .0;
    let e = decode(&body).unwrap_err();
    assert_eq!(
        e.field,
        "resource_metrics[0].scope_metrics[1].metrics[1].name"
    );
    assert_eq!(
        e.problem,
        "invalid wire type: Varint (expected LengthDelimited)"
    );
    // The offset is just past the bad field's key: the body's last two
    // bytes are that key and its value.
    assert_eq!(e.offset, body.len() - 1, "{e}");
    // Oneof members are named: an invalid UTF-8 string attribute value of
    // a sum's point.
    let attr = Msg::default()
        .str(1, "k")
        .msg(2, Msg::default().bytes(1, &[0xff, 0xfe]));
    let sum = Msg::default().str(1, "s").msg(
        7,
        Msg::default().msg(1, Msg::default().fixed(3, T).msg(7, attr)),
    );
    let e = decode(&request(vec![sum])).unwrap_err();
    assert_eq!(
        e.field,
        "resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].attributes[0].value.string_value"
    );
    assert_eq!(e.problem, "invalid string value: data is not UTF-8 encoded");
    // Nesting beyond prost's recursion limit.
    let mut v = Msg::default().str(1, "leaf");
    for _ in 0..60 {
        v = Msg::default().msg(5, Msg::default().msg(1, v));
    }
    let deep = Msg::default()
        .msg(
            1,
            Msg::default().msg(
                1,
                Msg::default().msg(1, Msg::default().str(1, "k").msg(2, v)),
            ),
        )
        .0;
    let e = decode(&deep).unwrap_err();
    assert_eq!(e.problem, "recursion limit reached", "{e}");
    assert!(
        e.field
            .starts_with("resource_metrics[0].resource.attributes[0].value.array_value.values[0]"),
        "{e}"
    );
    // An oversized body.
    let big = vec![0u8; MAX_REQUEST_BYTES + 1];
    let e = decode(&big).unwrap_err();
    assert!(e.problem.contains("exceeds the limit"), "{e}");
}

mod histograms {
    use super::super::decode::*;
    use super::super::translate::{custom_buckets, exponential, translate, ZERO_THRESHOLD};
    use super::super::*;
    use super::{request, Msg, T, T_MS};
    use crate::model::histogram::{CounterResetHint, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};
    use crate::tsdb::HistValue;

    fn point(scale: i32, pos: (i32, &[u64]), neg: (i32, &[u64])) -> ExpHistogramPoint {
        let count = pos.1.iter().chain(neg.1).sum::<u64>() + 1;
        ExpHistogramPoint {
            attributes: vec![],
            start_time_unix_nano: 0,
            time_unix_nano: T,
            count,
            sum: Some(10.0),
            scale,
            zero_count: 1,
            positive: Some(Buckets {
                offset: pos.0,
                bucket_counts: pos.1.to_vec(),
            }),
            negative: Some(Buckets {
                offset: neg.0,
                bucket_counts: neg.1.to_vec(),
            }),
            flags: 0,
            exemplars: vec![],
            // Prometheus keeps its own threshold whatever this says.
            zero_threshold: 0.5,
        }
    }

    fn int(h: HistValue) -> Histogram {
        match h {
            HistValue::Int(h) => h,
            HistValue::Float(f) => panic!("float histogram {f:?}"),
        }
    }

    #[test]
    fn exponential_buckets_shift_by_one_and_keep_the_zero_bucket() {
        // OTel bucket 0 is (1, 2] at scale 0: Prometheus' bucket 1. The
        // negative bucket -1, [-1, -0.5), is Prometheus' negative bucket 0.
        let h = int(exponential(&point(0, (0, &[1, 2]), (-1, &[1]))).unwrap());
        assert_eq!(
            h,
            Histogram {
                counter_reset_hint: CounterResetHint::Unknown,
                schema: 0,
                zero_threshold: ZERO_THRESHOLD,
                zero_count: 1,
                count: 5,
                sum: 10.0,
                positive_spans: vec![Span::new(1, 2)],
                negative_spans: vec![Span::new(0, 1)],
                positive_buckets: vec![1, 1],
                negative_buckets: vec![1],
                custom_values: vec![],
            }
        );
        h.validate().unwrap();
        // Runs of up to two empty buckets stay inside a span, longer ones
        // start a new span.
        let h = int(exponential(&point(0, (0, &[1, 0, 0, 1]), (0, &[]))).unwrap());
        assert_eq!(h.positive_spans, vec![Span::new(1, 4)]);
        assert_eq!(h.positive_buckets, vec![1, -1, 0, 1]);
        let h = int(exponential(&point(0, (0, &[1, 0, 0, 0, 1]), (0, &[]))).unwrap());
        assert_eq!(h.positive_spans, vec![Span::new(1, 1), Span::new(3, 1)]);
        assert_eq!(h.positive_buckets, vec![1, 0]);
        h.validate().unwrap();
    }

    #[test]
    fn scales_above_8_merge_buckets_and_below_minus_4_are_refused() {
        // Scale 10 → schema 8: four neighbours per bucket. Indices 3..=7
        // become 0 (3) and 1 (4..=7), plus one: 1 and 2. On the negative
        // side -3..=-1 all become -1 (arithmetic shift), plus one: 0.
        let h = int(exponential(&point(10, (3, &[1, 1, 1, 1, 1]), (-3, &[1, 1, 1]))).unwrap());
        assert_eq!(h.schema, 8);
        assert_eq!(h.positive_spans, vec![Span::new(1, 2)]);
        assert_eq!(h.positive_buckets, vec![1, 3]);
        assert_eq!(h.negative_spans, vec![Span::new(0, 1)]);
        assert_eq!(h.negative_buckets, vec![3]);
        h.validate().unwrap();
        assert_eq!(
            exponential(&point(-5, (0, &[1]), (0, &[]))).unwrap_err(),
            "cannot convert exponential to native histogram. Scale must be >= -4, was -5"
        );
        assert_eq!(
            int(exponential(&point(-4, (0, &[1]), (0, &[]))).unwrap()).schema,
            -4
        );
        // A hostile offset cannot overflow the index.
        assert!(exponential(&point(0, (i32::MAX, &[1, 1]), (0, &[]))).is_err());
        // A huge scale merges everything into one bucket per side.
        let h = int(exponential(&point(i32::MAX, (5, &[1, 1]), (0, &[]))).unwrap());
        assert_eq!(h.positive_spans, vec![Span::new(1, 1)]);
    }

    #[test]
    fn no_recorded_value_is_a_stale_marker() {
        let mut p = point(0, (0, &[1]), (0, &[]));
        p.flags = FLAG_NO_RECORDED_VALUE;
        assert!(exponential(&p).unwrap().is_stale());
    }

    #[test]
    fn explicit_buckets_become_custom_buckets() {
        let p = HistogramPoint {
            attributes: vec![],
            start_time_unix_nano: 0,
            time_unix_nano: T,
            count: 5,
            sum: Some(7.0),
            bucket_counts: vec![0, 2, 3],
            explicit_bounds: vec![0.5, 10.0],
            exemplars: vec![],
            flags: 0,
        };
        let h = int(custom_buckets(&p).unwrap());
        assert_eq!(h.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(h.custom_values, vec![0.5, 10.0]);
        assert_eq!(h.positive_spans, vec![Span::new(1, 2)]);
        assert_eq!(h.positive_buckets, vec![2, 1]);
        assert_eq!((h.count, h.sum), (5, 7.0));
        h.validate().unwrap();
    }

    /// An exponential histogram metric with one point carrying an
    /// exemplar, hand-encoded (field numbers of metrics.proto).
    pub(super) fn exp_metric() -> Msg {
        let buckets = Msg::default()
            .varint(1, 0) // offset 0
            .bytes(2, &[1, 2]); // packed counts 1, 2
        let ex = Msg::default()
            .fixed(2, T + 1_000_000)
            .double(3, 1.5)
            .bytes(5, &[0xab; 16])
            .bytes(4, &[0xcd; 8])
            .msg(7, super::attr("user", "u1"));
        Msg::default().str(1, "rpc.size").str(3, "By").msg(
            10,
            Msg::default()
                .msg(
                    1,
                    Msg::default()
                        .msg(1, super::attr("rpc", "get"))
                        .fixed(3, T)
                        .fixed(4, 4)
                        .double(5, 7.5)
                        .varint(6, 0) // scale 0
                        .fixed(7, 1) // zero count
                        .msg(8, buckets)
                        .msg(11, ex),
                )
                .varint(2, 2),
        )
    }

    #[test]
    fn an_exponential_histogram_metric_translates_with_its_exemplar() {
        let req = decode(&request(vec![exp_metric()])).unwrap();
        let t = translate(&req, &OtlpConfig::default());
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        assert_eq!(t.histograms.len(), 1);
        let s = &t.histograms[0];
        assert_eq!(
            s.labels.to_string(),
            r#"rpc_size_bytes{instance="i-1", job="prod/shop", rpc="get"}"#
        );
        assert_eq!(s.t, T_MS);
        let h = int(s.h.clone());
        assert_eq!((h.count, h.sum, h.zero_count), (4, 7.5, 1));
        assert_eq!(h.positive_spans, vec![Span::new(1, 2)]);
        assert_eq!(h.positive_buckets, vec![1, 1]);
        assert_eq!(t.exemplars.len(), 1);
        let e = &t.exemplars[0];
        assert_eq!(e.series, s.labels);
        assert_eq!(e.exemplar.value, 1.5);
        assert_eq!(e.exemplar.ts, T_MS + 1);
        assert_eq!(
            e.exemplar.labels.to_string(),
            format!(
                r#"{{span_id="{}", trace_id="{}", user="u1"}}"#,
                "cd".repeat(8),
                "ab".repeat(16)
            )
        );
        // Only target_info as a float sample.
        assert_eq!(t.samples.len(), 1);
        assert_eq!(t.samples[0].labels.metric_name(), "target_info");
    }

    #[test]
    fn the_receiver_stores_histograms_and_exemplars() {
        use crate::model::labels::METRIC_NAME;
        use crate::model::{MatchType, Matcher};
        use crate::tsdb::HeadOptions;
        let head = std::sync::Arc::new(crate::tsdb::Head::new(HeadOptions::default()));
        let reg = crate::metrics::Registry::new();
        let cfg = OtlpConfig {
            convert_histograms_to_nhcb: true,
            ..Default::default()
        };
        let r = Receiver::new(head.clone(), cfg, &reg);
        let classic = Msg::default().str(1, "lat").str(3, "s").msg(
            9,
            Msg::default()
                .msg(
                    1,
                    Msg::default()
                        .fixed(3, T)
                        .fixed(4, 3)
                        .double(5, 2.0)
                        .bytes(
                            6,
                            &[1u64, 2]
                                .iter()
                                .flat_map(|v| v.to_le_bytes())
                                .collect::<Vec<_>>(),
                        )
                        .bytes(7, &1.0f64.to_bits().to_le_bytes()),
                )
                .varint(2, 2),
        );
        let stored = r.receive(&request(vec![exp_metric(), classic])).unwrap();
        assert_eq!(stored, 3); // two histograms and target_info
        let m = |name: &str| Matcher::new(MatchType::Equal, METRIC_NAME, name).unwrap();
        let got = head.select(&[m("rpc_size_bytes")], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        assert!(got[0].samples.is_empty());
        assert_eq!(got[0].histograms.len(), 1);
        let (t, h) = &got[0].histograms[0];
        assert_eq!(*t, T_MS);
        let f = h.to_float();
        assert_eq!((f.count, f.sum), (4.0, 7.5));
        let got = head.select(&[m("lat_seconds")], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        let f = got[0].histograms[0].1.to_float();
        assert_eq!(f.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(f.custom_values, vec![1.0]);
        assert_eq!(f.positive_buckets, vec![1.0, 2.0]);
        let ex = head
            .exemplars()
            .select(i64::MIN, i64::MAX, &[vec![m("rpc_size_bytes")]]);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].exemplars[0].value, 1.5);
    }
}

mod json {
    use super::super::decode::decode;
    use super::super::json::decode_json;
    use super::*;

    /// The same request in OTLP/JSON and protobuf (hand-encoded) decodes to
    /// the same messages: camelCase keys, 64-bit integers as strings or
    /// numbers, hex ids, base64 bytes, NaN as a string, unknown keys.
    #[test]
    fn json_and_protobuf_decode_alike() {
        let json = format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"shop"}}}},
                {{"key":"b","value":{{"bytesValue":"AQI="}}}},
                {{"key":"n","value":{{"intValue":"-3"}}}},
                {{"key":"l","value":{{"arrayValue":{{"values":[{{"boolValue":true}},{{"doubleValue":1.5}}]}}}}}}
              ],"droppedAttributesCount":0}},
              "schemaUrl":"x",
              "scopeMetrics":[{{"scope":{{"name":"lib","version":"1"}},"metrics":[
                {{"name":"c","unit":"1","sum":{{"aggregationTemporality":2,"isMonotonic":true,
                  "dataPoints":[{{"timeUnixNano":"{T}","asInt":"7","exemplars":[
                    {{"timeUnixNano":{T},"asDouble":"NaN","traceId":"0102","spanId":"ff"}}]}}]}}}},
                {{"name":"e","exponentialHistogram":{{"aggregationTemporality":2,"dataPoints":[
                  {{"timeUnixNano":"{T}","count":"3","sum":6,"scale":-1,"zeroCount":1,
                    "positive":{{"offset":-2,"bucketCounts":["1",1]}}}}]}}}},
                {{"name":"h","histogram":{{"aggregationTemporality":2,"dataPoints":[
                  {{"timeUnixNano":"{T}","count":"3","bucketCounts":["1","2"],"explicitBounds":[0.5]}}]}}}}
              ]}}]}}]}}"#
        );
        let kv = |k: &str, v: Msg| Msg::default().str(1, k).msg(2, v);
        let resource = Msg::default()
            .msg(1, kv("service.name", Msg::default().str(1, "shop")))
            .msg(1, kv("b", Msg::default().bytes(7, &[1, 2])))
            .msg(1, kv("n", Msg::default().varint(3, (-3i64) as u64)))
            .msg(
                1,
                kv(
                    "l",
                    Msg::default().msg(
                        5,
                        Msg::default()
                            .msg(1, Msg::default().varint(2, 1))
                            .msg(1, Msg::default().double(4, 1.5)),
                    ),
                ),
            );
        let counter = Msg::default().str(1, "c").str(3, "1").msg(
            7,
            Msg::default()
                .msg(
                    1,
                    Msg::default().fixed(3, T).fixed(6, 7).msg(
                        5,
                        Msg::default()
                            .fixed(2, T)
                            .double(3, f64::NAN)
                            .bytes(5, &[1, 2])
                            .bytes(4, &[0xff]),
                    ),
                )
                .varint(2, 2)
                .varint(3, 1),
        );
        let exp = Msg::default().str(1, "e").msg(
            10,
            Msg::default()
                .msg(
                    1,
                    Msg::default()
                        .fixed(3, T)
                        .fixed(4, 3)
                        .double(5, 6.0)
                        .varint(6, 1) // zigzag -1
                        .fixed(7, 1)
                        .msg(8, Msg::default().varint(1, 3).bytes(2, &[1, 1])),
                )
                .varint(2, 2),
        );
        let hist = Msg::default().str(1, "h").msg(
            9,
            Msg::default()
                .msg(
                    1,
                    Msg::default()
                        .fixed(3, T)
                        .fixed(4, 3)
                        .bytes(
                            6,
                            &[1u64, 2]
                                .iter()
                                .flat_map(|v| v.to_le_bytes())
                                .collect::<Vec<_>>(),
                        )
                        .bytes(7, &0.5f64.to_bits().to_le_bytes()),
                )
                .varint(2, 2),
        );
        let scope = Msg::default()
            .msg(1, Msg::default().str(1, "lib").str(2, "1"))
            .msg(2, counter)
            .msg(2, exp)
            .msg(2, hist);
        let pb = Msg::default()
            .msg(1, Msg::default().msg(1, resource).msg(2, scope))
            .0;
        let from_json = decode_json(json.as_bytes()).unwrap();
        let from_pb = decode(&pb).unwrap();
        // NaN != NaN: compare the debug renderings.
        assert_eq!(format!("{from_json:?}"), format!("{from_pb:?}"));
        let t = translate(&from_json, &OtlpConfig::default());
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        assert_eq!(t.histograms.len(), 1);
    }

    #[test]
    fn json_errors_name_offset_and_field() {
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":7}]}]}]}"#;
        let e = decode_json(body).unwrap_err();
        assert_eq!(e.format, "json");
        assert_eq!(
            e.field,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].name"
        );
        assert!(e.problem.contains("invalid type"), "{e}");
        // The offset is the bad value's first byte.
        assert_eq!(body[e.offset], b'7', "{e}");
        let e = decode_json(b"{}\n x").unwrap_err();
        assert_eq!(e.field, "ExportMetricsServiceRequest");
        assert_eq!(e.offset, 4, "{e}");
        let e = decode_json(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"asInt":"x1"}]}}]}]}]}"#).unwrap_err();
        assert!(
            e.field
                .starts_with("resourceMetrics[0].scopeMetrics[0].metrics[0]"),
            "{e}"
        );
    }
}

/// Mutated valid requests (bytes flipped, inserted, removed, truncated,
/// with a fixed seed) decode to a request or to an error whose offset lies
/// within the body, and every decoded request translates without panic:
/// a cheap, deterministic companion of `fuzz/fuzz_targets/otlp.rs`.
#[test]
fn mutated_requests_decode_or_fail_with_an_offset() {
    let seeds: Vec<Vec<u8>> = vec![
        request(vec![Msg::default().str(1, "g").msg(
            5,
            Msg::default().msg(1, number_point(2.0, &[("a", "b")])),
        )]),
        request(vec![histograms::exp_metric()]),
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let cfg = OtlpConfig {
        convert_histograms_to_nhcb: true,
        promote_all_resource_attributes: true,
        ..Default::default()
    };
    let (mut ok, mut failed) = (0, 0);
    for round in 0..20_000 {
        let mut b = seeds[round % seeds.len()].clone();
        for _ in 0..=(next() % 4) {
            let at = (next() as usize) % (b.len() + 1);
            match next() % 4 {
                0 if at < b.len() => b[at] = next() as u8,
                1 => b.insert(at, next() as u8),
                2 if at < b.len() => {
                    b.remove(at);
                }
                _ => b.truncate(at),
            }
        }
        match decode(&b) {
            Ok(req) => {
                ok += 1;
                let t = translate(&req, &cfg);
                for h in &t.histograms {
                    let _ = h.h.validate();
                }
            }
            Err(e) => {
                failed += 1;
                assert!(e.offset <= b.len(), "{e}");
                assert!(!e.field.is_empty(), "{e}");
            }
        }
    }
    // Both outcomes are exercised.
    assert!(ok > 100 && failed > 100, "{ok} decoded, {failed} refused");
}
