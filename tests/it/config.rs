//! Loads example configurations (ours under `testdata/config/`, Prometheus'
//! own under `../shared/upstream/prometheus/promtool/`) through the public
//! API and checks the resolved values and every reported error position.

use klaxon::config::{self, parse_file_sd, Action, Scheme, ScrapeProtocol};
use klaxon::settings::{embedded_default, load_file, load_str};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config")
        .join(name)
}

/// Prometheus' promtool fixtures. Missing data is a failure, never a skip.
fn promtool(name: &str) -> PathBuf {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/upstream/prometheus/promtool"
    ));
    assert!(
        dir.is_dir(),
        "shared data dir {} is missing (it must sit beside the repo)",
        dir.display()
    );
    dir.join(name)
}

/// `# ERROR L:C text` comments in a bad example: each must be reported at
/// exactly that position with a message containing `text`, and nothing else
/// may be reported.
fn expected_errors(text: &str) -> Vec<(usize, usize, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# ERROR "))
        .map(|rest| {
            let (pos, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            let (l, c) = pos.split_once(':').expect("L:C");
            (
                l.parse().unwrap(),
                c.parse().unwrap(),
                msg.trim().to_string(),
            )
        })
        .collect()
}

fn check_bad(name: &str) {
    let path = testdata(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let want = expected_errors(&text);
    assert!(!want.is_empty(), "{name} has no # ERROR lines");
    let errs = load_file(&path).expect_err(name);
    let got = errs.errors();
    for (l, c, msg) in &want {
        assert!(
            got.iter()
                .any(|e| e.line == *l && e.column == *c && e.message.contains(msg.as_str())),
            "{name}: expected error at {l}:{c} containing {msg:?}; got:\n{errs}"
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: unexpected extra errors:\n{errs}"
    );
    for e in got {
        assert_eq!(e.file, path.display().to_string());
    }
}

#[test]
fn bad_semantic_reports_every_error_with_position() {
    check_bad("bad-semantic.yml");
}

#[test]
fn bad_relabel_configs() {
    check_bad("bad-relabel.yml");
}

#[test]
fn bad_http_client_settings() {
    check_bad("bad-auth.yml");
}

#[test]
fn bad_misc() {
    check_bad("bad-misc.yml");
}

#[test]
fn bad_yaml_syntax() {
    check_bad("bad-syntax.yml");
}

#[test]
fn bad_unknown_field() {
    check_bad("bad-unknown-field.yml");
}

#[test]
fn bad_duplicate_key() {
    check_bad("bad-duplicate-key.yml");
}

#[test]
fn bad_unsupported_sd() {
    check_bad("bad-sd.yml");
}

#[test]
fn errors_display_as_file_line_col() {
    let e = load_str("global:\n  scrape_interval: 1x\n", "my.yml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "my.yml:2:20: not a valid duration string: \"1x\""
    );
    let e = load_str(
        "global:\n  scrape_interval: 1x\n  evaluation_interval: 2x\n",
        "my.yml",
    )
    .unwrap_err();
    let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("my.yml:2:20: "));
    assert!(lines[1].starts_with("my.yml:3:24: "));
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let e = load_file(Path::new("/nonexistent/klaxon.yml")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e
        .to_string()
        .starts_with("/nonexistent/klaxon.yml: reading config"));
}

#[test]
fn good_full_resolves_every_field() {
    let path = testdata("good-full.yml");
    let c = load_file(&path).unwrap();
    let dir = path.parent().unwrap();
    let g = &c.global;
    assert_eq!(g.scrape_interval, Duration::from_secs(30));
    assert_eq!(g.scrape_timeout, Duration::from_secs(20));
    assert_eq!(g.evaluation_interval, Duration::from_secs(90));
    assert_eq!(g.external_labels.get("cluster"), Some("eu-1"));
    assert_eq!(g.external_labels.get("replica"), Some("A"));
    assert_eq!(g.body_size_limit, 10 * 1024 * 1024);
    assert_eq!(
        c.rule_files,
        [
            dir.join("rules/*.yml").to_string_lossy().into_owned(),
            "/etc/klaxon/alerts.yml".to_string()
        ]
    );
    assert_eq!(c.alerting.alert_relabel_configs.len(), 1);
    assert_eq!(
        c.alerting.alert_relabel_configs[0].action,
        Action::LabelDrop
    );
    assert_eq!(c.alerting.alertmanagers.len(), 1);
    assert_eq!(c.remote_write[0].url, "http://remote.example/api/v1/write");
    assert_eq!(c.storage.path, PathBuf::from("/var/lib/klaxon"));
    assert_eq!(c.storage.retention, Duration::from_secs(2 * 86400));
    assert_eq!(c.source_path.as_deref(), Some(path.as_path()));
    assert_eq!(c.to_yaml(), std::fs::read_to_string(&path).unwrap());

    assert_eq!(c.scrape_configs.len(), 4);
    let n = c.scrape_config("node").unwrap();
    assert_eq!(n.scrape_interval, Duration::from_secs(15));
    // Inherited timeout (20s) is clamped to the job's shorter interval.
    assert_eq!(n.scrape_timeout, Duration::from_secs(15));
    assert_eq!(n.metrics_path, "/probe");
    assert_eq!(n.scheme, Scheme::Https);
    assert_eq!(n.params.get("module").unwrap(), &["http_2xx".to_string()]);
    assert!(n.honor_labels);
    assert!(!n.honor_timestamps);
    assert_eq!(n.static_configs.len(), 2);
    assert_eq!(n.static_configs[0].targets, ["a:9100", "b:9100"]);
    assert_eq!(n.static_configs[0].labels.get("env").unwrap(), "prod");
    assert_eq!(n.static_configs[1].source, "1");
    assert_eq!(n.file_sd_configs.len(), 1);
    assert_eq!(
        n.file_sd_configs[0].files[0],
        dir.join("sd/*.json").to_string_lossy()
    );
    assert_eq!(
        n.file_sd_configs[0].refresh_interval,
        Duration::from_secs(60)
    );
    let ba = n.http_client.basic_auth.as_ref().unwrap();
    assert_eq!(ba.username, "admin");
    assert_eq!(ba.password.as_ref().unwrap().expose(), "123456");
    assert_eq!(format!("{:?}", ba.password), "Some(<secret>)");
    let tls = &n.http_client.tls_config;
    assert_eq!(tls.ca_file.as_deref(), Some(dir.join("ca.pem").as_path()));
    assert_eq!(tls.cert_file.as_deref(), Some(Path::new("/abs/cert.pem")));
    assert_eq!(tls.server_name.as_deref(), Some("node.example"));
    assert!(tls.insecure_skip_verify);
    assert_eq!(tls.min_version, Some(config::TlsVersion::Tls12));
    assert!(!n.http_client.follow_redirects);
    assert!(!n.http_client.enable_http2);
    assert_eq!(n.relabel_configs.len(), 4);
    assert_eq!(n.relabel_configs[3].action, Action::HashMod);
    assert_eq!(n.relabel_configs[3].modulus, 4);
    assert_eq!(n.metric_relabel_configs[0].regex.as_str(), "go_.*");
    assert_eq!(n.sample_limit, 1000);
    assert_eq!(n.label_limit, 30);
    assert_eq!(n.label_name_length_limit, 100);
    assert_eq!(n.label_value_length_limit, 200);
    assert_eq!(n.body_size_limit, 512 * 1024);
    assert_eq!(n.target_limit, 10);
    assert_eq!(
        n.scrape_protocols,
        [
            ScrapeProtocol::PrometheusText0_0_4,
            ScrapeProtocol::OpenMetricsText1_0_0
        ]
    );
    assert!(!n.enable_compression);

    let d = c.scrape_config("defaults").unwrap();
    assert_eq!(d.scrape_interval, Duration::from_secs(30));
    assert_eq!(d.scrape_timeout, Duration::from_secs(20));
    assert_eq!(d.metrics_path, "/metrics");
    assert_eq!(d.scheme, Scheme::Http);
    assert!(d.honor_timestamps && !d.honor_labels);
    assert!(d.http_client.follow_redirects && d.http_client.enable_http2);
    assert!(d.enable_compression);
    assert_eq!(d.sample_limit, 5000, "inherited from global");
    assert_eq!(d.body_size_limit, 10 * 1024 * 1024, "inherited from global");
    assert_eq!(d.scrape_protocols, ScrapeProtocol::DEFAULT);

    let b = c.scrape_config("bearer").unwrap();
    assert_eq!(b.scrape_timeout, Duration::from_secs(5));
    let a = b.http_client.authorization.as_ref().unwrap();
    assert_eq!(a.kind, "Bearer");
    assert_eq!(
        a.credentials_file.as_deref(),
        Some(dir.join("token.txt").as_path())
    );
    let z = c.scrape_config("authz").unwrap();
    let a = z.http_client.authorization.as_ref().unwrap();
    assert_eq!(a.kind, "Bearer");
    assert_eq!(a.credentials.as_ref().unwrap().expose(), "s3cr3t");
}

#[test]
fn defaults_of_an_empty_config() {
    for text in ["", "# only a comment\n", "---\n"] {
        let c = load_str(text, "empty.yml").unwrap();
        assert_eq!(c.global.scrape_interval, Duration::from_secs(60));
        assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
        assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
        assert!(c.scrape_configs.is_empty());
        assert_eq!(c.storage.path, PathBuf::from("./data"));
        assert_eq!(c.storage.retention, Duration::from_secs(15 * 24 * 3600));
    }
    // A short global interval pulls the default timeout down with it.
    let c = load_str("global:\n  scrape_interval: 5s\n", "x").unwrap();
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
}

#[test]
fn good_minimal_and_anchors() {
    let c = load_file(&testdata("good-minimal.yml")).unwrap();
    assert_eq!(c.scrape_configs[0].job_name, "only");
    let c = load_file(&testdata("good-anchors.yml")).unwrap();
    assert_eq!(c.scrape_configs.len(), 3);
    assert_eq!(
        c.scrape_configs[0].relabel_configs,
        c.scrape_configs[1].relabel_configs
    );
    assert_eq!(c.scrape_configs[1].relabel_configs[0].target_label, "host");
    let l = &c.scrape_configs[2].static_configs[0].labels;
    assert_eq!(l.get("team").map(String::as_str), Some("infra"));
    assert_eq!(l.get("tier").map(String::as_str), Some("db"));
}

#[test]
fn load_str_keeps_relative_paths() {
    let c = load_str(
        "rule_files: [a/*.yml]\nscrape_configs:\n  - job_name: x\n    file_sd_configs:\n      - files: [t.json]\n",
        "x",
    )
    .unwrap();
    assert_eq!(c.rule_files, ["a/*.yml"]);
    assert_eq!(c.scrape_configs[0].file_sd_configs[0].files, ["t.json"]);
    assert_eq!(
        c.scrape_configs[0].file_sd_configs[0].refresh_interval,
        Duration::from_secs(300)
    );
}

#[test]
fn embedded_default_scrapes_itself() {
    let c = embedded_default("0.0.0.0:9464");
    assert_eq!(c.scrape_configs.len(), 1);
    let s = &c.scrape_configs[0];
    assert_eq!(s.job_name, "klaxon");
    assert_eq!(s.static_configs[0].targets, ["0.0.0.0:9464"]);
    // The host exporter feeds the head in-process (job="host"), not over HTTP.
    assert!(c.exporters.host.is_some());
    assert!(c.exporters.postgres.is_none());
    assert_eq!(c.rule_files, ["rules/*.yml", "recording_rules/*.yml"]);
    assert!(c.to_yaml().contains("0.0.0.0:9464"));
    // An address that would break the YAML text still ends up as the target.
    let odd = "host\"\n: x";
    let c = embedded_default(odd);
    assert_eq!(c.scrape_configs[0].static_configs[0].targets, [odd]);
}

/// promtool's config fixtures that Prometheus' server loads and that use
/// only features klaxon supports. (Some are "bad" for promtool only because
/// promtool additionally checks that referenced files exist or that static
/// targets survive relabeling; the server itself accepts them.)
const PROMTOOL_ACCEPTED: &[&str] = &[
    "prometheus-config.good.yml",
    "prometheus-config.lint.yml",
    "prometheus-config.lint.too_long_scrape_interval.yml",
    "authorization_credentials_file.good.yml",
    "authorization_credentials_file.bad.yml",
    "config_with_rule_files.yml",
    "config_with_tls_files.yml",
    "config_with_service_discovery_files.yml",
    "url_in_scrape_targetgroup_with_relabel_config.good.yml",
    "url_in_scrape_targetgroup_with_relabel_config.bad.yml",
    "url_in_alert_targetgroup_with_relabel_config.good.yml",
    "url_in_alert_targetgroup_with_relabel_config.bad.yml",
];

#[test]
fn promtool_configs_load() {
    for name in PROMTOOL_ACCEPTED {
        let path = promtool(name);
        if let Err(e) = load_file(&path) {
            panic!("{name} should load:\n{e}");
        }
    }
    let c = load_file(&promtool("config_with_tls_files.yml")).unwrap();
    assert_eq!(c.scrape_configs[0].job_name, "some job");
    let c = load_file(&promtool(
        "prometheus-config.lint.too_long_scrape_interval.yml",
    ))
    .unwrap();
    assert_eq!(
        c.scrape_configs[0].scrape_interval,
        Duration::from_secs(600)
    );
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(10));
    let c = load_file(&promtool(
        "url_in_scrape_targetgroup_with_relabel_config.good.yml",
    ))
    .unwrap();
    assert_eq!(c.scrape_configs[0].relabel_configs[1].replacement, "good");
}

/// Fixtures we reject, each with the reason.
#[test]
fn promtool_configs_rejected() {
    let cases = [
        // Not a Prometheus config at all; Prometheus rejects it too.
        (
            "prometheus-config.bad.yml",
            1,
            1,
            "unknown field `not-prometheus`",
        ),
        // AWS service discovery is not implemented in klaxon.
        (
            "prometheus-aws-sd-empty-region.good.yml",
            8,
            5,
            "`ec2_sd_configs` is a Prometheus service discovery mechanism not supported by klaxon",
        ),
    ];
    for (name, line, col, msg) in cases {
        let e = load_file(&promtool(name)).unwrap_err();
        // Every structural error is reported; the first is the one named.
        let e = &e.errors()[0];
        assert_eq!((e.line, e.column), (line, col), "{name}: {e}");
        assert!(e.message.contains(msg), "{name}: {e}");
    }
}

#[test]
fn file_sd_files() {
    let g = parse_file_sd(&promtool("good-sd-file.yml")).unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].labels.get("job").map(String::as_str), Some("node"));
    assert!(g[0].targets.is_empty());
    assert_eq!(g[1].targets, ["localhost:9100"]);
    assert_eq!(
        parse_file_sd(&promtool("good-sd-file.yaml")).unwrap().len(),
        2
    );
    let e = parse_file_sd(&promtool("bad-sd-file-format.yml")).unwrap_err();
    assert_eq!(e.line, 1, "{e}");
    assert!(e.message.contains("targats"), "{e}");

    let p = testdata("sd/targets.json");
    let g = parse_file_sd(&p).unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].targets, ["10.0.0.1:9100", "10.0.0.2:9100"]);
    assert_eq!(g[0].labels.get("team").map(String::as_str), Some("infra"));
    assert_eq!(
        g[1].labels.get("__meta_filepath").map(String::as_str),
        Some(p.to_string_lossy().as_ref())
    );
    assert_eq!(g[1].source, format!("{}:1", p.display()));
    let g = parse_file_sd(&testdata("sd/targets.yml")).unwrap();
    assert_eq!(g[0].labels.get("env").map(String::as_str), Some("dev"));
    let e = parse_file_sd(&testdata("sd/bad-label.json")).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(
        e.message
            .contains("\"bad label\" is not a valid label name"),
        "{e}"
    );
    assert!(e.to_string().contains("bad-label.json:4:"), "{e}");
}

