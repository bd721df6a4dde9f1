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
    let req = ExportRequest::decode(body).unwrap();
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
fn delta_and_exponential_histograms_are_refused_by_name() {
    let delta = Msg::default().str(1, "d").msg(
        7,
        Msg::default()
            .msg(1, number_point(1.0, &[]))
            .varint(2, 1)
            .varint(3, 1),
    );
    let exp = Msg::default().str(1, "e").msg(
        10,
        Msg::default()
            .msg(1, Msg::default().fixed(3, T).fixed(4, 1).varint(6, 1))
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
            r#"exponential histogram "e" refused: klaxon does not store native histograms yet"#
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
    let req = ExportRequest::decode(&request(vec![g])).unwrap();
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
    // Every truncation is an error or a shorter valid message, never a panic.
    for n in 0..good.len() {
        let _ = ExportRequest::decode(&good[..n]);
    }
    let e = ExportRequest::decode(&good[..good.len() - 3]).unwrap_err();
    assert!(e.to_string().starts_with("protobuf: byte "), "{e}");
    assert!(e.field.starts_with("resource_metrics[0]"), "{e}");
    // A wrong wire type on a known field.
    let bad = Msg::default()
        .msg(
            1,
            Msg::default().msg(2, Msg::default().msg(2, Msg::default().varint(1, 5))),
        )
        .0;
    let e = ExportRequest::decode(&bad).unwrap_err();
    assert_eq!(
        e.field,
        "resource_metrics[0].scope_metrics[0].metrics[0].name"
    );
    assert_eq!(e.problem, "wire type 0, expected 2");
    // Nesting beyond the bound.
    let mut v = Msg::default().str(1, "leaf");
    for _ in 0..40 {
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
    let e = ExportRequest::decode(&deep).unwrap_err();
    assert!(e.to_string().contains("nesting"), "{e}");
}
