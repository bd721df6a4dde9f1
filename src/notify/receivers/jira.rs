//! Jira (REST API v2, or v3 with an Atlassian Document Format description),
//! as Alertmanager's notifier drives it. One issue per alert group, found
//! again by the label `ALERT{<SHA-256 of the group key>}`:
//!
//! 1. search the project for that label (`POST search`, or `search/jql` on
//!    Jira Cloud) — open issues, or with `reopen_transition` also issues
//!    resolved within `reopen_duration`, minus `wont_fix_resolution`;
//! 2. none found: create it (`POST issue`), unless the group is resolved;
//!    found: update it (`PUT issue/<key>`, summary and description left out
//!    when their `enable_update` is false);
//! 3. a found issue whose status category disagrees with the group is
//!    moved with `resolve_transition` / `reopen_transition` (its id looked
//!    up by name in `GET issue/<key>/transitions`).
//!
//! The bodies are rendered once, before the first attempt; every attempt
//! runs the whole sequence again, so a retry after a half-done attempt
//! updates the issue the first one created instead of opening a second.

use super::config::Ctx;
use super::http::{classify, request_error, retry_after_of, BodyCheck, Payload, SendError};
use super::{go_path_escape, group_hash, truncate_runes, Render};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::RawHttpClientConfig;
use crate::config::HttpClientConfig;
use crate::model::gofmt::go_quote;
use crate::notify::template::group_status;
use crate::notify::Notification;
use crate::template::TemplateSet;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value as J;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;
use std::time::Duration;

const MAX_SUMMARY_RUNES: usize = 255;
const MAX_DESCRIPTION_RUNES: usize = 32767;
/// Alertmanager's Jira retrier: 5xx and these.
const RETRY_CODES: &[u16] = &[429];

/// `summary:` / `description:`: a template, or `{template, enable_update}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawJiraField {
    Text(String),
    Full(RawJiraFieldFull),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJiraFieldFull {
    pub template: Option<String>,
    pub enable_update: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJira {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_url: Option<S<String>>,
    pub api_type: Option<S<String>>,
    pub project: Option<S<String>>,
    pub summary: Option<S<RawJiraField>>,
    pub description: Option<S<RawJiraField>>,
    pub labels: Option<Vec<S<String>>>,
    pub priority: Option<S<String>>,
    pub issue_type: Option<S<String>>,
    pub reopen_transition: Option<String>,
    pub resolve_transition: Option<String>,
    pub wont_fix_resolution: Option<String>,
    pub reopen_duration: Option<S<String>>,
    /// Other issue fields and custom fields; every string is a template.
    pub fields: Option<S<BTreeMap<String, J>>>,
}

/// Which search endpoint (`api_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiType {
    /// Cloud's `search/jql` for `*.atlassian.net` hosts, else `search`.
    Auto,
    Cloud,
    Datacenter,
}

/// A templated issue field and whether an update rewrites it.
#[derive(Clone, Debug, PartialEq)]
pub struct JiraField {
    pub template: String,
    pub enable_update: bool,
}

/// `jira_configs` entry. `project`, `issue_type`, `summary`,
/// `description`, `labels`, `priority` and the strings in `fields` are
/// templates.
#[derive(Clone, Debug)]
pub struct JiraConfig {
    pub send_resolved: bool,
    /// The REST API base, e.g. `https://example.atlassian.net/rest/api/2/`.
    pub api_url: String,
    pub api_type: ApiType,
    pub project: String,
    pub issue_type: String,
    pub summary: JiraField,
    pub description: JiraField,
    /// klaxon: the description is Alertmanager's default template, so on
    /// API v3 its text is wrapped into an ADF document (Alertmanager
    /// refuses the default there).
    pub default_description: bool,
    pub labels: Vec<String>,
    pub priority: String,
    pub reopen_transition: String,
    pub resolve_transition: String,
    pub wont_fix_resolution: String,
    pub reopen_duration: Duration,
    pub fields: BTreeMap<String, J>,
    pub http_config: HttpClientConfig,
    pub proxy_url: Option<String>,
}

