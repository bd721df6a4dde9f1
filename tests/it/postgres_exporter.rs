//! The PostgreSQL exporter against a real PostgreSQL 15 started by the test
//! (tests/it/common/postgres.rs): families diffed against postgres_exporter
//! 0.11's defaults captured on this kind of machine
//! (`../shared/reference/metrics/postgres_exporter_default.prom`),
//! pg_stat_statements, the saturation ratio under 50 connections, custom
//! queries, query timeouts, a server going down and coming back, and the
//! in-process `job="postgres"` feeding the head.

use crate::common;

use common::postgres::PgServer;
use klaxon::exporters::config::{Dsn, PostgresConfig};
use klaxon::exporters::postgres::{encode_text, PgFamily, PostgresExporter};
use klaxon::scrape::parser::{Entry, Format, MetricType, Parser};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

struct Fam {
    kind: MetricType,
    labels: BTreeSet<String>,
}

/// Family name → type and label names, as parsed from an exposition.
fn families(payload: &[u8]) -> BTreeMap<String, Fam> {
    let mut out: BTreeMap<String, Fam> = BTreeMap::new();
    let mut p = Parser::new(payload, Format::PrometheusText);
    loop {
        match p.next() {
            Ok(Some(Entry::Type { family, kind })) => {
                out.entry(family.into_owned())
                    .or_insert_with(|| Fam {
                        kind,
                        labels: BTreeSet::new(),
                    })
                    .kind = kind;
            }
            Ok(Some(Entry::Sample(s))) => {
                let f = out
                    .entry(s.metric_name().into_owned())
                    .or_insert_with(|| Fam {
                        kind: MetricType::Unknown,
                        labels: BTreeSet::new(),
                    });
                f.labels
                    .extend(s.label_pairs().map(|(n, _)| n.into_owned()));
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("payload does not parse: {e:?}"),
        }
    }
    out
}

fn config(dsn: String) -> PostgresConfig {
    PostgresConfig {
        dsns: vec![Dsn(dsn)],
        ..Default::default()
    }
}

fn value(fams: &[PgFamily], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let f = fams.iter().find(|f| f.name == name)?;
    f.samples
        .iter()
        .find(|(l, _)| {
            want.iter()
                .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| *v)
}

fn text(fams: &[PgFamily]) -> String {
    let mut s = String::new();
    encode_text(fams, &mut s);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn families_statements_saturation_and_custom_queries() {
    let Some(pg) = PgServer::start(&[]) else {
        return;
    };
    // trust auth accepts any password: this one must never show up.
    let dsn = format!(
        "postgresql://postgres:SeCrEtPw42@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    let mut cfg = config(dsn);
    cfg.queries_file = Some(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/exporters/postgres_queries.yml"
        )
        .to_string(),
    );
    cfg.statements.include_query = true;
    let exp = PostgresExporter::new(&cfg).expect("exporter");
    assert_eq!(exp.servers(), vec![pg.server()]);

    // A deliberately slow query for pg_stat_statements.
    pg.psql("SELECT pg_sleep(0.3)");
    let first = exp.collect().await;
    let body = text(&first);
    assert!(
        !body.contains("SeCrEtPw42"),
        "password leaked into the exposition"
    );
    assert_eq!(value(&first, "pg_up", &[]), Some(1.0), "{body}");

    // Families against postgres_exporter 0.11's defaults.
    if let Some(dir) = common::data_dir("reference/metrics") {
        let reference =
            std::fs::read(dir.join("postgres_exporter_default.prom")).expect("read reference");
        let reference = families(&reference);
        let ours = families(body.as_bytes());
        let wanted: Vec<&String> = reference
            .keys()
            .filter(|n| {
                !n.starts_with("go_") && !n.starts_with("process_") && !n.starts_with("promhttp_")
            })
            // The exporter's own version: klaxon reports klaxon_build_info.
            .filter(|n| n.as_str() != "postgres_exporter_build_info")
            .collect();
        let mut present = 0;
        let mut problems = Vec::new();
        for name in &wanted {
            let r = &reference[*name];
            match ours.get(*name) {
                None => problems.push(format!("missing {name}")),
                Some(o) if o.kind != r.kind || o.labels != r.labels => problems.push(format!(
                    "{name}: type {:?}/{:?} labels {:?}/{:?}",
                    r.kind, o.kind, r.labels, o.labels
                )),
                Some(_) => present += 1,
            }
        }
        println!(
            "postgres families: {present}/{} present with the same type and labels",
            wanted.len()
        );
        for p in &problems {
            println!("  {p}");
        }
        // Every family of the reference, with its type and labels: a family
        // that vanishes or changes shape is a failure, not a percentage.
        assert!(
            problems.is_empty(),
            "{present}/{} families match: {problems:#?}",
            wanted.len()
        );
        assert_eq!(present, 308, "families compared");
    }

    // pg_stat_statements shows the slow query, in seconds.
    let st = first
        .iter()
        .find(|f| f.name == "pg_stat_statements_total_time_seconds")
        .expect("pg_stat_statements family");
    let slow = st
        .samples
        .iter()
        .find(|(l, _)| {
            l.iter()
                .any(|(k, v)| k == "query" && v.contains("pg_sleep"))
        })
        .unwrap_or_else(|| panic!("pg_sleep not in top-N: {:?}", st.samples));
    assert!(slow.1 >= 0.29 && slow.1 < 30.0, "total time {}", slow.1);
    assert!(slow.0.iter().any(|(k, v)| k == "queryid" && !v.is_empty()));

    // Custom queries from the shipped file.
    assert!(
        value(
            &first,
            "pg_database_wraparound_age_datfrozenxid",
            &[("datname", "postgres")]
        )
        .is_some_and(|v| v > 0.0),
        "custom query missing"
    );

    // 50 open connections move the saturation ratio by 50/max_connections.
    let server = pg.server();
    let before = value(
        &first,
        "pg_connections_saturation_ratio",
        &[("server", &server)],
    )
    .expect("saturation ratio");
    let mut held = Vec::new();
    for _ in 0..50 {
        let (c, conn) = tokio_postgres::connect(&pg.dsn(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        held.push(c);
    }
    let second = exp.collect().await;
    let after = value(
        &second,
        "pg_connections_saturation_ratio",
        &[("server", &server)],
    )
    .expect("saturation ratio");
    assert!(
        (after - before - 0.5).abs() < 0.05,
        "ratio {before} -> {after} with 50 more of 100 connections"
    );
    assert_eq!(
        value(&second, "pg_settings_max_connections", &[]),
        Some(100.0)
    );
    assert!(value(&second, "pg_exporter_scrapes_total", &[]) == Some(2.0));
    drop(held);

    // Auto-discovery runs the non-master custom queries on other databases,
    // minus exclude_databases.
    pg.psql("CREATE DATABASE app");
    pg.psql("CREATE DATABASE skipme");
    for db in ["app", "skipme"] {
        pg.psql_in(
            db,
            "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2); ANALYZE t",
        );
    }
    cfg.auto_discover_databases = true;
    cfg.exclude_databases = vec!["skipme".into()];
    let disc = PostgresExporter::new(&cfg).unwrap().collect().await;
    let tables = disc
        .iter()
        .find(|f| f.name == "pg_stat_user_tables_n_live_tup")
        .expect("per-table custom query family");
    let dbs: BTreeSet<&str> = tables
        .samples
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .filter(|(k, _)| k == "datname")
                .map(|(_, v)| v.as_str())
        })
        .collect();
    assert!(dbs.contains("app") && !dbs.contains("skipme"), "{dbs:?}");
    assert_eq!(
        value(
            &disc,
            "pg_stat_user_tables_n_live_tup",
            &[("datname", "app"), ("relname", "t")]
        ),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_outage_and_recovery() {
    let Some(mut pg) = PgServer::start(&[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("q.yml");
    std::fs::write(
        &q,
        "pg_slow:\n  query: SELECT pg_sleep(5) AS x\n  metrics:\n    - x:\n        usage: GAUGE\n        description: never arrives\n",
    )
    .unwrap();
    let mut cfg = config(pg.dsn());
    cfg.query_timeout = Duration::from_millis(1500);
    cfg.queries_file = Some(q.display().to_string());
    let exp = PostgresExporter::new(&cfg).unwrap();

    // A query slower than query_timeout is abandoned (counted as an error,
    // its family absent); the rest still report.
    let f = exp.collect().await;
    assert_eq!(value(&f, "pg_up", &[]), Some(1.0));
    assert!(f.iter().all(|x| x.name != "pg_slow_x"));
    assert!(f.iter().any(|x| x.name == "pg_stat_database_xact_commit"));
    let errs = |f: &[PgFamily]| value(f, "pg_exporter_errors_total", &[]).unwrap_or(-1.0);
    assert_eq!(errs(&f), 1.0);

    // Without the slow query, for the outage part.
    let mut cfg = config(pg.dsn());
    cfg.query_timeout = Duration::from_secs(3);
    let exp = PostgresExporter::new(&cfg).unwrap();
    assert_eq!(value(&exp.collect().await, "pg_up", &[]), Some(1.0));

    pg.stop();
    let down = exp.collect().await;
    assert_eq!(value(&down, "pg_up", &[]), Some(0.0));
    assert!(errs(&down) >= 1.0);
    assert!(down
        .iter()
        .all(|x| x.name != "pg_stat_database_xact_commit"));
    assert_eq!(
        value(&exp.collect().await, "pg_exporter_last_scrape_error", &[]),
        Some(1.0)
    );

    pg.start_again();
    let back = exp.collect().await;
    assert_eq!(value(&back, "pg_up", &[]), Some(1.0));
    assert!(back
        .iter()
        .any(|x| x.name == "pg_stat_database_xact_commit"));
}

async fn query(base: &str, q: &str) -> Vec<serde_json::Value> {
    let bytes = reqwest::get(format!(
        "{base}/api/v1/query?query={}",
        klaxon::model::url::query_escape(q)
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn scalar(r: &[serde_json::Value]) -> Option<f64> {
    r.first()?["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_job_feeds_the_head_and_survives_an_outage() {
    let Some(mut pg) = PgServer::start(&[]) else {
        return;
    };
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nexporters:\n  postgres:\n    dsns: ['{}']\n    query_timeout: 800ms\n",
        pg.dsn()
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "pg.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let instance = app.addr.to_string();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let up = query(&base, "up{job=\"postgres\"}").await;
    assert_eq!(scalar(&up), Some(1.0), "{up:?}");
    assert_eq!(up[0]["metric"]["instance"], instance.as_str());
    assert_eq!(
        scalar(&query(&base, "pg_up{job=\"postgres\"}").await),
        Some(1.0)
    );

    // The same exporter on its own path, for an outside Prometheus.
    let body = reqwest::get(format!("{base}/metrics/postgres"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("# TYPE pg_stat_database_xact_commit counter"));

    pg.stop();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The scrape itself still succeeds, in time; the database is down.
    assert_eq!(
        scalar(&query(&base, "up{job=\"postgres\"}").await),
        Some(1.0)
    );
    assert_eq!(
        scalar(&query(&base, "pg_up{job=\"postgres\"}").await),
        Some(0.0)
    );
    let d = scalar(&query(&base, "scrape_duration_seconds{job=\"postgres\"}").await).unwrap();
    assert!(d < 1.0, "scrape took {d}s");
    // Families of the lost server went stale.
    assert!(
        query(&base, "pg_stat_database_xact_commit{job=\"postgres\"}")
            .await
            .is_empty()
    );

    pg.start_again();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        scalar(&query(&base, "pg_up{job=\"postgres\"}").await),
        Some(1.0)
    );
    app.stop().await;
}
