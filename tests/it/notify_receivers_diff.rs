//! Differential test of the receivers: the same alertmanager.yml is given
//! to a real Alertmanager 0.25 and to klaxon, every integration's URL
//! pointing at a loopback mock that records method, path, query, headers
//! (less User-Agent, Date, Host, lengths, encodings, request ids) and body.
//! The same alerts are posted to both; the requests must be equal after
//! masking what legitimately differs: the external URL, timestamps and
//! group-key hashes, and — for the receiver with default templates only —
//! the default texts (klaxon's defaults carry runbook, source and silence
//! links on purpose; docs/compatibility.md). The receiver with templated
//! fields must match exactly. Then each integration's retry rule: a 500, a
//! 429 and a 400 as first answer, retried or not as Alertmanager does.

use crate::common;
use crate::common::get_json;
use common::{free_port, Proc};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Integrations of Alertmanager 0.25 that can be pointed at a mock
/// (Pushover's URL is fixed; e-mail and SNS are checked elsewhere).
const KINDS: &[&str] = &[
    "webhook",
    "slack",
    "pagerduty",
    "opsgenie",
    "victorops",
    "telegram",
    "discord",
    "webex",
    "wechat",
    "sns",
];

#[derive(Clone, Debug)]
struct Rec {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Default)]
struct MockState {
    reqs: Mutex<Vec<Rec>>,
    /// While set, the first request per path (without query) gets this
    /// status; later ones get 200.
    fail_first: Mutex<Option<u16>>,
    failed: Mutex<HashSet<String>>,
    /// When set, every answer is this status and body.
    answer: Mutex<Option<(u16, String)>>,
}

/// Dropped too: SigV4's signature and its timestamp (SNS).
const DROP_HEADERS: &[&str] = &[
    "x-amz-date",
    "user-agent",
    "date",
    "host",
    "content-length",
    "accept-encoding",
    "accept",
    "connection",
    "x-request-id",
    // klaxon's addition, stable across retries (docs/compatibility.md).
    "idempotency-key",
    "transfer-encoding",
];

