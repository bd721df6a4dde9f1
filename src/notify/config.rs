//! The `notify:` section / `--notify-config` file, in `alertmanager.yml`'s
//! shape, so a user's Alertmanager file loads unchanged.
//!
//! Like the main config, loading is raw serde shapes with positions (syntax,
//! types, unknown keys) followed by Alertmanager's semantic checks, all
//! errors collected as `FILE:LINE:COL: message`. Receivers' own fields belong
//! to `receivers` (delivery); this file only needs their names.

use crate::config::errors::{from_yaml_error, Pos, Sink};
use crate::config::{parse_duration, ConfigError, ConfigErrors, Secret};
use crate::model::{MatchType, Matcher};
use crate::notify::matchers::{parse_matchers, sort_matchers};
use crate::notify::receivers::RawReceiver;
use crate::notify::route::{GroupBy, Route};
use crate::notify::timeinterval::{RawPeriod, TimeInterval};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

type S<T> = Spanned<T>;

/// `global:` resolved, with Alertmanager's defaults. Receivers read their
/// defaults (smtp_*, slack_api_url, pagerduty_url) from here.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    pub resolve_timeout: Duration,
    pub smtp_from: Option<String>,
    pub smtp_hello: String,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<crate::config::Secret>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_require_tls: bool,
    pub slack_api_url: Option<crate::config::Secret>,
    pub pagerduty_url: String,
    pub http_config: crate::config::HttpClientConfig,
    /// `smtp_auth_password_file` / `slack_api_url_file` as written: the
    /// receivers read the file at send time, as Alertmanager does.
    pub smtp_auth_password_file: Option<String>,
    pub slack_api_url_file: Option<String>,
    /// Every other `global:` key Alertmanager knows (opsgenie_*, victorops_*,
    /// wechat_*, ...), kept verbatim for integrations klaxon may add.
    pub other: BTreeMap<String, String>,
    /// `smtp_tls_config` as written, for the email integration.
    pub smtp_tls_config: Option<serde_json::Value>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: Duration::from_secs(300),
            smtp_from: None,
            smtp_hello: "localhost".into(),
            smtp_smarthost: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_identity: None,
            smtp_require_tls: true,
            slack_api_url: None,
            pagerduty_url: "https://events.pagerduty.com/v2/enqueue".into(),
            http_config: Default::default(),
            smtp_auth_password_file: None,
            slack_api_url_file: None,
            other: BTreeMap::new(),
            smtp_tls_config: None,
        }
    }
}

/// An inhibition rule: while an alert matching `source` fires, alerts
/// matching `target` with the same values of `equal` are muted.
#[derive(Clone, Debug, PartialEq)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    pub equal: Vec<String>,
}

/// A loaded, validated notify configuration.
#[derive(Debug)]
pub struct NotifyConfig {
    pub global: GlobalConfig,
    pub route: Route,
    pub inhibit_rules: Vec<InhibitRule>,
    /// `time_intervals` and `mute_time_intervals`, by name.
    pub time_intervals: BTreeMap<String, TimeInterval>,
    /// Template globs, joined to the file's directory (rendered by delivery).
    pub templates: Vec<String>,
    /// Receivers with their integrations resolved (defaults from `global`,
    /// secrets read from their files).
    pub receivers: Vec<crate::notify::receivers::Receiver>,
    /// The Alertmanager-shaped YAML with secrets masked, for
    /// `/api/v2/status` (`amtool config routes` parses it).
    pub original: String,
    /// The file it was loaded from when it is a file of its own
    /// (`--notify-config`), so a reload reads that file again.
    pub source_file: Option<std::path::PathBuf>,
}

impl NotifyConfig {
    pub fn receiver_names(&self) -> impl Iterator<Item = &str> {
        self.receivers.iter().map(|r| r.name.as_str())
    }
}

