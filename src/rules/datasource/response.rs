//! Decoding of Prometheus' `/api/v1/query` JSON answer: `vector`, `scalar`
//! and `matrix` results, and the `{status:"error", errorType, error}` body
//! that comes with 4xx/5xx statuses.

use crate::model::{Labels, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A query result, reduced to what rules use.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryData {
    /// `vector`, or a `scalar` as one sample without labels (as Prometheus'
    /// `EngineQueryFunc` turns it).
    Vector(Vec<(Labels, f64)>),
    /// `matrix`: every series with its samples `(ms, value)`.
    Matrix(Vec<(Labels, Vec<(Timestamp, f64)>)>),
    /// `string`, which no rule can use.
    String,
}

/// What a response said.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Success {
        data: QueryData,
        warnings: Vec<String>,
    },
    /// `status: error`.
    Error { error_type: String, error: String },
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// `[<unix seconds>, "<value>"]`.
#[derive(Deserialize)]
struct Point(f64, String);

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<Point>,
    histogram: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Point>,
}

/// Go's `strconv.FormatFloat` spellings, which Rust's parser mostly shares
/// (`NaN`, `+Inf`, `-Inf` included).
fn value(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("sample value {s:?} is not a number"))
}

fn millis(secs: f64) -> Timestamp {
    (secs * 1000.0).round() as Timestamp
}

fn labels(m: BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Decodes a response body. Errors name what was wrong with it.
pub fn decode(body: &[u8]) -> Result<Decoded, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    if env.status != "success" {
        return Ok(Decoded::Error {
            error_type: env.error_type.unwrap_or_default(),
            error: env
                .error
                .unwrap_or_else(|| format!("status {:?} without error text", env.status)),
        });
    }
    let data = env.data.ok_or("success response without data")?;
    let bad = |e: serde_json::Error| format!("{} result: {e}", data.result_type);
    let out = match data.result_type.as_str() {
        "vector" => {
            let v: Vec<VectorSample> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            let mut out = Vec::with_capacity(v.len());
            for s in v {
                match (s.value, s.histogram) {
                    (Some(p), _) => out.push((labels(s.metric), value(&p.1)?)),
                    (None, Some(_)) => {
                        return Err("native histogram samples are not supported".into())
                    }
                    (None, None) => return Err("vector sample without value".into()),
                }
            }
            QueryData::Vector(out)
        }
        "scalar" => {
            let p: Point = serde_json::from_value(data.result.clone()).map_err(bad)?;
            QueryData::Vector(vec![(Labels::empty(), value(&p.1)?)])
        }
        "matrix" => {
            let m: Vec<MatrixSeries> = serde_json::from_value(data.result.clone()).map_err(bad)?;
            let mut out = Vec::with_capacity(m.len());
            for s in m {
                let mut pts = Vec::with_capacity(s.values.len());
                for p in s.values {
                    pts.push((millis(p.0), value(&p.1)?));
                }
                out.push((labels(s.metric), pts));
            }
            QueryData::Matrix(out)
        }
        "string" => QueryData::String,
        other => return Err(format!("unknown resultType {other:?}")),
    };
    Ok(Decoded::Success {
        data: out,
        warnings: env.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> QueryData {
        match decode(body.as_bytes()).unwrap() {
            Decoded::Success { data, .. } => data,
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn vectors_scalars_and_matrices() {
        let v = ok(
            r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1700000000.5,"1"]},
            {"metric":{},"value":[1700000000.5,"NaN"]},
            {"metric":{"x":"y"},"value":[1700000000.5,"+Inf"]},
            {"metric":{"x":"z"},"value":[1700000000.5,"-Inf"]}]}}"#,
        );
        let QueryData::Vector(v) = v else { panic!() };
        assert_eq!(
            v[0],
            (Labels::from_pairs([("__name__", "up"), ("job", "a")]), 1.0)
        );
        assert!(v[1].0.is_empty() && v[1].1.is_nan());
        assert_eq!(v[2].1, f64::INFINITY);
        assert_eq!(v[3].1, f64::NEG_INFINITY);
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"2.25"]}}"#),
            QueryData::Vector(vec![(Labels::empty(), 2.25)])
        );
        assert_eq!(
            ok(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[10.001,"1"],[25,"3e2"]]}]}}"#
            ),
            QueryData::Matrix(vec![(
                Labels::from_pairs([("a", "b")]),
                vec![(10_001, 1.0), (25_000, 300.0)]
            )])
        );
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#),
            QueryData::String
        );
    }

    #[test]
    fn warnings_and_errors() {
        let d = decode(
            br#"{"status":"success","warnings":["w1"],"data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap();
        assert_eq!(
            d,
            Decoded::Success {
                data: QueryData::Vector(vec![]),
                warnings: vec!["w1".into()]
            }
        );
        let d =
            decode(br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#)
                .unwrap();
        assert_eq!(
            d,
            Decoded::Error {
                error_type: "bad_data".into(),
                error: "parse error at char 3".into()
            }
        );
        for bad in [
            "not json",
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"one"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":{"x":1}}}"#,
            r#"{"status":"success","data":{"resultType":"tensor","result":[]}}"#,
        ] {
            assert!(decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
