//! The Grafana dashboards in `docker/grafana/dashboards/`: valid dashboard
//! JSON for Grafana 10+ (schemaVersion >= 39, the data source and the
//! job/instance filters as template variables), and every panel expression
//! parses with klaxon's PromQL parser, names only metrics that exist, and
//! evaluates in klaxon's engine against a head filled with the reference
//! exporter payloads and klaxon's own /metrics.

use crate::common;

use klaxon::promql::parser::Expr;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/grafana/dashboards");

const DASHBOARDS: [&str; 7] = [
    "alerts-deliveries.json",
    "anomaly.json",
    "golden-signals.json",
    "host-saturation.json",
    "klaxon.json",
    "postgresql.json",
    "probes.json",
];

/// Reference payloads (`../shared/reference/metrics/`) whose families are
/// the upstream names klaxon's exporters serve, with the job they are
/// loaded under in the fixture head.
const REFERENCES: [(&str, &str); 6] = [
    ("node_exporter", "node"),
    ("postgres_exporter", "postgres"),
    ("postgres_exporter_default", "postgres"),
    ("blackbox_probe_http", "blackbox"),
    ("blackbox_probe_http_fail", "blackbox"),
    ("blackbox_probe_tcp", "blackbox"),
];

/// Names that are in no reference payload, with why they are right:
/// series the scraper and the rule engine write themselves, the conventional
/// HTTP metrics of client libraries the golden-signals rules are built on,
/// what blackbox_exporter adds for HTTPS targets (the reference probe was
/// plain HTTP), and the replication lag klaxon's PostgreSQL exporter serves
/// beyond 0.11 (postgres_exporter 0.13's name; docs/exporters.md).
const CONVENTIONAL: [&str; 7] = [
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "probe_ssl_earliest_cert_expiry",
    "pg_replication_lag_seconds",
];

/// Grafana's variables, replaced by values that make a valid query.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("${job}", ".+")
        .replace("$job", ".+")
        .replace("${instance}", ".+")
        .replace("$instance", ".+")
}