async fn handle(
    State(s): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let headers = headers
        .iter()
        .filter(|(k, _)| !DROP_HEADERS.contains(&k.as_str()))
        .filter(|(k, v)| {
            !(k.as_str() == "authorization"
                && v.to_str().unwrap_or("").starts_with("AWS4-HMAC-SHA256"))
        })
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    s.reqs.lock().push(Rec {
        method: method.to_string(),
        path: uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if let Some((code, body)) = s.answer.lock().clone() {
        return (StatusCode::from_u16(code).unwrap(), body).into_response();
    }
    let fail = *s.fail_first.lock();
    if let Some(code) = fail {
        if !path.ends_with("/gettoken") && s.failed.lock().insert(kind_of(&path)) {
            return (StatusCode::from_u16(code).unwrap(), "mock failure").into_response();
        }
    }
    let body = if path.contains("/telegram/") {
        json!({"ok": true, "result": {"message_id": 1, "chat": {"id": -100}}}).to_string()
    } else if path.ends_with("/gettoken") {
        json!({"access_token": "tok", "errcode": 0, "errmsg": "ok"}).to_string()
    } else if path.contains("/slackapi/") {
        json!({"ok": true, "channel": "C123", "ts": "1700000000.000100"}).to_string()
    } else if path.contains("/sns/") {
        "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>".to_string()
    } else if path.contains("/wechat/") {
        json!({"errcode": 0, "errmsg": "ok"}).to_string()
    } else {
        "{}".to_string()
    };
    (StatusCode::OK, body).into_response()
}

struct Mock {
    url: String,
    state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn mock() -> Mock {
    let state = Arc::new(MockState::default());
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    Mock { url, state, task }
}

/// The receivers: `d` with defaults, `t` with every text field templated.
fn receivers(m: &str, dir: &Path) -> String {
    let key = dir.join("opsgenie.key");
    // No trailing newline: Alertmanager 0.25 sends the file's content
    // untrimmed, and Go refuses a header value ending in a newline.
    std::fs::write(&key, "og-key-from-file").unwrap();
    let key = key.display();
    format!(
        r#"global:
  resolve_timeout: 5m
  opsgenie_api_url: {m}/d/opsgenie/
  victorops_api_key: vo-key
  telegram_api_url: {m}/d/telegram
  wechat_api_url: {m}/d/wechat/
  wechat_api_secret: wsecret
  wechat_api_corp_id: corp1
route:
  receiver: d
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
  # A failed flush is sent again at the next group_interval by both; a
  # long one here shows the integration's own retries alone.
  - receiver: t
    matchers: ['alertname=~"retry.*"']
    group_interval: 1h
    continue: true
  - receiver: d
    matchers: ['alertname=~"retry.*"']
    group_interval: 1h
  - receiver: t
    matchers: ['alertname=~".+"']
    continue: true
  - receiver: d
    matchers: ['alertname=~".+"']
receivers:
- name: d
  webhook_configs:
  - url: {m}/d/webhook/
  slack_configs:
  - api_url: {m}/d/slack/hook
    send_resolved: true
  pagerduty_configs:
  - routing_key: pd-key
    url: {m}/d/pagerduty/enqueue
  opsgenie_configs:
  - api_key_file: {key}
  victorops_configs:
  - routing_key: team-ops
    api_url: {m}/d/victorops/
  telegram_configs:
  - bot_token: 123:abc
    chat_id: -100
  discord_configs:
  - webhook_url: {m}/d/discord/hook
  webex_configs:
  - room_id: room-1
    api_url: {m}/d/webex/messages
    http_config:
      authorization:
        credentials: webex-token
  wechat_configs:
  - send_resolved: true
    to_user: '@all'
    agent_id: '1000002'
  sns_configs:
  - api_url: {m}/d/sns/
    topic_arn: arn:aws:sns:us-east-2:123456789012:alerts
    sigv4:
      region: us-east-2
      access_key: AKIDEXAMPLE
      secret_key: secret
- name: t
  webhook_configs:
  - url: {m}/t/webhook/
    max_alerts: 2
  slack_configs:
  - api_url: {m}/t/slack/hook
    send_resolved: true
    channel: '#{{{{ .CommonLabels.team }}}}'
    username: 'bot-{{{{ .Status }}}}'
    title: '{{{{ .Status }}}} {{{{ .GroupLabels.alertname }}}}'
    title_link: 'http://x/{{{{ .GroupLabels.alertname }}}}'
    text: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} <{{{{ .Annotations.summary }}}}> & {{{{ end }}}}'
    footer: 'f'
    fallback: 'fb {{{{ .Status }}}}'
    pretext: 'pre'
    callback_id: 'cb'
    icon_emoji: ':fire:'
    actions:
    - type: button
      text: 'Runbook {{{{ .CommonLabels.alertname }}}}'
      url: '{{{{ .CommonAnnotations.runbook_url }}}}'
  pagerduty_configs:
  - routing_key: pd-key-2
    url: {m}/t/pagerduty/enqueue
    client: 'cl {{{{ .Receiver }}}}'
    client_url: 'http://client/{{{{ .GroupLabels.alertname }}}}'
    description: 'desc {{{{ .Status }}}} {{{{ .CommonAnnotations.summary }}}}'
    severity: 'warning'
    class: 'cls'
    component: 'comp'
    group: 'grp'
    source: 'src'
    details:
      num: '{{{{ len .Alerts }}}}'
    links:
    - href: 'http://link/{{{{ .GroupLabels.alertname }}}}'
      text: 'link'
    images:
    - src: 'http://img/x.png'
      alt: 'alt'
      href: 'http://img/'
  opsgenie_configs:
  - api_key: og-key
    api_url: {m}/t/opsgenie/
    message: '{{{{ .Status }}}}: {{{{ .GroupLabels.alertname }}}}'
    description: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
    source: 'src-{{{{ .Receiver }}}}'
    details:
      team: '{{{{ .CommonLabels.team }}}}'
      n: '{{{{ len .Alerts }}}}'
    responders:
    - name: 'ops,{{{{ .CommonLabels.team }}}}'
      type: teams
    - username: 'jane'
      type: user
    tags: 'a,{{{{ .CommonLabels.severity }}}},,b'
    note: 'note'
    priority: 'P{{{{ if eq .CommonLabels.severity "critical" }}}}1{{{{ else }}}}3{{{{ end }}}}'
    entity: 'ent'
    actions: 'restart, page'
    update_alerts: true
  victorops_configs:
  - api_key: vo-key-2
    api_url: {m}/t/victorops/
    routing_key: 'rk-{{{{ .CommonLabels.team }}}}'
    message_type: '{{{{ if eq .CommonLabels.severity "critical" }}}}CRITICAL{{{{ else }}}}odd{{{{ end }}}}'
    state_message: 'sm {{{{ .Status }}}} <{{{{ len .Alerts }}}}>'
    entity_display_name: 'edn {{{{ .GroupLabels.alertname }}}}'
    monitoring_tool: 'mt'
    custom_fields:
      owner: '{{{{ .CommonLabels.team }}}}'
  telegram_configs:
  - bot_token: 456:def
    api_url: {m}/t/telegram
    chat_id: 42
    disable_notifications: true
    parse_mode: Markdown
    message: '*{{{{ .Status }}}}* {{{{ .GroupLabels.alertname }}}} {{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
  - bot_token: 456:def
    api_url: {m}/t/telegram
    chat_id: 43
    message: '<b>{{{{ .Status }}}}</b> {{{{ .CommonAnnotations.summary }}}} & more'
  discord_configs:
  - webhook_url: {m}/t/discord/hook
    title: 'T {{{{ .Status }}}}'
    message: 'M {{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
  webex_configs:
  - room_id: room-2
    api_url: {m}/t/webex/messages
    message: '**{{{{ .Status }}}}** {{{{ .CommonAnnotations.summary }}}}'
    http_config:
      authorization:
        credentials: webex-token-2
  wechat_configs:
  - api_secret: wsecret2
    corp_id: corp2
    api_url: {m}/t/wechat/
    send_resolved: true
    message: '{{{{ .Status }}}} {{{{ .GroupLabels.alertname }}}}'
    message_type: markdown
    to_party: '{{{{ .CommonLabels.team }}}}'
    to_tag: 'tag1'
    agent_id: '7'
  sns_configs:
  - api_url: {m}/t/sns/
    phone_number: '+15555550100'
    subject: 'S {{{{ .Status }}}}'
    message: 'M {{{{ .GroupLabels.alertname }}}} <{{{{ len .Alerts }}}}> & done'
    sigv4:
      region: eu-west-1
      access_key: AKIDEXAMPLE
      secret_key: secret
    attributes:
      severity: '{{{{ .CommonLabels.severity }}}}'
      team: infra
"#
    )
}

fn alert(name: &str, instance: &str, ends: Option<&str>) -> Value {
    let mut a = json!({
        "labels": {"alertname": name, "instance": instance, "severity": "critical", "team": "infra"},
        "annotations": {
            "summary": format!("{name} on {instance}"),
            "description": "something is wrong",
            "runbook_url": format!("http://runbooks.example/{name}"),
        },
        "startsAt": "2026-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
    });
    if let Some(e) = ends {
        a["endsAt"] = json!(e);
    }
    a
}

async fn post(client: &reqwest::Client, base: &str, alerts: Value) {
    let r = client
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(alerts.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{base}: {}", r.status());
}

/// Waits until `pred` holds on the requests recorded since `from`.
async fn wait_for(m: &Mock, from: usize, within: Duration, pred: impl Fn(&[Rec]) -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if pred(&m.state.reqs.lock()[from..]) {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kind_of(path: &str) -> String {
    path.split('/').take(3).collect::<Vec<_>>().join("/")
}

/// Every integration of both receivers has at least `n` requests.
fn all_have(reqs: &[Rec], n: usize) -> bool {
    ["/d/", "/t/"].iter().all(|r| {
        KINDS.iter().all(|k| {
            reqs.iter()
                .filter(|q| {
                    q.path.starts_with(&format!("{r}{k}")) && !q.path.ends_with("/gettoken")
                })
                .count()
                >= n
        })
    })
}

#[derive(Debug)]
struct Phase {
    name: &'static str,
    reqs: Vec<Rec>,
}

/// Runs the scenario against one server; returns what the mock saw per phase.
async fn scenario(base: &str, m: &Mock) -> Vec<Phase> {
    let client = reqwest::Client::new();
    let mut phases = Vec::new();
    let mut mark = 0;
    let mut cut = |name: &'static str, phases: &mut Vec<Phase>| {
        let reqs = m.state.reqs.lock();
        phases.push(Phase {
            name,
            reqs: reqs[mark..].to_vec(),
        });
        mark = reqs.len();
    };
    post(&client, base, json!([alert("Single", "a:1", None)])).await;
    wait_for(m, 0, Duration::from_secs(20), |r| all_have(r, 1)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cut("firing", &mut phases);
    let from = m.state.reqs.lock().len();
    post(
        &client,
        base,
        json!([
            alert("Grouped", "a:1", None),
            alert("Grouped", "b:2", None),
            alert("Grouped", "c:3", None)
        ]),
    )
    .await;
    wait_for(m, from, Duration::from_secs(20), |r| all_have(r, 1)).await;
    // A server that ingested the three alerts slower than group_wait
    // sends the complete group one group_interval later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cut("grouped", &mut phases);
    let from = m.state.reqs.lock().len();
    let past = "2026-01-01T00:10:00Z";
    post(&client, base, json!([alert("Single", "a:1", Some(past))])).await;
    wait_for(m, from, Duration::from_secs(20), |r| all_have(r, 1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cut("resolved", &mut phases);
    for (code, name) in [
        (500u16, "retry-500"),
        (429, "retry-429"),
        (400, "retry-400"),
    ] {
        *m.state.fail_first.lock() = Some(code);
        m.state.failed.lock().clear();
        let from = m.state.reqs.lock().len();
        post(&client, base, json!([alert(name, "a:1", None)])).await;
        // Long enough for Alertmanager's first retry (backoff from 0.5 s
        // with jitter) and klaxon's.
        wait_for(m, from, Duration::from_secs(8), |r| all_have(r, 2)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        *m.state.fail_first.lock() = None;
        cut(name, &mut phases);
    }
    phases
}

/// Fields holding default template text, masked for receiver `d`.
const DEFAULT_TEXT: &[&str] = &[
    "message",
    "description",
    "state_message",
    "entity_display_name",
    "monitoring_tool",
    "text",
    "markdown",
    "content",
    "title",
    "fallback",
    "title_link",
    "username",
    "client",
    "summary",
    "firing",
    "resolved",
    "source",
];

/// PagerDuty's `details.firing`/`resolved` default to the
/// `pagerduty.default.instances` template whatever else is configured.
const ALWAYS_DEFAULT: &[&str] = &["firing", "resolved"];

/// What klaxon adds with default settings, on purpose (docs/compatibility.md,
/// "Receivers"): Slack buttons (runbook, silence), PagerDuty links and the
/// group's common labels and annotations in `custom_details`, the request
/// id, and PagerDuty's severity mapped from the `severity` label.
const KLAXON_ADDITIONS: &[&str] = &[
    "actions",
    "links",
    "common_labels",
    "common_annotations",
    "request_id",
    "severity",
];
/// Added by klaxon whatever the config: the group's common labels and
/// annotations and the request id in PagerDuty's `custom_details`, and the
/// runbook, dashboard, source and silence links before the configured ones.
const KLAXON_ALWAYS: &[&str] = &["common_labels", "common_annotations", "request_id"];
const KLAXON_LINKS: &[&str] = &["Runbook", "Dashboard", "Source", "Silence"];

fn mask_json(v: &mut Value, defaults: bool) {
    match v {
        Value::Object(m) => {
            if defaults {
                m.retain(|k, _| !KLAXON_ADDITIONS.contains(&k.as_str()));
            }
            m.retain(|k, _| !KLAXON_ALWAYS.contains(&k.as_str()));
            if let Some(Value::Array(links)) = m.get_mut("links") {
                links.retain(|l| !KLAXON_LINKS.contains(&l["text"].as_str().unwrap_or_default()));
            }
            for (k, x) in m.iter_mut() {
                let default_text = (defaults && DEFAULT_TEXT.contains(&k.as_str()))
                    || ALWAYS_DEFAULT.contains(&k.as_str());
                if default_text && x.is_string() {
                    *x = json!("<default text>");
                } else {
                    mask_json(x, defaults);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_json(x, defaults)),
        _ => {}
    }
}

fn normalise(text: &str, ext: &str) -> String {
    let t = text.replace(ext, "<ext>");
    let re_time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let re_hash = regex::Regex::new(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{32}\b").unwrap();
    let t = re_time.replace_all(&t, "<time>");
    re_hash.replace_all(&t, "<hash>").into_owned()
}

/// The comparable form of one request.
fn canon(r: &Rec, mock: &str, ext: &str) -> Value {
    let defaults = r.path.starts_with("/d/");
    let body = normalise(&r.body.replace(mock, "<mock>"), ext);
    let form = r
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let body = match serde_json::from_str::<Value>(&body) {
        Ok(mut v) => {
            mask_json(&mut v, defaults);
            v
        }
        // SNS: the form's pairs, in order; default texts masked.
        Err(_) if form => Value::Array(
            form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| {
                    let v = if defaults && (k == "Message" || k == "Subject") {
                        "<default text>".into()
                    } else {
                        v.into_owned()
                    };
                    json!([k, v])
                })
                .collect(),
        ),
        Err(_) => json!(body),
    };
    json!({
        "method": r.method,
        "path": normalise(&r.path, ext),
        "headers": r.headers,
        "body": body,
    })
}

/// Requests of one integration (`/d/slack`), in order.
fn by_kind(reqs: &[Rec]) -> BTreeMap<String, Vec<&Rec>> {
    let mut m: BTreeMap<String, Vec<&Rec>> = BTreeMap::new();
    for r in reqs {
        m.entry(kind_of(&r.path)).or_default().push(r);
    }
    m
}

fn start_alertmanager(dir: &Path, port: u16, cfg: &str) -> Proc {
    let url = format!("--web.external-url=http://127.0.0.1:{port}");
    common::start_alertmanager_with(Path::new(ALERTMANAGER), dir, port, cfg, &[url])
}

fn peer_present() -> bool {
    let ok = Path::new(ALERTMANAGER).exists();
    if !ok {
        assert!(
            !common::is_ci(),
            "alertmanager missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: alertmanager not installed");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_send_what_alertmanager_sends() {
    if !peer_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Alertmanager.
    let am_mock = mock().await;
    let port = free_port();
    let am_ext = format!("http://127.0.0.1:{port}");
    let am_dir = dir.path().join("am");
    std::fs::create_dir_all(&am_dir).unwrap();
    let _am = start_alertmanager(&am_dir, port, &receivers(&am_mock.url, &am_dir));
    let am = scenario(&am_ext, &am_mock).await;
    drop(_am);

    // klaxon, same file under `notify:`.
    let kx_mock = mock().await;
    let kx_dir = dir.path().join("kx");
    std::fs::create_dir_all(&kx_dir).unwrap();
    let indented: String = receivers(&kx_mock.url, &kx_dir)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    let text = format!(
        "storage:\n  path: {}\nnotify:\n{indented}",
        kx_dir.join("data").display()
    );
    let cfg = klaxon::settings::load_str(&text, "klaxon.yml").unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let kx_ext = format!("http://{}", app.addr);
    let kx = scenario(&kx_ext, &kx_mock).await;
    app.stop().await;

    let mut diffs = Vec::new();
    let mut compared = 0;
    for (a, k) in am.iter().zip(&kx) {
        let (ab, kb) = (by_kind(&a.reqs), by_kind(&k.reqs));
        for d in ["/d", "/t"] {
            for kind in KINDS {
                let key = format!("{d}/{kind}");
                let ar = ab.get(&key).cloned().unwrap_or_default();
                let kr = kb.get(&key).cloned().unwrap_or_default();
                if a.name.starts_with("retry") {
                    // Retried or not: the number of attempts (at most 2 here).
                    let n = |v: &[&Rec]| {
                        v.iter()
                            .filter(|r| !r.path.ends_with("/gettoken"))
                            .count()
                            .min(2)
                    };
                    if n(&ar) != n(&kr) {
                        diffs.push(format!(
                            "{} {key}: Alertmanager made {} attempt(s), klaxon {}",
                            a.name,
                            n(&ar),
                            n(&kr)
                        ));
                    }
                    compared += 1;
                    continue;
                }
                if ar.is_empty() && kr.is_empty() {
                    continue;
                }
                if ar.is_empty() {
                    diffs.push(format!("{} {key}: Alertmanager sent nothing", a.name));
                    continue;
                }
                // Integrations of one receiver are sent concurrently: the
                // order between them is not part of the contract.
                let sorted = |mut v: Vec<Value>| {
                    v.sort_by_key(|x| x.to_string());
                    if a.name == "grouped" {
                        // The same message twice (a flush before and after
                        // the group completed, when the text does not
                        // depend on the alerts) is one message here.
                        v.dedup();
                    }
                    v
                };
                // A partial first flush (alerts of one POST ingested across
                // group_wait) is a dispatcher matter: compare the last flush.
                // Requests per flush of this integration, from the first phase.
                let flush = am[0]
                    .reqs
                    .iter()
                    .filter(|r| kind_of(&r.path) == key && !r.path.ends_with("/gettoken"))
                    .count()
                    .max(1);
                let trim = |v: &[&Rec], who: &str| -> usize {
                    let n = v.len();
                    if a.name == "grouped" && n > flush {
                        eprintln!(
                            "grouped {key}: {who} sent {} request(s) besides the last flush",
                            n - flush
                        );
                        n - flush
                    } else {
                        0
                    }
                };
                let ar: Vec<&Rec> = ar
                    .into_iter()
                    .filter(|r| !r.path.ends_with("/gettoken"))
                    .collect();
                let kr: Vec<&Rec> = kr
                    .into_iter()
                    .filter(|r| !r.path.ends_with("/gettoken"))
                    .collect();
                let (sa, sk) = (trim(&ar, "Alertmanager"), trim(&kr, "klaxon"));
                let (ar, kr) = (&ar[sa..], &kr[sk..]);
                let ac = sorted(ar.iter().map(|r| canon(r, &am_mock.url, &am_ext)).collect());
                let kc = sorted(kr.iter().map(|r| canon(r, &kx_mock.url, &kx_ext)).collect());
                compared += 1;
                if ac != kc {
                    diffs.push(format!(
                        "{} {key}:\n  alertmanager: {}\n  klaxon:       {}",
                        a.name,
                        serde_json::to_string(&ac).unwrap(),
                        serde_json::to_string(&kc).unwrap()
                    ));
                }
            }
        }
    }
    eprintln!("compared {compared} (phase, integration) pairs");
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// klaxon on 127.0.0.1 with `notify` (already indented) as its notify
/// section; returns it and its base URL.
async fn start_klaxon(dir: &Path, notify: &str) -> (klaxon::app::Running, String) {
    let text = format!(
        "storage:\n  path: {}\nnotify:\n{notify}",
        dir.join("data").display()
    );
    let cfg = klaxon::settings::load_str(&text, "klaxon.yml").unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    (app, base)
}

/// Receivers newer than Alertmanager 0.25 (no oracle here): the request
/// shape of Alertmanager's notifier source, field by field, on a mock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_receivers_send_alertmanagers_request_shape() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let u = &m.url;
    let notify = format!(
        r#"  global:
    rocketchat_token_id: uid-1
    rocketchat_token: tok-1
  route:
    receiver: n
    group_wait: 0s
  receivers:
  - name: n
    mattermost_configs:
    - webhook_url: {u}/mattermost/hook
      channel: 'ch-{{{{ .CommonLabels.team }}}}'
      username: bot
      icon_emoji: ':fire:'
      priority:
        priority: urgent
        requested_ack: true
      props:
        card: 'card {{{{ .Status }}}}'
      fields:
      - title: Team
        value: '{{{{ .CommonLabels.team }}}}'
        short: true
    msteams_configs:
    - webhook_url: {u}/msteams/hook
      title: 'T {{{{ .Status }}}}'
    msteamsv2_configs:
    - webhook_url: {u}/msteamsv2/hook
      text: 'X {{{{ .CommonLabels.alertname }}}}'
    incidentio_configs:
    - url: {u}/incidentio/alert-events
      alert_source_token: inc-token
      max_alerts: 1
    rocketchat_configs:
    - api_url: {u}/rocketchat/
      channel: '#ops'
      fields:
      - title: sev
        value: '{{{{ .CommonLabels.severity }}}}'
      actions:
      - text: Runbook
        url: '{{{{ .CommonAnnotations.runbook_url }}}}'
"#
    );
    let (app, base) = start_klaxon(dir.path(), &notify).await;
    post(
        &reqwest::Client::new(),
        &base,
        json!([alert("Newer", "a:1", None)]),
    )
    .await;
    let ok = wait_for(&m, 0, Duration::from_secs(20), |r| r.len() >= 5).await;
    app.stop().await;
    assert!(ok, "{:?}", m.state.reqs.lock());
    let reqs = m.state.reqs.lock().clone();
    let find = |p: &str| {
        reqs.iter()
            .find(|r| r.path.starts_with(p))
            .unwrap_or_else(|| panic!("no {p} in {reqs:?}"))
            .clone()
    };

    let mm = find("/mattermost/hook");
    assert_eq!(mm.method, "POST");
    assert_eq!(mm.headers["content-type"], "application/json");
    let b: Value = serde_json::from_str(&mm.body).unwrap();
    assert_eq!(b["channel"], "ch-infra");
    assert_eq!(b["username"], "bot");
    assert_eq!(b["icon_emoji"], ":fire:");
    assert_eq!(
        b["priority"],
        json!({"priority": "urgent", "requested_ack": true})
    );
    assert_eq!(b["props"], json!({"card": "card firing"}));
    assert!(
        b.get("text").is_none(),
        "text goes into the attachment: {b}"
    );
    let att = &b["attachments"][0];
    assert_eq!(att["color"], "danger");
    assert_eq!(
        att["fields"],
        json!([{"title": "Team", "value": "infra", "short": true}])
    );
    let t = att["text"].as_str().unwrap();
    assert!(
        t.contains("http://runbooks.example/Newer"),
        "runbook link in {t}"
    );
    assert!(att["title"].as_str().unwrap().contains("Newer"), "{att}");

    let rc = find("/rocketchat/api/v1/chat.postMessage");
    assert_eq!(rc.headers["x-auth-token"], "tok-1");
    assert_eq!(rc.headers["x-user-id"], "uid-1");
    let b: Value = serde_json::from_str(&rc.body).unwrap();
    assert_eq!(b["channel"], "#ops");
    let att = &b["attachments"][0];
    assert_eq!(att["color"], "red");
    assert_eq!(
        att["fields"],
        json!([{"short": false, "title": "sev", "value": "critical"}])
    );
    assert_eq!(
        att["actions"],
        json!([{"type": "button", "text": "Runbook", "url": "http://runbooks.example/Newer", "is_webview": false, "msg_in_chat_window": false}])
    );
    assert!(att["text"]
        .as_str()
        .unwrap()
        .contains("http://runbooks.example/Newer"));
    assert!(rc.body.ends_with("}\n"), "Go encoder's newline");

    let inc = find("/incidentio/alert-events");
    assert_eq!(inc.headers["authorization"], "Bearer inc-token");
    let b: Value = serde_json::from_str(&inc.body).unwrap();
    assert_eq!(b["version"], "1");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["truncatedAlerts"], 0);
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(b["groupKey"], "{}:{}");
    assert_eq!(b["deduplication_key"].as_str().unwrap().len(), 64);

    let t1: Value = serde_json::from_str(&find("/msteams/hook").body).unwrap();
    assert_eq!(t1["@context"], "http://schema.org/extensions");
    assert_eq!(t1["type"], "MessageCard");
    assert_eq!(t1["title"], "T firing");
    assert_eq!(t1["themeColor"], "8C1A1A");
    assert!(t1["summary"].as_str().unwrap().contains("Newer"), "{t1}");
    assert!(
        t1["text"]
            .as_str()
            .unwrap()
            .contains("http://runbooks.example/Newer"),
        "{t1}"
    );
    let t2: Value = serde_json::from_str(&find("/msteamsv2/hook").body).unwrap();
    assert_eq!(t2["type"], "message");
    let a = &t2["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(a["contentUrl"], Value::Null);
    assert_eq!(a["content"]["type"], "AdaptiveCard");
    assert_eq!(a["content"]["version"], "1.2");
    assert_eq!(a["content"]["msteams"], json!({"width": "full"}));
    assert_eq!(a["content"]["body"][0]["color"], "Attention");
    assert_eq!(a["content"]["body"][0]["weight"], "Bolder");
    assert_eq!(
        a["content"]["body"][1],
        json!({"type": "TextBlock", "text": "X Newer", "wrap": true})
    );
}

/// A 200 whose body says the message was not sent (Telegram's
/// `{"ok":false}`) is a failed attempt with the reason in
/// `/api/v1/deliveries`; a delivered Opsgenie request is listed with its
/// rendered requests (no API key) and can be replayed byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_fail_and_deliveries_replay() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let u = &m.url;
    let notify = format!(
        r#"  route:
    receiver: og
    group_wait: 0s
    routes:
    - receiver: tg
      matchers: ['alertname="Tg"']
  receivers:
  - name: og
    opsgenie_configs:
    - api_key: og-secret-key
      api_url: {u}/og/
  - name: tg
    telegram_configs:
    - bot_token: 1:tg-secret
      api_url: {u}/tg
      chat_id: 5
"#
    );
    let (app, base) = start_klaxon(dir.path(), &notify).await;
    let client = reqwest::Client::new();
    post(&client, &base, json!([alert("Og", "a:1", None)])).await;
    assert!(wait_for(&m, 0, Duration::from_secs(20), |r| !r.is_empty()).await);
    let deliveries = format!("{base}/api/v1/deliveries");
    let mut og = Value::Null;
    for _ in 0..100 {
        og = get_json(&format!("{deliveries}?receiver=og")).await;
        if og["data"]["deliveries"][0]["status"] == "success" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = &og["data"]["deliveries"][0];
    assert_eq!(d["status"], "success", "{og}");
    assert_eq!(d["integration"], "opsgenie");
    let req = &d["payload"]["requests"][0];
    assert_eq!(req["path"], "v2/alerts");
    assert!(req["body"]["alias"].as_str().unwrap().len() == 64, "{req}");
    assert!(!og.to_string().contains("og-secret-key"), "secret in {og}");
    let first = m.state.reqs.lock()[0].clone();
    let id = d["id"].as_str().unwrap().to_string();
    let r = client
        .post(format!("{deliveries}/{id}/replay"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert!(wait_for(&m, 1, Duration::from_secs(10), |r| !r.is_empty()).await);
    let again = m.state.reqs.lock()[1].clone();
    assert_eq!((again.path, again.body), (first.path, first.body));

    *m.state.answer.lock() = Some((
        200,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#.into(),
    ));
    post(&client, &base, json!([alert("Tg", "a:1", None)])).await;
    let mut tg = Value::Null;
    for _ in 0..100 {
        tg = get_json(&format!("{deliveries}?receiver=tg")).await;
        if tg["data"]["deliveries"][0]["lastError"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
    let d = &tg["data"]["deliveries"][0];
    assert_ne!(d["status"], "success", "{tg}");
    let err = d["lastError"].as_str().unwrap_or_default();
    assert!(err.contains("chat not found"), "{tg}");
    assert!(!tg.to_string().contains("tg-secret"), "secret in {tg}");
}

/// Slack through the Web API with a bot token: `Authorization: Bearer`,
/// klaxon's default Block Kit layout, and `update_message` editing the
/// group's message (`chat.update` with the first answer's channel and ts).
/// Webhook `payload` templating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_app_blocks_update_and_webhook_payload() {
    let m = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let u = &m.url;
    let notify = format!(
        r#"  route:
    receiver: s
    group_wait: 0s
    group_interval: 1s
  receivers:
  - name: s
    slack_configs:
    - app_token: xoxb-secret
      app_url: {u}/slackapi/chat.postMessage
      channel: '#ops'
      update_message: true
      send_resolved: true
      blocks: default
    - api_url: {u}/slackhook/
      blocks:
      - type: section
        text:
          type: mrkdwn
          text: '*{{{{ .Status }}}}* {{{{ .CommonLabels.alertname }}}}'
    webhook_configs:
    - url: {u}/hook/
      timeout: 5s
      payload:
        text: '{{{{ .Status }}}}: {{{{ .CommonAnnotations.summary }}}}'
        n: 1
        tags: ['{{{{ .CommonLabels.team }}}}', x]
"#
    );
    let (app, base) = start_klaxon(dir.path(), &notify).await;
    let client = reqwest::Client::new();
    post(&client, &base, json!([alert("Blk", "a:1", None)])).await;
    assert!(wait_for(&m, 0, Duration::from_secs(20), |r| r.len() >= 3).await);
    post(
        &client,
        &base,
        json!([alert("Blk", "a:1", Some("2026-01-01T00:10:00Z"))]),
    )
    .await;
    let done = wait_for(&m, 0, Duration::from_secs(20), |r| {
        r.iter().any(|q| q.path.ends_with("/chat.update"))
    })
    .await;
    app.stop().await;
    let reqs = m.state.reqs.lock().clone();
    assert!(done, "{reqs:?}");
    let first = reqs
        .iter()
        .find(|r| r.path == "/slackapi/chat.postMessage")
        .unwrap();
    assert_eq!(first.headers["authorization"], "Bearer xoxb-secret");
    let b: Value = serde_json::from_str(&first.body).unwrap();
    assert!(b.get("attachments").is_none(), "{b}");
    let blocks = b["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[1].to_string().contains("critical"), "severity: {b}");
    assert!(
        blocks[2]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("Blk on a:1"),
        "{b}"
    );
    let actions = blocks.last().unwrap().to_string();
    assert!(actions.contains("http://runbooks.example/Blk"), "{actions}");
    assert!(actions.contains("/#/silences?matchers="), "{actions}");
    assert!(
        b["text"].as_str().is_some_and(|t| t.contains("Blk")),
        "fallback text: {b}"
    );
    let upd = reqs
        .iter()
        .find(|r| r.path == "/slackapi/chat.update")
        .unwrap();
    let ub: Value = serde_json::from_str(&upd.body).unwrap();
    assert_eq!(
        (ub["channel"].as_str(), ub["ts"].as_str()),
        (Some("C123"), Some("1700000000.000100"))
    );
    assert!(ub["blocks"].to_string().contains("RESOLVED"), "{ub}");

    let hook = reqs.iter().find(|r| r.path == "/slackhook/").unwrap();
    let hb: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(
        hb["blocks"],
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*firing* Blk"}}])
    );

    let wh = reqs.iter().find(|r| r.path == "/hook/").unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&wh.body).unwrap(),
        json!({"text": "firing: Blk on a:1", "n": 1, "tags": ["infra", "x"]})
    );
}