/// Two configs are the same when loaded from the same text; receivers'
/// integrations have no comparison of their own.
impl PartialEq for NotifyConfig {
    fn eq(&self, o: &Self) -> bool {
        self.original == o.original
            && self.global == o.global
            && self.route == o.route
            && self.inhibit_rules == o.inhibit_rules
            && self.time_intervals == o.time_intervals
            && self.templates == o.templates
    }
}

// ---------------------------------------------------------------- raw shapes

/// A label-name mapping whose values may be null (Alertmanager reports a
/// missing regex by label name, so it must be seen, not a type error).
#[derive(Debug, Default)]
pub(crate) struct OptMap(pub Vec<(S<String>, Option<S<String>>)>);

impl<'de> Deserialize<'de> for OptMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<OptMap, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<S<String>, Option<S<String>>>()? {
                    v.push((k, val));
                }
                Ok(OptMap(v))
            }
            fn visit_unit<E>(self) -> Result<OptMap, E> {
                Ok(OptMap::default())
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotifyConfig {
    pub global: Option<S<RawGlobal>>,
    pub route: Option<S<RawRoute>>,
    pub inhibit_rules: Option<Vec<S<RawInhibitRule>>>,
    pub receivers: Option<Vec<S<RawReceiver>>>,
    pub templates: Option<Vec<S<String>>>,
    pub time_intervals: Option<Vec<S<RawTimeInterval>>>,
    pub mute_time_intervals: Option<Vec<S<RawTimeInterval>>>,
    /// Alertmanager's own tracing exporter: accepted, ignored with a warning.
    pub tracing: Option<S<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub resolve_timeout: Option<S<String>>,
    pub http_config: Option<S<serde_json::Value>>,
    pub smtp_from: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<S<String>>,
    pub smtp_auth_password_file: Option<S<String>>,
    pub smtp_auth_secret: Option<String>,
    pub smtp_auth_secret_file: Option<String>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_require_tls: Option<bool>,
    pub smtp_tls_config: Option<serde_json::Value>,
    pub slack_api_url: Option<S<String>>,
    pub slack_api_url_file: Option<S<String>>,
    pub slack_app_token: Option<S<String>>,
    pub slack_app_token_file: Option<S<String>>,
    pub slack_app_url: Option<String>,
    pub pagerduty_url: Option<String>,
    pub opsgenie_api_key: Option<S<String>>,
    pub opsgenie_api_key_file: Option<S<String>>,
    pub opsgenie_api_url: Option<String>,
    pub victorops_api_key: Option<S<String>>,
    pub victorops_api_key_file: Option<S<String>>,
    pub victorops_api_url: Option<String>,
    pub wechat_api_url: Option<String>,
    pub wechat_api_secret: Option<S<String>>,
    pub wechat_api_secret_file: Option<S<String>>,
    pub wechat_api_corp_id: Option<String>,
    pub telegram_api_url: Option<String>,
    pub telegram_bot_token: Option<S<String>>,
    pub telegram_bot_token_file: Option<S<String>>,
    pub webex_api_url: Option<String>,
    pub rocketchat_api_url: Option<String>,
    pub rocketchat_token: Option<S<String>>,
    pub rocketchat_token_file: Option<S<String>>,
    pub rocketchat_token_id: Option<S<String>>,
    pub rocketchat_token_id_file: Option<S<String>>,
    pub mattermost_webhook_url: Option<S<String>>,
    pub mattermost_webhook_url_file: Option<S<String>>,
    pub jira_api_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub receiver: Option<S<String>>,
    pub group_by: Option<Vec<S<String>>>,
    #[serde(rename = "match")]
    pub match_: Option<OptMap>,
    pub match_re: Option<OptMap>,
    pub matchers: Option<Vec<S<String>>>,
    #[serde(rename = "continue")]
    pub continue_: Option<S<bool>>,
    pub routes: Option<Vec<S<RawRoute>>>,
    pub group_wait: Option<S<String>>,
    pub group_interval: Option<S<String>>,
    pub repeat_interval: Option<S<String>>,
    pub mute_time_intervals: Option<Vec<S<String>>>,
    pub active_time_intervals: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInhibitRule {
    pub source_match: Option<OptMap>,
    pub source_match_re: Option<OptMap>,
    pub source_matchers: Option<Vec<S<String>>>,
    pub target_match: Option<OptMap>,
    pub target_match_re: Option<OptMap>,
    pub target_matchers: Option<Vec<S<String>>>,
    pub equal: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeInterval {
    pub name: Option<S<String>>,
    pub time_intervals: Option<Vec<S<RawPeriod>>>,
}

// ------------------------------------------------------------------ loading

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    }
}

fn read_error(origin: &str, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: origin.to_string(),
        line: 0,
        column: 0,
        message,
    }])
}