/// Checks a Jira API URL as Alertmanager's `config.URL` does; the message
/// names `field`, not the URL (it may carry credentials).
fn check_api_url(url: &str, field: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{field}: invalid URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "{field}: unsupported scheme {:?} for URL",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field}: missing host for URL"));
    }
    Ok(())
}

fn field(
    v: &Option<S<RawJiraField>>,
    default: &str,
    name: &str,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> JiraField {
    let (template, enable_update) = match v {
        None => (None, None),
        Some(s) => match &s.value {
            RawJiraField::Text(t) => (Some(S::new(t.clone(), s.referenced, s.defined)), None),
            RawJiraField::Full(f) => (
                f.template
                    .clone()
                    .map(|t| S::new(t, s.referenced, s.defined)),
                f.enable_update,
            ),
        },
    };
    JiraField {
        template: ctx.tmpl(&template, default, name, sink),
        enable_update: enable_update.unwrap_or(true),
    }
}

pub(super) fn resolve(c: &S<RawJira>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<JiraConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    let mut ok = true;
    let project = t(&r.project, "", "project", sink);
    if project.is_empty() {
        sink.push(pos, "missing project in jira_config");
        ok = false;
    }
    let issue_type = t(&r.issue_type, "", "issue_type", sink);
    if issue_type.is_empty() {
        sink.push(pos, "missing issue_type in jira_config");
        ok = false;
    }
    let api_type = match r.api_type.as_ref().map(|s| s.value.as_str()) {
        None | Some("auto") => ApiType::Auto,
        Some("cloud") => ApiType::Cloud,
        Some("datacenter") => ApiType::Datacenter,
        Some(_) => {
            sink.push(
                r.api_type.as_ref().map_or(pos, Pos::of),
                "unknown api_type on jira_config, must be auto, cloud or datacenter",
            );
            ok = false;
            ApiType::Auto
        }
    };
    let api_url = match &r.api_url {
        Some(u) => {
            if let Err(e) = check_api_url(&u.value, "api_url") {
                sink.push(Pos::of(u), e);
                ok = false;
            }
            u.value.clone()
        }
        None => match ctx.global_str("jira_api_url").filter(|u| !u.is_empty()) {
            Some(u) => {
                if let Err(e) = check_api_url(u, "global.jira_api_url") {
                    sink.push(pos, e);
                    ok = false;
                }
                u.to_string()
            }
            None => {
                sink.push(pos, "no global Jira Cloud URL set");
                ok = false;
                String::new()
            }
        },
    };
    let reopen_duration = match &r.reopen_duration {
        None => Duration::ZERO,
        Some(d) => crate::config::parse_duration(&d.value).unwrap_or_else(|e| {
            sink.push(Pos::of(d), format!("reopen_duration: {e}"));
            Duration::ZERO
        }),
    };
    let mut labels = Vec::new();
    for l in r.labels.iter().flatten() {
        labels.push(ctx.tmpl(
            &Some(S::new(l.value.clone(), l.referenced, l.defined)),
            "",
            "labels",
            sink,
        ));
    }
    let fields = match &r.fields {
        Some(f) => {
            let v = J::Object(f.value.clone().into_iter().collect());
            ctx.check_value(&v, "fields", Pos::of(f), sink);
            f.value.clone()
        }
        None => BTreeMap::new(),
    };
    let description_default = "{{ template \"jira.default.description\" . }}";
    let description = field(
        &r.description,
        description_default,
        "description",
        ctx,
        sink,
    );
    let cfg = JiraConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        api_url,
        api_type,
        project,
        issue_type,
        summary: field(
            &r.summary,
            "{{ template \"jira.default.summary\" . }}",
            "summary",
            ctx,
            sink,
        ),
        default_description: description.template == description_default,
        description,
        labels,
        priority: t(
            &r.priority,
            "{{ template \"jira.default.priority\" . }}",
            "priority",
            sink,
        ),
        reopen_transition: r.reopen_transition.clone().unwrap_or_default(),
        resolve_transition: r.resolve_transition.clone().unwrap_or_default(),
        wont_fix_resolution: r.wont_fix_resolution.clone().unwrap_or_default(),
        reopen_duration,
        fields,
        http_config: super::config::http(&r.http_config, ctx, sink),
        proxy_url: super::config::proxy(&r.http_config),
    };
    ok.then_some(cfg)
}

