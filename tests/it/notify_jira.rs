//! `jira_configs` against a mock Jira on 127.0.0.1: the request sequence
//! Alertmanager's notifier makes (search → create, search → update, the
//! resolve and reopen transitions), their methods, paths, headers and JSON
//! bodies, which answers are retried, and the config checks.

use crate::notify_deliver_support;

use axum::http::Method;
use klaxon::metrics::Registry;
use klaxon::model::now_millis;
use klaxon::store::Store;
use notify_deliver_support::{alert, eventually, notification, outbox, FnMock, FnReq, RUNBOOK};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

type Req = FnReq;

/// The mock Jira: answers in order, `200 {}` when they run out.
async fn mock_jira(script: Vec<(u16, &str)>) -> FnMock {
    FnMock::scripted(
        script
            .into_iter()
            .map(|(c, b)| (c, b.to_string()))
            .collect(),
    )
    .await
}

/// Receivers of an `alertmanager.yml` (global section included).
fn receivers(yaml: &str) -> Vec<klaxon::notify::receivers::Receiver> {
    klaxon::notify::config::load_str(yaml, "test.yml", None)
        .unwrap_or_else(|e| panic!("config: {e}"))
        .receivers
}

fn config(mock: &FnMock, extra: &str) -> String {
    format!(
        "global:\n  jira_api_url: '{}'\nroute:\n  receiver: jira\nreceivers:\n- name: jira\n  jira_configs:\n  - project: OPS\n    issue_type: Incident\n    labels: [klaxon, '{{{{ .CommonLabels.severity }}}}']\n    http_config:\n      basic_auth:\n        username: bot@example.org\n        password: s3cret\n{extra}",
        mock.url("/rest/api/2/")
    )
}

/// Alertmanager's group id: hex SHA-256 of the group key.
fn group_id() -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b"{}:{alertname=\"DiskFull\"}");
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn issue(key: &str, category: &str) -> String {
    json!({"issues": [{"key": key, "fields": {"status": {"name": "S", "statusCategory": {"key": category}}}}]})
        .to_string()
}

const NO_ISSUES: &str = "{\"issues\":[]}";

async fn wait_status(store: &Store, id: i64, status: &str) -> bool {
    eventually(WAIT, || {
        store.get_delivery(id).unwrap().map(|d| d.status) == Some(status.into())
    })
    .await
}

