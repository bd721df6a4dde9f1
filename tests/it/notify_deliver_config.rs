//! Receiver configs: Alertmanager's shapes and defaults, errors with
//! FILE:LINE:COL, refused integrations, and the receivers of upstream's
//! test configs.

use klaxon::config::Secret;
use klaxon::notify::config::GlobalConfig;
use klaxon::notify::receivers::{resolve_receivers, Integration, RawReceiver, Receiver};
use serde::Deserialize;
use serde_saphyr::Spanned;

fn load(yaml: &str, global: &GlobalConfig) -> Result<Vec<Receiver>, String> {
    let raw: Vec<Spanned<RawReceiver>> = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    resolve_receivers(&raw, global, "am.yml", None).map_err(|e| e.to_string())
}

#[test]
fn defaults_follow_alertmanager() {
    let global = GlobalConfig {
        smtp_from: Some("am@example.org".into()),
        smtp_smarthost: Some("mail:25".into()),
        slack_api_url: Some(Secret::new("https://hooks.slack.com/x")),
        ..Default::default()
    };
    let r = load(
        "- name: all\n  pagerduty_configs:\n    - routing_key: k\n  slack_configs:\n    - channel: '#c'\n  email_configs:\n    - to: a@example.org\n  webhook_configs:\n    - url: http://h/\n",
        &global,
    )
    .unwrap();
    let i = &r[0].integrations;
    assert_eq!(i.len(), 4);
    match &i[0] {
        Integration::PagerDuty(c) => {
            assert!(c.send_resolved);
            assert_eq!(c.url, "https://events.pagerduty.com/v2/enqueue");
            assert_eq!(c.details.len(), 4);
        }
        other => panic!("{other:?}"),
    }
    match &i[1] {
        Integration::Slack(c) => assert!(!c.send_resolved),
        other => panic!("{other:?}"),
    }
    match &i[2] {
        Integration::Email(c) => {
            assert!(!c.send_resolved);
            assert_eq!(c.from, "am@example.org");
            assert_eq!(c.smarthost, "mail:25");
            assert!(c.require_tls);
            assert_eq!(c.hello, "localhost");
            assert!(c.headers.contains_key("Subject"));
        }
        other => panic!("{other:?}"),
    }
    match &i[3] {
        Integration::Webhook(c) => {
            assert!(c.send_resolved);
            assert_eq!(c.max_alerts, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v1_service_key_uses_the_generic_endpoint() {
    let r = load(
        "- name: p\n  pagerduty_configs:\n    - service_key: k\n",
        &GlobalConfig::default(),
    )
    .unwrap();
    match &r[0].integrations[0] {
        Integration::PagerDuty(c) => {
            assert!(c.routing_key.is_none());
            assert!(c.url.ends_with("/generic/2010-04-15/create_event.json"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_carry_file_line_and_column() {
    let e = load(
        "- name: a\n  victorops_configs:\n    - api_key: x\n- name: b\n  webhook_configs:\n    - url: 'ftp://nope'\n- name: c\n  pagerduty_configs:\n    - client: '{{ .Status'\n      routing_key: k\n- name: d\n  slack_configs:\n    - channel: '#x'\n",
        &GlobalConfig::default(),
    )
    .unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("am.yml:3:7: ")
            && l.contains("missing Routing key in VictorOps config")),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("am.yml:6:12: ") && l.contains("url: unsupported scheme")),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("am.yml:9:15: ") && l.contains("client: template")),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("am.yml:13:7: ") && l.contains("no Slack API URL")),
        "{e}"
    );
    assert!(
        !e.contains("nope"),
        "a URL (possibly secret) leaked into the error: {e}"
    );
}

#[test]
fn secrets_are_mutually_exclusive_with_files_and_hidden_in_debug() {
    let e = load(
        "- name: p\n  pagerduty_configs:\n    - routing_key: topsecret\n      routing_key_file: /f\n",
        &GlobalConfig::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("at most one of routing_key & routing_key_file"),
        "{e}"
    );
    let r = load(
        "- name: p\n  pagerduty_configs:\n    - routing_key: topsecret\n",
        &GlobalConfig::default(),
    )
    .unwrap();
    assert!(!format!("{r:?}").contains("topsecret"));
}

#[test]
fn unknown_fields_are_refused() {
    let e = load(
        "- name: w\n  webhook_configs:\n    - url: http://h/\n      urll: x\n",
        &GlobalConfig::default(),
    )
    .unwrap_err();
    assert!(e.contains("urll"), "{e}");
}

#[derive(Deserialize)]
struct Partial {
    #[serde(default)]
    receivers: Vec<Spanned<RawReceiver>>,
}

fn upstream(name: &str) -> String {
    let p = format!(
        "{}/../shared/upstream/alertmanager/config/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading {p}: {e} (shared data dir missing?)"))
}

fn global_of(text: &str) -> GlobalConfig {
    let v: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    let g = &v["global"];
    let s = |k: &str| g[k].as_str().map(str::to_string);
    GlobalConfig {
        smtp_from: s("smtp_from"),
        smtp_smarthost: s("smtp_smarthost"),
        smtp_auth_username: s("smtp_auth_username"),
        smtp_auth_password: s("smtp_auth_password").map(Secret::new),
        slack_api_url: s("slack_api_url")
            .or(s("slack_api_url_file"))
            .map(Secret::new),
        ..Default::default()
    }
}

#[test]
fn upstream_configs_receivers_load() {
    for f in [
        "examples/simple.yml",
        "examples/route_labels.yml",
        "testdata/conf.empty-fields.yml",
        "testdata/conf.http-config.good.yml",
        "testdata/conf.smtp-no-username-or-password.yml",
        "testdata/conf.slack-default-api-url-file.yml",
    ] {
        let text = upstream(f);
        let p: Partial = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        let r = resolve_receivers(&p.receivers, &global_of(&text), f, None);
        assert!(r.is_ok(), "{f}: {}", r.err().unwrap());
    }
}

#[test]
fn upstream_good_config_loads_with_every_integration() {
    let f = "testdata/conf.good.yml";
    let text = upstream(f);
    let p: Partial = serde_saphyr::from_str(&text).unwrap();
    let r = resolve_receivers(&p.receivers, &global_of(&text), f, None)
        .unwrap_or_else(|e| panic!("{f}: {e}"));
    let kinds: Vec<&str> = r
        .iter()
        .flat_map(|r| r.integrations.iter().map(|i| i.kind()))
        .collect();
    for k in [
        "victorops",
        "opsgenie",
        "pushover",
        "slack",
        "pagerduty",
        "email",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
}