/// Go's `url.URL.JoinPath` on a URL string: `elems` joined onto the path
/// and cleaned, a trailing slash of the last element kept, query kept.
pub fn join_path(base: &str, elem: &str) -> String {
    let (base, query) = match base.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (base, None),
    };
    let (origin, path) = match base.find("://") {
        Some(i) => match base[i + 3..].find('/') {
            Some(j) => base.split_at(i + 3 + j),
            None => (base, ""),
        },
        None => ("", base),
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/').chain(elem.split('/')) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("{origin}/{}", parts.join("/"));
    if elem.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The host of a URL string.
fn host_of(url: &str) -> &str {
    url.split_once("://")
        .map_or(url, |(_, r)| r)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
}

/// The path of a URL string.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The API base path ends in `/3`: descriptions are ADF JSON.
pub fn is_api_v3(api_url: &str) -> bool {
    path_of(api_url).trim_end_matches('/').ends_with("/3")
}

/// Where the issue search goes: Cloud's `search/jql` (API v3) for
/// `api_type: cloud` or an `*.atlassian.net` host under `auto`, else the
/// `search` of the configured API (Data Center has no `search/jql`).
pub fn search_url(cfg: &JiraConfig) -> String {
    let cloud = match cfg.api_type {
        ApiType::Datacenter => false,
        ApiType::Cloud => true,
        ApiType::Auto => host_of(&cfg.api_url).ends_with("atlassian.net"),
    };
    if cloud {
        join_path(&cfg.api_url, "/search/jql").replacen("/rest/api/2/", "/rest/api/3/", 1)
    } else {
        join_path(&cfg.api_url, "/search")
    }
}

/// The JQL that finds the group's issue.
fn search_jql(cfg: &JiraConfig, project: &str, group_id: &str, firing: bool) -> String {
    let mut jql = String::new();
    if !cfg.wont_fix_resolution.is_empty() {
        // `resolution != X` alone drops unresolved issues (EMPTY): keep them.
        jql.push_str(&format!(
            "(resolution is EMPTY or resolution != {}) and ",
            go_quote(&cfg.wont_fix_resolution)
        ));
    }
    let reopen_minutes = cfg.reopen_duration.as_secs() / 60;
    if firing && !cfg.reopen_transition.is_empty() && reopen_minutes > 0 {
        jql.push_str(&format!(
            "(resolutiondate is EMPTY OR resolutiondate >= -{reopen_minutes}m) and "
        ));
    } else {
        jql.push_str("statusCategory != Done and ");
    }
    jql.push_str(&format!(
        "project={} and labels={} order by status ASC,resolutiondate DESC",
        go_quote(project),
        go_quote(&format!("ALERT{{{group_id}}}"))
    ));
    jql
}

/// Go's `json.Compact`: whitespace outside strings removed, order kept.
fn compact_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_str, mut esc) = (false, false);
    for c in s.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// klaxon's ADF rendering of a plain-text description (API v3 with the
/// default template): one paragraph per line, URLs as links.
fn adf_of_text(text: &str) -> J {
    let mut paragraphs = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let mut content = Vec::new();
        let mut rest = line;
        while let Some(i) = rest.find("http://").or_else(|| rest.find("https://")) {
            if i > 0 {
                content.push(serde_json::json!({"type": "text", "text": &rest[..i]}));
            }
            let end = rest[i..]
                .find(char::is_whitespace)
                .map_or(rest.len(), |e| i + e);
            let url = &rest[i..end];
            content.push(serde_json::json!({
                "type": "text", "text": url,
                "marks": [{"type": "link", "attrs": {"href": url}}]
            }));
            rest = &rest[end..];
        }
        if !rest.is_empty() {
            content.push(serde_json::json!({"type": "text", "text": rest}));
        }
        paragraphs.push(serde_json::json!({"type": "paragraph", "content": content}));
    }
    serde_json::json!({"type": "doc", "version": 1, "content": paragraphs})
}