fn walk(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::VectorSelector(v) => {
            if let Some(n) = &v.name {
                out.insert(n.clone());
            }
        }
        Expr::MatrixSelector(m) => {
            if let Some(n) = &m.selector.name {
                out.insert(n.clone());
            }
        }
        Expr::SubqueryExpr(s) => walk(&s.expr, out),
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            walk(&b.lhs, out);
            walk(&b.rhs, out);
        }
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Call(c) => c.args.iter().for_each(|a| walk(a, out)),
        Expr::Aggregate(a) => {
            walk(&a.expr, out);
            if let Some(p) = &a.param {
                walk(p, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

fn load(name: &str) -> Value {
    let p = Path::new(DIR).join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// (dashboard, panel title, expression) for every target.
fn expressions() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let d = load(name);
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    name.to_string(),
                    p["title"].as_str().unwrap_or("").to_string(),
                    t["expr"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
        // label_values(metric{...}, label) of the variables names metrics too.
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if let Some(q) = v["definition"].as_str() {
                if let Some(inner) = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.rsplit_once(','))
                {
                    out.push((
                        name.to_string(),
                        format!("variable {}", v["name"]),
                        inner.0.to_string(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn dashboards_are_valid_grafana_json() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(DIR)
        .expect("dashboards dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = DASHBOARDS.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, want);
    let mut uids = BTreeSet::new();
    for name in DASHBOARDS {
        let d = load(name);
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
            "{name}"
        );
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}");
        let uid = d["uid"].as_str().expect("uid");
        assert!(
            uid.len() <= 40 && uids.insert(uid.to_string()),
            "{name}: uid {uid}"
        );
        let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
            .as_array()
            .expect("templating.list")
            .iter()
            .map(|v| (v["name"].as_str().unwrap_or(""), v))
            .collect();
        let ds = vars.get("datasource").expect("datasource variable");
        assert_eq!(ds["type"], "datasource", "{name}");
        assert_eq!(ds["query"], "prometheus", "{name}");
        for v in ["job", "instance"] {
            let var = vars
                .get(v)
                .unwrap_or_else(|| panic!("{name}: no {v} variable"));
            assert_eq!(var["type"], "query", "{name}: {v}");
            assert_eq!(var["datasource"]["uid"], "${datasource}", "{name}: {v}");
        }
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("");
            let id = p["id"].as_u64().expect("panel id");
            assert!(ids.insert(id), "{name}: duplicate panel id {id}");
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().expect("x"), g["w"].as_u64().expect("w"));
            assert!(
                x + w <= 24 && g["h"].as_u64().is_some(),
                "{name}: {title}: gridPos"
            );
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{name}: {title}");
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{name}: {title}: no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{name}: {title}");
                let expr = t["expr"].as_str().unwrap_or("");
                // Only variables the dashboard defines or Grafana provides.
                for (i, _) in expr.match_indices('$') {
                    let var: String = expr[i + 1..]
                        .trim_start_matches('{')
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        vars.contains_key(var.as_str())
                            || ["__rate_interval", "__interval", "__range"].contains(&var.as_str()),
                        "{name}: {title}: unknown variable ${var}"
                    );
                }
            }
        }
    }
}

/// Metric families of a reference names file (histograms and summaries
/// expose suffixed series).
fn reference_names(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        let mut cols = line.split('\t');
        let (Some(name), Some(kind)) = (cols.next(), cols.next()) else {
            continue;
        };
        out.push(name.to_string());
        if kind == "histogram" || kind == "summary" {
            for s in ["_bucket", "_sum", "_count"] {
                out.push(format!("{name}{s}"));
            }
        }
    }
    out
}

/// The series of a /metrics payload, and its declared families (a labelled
/// counter nobody incremented yet has a TYPE line and no sample).
fn payload_samples(text: &str, families: &mut BTreeSet<String>) -> Vec<klaxon::model::Labels> {
    use klaxon::scrape::parser::{Entry, Format, Parser};
    let mut p = Parser::new(text.as_bytes(), Format::PrometheusText);
    let mut out = Vec::new();
    loop {
        match p.next() {
            Ok(Some(Entry::Sample(s))) => out.push(s.labels()),
            Ok(Some(Entry::Type { family, .. })) => {
                families.insert(family.to_string());
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("reference payload does not parse: {e:?}"),
        }
    }
    out
}

fn recording_rule_names() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeSet::new();
    for dir in [
        "recording_rules",
        "recording_rules/slo/generated",
        "recording_rules/anomaly/generated",
    ] {
        for e in std::fs::read_dir(root.join(dir)).expect("rules dir") {
            let p = e.expect("entry").path();
            if p.extension().is_none_or(|x| x != "yml") {
                continue;
            }
            let rf = klaxon::rules::file::load_rule_file(&p).expect("valid rules");
            for r in rf.groups.iter().flat_map(|g| &g.rules) {
                if let klaxon::rules::file::RuleKind::Record(n) = &r.kind {
                    out.insert(n.clone());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expression_parses_names_known_metrics_and_evaluates() {
    let Some(refs) = common::data_dir("reference/metrics") else {
        return;
    };
    // klaxon's own families, from a running klaxon.
    let mut cfg = klaxon::settings::load_str("scrape_configs: []\n", "dash.yml").expect("config");
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .expect("start");
    let own = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");

    let head = klaxon::tsdb::Head::new(klaxon::tsdb::HeadOptions::default());
    let mut known: BTreeSet<String> = BTreeSet::new();
    // (payload, job, instance): one instance per payload, the two
    // postgres_exporter captures share series.
    let mut payloads: Vec<(String, &str, String)> = vec![(own, "klaxon", "klaxon:1".into())];
    for (file, job) in REFERENCES {
        known.extend(reference_names(&refs.join(format!("{file}.names.txt"))));
        let text = std::fs::read_to_string(refs.join(format!("{file}.prom"))).expect("payload");
        payloads.push((text, job, format!("{file}:1")));
    }
    // Three scrapes 30s apart so rates have two points in a 1m window.
    for (text, job, instance) in &payloads {
        for labels in payload_samples(text, &mut known) {
            known.insert(labels.metric_name().to_string());
            let mut b = labels.builder();
            b.set("job", *job).set("instance", instance.as_str());
            let (r, _) = head.get_or_create(&b.build());
            for (i, t) in [0_i64, 30_000, 60_000].iter().enumerate() {
                head.append(r, *t, i as f64).expect("append");
            }
        }
    }
    // Families klaxon registers but that have no series yet in a fresh
    // process (no receivers, no rule groups): their `# TYPE` lines.
    for l in payloads[0].0.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                known.insert(name.to_string());
                if kind == "counter" && !name.ends_with("_total") {
                    known.insert(format!("{name}_total"));
                }
            }
        }
    }
    known.extend(CONVENTIONAL.iter().map(|s| s.to_string()));
    known.extend(recording_rule_names());

    let engine = klaxon::promql::Engine::new(klaxon::promql::EngineOptions::default());
    let mut used = BTreeSet::new();
    let exprs = expressions();
    assert!(exprs.len() > 60, "only {} expressions", exprs.len());
    for (dash, title, expr) in &exprs {
        let q = substitute(expr);
        let ast = klaxon::promql::parse(&q).unwrap_or_else(|e| panic!("{dash}: {title}: {q}: {e}"));
        let mut names = BTreeSet::new();
        walk(&ast, &mut names);
        assert!(!names.is_empty(), "{dash}: {title}: no metric in {q}");
        for n in &names {
            assert!(known.contains(n), "{dash}: {title}: unknown metric {n}");
        }
        used.extend(names);
        if !title.starts_with("variable ") {
            if let Err(e) = engine.instant(&head, q.as_str(), 60_000) {
                panic!("{dash}: {title}: {q}: {e}");
            }
        }
    }
}
