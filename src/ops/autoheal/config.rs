//! The `autoheal:` config section: remediation rules and the receiver
//! circuit breaker. Parsed here (like `auth:`) so the feature owns its
//! keys; `config` holds one field. Rules created through the API are the
//! same shape in JSON and go through [`parse_rule_json`], so both report
//! errors as `ORIGIN:LINE:COL: message`.

use super::action::{ActionKind, HttpAction};
use super::Rule;
use crate::config::common::opt_duration;
use crate::config::errors::{from_yaml_error, Pos, Sink};
use crate::config::http::resolve_http_fields;
use crate::config::raw::{RawHttpClientConfig, SpannedMap, S};
use crate::config::{ConfigErrors, Secret};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAutoheal {
    pub rules: Option<Vec<S<RawRule>>>,
    pub receiver_breaker: Option<S<RawBreaker>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub failures: Option<S<u32>>,
    pub cooldown: Option<S<String>>,
    pub max_cooldown: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Option<S<String>>,
    pub matchers: Option<Vec<S<String>>>,
    pub severity: Option<Vec<S<String>>>,
    pub firing_for: Option<S<String>>,
    pub cooldown: Option<S<String>>,
    pub max_runs: Option<S<u32>>,
    pub window: Option<S<String>>,
    pub dry_run: Option<bool>,
    pub target_labels: Option<Vec<S<String>>>,
    pub action: Option<S<RawAction>>,
    pub retry: Option<S<RawRetry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAction {
    pub http: Option<S<RawHttp>>,
    pub command: Option<S<RawCommand>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub method: Option<S<String>>,
    pub url: Option<S<String>>,
    pub headers: Option<SpannedMap>,
    pub body: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub hmac_secret: Option<S<String>>,
    pub hmac_secret_file: Option<S<String>>,
    pub http_config: Option<RawHttpClientConfig>,
}

/// A signed command to another klaxon (`/internal/commands/NAME`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    pub url: Option<S<String>>,
    pub command: Option<S<String>>,
    pub reason: Option<String>,
    pub secret: Option<S<String>>,
    pub secret_file: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub http_config: Option<RawHttpClientConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub attempts: Option<S<u32>>,
    pub backoff: Option<S<String>>,
}

pub use crate::notify::breaker::BreakerConfig;

/// `autoheal:` as resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutohealConfig {
    pub rules: Vec<Rule>,
    /// `None`: no breaker (failing deliveries only back off per row).
    pub receiver_breaker: Option<BreakerConfig>,
}

/// Rule names are path segments of the API and label values.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn pick_secret(
    inline: &Option<S<String>>,
    file: &Option<S<String>>,
    what: &str,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Option<Secret> {
    match (inline, file) {
        (Some(_), Some(f)) => {
            sink.push(
                Pos::of(f),
                format!("{what} and {what}_file are mutually exclusive"),
            );
            None
        }
        (Some(v), None) if v.value.is_empty() => {
            sink.push(Pos::of(v), format!("{what} is empty"));
            None
        }
        (Some(v), None) => Some(Secret::new(v.value.clone())),
        (None, Some(f)) => crate::ops::config::read_secret(f, dir, sink).map(Secret::new),
        (None, None) => None,
    }
}

fn http_url(u: &Option<S<String>>, at: Pos, sink: &mut Sink) -> Option<String> {
    let Some(u) = u else {
        sink.push(at, "url is required");
        return None;
    };
    match reqwest::Url::parse(&u.value) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {
            Some(u.value.clone())
        }
        _ => {
            sink.push(
                Pos::of(u),
                "url must be an absolute http:// or https:// URL",
            );
            None
        }
    }
}

fn http_client(
    raw: &Option<RawHttpClientConfig>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> (crate::config::HttpClientConfig, Option<String>) {
    let Some(h) = raw else {
        return (Default::default(), None);
    };
    if let Some(o) = &h.oauth2 {
        sink.push(Pos::of(o), "http_config.oauth2 is not supported");
    }
    let proxy = h
        .proxy_url
        .as_ref()
        .map(|p| p.value.clone())
        .filter(|p| !p.is_empty());
    (resolve_http_fields(h.fields(), dir, sink), proxy)
}

/// Header names klaxon sets itself on an action request.
const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "host",
    "x-signature",
    "x-timestamp",
    "x-correlation-id",
];