fn raw(v: &impl serde::Serialize) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(v)
}

/// `{"fields": {...}}` with Go's sorted keys, `description` kept as the
/// template wrote it (ADF) or a string.
fn issue_body(fields: &BTreeMap<String, Box<RawValue>>) -> String {
    #[derive(serde::Serialize)]
    struct Issue<'a> {
        fields: &'a BTreeMap<String, Box<RawValue>>,
    }
    super::http::go_json(&Issue { fields })
}

pub fn render(
    cfg: &JiraConfig,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, super::RenderError> {
    let r = Render::new(n, set);
    let group_id = group_hash(&n.group_key);
    let firing = group_status(n) == "firing";
    let project = r.text("project", &cfg.project)?;
    let search = super::http::go_json(&serde_json::json!({
        "fields": ["status"],
        "jql": search_jql(cfg, &project, &group_id, firing),
        "maxResults": 2,
    }));
    let mut f: BTreeMap<String, Box<RawValue>> = BTreeMap::new();
    let summary = truncate_runes(
        &r.text("summary", &cfg.summary.template)?,
        MAX_SUMMARY_RUNES,
    );
    f.insert("summary".into(), raw(&summary)?);
    let description = truncate_runes(
        &r.text("description", &cfg.description.template)?,
        MAX_DESCRIPTION_RUNES,
    );
    if is_api_v3(&cfg.api_url) {
        let d = description.trim();
        if !d.is_empty() {
            if serde_json::from_str::<serde::de::IgnoredAny>(d).is_ok() {
                f.insert(
                    "description".into(),
                    RawValue::from_string(compact_json(d))?,
                );
            } else if cfg.default_description {
                f.insert("description".into(), raw(&adf_of_text(d))?);
            } else {
                return Err(super::RenderError::Invalid(
                    "description template: invalid JSON for API v3".into(),
                ));
            }
        }
    } else if !description.is_empty() {
        f.insert("description".into(), raw(&description)?);
    }
    f.insert(
        "issuetype".into(),
        raw(&serde_json::json!({"name": r.text("issue_type", &cfg.issue_type)?}))?,
    );
    let mut labels = Vec::with_capacity(cfg.labels.len() + 1);
    for (i, l) in cfg.labels.iter().enumerate() {
        labels.push(r.text(&format!("labels[{i}]"), l)?);
    }
    labels.push(format!("ALERT{{{group_id}}}"));
    labels.sort();
    f.insert("labels".into(), raw(&labels)?);
    let priority = r.text("priority", &cfg.priority)?;
    if !priority.is_empty() {
        f.insert(
            "priority".into(),
            raw(&serde_json::json!({"name": priority}))?,
        );
    }
    f.insert("project".into(), raw(&serde_json::json!({"key": project}))?);
    for (k, v) in &cfg.fields {
        f.insert(k.clone(), raw(&r.value_reparsed("fields", v)?)?);
    }
    let create = issue_body(&f);
    if !cfg.description.enable_update {
        f.remove("description");
    }
    if !cfg.summary.enable_update {
        f.remove("summary");
    }
    let update = issue_body(&f);
    Ok(Payload::Jira {
        search,
        create,
        update,
        firing,
        request_id: n.request_id().map(str::to_string),
    })
}

#[derive(Deserialize)]
struct SearchResult {
    #[serde(default)]
    issues: Vec<FoundIssue>,
}

#[derive(Deserialize)]
struct FoundIssue {
    #[serde(default)]
    key: String,
    fields: Option<FoundFields>,
}

#[derive(Deserialize)]
struct FoundFields {
    status: Option<FoundStatus>,
}

#[derive(Deserialize)]
struct FoundStatus {
    #[serde(rename = "statusCategory")]
    category: Option<Category>,
}

#[derive(Deserialize)]
struct Category {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Vec<Transition>,
}

#[derive(Deserialize)]
struct Transition {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// One API call of an attempt.
struct Call<'a> {
    client: &'a reqwest::Client,
    http: &'a HttpClientConfig,
    request_id: Option<&'a str>,
    timeout: Duration,
}

impl Call<'_> {
    /// Sends one request; the answer's body on a 2xx, else the error with
    /// `what` in front (the URL is never part of it).
    async fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&str>,
    ) -> Result<String, SendError> {
        let mut req = self
            .client
            .request(method, url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT_LANGUAGE, "en");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        if let Some(id) = self.request_id {
            req = req.header("X-Request-ID", id);
        }
        match crate::config::client::authorization_header(self.http) {
            Ok(Some(h)) => req = req.header(reqwest::header::AUTHORIZATION, h),
            Ok(None) => {}
            Err(e) => return Err(SendError::transient("config", e)),
        }
        let with_what = |mut e: SendError| {
            e.message = format!("{what}: {}", e.message);
            e
        };
        let resp = req.send().await.map_err(|e| with_what(request_error(e)))?;
        let status = resp.status();
        let retry_after = retry_after_of(&resp);
        let text = resp.text().await.map_err(|e| with_what(request_error(e)))?;
        classify(status, retry_after, &text, RETRY_CODES, BodyCheck::None).map_err(with_what)?;
        Ok(text)
    }
}