/// Loads an `alertmanager.yml`-shaped file (`--notify-config FILE`).
pub fn load_file(path: &Path) -> Result<NotifyConfig, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| read_error(&origin, format!("reading notify config: {e}")))?;
    let dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    });
    let mut cfg = load_str(&text, &origin, dir)?;
    cfg.source_file = Some(path.to_path_buf());
    Ok(cfg)
}

/// Loads `alertmanager.yml`-shaped text; `origin` names it in errors and
/// relative template globs are joined to `dir`.
pub fn load_str(
    text: &str,
    origin: &str,
    dir: Option<&Path>,
) -> Result<NotifyConfig, ConfigErrors> {
    let raw: Option<RawNotifyConfig> = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| {
            ConfigErrors(vec![crate::config::tidy_yaml_message(from_yaml_error(
                origin, &e,
            ))])
        })?;
    let raw = raw.ok_or_else(|| read_error(origin, "no route provided in config".into()))?;
    let mut sink = Sink::new(origin);
    let cfg = resolve(raw, dir, redact(text), &mut sink);
    sink.into_result(cfg)
}

/// The text `/api/v2/status` shows as `config.original`: secrets masked on
/// the parsed tree (see `config::redact`).
fn redact(text: &str) -> String {
    crate::config::redact::redact_secrets(text)
}

/// Whether a file is an `alertmanager.yml` rather than a klaxon config:
/// it has a top-level `route:`/`receivers:` key (klaxon nests those under
/// `notify:`). Lets `klaxon check config` take either kind of file.
pub fn looks_like_alertmanager(text: &str) -> bool {
    text.lines().any(|l| {
        let k = l.split(':').next().unwrap_or("").trim_end();
        !l.starts_with([' ', '\t', '#', '-'])
            && l.contains(':')
            && matches!(k, "route" | "receivers" | "inhibit_rules")
    })
}