fn resolve_action(raw: &S<RawAction>, dir: Option<&Path>, sink: &mut Sink) -> Option<HttpAction> {
    let at = Pos::of(raw);
    match (&raw.value.http, &raw.value.command) {
        (Some(_), Some(c)) => {
            sink.push(Pos::of(c), "an action is one of http, command (both given)");
            None
        }
        (None, None) => {
            sink.push(at, "action needs one of http, command");
            None
        }
        (Some(h), None) => {
            let hat = Pos::of(h);
            let h = &h.value;
            let url = http_url(&h.url, hat, sink);
            let method = match &h.method {
                None => reqwest::Method::POST,
                Some(m) => match m.value.to_ascii_uppercase().as_str() {
                    "GET" => reqwest::Method::GET,
                    "POST" => reqwest::Method::POST,
                    "PUT" => reqwest::Method::PUT,
                    "PATCH" => reqwest::Method::PATCH,
                    "DELETE" => reqwest::Method::DELETE,
                    _ => {
                        sink.push(
                            Pos::of(m),
                            format!(
                                "unsupported method {:?} (GET, POST, PUT, PATCH, DELETE)",
                                m.value
                            ),
                        );
                        reqwest::Method::POST
                    }
                },
            };
            let mut headers = Vec::new();
            for (k, v) in h.headers.iter().flat_map(|m| m.0.iter()) {
                let lower = k.value.to_ascii_lowercase();
                if RESERVED_HEADERS.contains(&lower.as_str()) {
                    sink.push(Pos::of(k), format!("header {:?} is set by klaxon", k.value));
                } else if reqwest::header::HeaderName::from_bytes(k.value.as_bytes()).is_err() {
                    sink.push(Pos::of(k), format!("invalid header name {:?}", k.value));
                } else if reqwest::header::HeaderValue::from_str(&v.value).is_err() {
                    sink.push(
                        Pos::of(v),
                        format!("invalid value for header {:?}", k.value),
                    );
                } else {
                    headers.push((k.value.clone(), v.value.clone()));
                }
            }
            let body = h.body.as_ref().and_then(|b| {
                match crate::template::TemplateSet::new().parse("body", &b.value) {
                    Ok(_) => Some(b.value.clone()),
                    Err(e) => {
                        sink.push(Pos::of(b), format!("body template: {e}"));
                        None
                    }
                }
            });
            let secret = pick_secret(
                &h.hmac_secret,
                &h.hmac_secret_file,
                "hmac_secret",
                dir,
                sink,
            );
            let (http, proxy_url) = http_client(&h.http_config, dir, sink);
            let d = HttpAction::post("");
            Some(HttpAction {
                method,
                url: url?,
                headers,
                body,
                secret,
                timeout: opt_duration(&h.timeout, sink).unwrap_or(d.timeout),
                http,
                proxy_url,
                kind: ActionKind::Http,
                ..d
            })
        }
        (None, Some(c)) => {
            let cat = Pos::of(c);
            let c = &c.value;
            let base = http_url(&c.url, cat, sink);
            let command = match &c.command {
                None => {
                    sink.push(
                        cat,
                        "command is required (kill-switch, resume, reload, refresh)",
                    );
                    None
                }
                Some(v) => {
                    let p = crate::ops::commands::Command::parse(&v.value);
                    if p.is_none() {
                        sink.push(
                            Pos::of(v),
                            format!(
                                "unknown command {:?} (kill-switch, resume, reload, refresh)",
                                v.value
                            ),
                        );
                    }
                    p
                }
            };
            let secret = pick_secret(&c.secret, &c.secret_file, "secret", dir, sink);
            if c.secret.is_none() && c.secret_file.is_none() {
                sink.push(
                    cat,
                    "a command needs the other klaxon's command_secret (secret or secret_file)",
                );
            }
            let (http, proxy_url) = http_client(&c.http_config, dir, sink);
            let d = HttpAction::post("");
            let base = base?;
            let command = command?;
            Some(HttpAction {
                url: format!(
                    "{}/internal/commands/{}",
                    base.trim_end_matches('/'),
                    command.as_str()
                ),
                secret,
                timeout: opt_duration(&c.timeout, sink).unwrap_or(d.timeout),
                http,
                proxy_url,
                kind: ActionKind::Command {
                    command,
                    reason: c.reason.clone().unwrap_or_default(),
                },
                ..d
            })
        }
    }
}