#[test]
fn check_config_prints_every_error_and_exit_code() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["check", "config"])
        .arg(testdata("good-minimal.yml"))
        .arg(testdata("bad-semantic.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout
        .trim_end()
        .ends_with("good-minimal.yml: SUCCESS: 1 scrape configs, 0 rule files found"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let bad = testdata("bad-semantic.yml").display().to_string();
    assert_eq!(lines.len(), 10, "{stderr}");
    assert_eq!(
        lines[0],
        format!("{bad}:14:20: not a valid duration string: \"1.5m\"")
    );
    assert!(lines.iter().all(|l| l.starts_with(&format!("{bad}:"))));
    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["check", "config"])
        .arg(testdata("good-full.yml"))
        .output()
        .unwrap();
    // good-full.yml loads, but the files it points at do not exist here:
    // check config reports them as promtool does, each at its line.
    assert_eq!(ok.status.code(), Some(1));
    let err = String::from_utf8(ok.stderr).unwrap();
    for want in [
        "good-full.yml:13:1: \"/etc/klaxon/alerts.yml\" does not point to an existing file",
        "good-full.yml:53:7: error checking CA file",
        "good-full.yml:91:5: error checking authorization credentials or bearer token file",
        "WARNING: rule_files: pattern",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn bad_anchor_reported_once_at_definition() {
    check_bad("bad-anchor.yml");
}