async fn deliver(
    mock: &FnMock,
    extra: &str,
    resolved: bool,
    status: &str,
) -> (Arc<Store>, klaxon::store::notify::Delivery) {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(
        store.clone(),
        receivers(&config(mock, extra)),
        &Registry::new(),
    );
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "jira",
            vec![alert("DiskFull", "a:1", resolved, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        wait_status(&store, id, status).await,
        "delivery {:?}",
        store.get_delivery(id).unwrap()
    );
    let d = store.get_delivery(id).unwrap().unwrap();
    (store, d)
}

fn search_body(jql_prefix: &str) -> Value {
    json!({
        "fields": ["status"],
        "jql": format!("{jql_prefix}project=\"OPS\" and labels=\"ALERT{{{}}}\" order by status ASC,resolutiondate DESC", group_id()),
        "maxResults": 2,
    })
}

fn assert_common_headers(r: &Req) {
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["accept-language"], "en");
    // base64("bot@example.org:s3cret")
    assert_eq!(
        r.headers["authorization"],
        "Basic Ym90QGV4YW1wbGUub3JnOnMzY3JldA=="
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_firing_searches_then_creates_the_issue() {
    let mock = mock_jira(vec![
        (200, NO_ISSUES),
        (201, "{\"id\":\"10000\",\"key\":\"OPS-1\"}"),
    ])
    .await;
    let extra = "    fields:\n      components: [{name: Monitoring}]\n      customfield_10001: '{{ .GroupLabels.alertname }}'\n      customfield_10002: '{{ len .Alerts }}'\n";
    let (_store, d) = deliver(&mock, extra, false, "success").await;
    assert_eq!(d.attempts, 1);
    let reqs = mock.reqs();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");

    assert_eq!(reqs[0].method, Method::POST);
    assert_eq!(reqs[0].path, "/rest/api/2/search");
    assert_common_headers(&reqs[0]);
    assert_eq!(reqs[0].json(), search_body("statusCategory != Done and "));
    // Go's encoder: struct order and a trailing newline.
    assert!(reqs[0]
        .body
        .starts_with("{\"fields\":[\"status\"],\"jql\":"));
    assert!(reqs[0].body.ends_with("}\n"));

    assert_eq!(reqs[1].method, Method::POST);
    assert_eq!(reqs[1].path, "/rest/api/2/issue");
    assert_common_headers(&reqs[1]);
    let body = reqs[1].json();
    let f = &body["fields"];
    assert_eq!(f["summary"], "[FIRING:1] DiskFull (a:1 critical)");
    assert_eq!(f["project"], json!({"key": "OPS"}));
    assert_eq!(f["issuetype"], json!({"name": "Incident"}));
    // jira.default.priority: severity critical is High.
    assert_eq!(f["priority"], json!({"name": "High"}));
    assert_eq!(
        f["labels"],
        json!([format!("ALERT{{{}}}", group_id()), "critical", "klaxon"])
    );
    assert_eq!(f["components"], json!([{"name": "Monitoring"}]));
    assert_eq!(f["customfield_10001"], "DiskFull");
    // A rendered string that reads as a number is sent as one.
    assert_eq!(f["customfield_10002"], 1);
    let desc = f["description"].as_str().unwrap();
    assert!(desc.contains(&format!("Runbook: {RUNBOOK}")), "{desc}");
    assert!(desc.contains("Summary: Disk almost full"), "{desc}");
    // Go marshals the fields map with sorted keys.
    let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
    let order: Vec<usize> = keys
        .iter()
        .map(|k| reqs[1].body.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", reqs[1].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_firing_updates_the_open_issue() {
    let mock = mock_jira(vec![(200, &issue("OPS-7", "indeterminate")), (204, "")]).await;
    let extra = "    summary:\n      template: 'Disk {{ .Status }}'\n      enable_update: false\n    description: 'Runbook {{ (index .Alerts 0).Annotations.runbook_url }}'\n    resolve_transition: Done\n";
    let (_store, d) = deliver(&mock, extra, false, "success").await;
    assert_eq!(d.attempts, 1);
    let reqs = mock.reqs();
    // Open issue, firing group: no transition.
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].path, "/rest/api/2/search");
    assert_eq!(reqs[1].method, Method::PUT);
    assert_eq!(reqs[1].path, "/rest/api/2/issue/OPS-7");
    assert_common_headers(&reqs[1]);
    let f = reqs[1].json()["fields"].clone();
    assert!(f.get("summary").is_none(), "summary not updated: {f}");
    assert_eq!(f["description"], format!("Runbook {RUNBOOK}"));
    assert_eq!(f["project"], json!({"key": "OPS"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_group_updates_then_resolves_the_issue() {
    let transitions =
        json!({"transitions": [{"id": "11", "name": "Start"}, {"id": "31", "name": "Done"}]})
            .to_string();
    let mock = mock_jira(vec![
        (200, &issue("OPS-7", "new")),
        (204, ""),
        (200, &transitions),
        (204, ""),
    ])
    .await;
    let extra =
        "    resolve_transition: Done\n    reopen_transition: Reopen\n    reopen_duration: 1h\n";
    let (_store, d) = deliver(&mock, extra, true, "success").await;
    assert_eq!(d.attempts, 1);
    let reqs = mock.reqs();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    // A resolved group looks for open issues only.
    assert_eq!(reqs[0].json(), search_body("statusCategory != Done and "));
    assert_eq!(reqs[1].method, Method::PUT);
    assert_eq!(reqs[1].path, "/rest/api/2/issue/OPS-7");
    assert!(reqs[1].json()["fields"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED] DiskFull"));
    assert_eq!(reqs[2].method, Method::GET);
    assert_eq!(reqs[2].path, "/rest/api/2/issue/OPS-7/transitions");
    assert_common_headers(&reqs[2]);
    assert_eq!(reqs[3].method, Method::POST);
    assert_eq!(reqs[3].path, "/rest/api/2/issue/OPS-7/transitions");
    assert_eq!(reqs[3].body, "{\"transition\":{\"id\":\"31\"}}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_again_reopens_a_recently_resolved_issue() {
    let transitions = json!({"transitions": [{"id": "41", "name": "Reopen"}]}).to_string();
    let mock = mock_jira(vec![
        (200, &issue("OPS-9", "done")),
        (204, ""),
        (200, &transitions),
        (204, ""),
    ])
    .await;
    let extra = "    reopen_transition: Reopen\n    reopen_duration: 2h30m\n    wont_fix_resolution: Won't Fix\n";
    let (_store, _d) = deliver(&mock, extra, false, "success").await;
    let reqs = mock.reqs();
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    assert_eq!(
        reqs[0].json(),
        search_body("(resolution is EMPTY or resolution != \"Won't Fix\") and (resolutiondate is EMPTY OR resolutiondate >= -150m) and ")
    );
    assert_eq!(reqs[1].path, "/rest/api/2/issue/OPS-9");
    assert_eq!(reqs[3].path, "/rest/api/2/issue/OPS-9/transitions");
    assert_eq!(reqs[3].json(), json!({"transition": {"id": "41"}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_group_without_an_issue_creates_nothing() {
    let mock = mock_jira(vec![(200, NO_ISSUES)]).await;
    let (_store, d) = deliver(&mock, "", true, "success").await;
    assert_eq!(d.attempts, 1);
    assert_eq!(mock.reqs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_error_fails_at_once() {
    let mock = mock_jira(vec![(400, "{\"errorMessages\":[\"bad JQL\"]}")]).await;
    let (_store, d) = deliver(&mock, "", false, "failed").await;
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_reason.as_deref(), Some("http_4xx"));
    let e = d.last_error.unwrap();
    assert!(
        e.contains("searching") && e.contains("400") && e.contains("bad JQL"),
        "{e}"
    );
    assert!(!e.contains("s3cret"));
    assert_eq!(mock.reqs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_429_are_retried_from_the_search() {
    // Attempt 1: search 503. Attempt 2: search ok, create 429.
    // Attempt 3: search finds nothing, create succeeds.
    let mock = mock_jira(vec![
        (503, ""),
        (200, NO_ISSUES),
        (429, ""),
        (200, NO_ISSUES),
        (201, "{\"key\":\"OPS-1\"}"),
    ])
    .await;
    let (_store, d) = deliver(&mock, "", false, "success").await;
    assert_eq!(d.attempts, 3);
    let paths: Vec<String> = mock
        .reqs()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "POST /rest/api/2/search",
            "POST /rest/api/2/search",
            "POST /rest/api/2/issue",
            "POST /rest/api/2/search",
            "POST /rest/api/2/issue",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_transition_is_a_clear_failure() {
    let mock = mock_jira(vec![
        (200, &issue("OPS-7", "new")),
        (204, ""),
        (200, "{\"transitions\":[{\"id\":\"1\",\"name\":\"Other\"}]}"),
    ])
    .await;
    let (_store, d) = deliver(&mock, "    resolve_transition: Done\n", true, "failed").await;
    assert_eq!(
        d.last_error.as_deref(),
        Some("can't find transition Done for issue OPS-7")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_v3_sends_adf_descriptions_and_cloud_search() {
    let mock = mock_jira(vec![
        (200, NO_ISSUES),
        (201, "{}"),
        (200, NO_ISSUES),
        (201, "{}"),
    ])
    .await;
    let base = mock.url("/rest/api/3");
    // A user's ADF template: sent as written (order kept, compacted).
    let adf = r#"{"version": 1, "type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "{{ .Status }}"}]}]}"#;
    let yaml = format!(
        "route:\n  receiver: jira\nreceivers:\n- name: jira\n  jira_configs:\n  - api_url: '{base}'\n    api_type: cloud\n    project: OPS\n    issue_type: Bug\n    description: '{adf}'\n  - api_url: '{base}'\n    project: OPS\n    issue_type: Bug\n"
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), receivers(&yaml), &Registry::new());
    let now = now_millis();
    let ids = ob
        .enqueue_notification(&notification(
            "jira",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap();
    for id in &ids {
        assert!(wait_status(&store, *id, "success").await);
    }
    let reqs = mock.reqs();
    assert_eq!(reqs.len(), 4);
    let mut searches: Vec<&str> = reqs
        .iter()
        .filter(|r| r.path.contains("search"))
        .map(|r| r.path.as_str())
        .collect();
    searches.sort();
    assert_eq!(searches, ["/rest/api/3/search", "/rest/api/3/search/jql"]);
    let creates: Vec<&Req> = reqs
        .iter()
        .filter(|r| r.path == "/rest/api/3/issue")
        .collect();
    assert_eq!(creates.len(), 2);
    let user = creates
        .iter()
        .find(|r| r.body.contains("\"version\":1,\"type\":\"doc\""))
        .unwrap_or_else(|| panic!("ADF kept as written: {creates:#?}"));
    assert_eq!(
        user.json()["fields"]["description"]["content"][0]["content"][0]["text"],
        "firing"
    );
    // The default description becomes an ADF document with the runbook linked.
    let default = creates.iter().find(|r| r.body != user.body).unwrap();
    let d = default.json()["fields"]["description"].clone();
    assert_eq!(d["type"], "doc");
    let text = d.to_string();
    assert!(
        text.contains(&format!(
            "{{\"attrs\":{{\"href\":{}}},\"type\":\"link\"}}",
            json!(RUNBOOK)
        )),
        "{text}"
    );
}

#[test]
fn config_errors_name_the_problem() {
    let load = |jira: &str, global: &str| {
        let yaml = format!(
            "global:\n{global}route:\n  receiver: jira\nreceivers:\n- name: jira\n  jira_configs:\n  - {jira}\n"
        );
        klaxon::notify::config::load_str(&yaml, "am.yml", None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let url = "  jira_api_url: https://example.atlassian.net/rest/api/2/\n";
    assert!(load("project: OPS\n    issue_type: Bug", url).is_ok());
    let e = load("issue_type: Bug", url).unwrap_err();
    assert!(
        e.contains("am.yml:8:5: missing project in jira_config"),
        "{e}"
    );
    let e = load("project: OPS", url).unwrap_err();
    assert!(e.contains("missing issue_type in jira_config"), "{e}");
    let e = load("project: OPS\n    issue_type: Bug", "  smtp_hello: x\n").unwrap_err();
    assert!(e.contains("no global Jira Cloud URL set"), "{e}");
    let e = load(
        "project: OPS\n    issue_type: Bug\n    api_url: ftp://jira.example.org/",
        "",
    )
    .unwrap_err();
    assert!(
        e.contains("am.yml:9:14: api_url: unsupported scheme \"ftp\" for URL"),
        "{e}"
    );
    let e = load(
        "project: OPS\n    issue_type: Bug\n    api_url: 'http://'",
        "",
    )
    .unwrap_err();
    assert!(e.contains("api_url:"), "{e}");
    let e = load(
        "project: OPS\n    issue_type: Bug\n    api_type: server",
        url,
    )
    .unwrap_err();
    assert!(
        e.contains("unknown api_type on jira_config, must be auto, cloud or datacenter"),
        "{e}"
    );
    let e = load(
        "project: OPS\n    issue_type: Bug\n    summary: '{{ .Oops'",
        url,
    )
    .unwrap_err();
    assert!(e.contains("summary:"), "{e}");
    let e = load(
        "project: OPS\n    issue_type: Bug\n    reopen_duration: soon",
        url,
    )
    .unwrap_err();
    assert!(e.contains("reopen_duration:"), "{e}");
    let e = load(
        "project: OPS\n    issue_type: Bug\n    custom_fields: {a: b}",
        url,
    )
    .unwrap_err();
    assert!(e.contains("custom_fields"), "{e}");
    // Both forms of summary/description load.
    assert!(load(
        "project: OPS\n    issue_type: Bug\n    summary: {template: x, enable_update: false}\n    description: text",
        url
    )
    .is_ok());
}