fn resolve_rule(raw: &S<RawRule>, dir: Option<&Path>, sink: &mut Sink) -> Option<Rule> {
    let at = Pos::of(raw);
    let r = &raw.value;
    let before = sink.len();
    let name = match &r.name {
        Some(n) if valid_name(&n.value) => Some(n.value.clone()),
        Some(n) => {
            sink.push(
                Pos::of(n),
                format!(
                    "invalid rule name {:?} (1..=128 of [A-Za-z0-9_.:-])",
                    n.value
                ),
            );
            None
        }
        None => {
            sink.push(at, "autoheal rule without a name");
            None
        }
    };
    let mut matchers = Vec::new();
    for m in r.matchers.iter().flatten() {
        match crate::notify::matchers::parse_matchers(&m.value) {
            Ok(ms) => matchers.extend(ms),
            Err(e) => sink.push(Pos::of(m), format!("matcher {:?}: {e}", m.value)),
        }
    }
    if r.matchers.is_none() {
        // A rule for every alert must say so (`matchers: []`).
        sink.push(at, "matchers are required ([] matches every alert)");
    }
    let severity: Vec<String> = r
        .severity
        .iter()
        .flatten()
        .map(|s| s.value.clone())
        .collect();
    let cooldown = match &r.cooldown {
        Some(c) => match crate::config::parse_duration(&c.value) {
            Ok(d) => d,
            Err(e) => {
                sink.push(Pos::of(c), e);
                Duration::ZERO
            }
        },
        None => Duration::from_secs(600),
    };
    let firing_for = match &r.firing_for {
        Some(c) => match crate::config::parse_duration(&c.value) {
            Ok(d) => d,
            Err(e) => {
                sink.push(Pos::of(c), e);
                Duration::ZERO
            }
        },
        None => Duration::ZERO,
    };
    let window = opt_duration(&r.window, sink).unwrap_or(Duration::from_secs(3600));
    let max_runs = r.max_runs.as_ref().map_or(0, |m| m.value);
    let target_labels = r
        .target_labels
        .iter()
        .flatten()
        .map(|s| s.value.clone())
        .collect();
    let mut action = match &r.action {
        Some(a) => resolve_action(a, dir, sink),
        None => {
            sink.push(at, "action is required");
            None
        }
    };
    if let (Some(a), Some(retry)) = (&mut action, &r.retry) {
        if let Some(n) = &retry.value.attempts {
            if n.value == 0 || n.value > 20 {
                sink.push(Pos::of(n), "retry.attempts must be 1..=20");
            } else {
                a.attempts = n.value;
            }
        }
        if let Some(b) = opt_duration(&retry.value.backoff, sink) {
            a.backoff = b;
        }
    }
    if sink.len() > before {
        return None;
    }
    Some(Rule {
        name: name?,
        matchers,
        severity,
        firing_for,
        cooldown,
        max_runs,
        window,
        dry_run: r.dry_run.unwrap_or(false),
        target_labels,
        action: action?,
        from_config: true,
    })
}

pub(crate) fn resolve(raw: RawAutoheal, dir: Option<&Path>, sink: &mut Sink) -> AutohealConfig {
    let mut rules: Vec<Rule> = Vec::new();
    for r in raw.rules.iter().flatten() {
        if let Some(rule) = resolve_rule(r, dir, sink) {
            if rules.iter().any(|x| x.name == rule.name) {
                let at = r.value.name.as_ref().map_or(Pos::of(r), Pos::of);
                sink.push(at, format!("duplicate autoheal rule name {:?}", rule.name));
                continue;
            }
            rules.push(rule);
        }
    }
    let receiver_breaker = raw.receiver_breaker.as_ref().map(|b| {
        let d = BreakerConfig::default();
        let failures = match &b.value.failures {
            Some(f) if f.value == 0 => {
                sink.push(Pos::of(f), "failures must be at least 1");
                d.failures
            }
            Some(f) => f.value,
            None => d.failures,
        };
        let cooldown = opt_duration(&b.value.cooldown, sink).unwrap_or(d.cooldown);
        let max_cooldown = opt_duration(&b.value.max_cooldown, sink)
            .unwrap_or(d.max_cooldown)
            .max(cooldown);
        BreakerConfig {
            failures,
            cooldown,
            max_cooldown,
        }
    });
    AutohealConfig {
        rules,
        receiver_breaker,
    }
}