/// Resolves the `notify:` section of klaxon's own config (positions are in
/// that file, reported through the main config's sink).
pub(crate) fn resolve_section(
    raw: RawNotifyConfig,
    full_text: &str,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> NotifyConfig {
    let original = crate::config::redact::redact_section(full_text, "notify");
    resolve(raw, dir, original, sink)
}

fn resolve(
    raw: RawNotifyConfig,
    dir: Option<&Path>,
    original: String,
    sink: &mut Sink,
) -> NotifyConfig {
    let global = raw
        .global
        .as_ref()
        .map(|g| resolve_global(g, sink))
        .unwrap_or_default();
    if let Some(t) = &raw.tracing {
        tracing::warn!(
            file = sink.file(),
            line = Pos::of(t).line,
            "notify tracing settings are ignored by klaxon"
        );
    }

    // Receivers: names present and unique.
    let receivers = raw.receivers.unwrap_or_default();
    let mut names = std::collections::BTreeSet::new();
    for r in &receivers {
        if r.value.name.is_empty() {
            sink.push(Pos::of(r), "missing name in receiver");
        } else if !names.insert(r.value.name.clone()) {
            sink.push(
                Pos::of(r),
                format!("notification config name {:?} is not unique", r.value.name),
            );
        }
    }

    // Time intervals, both spellings, names unique across them.
    let mut time_intervals = BTreeMap::new();
    for (list, what) in [
        (&raw.mute_time_intervals, "mute time interval"),
        (&raw.time_intervals, "time interval"),
    ] {
        for ti in list.iter().flatten() {
            let Some(name) = ti.value.name.as_ref().filter(|n| !n.value.is_empty()) else {
                sink.push(Pos::of(ti), format!("missing name in {what}"));
                continue;
            };
            let mut periods = Vec::new();
            for p in ti.value.time_intervals.iter().flatten() {
                match p.value.resolve() {
                    Ok(p) => periods.push(p),
                    Err(e) => sink.push(Pos::of(p), e),
                }
            }
            if time_intervals.contains_key(&name.value) {
                sink.push(
                    Pos::of(name),
                    format!("{what} {:?} is not unique", name.value),
                );
                continue;
            }
            time_intervals.insert(
                name.value.clone(),
                TimeInterval {
                    name: name.value.clone(),
                    periods,
                },
            );
        }
    }

    let route = match &raw.route {
        None => {
            sink.push(Pos::UNKNOWN, "no routes provided");
            Route::default()
        }
        Some(r) => {
            check_root(r, sink);
            let mut route = build_route(r, None, sink);
            route.assign_keys(None);
            check_route_refs(r, &route, &names, &time_intervals, sink);
            route
        }
    };

    let mut inhibit_rules = Vec::new();
    for ir in raw.inhibit_rules.iter().flatten() {
        let r = &ir.value;
        let mut source = old_matchers(&r.source_match, &r.source_match_re, sink);
        source.extend(new_matchers(&r.source_matchers, sink));
        let mut target = old_matchers(&r.target_match, &r.target_match_re, sink);
        target.extend(new_matchers(&r.target_matchers, sink));
        let mut equal = Vec::new();
        for e in r.equal.iter().flatten() {
            if !crate::config::relabel::is_valid_label_name(&e.value) {
                sink.push(
                    Pos::of(e),
                    format!("invalid label name {:?} in equal list", e.value),
                );
            }
            equal.push(e.value.clone());
        }
        inhibit_rules.push(InhibitRule {
            source_matchers: source,
            target_matchers: target,
            equal,
        });
    }

    let mut templates = Vec::new();
    for t in raw.templates.iter().flatten() {
        if let Err(e) = glob::Pattern::new(&t.value) {
            sink.push(
                Pos::of(t),
                format!("invalid template glob {:?}: {e}", t.value),
            );
            continue;
        }
        templates.push(crate::config::join_dir(dir, &t.value));
    }

    let receivers =
        match crate::notify::receivers::resolve_receivers(&receivers, &global, sink.file(), dir) {
            Ok(r) => r,
            Err(e) => {
                sink.extend(e);
                Vec::new()
            }
        };

    NotifyConfig {
        global,
        route,
        inhibit_rules,
        time_intervals,
        templates,
        receivers,
        original,
        source_file: None,
    }
}

fn at_most_one(a: &Option<S<String>>, b: &Option<S<String>>, what: &str, sink: &mut Sink) {
    if let (Some(_), Some(y)) = (a, b) {
        sink.push(
            Pos::of(y),
            format!("at most one of {what} & {what}_file must be configured"),
        );
    }
}

fn resolve_global(g: &S<RawGlobal>, sink: &mut Sink) -> GlobalConfig {
    let r = &g.value;
    let d = GlobalConfig::default();
    at_most_one(
        &r.smtp_auth_password,
        &r.smtp_auth_password_file,
        "smtp_auth_password",
        sink,
    );
    at_most_one(
        &r.slack_api_url,
        &r.slack_api_url_file,
        "slack_api_url",
        sink,
    );
    at_most_one(
        &r.slack_app_token,
        &r.slack_app_token_file,
        "slack_app_token",
        sink,
    );
    at_most_one(
        &r.opsgenie_api_key,
        &r.opsgenie_api_key_file,
        "opsgenie_api_key",
        sink,
    );
    at_most_one(
        &r.victorops_api_key,
        &r.victorops_api_key_file,
        "victorops_api_key",
        sink,
    );
    at_most_one(
        &r.wechat_api_secret,
        &r.wechat_api_secret_file,
        "wechat_api_secret",
        sink,
    );
    at_most_one(
        &r.telegram_bot_token,
        &r.telegram_bot_token_file,
        "telegram_bot_token",
        sink,
    );
    at_most_one(
        &r.rocketchat_token,
        &r.rocketchat_token_file,
        "rocketchat_token",
        sink,
    );
    at_most_one(
        &r.rocketchat_token_id,
        &r.rocketchat_token_id_file,
        "rocketchat_token_id",
        sink,
    );
    at_most_one(
        &r.mattermost_webhook_url,
        &r.mattermost_webhook_url_file,
        "mattermost_webhook_url",
        sink,
    );
    let has_url = r.slack_api_url.is_some() || r.slack_api_url_file.is_some();
    let has_token = r.slack_app_token.is_some() || r.slack_app_token_file.is_some();
    // Alertmanager allows both only for the old bot-token workaround: the
    // API URL pointing at Slack's Web API rather than a webhook.
    let web_api = r
        .slack_api_url
        .as_ref()
        .is_some_and(|u| u.value.starts_with("https://slack.com/api/"));
    if has_url && has_token && !web_api {
        sink.push(
            Pos::of(g),
            "at most one of slack_app_token/slack_app_token_file & slack_api_url/slack_api_url_file must be configured",
        );
    }
    let resolve_timeout = match &r.resolve_timeout {
        None => d.resolve_timeout,
        Some(v) => match parse_duration(&v.value) {
            Ok(t) => t,
            Err(e) => {
                sink.push(Pos::of(v), e);
                d.resolve_timeout
            }
        },
    };
    let mut http_config = crate::config::HttpClientConfig::default();
    if let Some(h) = &r.http_config {
        if let Some(false) = h.value.get("follow_redirects").and_then(|v| v.as_bool()) {
            http_config.follow_redirects = false;
        }
        if let Some(false) = h.value.get("enable_http2").and_then(|v| v.as_bool()) {
            http_config.enable_http2 = false;
        }
    }
    let mut other = BTreeMap::new();
    let mut keep = |k: &str, v: Option<&String>| {
        if let Some(v) = v {
            other.insert(k.to_string(), v.clone());
        }
    };
    keep("opsgenie_api_url", r.opsgenie_api_url.as_ref());
    keep("victorops_api_url", r.victorops_api_url.as_ref());
    keep("wechat_api_url", r.wechat_api_url.as_ref());
    keep("wechat_api_corp_id", r.wechat_api_corp_id.as_ref());
    keep("telegram_api_url", r.telegram_api_url.as_ref());
    keep("webex_api_url", r.webex_api_url.as_ref());
    keep("rocketchat_api_url", r.rocketchat_api_url.as_ref());
    keep("jira_api_url", r.jira_api_url.as_ref());
    keep("slack_app_url", r.slack_app_url.as_ref());
    keep("smtp_auth_secret_file", r.smtp_auth_secret_file.as_ref());
    keep("smtp_auth_secret", r.smtp_auth_secret.as_ref());
    for (k, v) in [
        ("opsgenie_api_key", &r.opsgenie_api_key),
        ("opsgenie_api_key_file", &r.opsgenie_api_key_file),
        ("victorops_api_key", &r.victorops_api_key),
        ("victorops_api_key_file", &r.victorops_api_key_file),
        ("wechat_api_secret", &r.wechat_api_secret),
        ("wechat_api_secret_file", &r.wechat_api_secret_file),
        ("telegram_bot_token", &r.telegram_bot_token),
        ("telegram_bot_token_file", &r.telegram_bot_token_file),
        ("rocketchat_token", &r.rocketchat_token),
        ("rocketchat_token_file", &r.rocketchat_token_file),
        ("rocketchat_token_id", &r.rocketchat_token_id),
        ("rocketchat_token_id_file", &r.rocketchat_token_id_file),
        ("mattermost_webhook_url", &r.mattermost_webhook_url),
        (
            "mattermost_webhook_url_file",
            &r.mattermost_webhook_url_file,
        ),
        ("slack_app_token", &r.slack_app_token),
        ("slack_app_token_file", &r.slack_app_token_file),
    ] {
        keep(k, v.as_ref().map(|s| &s.value));
    }
    GlobalConfig {
        resolve_timeout,
        smtp_from: r.smtp_from.clone().filter(|s| !s.is_empty()),
        // Alertmanager keeps an explicitly empty hello as "localhost" too.
        smtp_hello: r
            .smtp_hello
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or(d.smtp_hello),
        smtp_smarthost: r.smtp_smarthost.clone().filter(|s| !s.is_empty()),
        smtp_auth_username: r.smtp_auth_username.clone().filter(|s| !s.is_empty()),
        smtp_auth_password: r
            .smtp_auth_password
            .as_ref()
            .filter(|s| !s.value.is_empty())
            .map(|s| Secret::new(s.value.clone())),
        smtp_auth_identity: r.smtp_auth_identity.clone(),
        smtp_require_tls: r.smtp_require_tls.unwrap_or(true),
        slack_api_url: r
            .slack_api_url
            .as_ref()
            .map(|s| Secret::new(s.value.clone())),
        pagerduty_url: r.pagerduty_url.clone().unwrap_or(d.pagerduty_url),
        http_config,
        smtp_auth_password_file: r.smtp_auth_password_file.as_ref().map(|s| s.value.clone()),
        slack_api_url_file: r.slack_api_url_file.as_ref().map(|s| s.value.clone()),
        other,
        smtp_tls_config: r.smtp_tls_config.clone(),
    }
}

/// `match` / `match_re` as matchers (Equal / RegexMatch).
fn old_matchers(m: &Option<OptMap>, re: &Option<OptMap>, sink: &mut Sink) -> Vec<Matcher> {
    let mut out = Vec::new();
    for (map, kind) in [(m, MatchType::Equal), (re, MatchType::RegexMatch)] {
        for (k, v) in map.iter().flat_map(|m| m.0.iter()) {
            if !crate::config::relabel::is_valid_label_name(&k.value) {
                sink.push(Pos::of(k), format!("invalid label name {:?}", k.value));
                continue;
            }
            let Some(v) = v else {
                let what = if kind == MatchType::Equal {
                    "value"
                } else {
                    "regular expression"
                };
                sink.push(
                    Pos::of(k),
                    format!("missing {what} for label {:?}", k.value),
                );
                continue;
            };
            match Matcher::new(kind, k.value.clone(), v.value.clone()) {
                Ok(m) => out.push(m),
                Err(e) => sink.push(Pos::of(v), format!("error parsing regexp: {}", e.reason)),
            }
        }
    }
    out
}

/// `matchers:` lines, each possibly holding several comma-separated matchers.
fn new_matchers(lines: &Option<Vec<S<String>>>, sink: &mut Sink) -> Vec<Matcher> {
    let mut out = Vec::new();
    for l in lines.iter().flatten() {
        match parse_matchers(&l.value) {
            Ok(ms) => out.extend(ms),
            Err(e) => sink.push(Pos::of(l), e.0),
        }
    }
    out
}

fn opt_interval(
    v: &Option<S<String>>,
    what: &str,
    zero_ok: bool,
    sink: &mut Sink,
) -> Option<Duration> {
    let v = v.as_ref()?;
    match parse_duration(&v.value) {
        Ok(d) if d.is_zero() && !zero_ok => {
            sink.push(Pos::of(v), format!("{what} cannot be zero"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            sink.push(Pos::of(v), e);
            None
        }
    }
}

/// Alertmanager's route defaults.
const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

fn build_route(r: &S<RawRoute>, parent: Option<&Route>, sink: &mut Sink) -> Route {
    let raw = &r.value;
    let mut matchers = old_matchers(&raw.match_, &raw.match_re, sink);
    matchers.extend(new_matchers(&raw.matchers, sink));
    sort_matchers(&mut matchers);

    let group_by = match &raw.group_by {
        None => parent.map(|p| p.group_by.clone()).unwrap_or_default(),
        Some(list) => {
            let mut labels = Vec::new();
            let mut all = false;
            for l in list {
                if l.value == "..." {
                    all = true;
                    continue;
                }
                if !crate::config::relabel::is_valid_label_name(&l.value) {
                    sink.push(
                        Pos::of(l),
                        format!("invalid label name {:?} in group_by list", l.value),
                    );
                } else if labels.contains(&l.value) {
                    sink.push(
                        Pos::of(l),
                        format!("duplicated label {:?} in group_by", l.value),
                    );
                } else {
                    labels.push(l.value.clone());
                }
            }
            if all && list.len() > 1 {
                sink.push(
                    Pos::of(r),
                    "cannot have wildcard group_by (`...`) and other other labels at the same time",
                );
            }
            if all {
                GroupBy::All
            } else {
                GroupBy::Labels(labels)
            }
        }
    };
    let inherit = |v: Option<Duration>, pick: fn(&Route) -> Duration, def: Duration| {
        v.or_else(|| parent.map(pick)).unwrap_or(def)
    };
    let group_wait = inherit(
        opt_interval(&raw.group_wait, "group_wait", true, sink),
        |p| p.group_wait,
        DEFAULT_GROUP_WAIT,
    );
    let group_interval = inherit(
        opt_interval(&raw.group_interval, "group_interval", false, sink),
        |p| p.group_interval,
        DEFAULT_GROUP_INTERVAL,
    );
    let repeat_interval = inherit(
        opt_interval(&raw.repeat_interval, "repeat_interval", false, sink),
        |p| p.repeat_interval,
        DEFAULT_REPEAT_INTERVAL,
    );
    let receiver = raw
        .receiver
        .as_ref()
        .map(|s| s.value.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| parent.map(|p| p.receiver.clone()))
        .unwrap_or_default();
    let names = |v: &Option<Vec<S<String>>>| -> Vec<String> {
        v.iter().flatten().map(|s| s.value.clone()).collect()
    };
    let mut route = Route {
        receiver,
        group_by,
        group_wait,
        group_interval,
        repeat_interval,
        matchers,
        continue_: raw.continue_.as_ref().is_some_and(|c| c.value),
        mute_time_intervals: names(&raw.mute_time_intervals),
        active_time_intervals: names(&raw.active_time_intervals),
        routes: Vec::new(),
        key: String::new(),
        index: 0,
    };
    let children: Vec<Route> = raw
        .routes
        .iter()
        .flatten()
        .map(|c| build_route(c, Some(&route), sink))
        .collect();
    route.routes = children;
    route
}

fn check_root(r: &S<RawRoute>, sink: &mut Sink) {
    let raw = &r.value;
    if raw.receiver.as_ref().is_none_or(|s| s.value.is_empty()) {
        sink.push(Pos::of(r), "root route must specify a default receiver");
    }
    let has = |m: &Option<OptMap>| m.as_ref().is_some_and(|m| !m.0.is_empty());
    if has(&raw.match_)
        || has(&raw.match_re)
        || raw.matchers.as_ref().is_some_and(|m| !m.is_empty())
    {
        sink.push(Pos::of(r), "root route must not have any matchers");
    }
    if let Some(c) = raw.continue_.as_ref().filter(|c| c.value) {
        sink.push(Pos::of(c), "cannot have continue in root route");
    }
    if raw
        .mute_time_intervals
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        sink.push(
            Pos::of(r),
            "root route must not have any mute time intervals",
        );
    }
    if raw
        .active_time_intervals
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        sink.push(
            Pos::of(r),
            "root route must not have any active time intervals",
        );
    }
}

/// Undefined receivers and time intervals, reported at the node naming them.
fn check_route_refs(
    raw: &S<RawRoute>,
    route: &Route,
    receivers: &std::collections::BTreeSet<String>,
    intervals: &BTreeMap<String, TimeInterval>,
    sink: &mut Sink,
) {
    if !route.receiver.is_empty() && !receivers.contains(&route.receiver) {
        let pos = raw
            .value
            .receiver
            .as_ref()
            .map(Pos::of)
            .unwrap_or(Pos::of(raw));
        sink.push(
            pos,
            format!("undefined receiver {:?} used in route", route.receiver),
        );
    }
    for list in [
        &raw.value.mute_time_intervals,
        &raw.value.active_time_intervals,
    ] {
        for n in list.iter().flatten() {
            if !intervals.contains_key(&n.value) {
                sink.push(
                    Pos::of(n),
                    format!("undefined time interval {:?} used in route", n.value),
                );
            }
        }
    }
    for (c, r) in raw.value.routes.iter().flatten().zip(&route.routes) {
        check_route_refs(c, r, receivers, intervals, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(y: &str) -> Result<NotifyConfig, ConfigErrors> {
        load_str(y, "am.yml", None)
    }

    #[test]
    fn defaults_are_inherited() {
        let c = load(
            "route:\n  receiver: a\n  group_by: [x]\n  group_wait: 1s\n  routes:\n  - receiver: b\n    matchers: ['y=\"1\"']\n  - match: {z: '2'}\nreceivers:\n- name: a\n- name: b\n",
        )
        .unwrap();
        let r = &c.route;
        assert_eq!(r.group_interval, DEFAULT_GROUP_INTERVAL);
        let c0 = &r.routes[0];
        assert_eq!(
            (c0.receiver.as_str(), c0.group_wait, &c0.group_by),
            (
                "b",
                Duration::from_secs(1),
                &GroupBy::Labels(vec!["x".into()])
            )
        );
        assert_eq!(r.routes[1].receiver, "a");
        assert_eq!(c0.key, "{}/{y=\"1\"}");
        assert_eq!(c.global.resolve_timeout, Duration::from_secs(300));
    }

    #[test]
    fn all_errors_with_positions() {
        let e = load(
            "route:\n  receiver: a\n  continue: true\n  routes:\n  - receiver: nope\n    group_by: [x, x]\n    mute_time_intervals: [t]\n  - matchers: ['a=\"']\nreceivers:\n- name: a\n- name: a\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "am.yml:3:13: cannot have continue in root route",
            "am.yml:5:15: undefined receiver \"nope\" used in route",
            "am.yml:6:19: duplicated label \"x\" in group_by",
            "am.yml:7:27: undefined time interval \"t\" used in route",
            "unescaped double quote",
            "am.yml:11:3: notification config name \"a\" is not unique",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
    }

    #[test]
    fn root_rules() {
        let e = load("route:\n  match: {a: b}\nreceivers: []\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("root route must specify a default receiver"),
            "{e}"
        );
        assert!(e.contains("root route must not have any matchers"), "{e}");
        let e = load("receivers: [{name: a}]\n").unwrap_err().to_string();
        assert!(e.contains("no routes provided"), "{e}");
        let e = load("route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("group_interval cannot be zero"), "{e}");
    }
}