/// Runs the search / create-or-update / transition sequence for a stored
/// payload.
pub async fn send(
    cfg: &JiraConfig,
    payload: &Payload,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<(), SendError> {
    let Payload::Jira {
        search,
        create,
        update,
        firing,
        request_id,
    } = payload
    else {
        return Err(SendError::permanent(
            "payload",
            "payload is not a Jira issue",
        ));
    };
    let call = Call {
        client,
        http: &cfg.http_config,
        request_id: request_id.as_deref(),
        timeout,
    };
    use reqwest::Method;
    let answer = call
        .send(
            "searching for the group's issue",
            Method::POST,
            &search_url(cfg),
            Some(search),
        )
        .await?;
    let found: SearchResult = serde_json::from_str(&answer).map_err(|e| {
        SendError::permanent("error_body", format!("search answer is not Jira's: {e}"))
    })?;
    let Some(issue) = found.issues.into_iter().next() else {
        if !firing {
            // A resolved group never opens an issue.
            return Ok(());
        }
        call.send(
            "creating issue",
            Method::POST,
            &join_path(&cfg.api_url, "issue"),
            Some(create),
        )
        .await?;
        return Ok(());
    };
    let key = go_path_escape(&issue.key);
    call.send(
        &format!("updating issue {}", issue.key),
        Method::PUT,
        &join_path(&cfg.api_url, &format!("issue/{key}")),
        Some(update),
    )
    .await?;
    let Some(category) = issue
        .fields
        .and_then(|f| f.status)
        .and_then(|s| s.category)
        .map(|c| c.key)
    else {
        return Ok(());
    };
    let done = category == "done";
    let transition = match (*firing, done) {
        (true, true) => &cfg.reopen_transition,
        (false, false) => &cfg.resolve_transition,
        _ => return Ok(()),
    };
    if transition.is_empty() || issue.key.is_empty() {
        return Ok(());
    }
    let url = join_path(&cfg.api_url, &format!("issue/{key}/transitions"));
    let what = format!("transitioning issue {} with {transition:?}", issue.key);
    let answer = call.send(&what, Method::GET, &url, None).await?;
    let list: Transitions = serde_json::from_str(&answer).map_err(|e| {
        SendError::permanent(
            "error_body",
            format!("{what}: transitions answer is not Jira's: {e}"),
        )
    })?;
    let Some(t) = list.transitions.iter().find(|t| &t.name == transition) else {
        return Err(SendError::permanent(
            "config",
            format!("can't find transition {transition} for issue {}", issue.key),
        ));
    };
    let body = super::http::go_json(&serde_json::json!({"transition": {"id": t.id}}));
    call.send(&what, Method::POST, &url, Some(&body)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_as_go() {
        assert_eq!(
            join_path("https://x.atlassian.net/rest/api/2/", "/search"),
            "https://x.atlassian.net/rest/api/2/search"
        );
        assert_eq!(
            join_path("http://127.0.0.1:1/rest/api/2", "issue/A-1/transitions"),
            "http://127.0.0.1:1/rest/api/2/issue/A-1/transitions"
        );
        assert_eq!(join_path("http://h", "issue"), "http://h/issue");
        assert_eq!(join_path("http://h/a/?x=1", "b/"), "http://h/a/b/?x=1");
    }

    /// A config with empty templates and the given search settings.
    fn cfg(api_url: &str, wont: &str, reopen: &str, d: Duration) -> JiraConfig {
        let empty = JiraField {
            template: String::new(),
            enable_update: true,
        };
        JiraConfig {
            send_resolved: true,
            api_url: api_url.into(),
            api_type: ApiType::Auto,
            project: String::new(),
            issue_type: String::new(),
            summary: empty.clone(),
            description: empty,
            default_description: false,
            labels: vec![],
            priority: String::new(),
            reopen_transition: reopen.into(),
            resolve_transition: String::new(),
            wont_fix_resolution: wont.into(),
            reopen_duration: d,
            fields: BTreeMap::new(),
            http_config: HttpClientConfig::default(),
            proxy_url: None,
        }
    }

    #[test]
    fn api_version_and_search_endpoint() {
        assert!(is_api_v3("https://x.atlassian.net/rest/api/3/"));
        assert!(!is_api_v3("https://x.atlassian.net/rest/api/2"));
        let mut cfg = cfg(
            "https://x.atlassian.net/rest/api/2/",
            "",
            "",
            Duration::ZERO,
        );
        assert_eq!(
            search_url(&cfg),
            "https://x.atlassian.net/rest/api/3/search/jql"
        );
        cfg.api_type = ApiType::Datacenter;
        assert_eq!(
            search_url(&cfg),
            "https://x.atlassian.net/rest/api/2/search"
        );
        cfg.api_url = "https://jira.example.org/rest/api/2".into();
        cfg.api_type = ApiType::Auto;
        assert_eq!(
            search_url(&cfg),
            "https://jira.example.org/rest/api/2/search"
        );
        cfg.api_type = ApiType::Cloud;
        assert_eq!(
            search_url(&cfg),
            "https://jira.example.org/rest/api/3/search/jql"
        );
    }

    #[test]
    fn jql_as_alertmanager() {
        assert_eq!(
            search_jql(&cfg("", "", "", Duration::ZERO), "OPS", "h", true),
            "statusCategory != Done and project=\"OPS\" and labels=\"ALERT{h}\" order by status ASC,resolutiondate DESC"
        );
        let d = Duration::from_secs(3 * 3600 + 59);
        assert_eq!(
            search_jql(&cfg("", "Won't \"Fix\"", "Reopen", d), "OPS", "h", true),
            "(resolution is EMPTY or resolution != \"Won't \\\"Fix\\\"\") and (resolutiondate is EMPTY OR resolutiondate >= -180m) and project=\"OPS\" and labels=\"ALERT{h}\" order by status ASC,resolutiondate DESC"
        );
        assert!(search_jql(&cfg("", "", "Reopen", d), "OPS", "h", false)
            .starts_with("statusCategory != Done and "));
    }

    #[test]
    fn compact_keeps_order_and_strings() {
        assert_eq!(
            compact_json("{ \"z\": 1,\n \"a\": \"x y\\\" \" }"),
            "{\"z\":1,\"a\":\"x y\\\" \"}"
        );
    }

    #[test]
    fn adf_links_urls() {
        let d = adf_of_text("FIRING: X\nRunbook: https://r.example/x y\n");
        assert_eq!(d["type"], "doc");
        assert_eq!(d["content"][1]["content"][1]["text"], "https://r.example/x");
        assert_eq!(
            d["content"][1]["content"][1]["marks"][0]["attrs"]["href"],
            "https://r.example/x"
        );
        assert_eq!(d["content"][1]["content"][2]["text"], " y");
    }
}