/// One rule as a JSON (or YAML) document from the API; errors name
/// `origin` and the position in the text. The rule is marked as not from
/// the config file.
pub fn parse_rule_json(text: &str, origin: &str) -> Result<Rule, ConfigErrors> {
    let raw: S<RawRule> = serde_saphyr::from_str(text).map_err(|e| {
        ConfigErrors(vec![crate::config::tidy_yaml_message(from_yaml_error(
            origin, &e,
        ))])
    })?;
    let mut sink = Sink::new(origin);
    let rule = resolve_rule(&raw, None, &mut sink);
    let rule = sink.into_result(rule)?;
    rule.map(|mut r| {
        r.from_config = false;
        r
    })
    .ok_or_else(|| {
        ConfigErrors(vec![crate::config::ConfigError {
            file: origin.to_string(),
            line: 0,
            column: 0,
            message: "invalid rule".into(),
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]

    struct Loaded {
        autoheal: Option<AutohealConfig>,
    }

    /// An `autoheal:` section resolved alone, as the file loader does.
    fn load(y: &str) -> Result<Loaded, crate::config::ConfigErrors> {
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            autoheal: Option<RawAutoheal>,
        }
        let f: File = crate::config::parse_yaml(y, "k.yml")?;
        let mut sink = Sink::new("k.yml");
        let autoheal = f.autoheal.map(|a| resolve(a, None, &mut sink));
        sink.into_result(Loaded { autoheal })
    }

    #[test]
    fn a_full_rule_and_the_breaker_resolve() {
        let c = load(
            "autoheal:\n  receiver_breaker: {failures: 3, cooldown: 2s}\n  rules:\n    - name: restart\n      matchers: ['alertname=\"Down\"', 'env=~\"prod|stage\"']\n      severity: [page]\n      firing_for: 1m\n      cooldown: 2s\n      max_runs: 3\n      window: 1h\n      target_labels: [instance]\n      action:\n        http:\n          url: http://127.0.0.1:1/fix\n          method: put\n          headers: {X-Team: sre}\n          body: '{\"host\": \"{{ .Labels.instance }}\"}'\n          hmac_secret: s3cret\n      retry: {attempts: 5, backoff: 100ms}\n    - name: stop-other\n      matchers: ['alertname=\"Flood\"']\n      action:\n        command: {url: 'http://other:9470/', command: kill-switch, secret: x, reason: flood}\n",
        )
        .unwrap();
        let a = c.autoheal.unwrap();
        assert_eq!(
            a.receiver_breaker,
            Some(BreakerConfig {
                failures: 3,
                cooldown: Duration::from_secs(2),
                max_cooldown: Duration::from_secs(600)
            })
        );
        let r = &a.rules[0];
        assert_eq!(r.matchers.len(), 2);
        assert_eq!(r.severity, ["page"]);
        assert_eq!(r.cooldown, Duration::from_secs(2));
        assert_eq!(r.action.method, reqwest::Method::PUT);
        assert_eq!(r.action.attempts, 5);
        assert_eq!(r.action.backoff, Duration::from_millis(100));
        assert_eq!(r.action.secret.as_ref().unwrap().expose(), "s3cret");
        // The secret does not show in the rule's debug form (logs).
        assert!(!format!("{r:?}").contains("s3cret"));
        let c2 = &a.rules[1].action;
        assert_eq!(c2.url, "http://other:9470/internal/commands/kill-switch");
        assert!(matches!(c2.kind, ActionKind::Command { .. }));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = load(
            "autoheal:\n  rules:\n    - name: 'bad name'\n      matchers: ['alertname=~\"(\"']\n      cooldown: 5x\n      action:\n        http: {url: 'ftp://x', method: TRACE, headers: {X-Signature: a}}\n    - name: b\n      matchers: []\n      action: {command: {url: 'http://o', command: explode}}\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "k.yml:3:13: invalid rule name",
            "k.yml:4:18: matcher",
            "k.yml:5:17:",
            "k.yml:7:21: url must be an absolute",
            "k.yml:7:40: unsupported method \"TRACE\"",
            "k.yml:7:57: header \"X-Signature\" is set by klaxon",
            "unknown command \"explode\"",
            "needs the other klaxon's command_secret",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
        let e = load("autoheal:\n  rules:\n    - name: a\n      matchers: ['a=\"b\"']\n      action: {http: {url: 'http://h/'}}\n      cooldwn: 1s\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("k.yml:6:7: unknown field `cooldwn`"), "{e}");
    }

    #[test]
    fn api_rules_parse_from_json_with_positions() {
        let r = parse_rule_json(
            r#"{"name": "x", "matchers": ["alertname=\"A\""], "cooldown": "2s", "action": {"http": {"url": "http://127.0.0.1:9/x"}}}"#,
            "request body",
        )
        .unwrap();
        assert!(!r.from_config);
        assert_eq!(r.cooldown, Duration::from_secs(2));
        let e = parse_rule_json(
            "{\"name\": \"x\",\n \"matchers\": [\"a=\\\"b\\\"\"],\n \"action\": {\"http\": {\"url\": 5}}, \"nope\": 1}",
            "request body",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("request body:"), "{e}");
    }
}
