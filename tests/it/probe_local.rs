//! Probers against servers the test starts on 127.0.0.1: HTTP, HTTPS with
//! a generated certificate, TCP dialogues and a DNS responder.

use crate::common;
use crate::probe_support;

use klaxon::probe::{run_probe, Module, Modules, ProbeOutcome};
use probe_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn modules(yaml: &str) -> Modules {
    match Modules::parse(yaml, "test.yml") {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

fn module(yaml: &str, name: &str) -> Arc<Module> {
    modules(yaml).get(name).unwrap()
}

async fn probe(yaml: &str, name: &str, target: &str) -> ProbeOutcome {
    run_probe(&module(yaml, name), target, Duration::from_secs(5)).await
}

fn val(o: &ProbeOutcome, name: &str) -> f64 {
    o.metrics
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing:\n{}", o.metrics.render()))
}

const HTTP: &str =
    "modules:\n  m:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n";

#[tokio::test]
async fn http_success_and_metrics() {
    let addr = http_server().await;
    let o = probe(HTTP, "m", &format!("http://{addr}/")).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(val(&o, "probe_success"), 1.0);
    assert_eq!(val(&o, "probe_http_status_code"), 200.0);
    assert_eq!(val(&o, "probe_http_content_length"), 11.0);
    assert_eq!(val(&o, "probe_http_uncompressed_body_length"), 11.0);
    assert_eq!(val(&o, "probe_http_version"), 1.1);
    assert_eq!(val(&o, "probe_http_ssl"), 0.0);
    assert_eq!(val(&o, "probe_ip_protocol"), 4.0);
    assert_eq!(val(&o, "probe_http_redirects"), 0.0);
    assert_eq!(o.status, Some(200));
    for phase in ["resolve", "connect", "processing", "transfer"] {
        let v = o
            .metrics
            .get_labeled("probe_http_duration_seconds", &[("phase", phase)])
            .unwrap();
        assert!((0.0..5.0).contains(&v), "{phase} {v}");
    }
    let connect = o
        .metrics
        .get_labeled("probe_http_duration_seconds", &[("phase", "connect")])
        .unwrap();
    assert!(connect > 0.0);
    // Target without scheme: http:// is assumed, as blackbox.
    let o = probe(HTTP, "m", &format!("{addr}/")).await;
    assert!(o.success);
}

#[tokio::test]
async fn http_status_codes() {
    let addr = http_server().await;
    let o = probe(HTTP, "m", &format!("http://{addr}/status/404")).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_http_status_code"), 404.0);
    assert!(
        o.reason.as_deref().unwrap_or("").contains("status code"),
        "{:?}",
        o.reason
    );
    let y = "modules:\n  m:\n    prober: http\n    http:\n      valid_status_codes: [404, 418]\n";
    let o = probe(y, "m", &format!("http://{addr}/status/404")).await;
    assert!(o.success);
    let o = probe(y, "m", &format!("http://{addr}/")).await;
    assert!(!o.success, "200 is not in valid_status_codes");
}

#[tokio::test]
async fn http_redirects() {
    let addr = http_server().await;
    let o = probe(HTTP, "m", &format!("http://{addr}/redirect/3")).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(val(&o, "probe_http_redirects"), 3.0);
    assert_eq!(val(&o, "probe_http_status_code"), 200.0);
    let nofollow = "modules:\n  m:\n    prober: http\n    http:\n      no_follow_redirects: true\n";
    let o = probe(nofollow, "m", &format!("http://{addr}/redirect/3")).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_http_status_code"), 302.0);
    assert_eq!(val(&o, "probe_http_redirects"), 1.0);
    let o = probe(HTTP, "m", &format!("http://{addr}/redirect/12")).await;
    assert!(!o.success, "more than 10 redirects stops with the 3xx");
    assert_eq!(val(&o, "probe_http_redirects"), 11.0);
    // 302 turns POST into GET.
    let post = "modules:\n  m:\n    prober: http\n    http:\n      method: POST\n      fail_if_body_not_matches_regexp: ['method GET']\n";
    let o = probe(post, "m", &format!("http://{addr}/redirect/1")).await;
    assert!(o.success, "{:?}", o.log);
}

#[tokio::test]
async fn http_body_and_header_regexes() {
    let addr = http_server().await;
    let y = "modules:
  match:
    prober: http
    http:
      fail_if_body_matches_regexp: ['hel+o']
  notmatch:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ['^goodbye']
  okbody:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ['world$']
  hdr:
    prober: http
    http:
      fail_if_header_not_matches:
        - header: X-Version
          regexp: 'build-\\d+'
  hdrbad:
    prober: http
    http:
      fail_if_header_matches:
        - header: X-Version
          regexp: '1234'
  hdrmissing:
    prober: http
    http:
      fail_if_header_not_matches:
        - header: X-Absent
          regexp: '.*'
";
    let url = format!("http://{addr}/");
    let o = probe(y, "match", &url).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_failed_due_to_regex"), 1.0);
    let o = probe(y, "notmatch", &url).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_failed_due_to_regex"), 1.0);
    let o = probe(y, "okbody", &url).await;
    assert!(o.success);
    assert_eq!(val(&o, "probe_failed_due_to_regex"), 0.0);
    let h = format!("http://{addr}/headers");
    let o = probe(y, "hdr", &h).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(
        val(&o, "probe_http_last_modified_timestamp_seconds"),
        784_111_777.0
    );
    let o = probe(y, "hdrbad", &h).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_failed_due_to_regex"), 1.0);
    let o = probe(y, "hdrmissing", &h).await;
    assert!(!o.success);
    assert!(o
        .reason
        .clone()
        .unwrap_or_default()
        .contains("Missing required header"));
}

#[tokio::test]
async fn http_never_answering_server_times_out() {
    let addr = http_server().await;
    let m = module(HTTP, "m");
    let start = Instant::now();
    let o = run_probe(
        &m,
        &format!("http://{addr}/hang"),
        Duration::from_millis(700),
    )
    .await;
    let took = start.elapsed();
    assert!(!o.success);
    // It waited for its budget (a loaded machine can only add to that); the
    // deadline reason below says it was the budget that ended it.
    assert!(took >= Duration::from_millis(650), "{took:?}");
    assert!(val(&o, "probe_duration_seconds") >= 0.65);
    assert_eq!(val(&o, "probe_http_status_code"), 0.0);
    assert!(o.reason.clone().unwrap_or_default().contains("deadline"));
}

#[tokio::test]
async fn http_connection_refused() {
    let addr = closed_port().await;
    let o = probe(HTTP, "m", &format!("http://{addr}/")).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_http_status_code"), 0.0);
    assert_eq!(
        o.metrics
            .get_labeled("probe_http_duration_seconds", &[("phase", "connect")]),
        Some(0.0)
    );
    assert!(o
        .reason
        .clone()
        .unwrap_or_default()
        .to_lowercase()
        .contains("refused"));
}

#[tokio::test]
async fn http_endless_body_is_cut_at_limit() {
    let addr = http_server().await;
    let y = "modules:\n  m:\n    prober: http\n    http:\n      body_size_limit: 64KB\n";
    let o = probe(y, "m", &format!("http://{addr}/endless")).await;
    assert!(!o.success);
    assert!(o.reason.clone().unwrap_or_default().contains("too large"));
    assert_eq!(val(&o, "probe_http_status_code"), 200.0);
}

#[tokio::test]
async fn http_gzip_compression() {
    let addr = http_server().await;
    let y = "modules:\n  m:\n    prober: http\n    http:\n      compression: gzip\n      fail_if_body_not_matches_regexp: ['^z+$']\n";
    let o = probe(y, "m", &format!("http://{addr}/gzip")).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(val(&o, "probe_http_uncompressed_body_length"), 1000.0);
    assert!(val(&o, "probe_http_content_length") < 1000.0);
}

#[tokio::test]
async fn https_certificate_expiry_and_ssl_checks() {
    let cert = make_cert();
    let addr = https_server(&cert).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert.cert_pem).unwrap();
    let y = format!(
        "modules:
  ca:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
        server_name: localhost
  insecure:
    prober: http
    http:
      tls_config:
        insecure_skip_verify: true
  strict:
    prober: http
  nossl:
    prober: http
    http:
      fail_if_ssl: true
      tls_config:
        insecure_skip_verify: true
  needssl:
    prober: http
    http:
      fail_if_not_ssl: true
",
        ca = ca.display()
    );
    let url = format!("https://{addr}/");
    let o = probe(&y, "ca", &url).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(val(&o, "probe_http_ssl"), 1.0);
    assert_eq!(
        val(&o, "probe_ssl_earliest_cert_expiry"),
        cert.not_after as f64
    );
    assert_eq!(
        val(&o, "probe_ssl_last_chain_expiry_timestamp_seconds"),
        cert.not_after as f64
    );
    let text = o.metrics.render();
    assert!(
        text.contains("probe_tls_version_info{version=\"TLS 1.3\"} 1"),
        "{text}"
    );
    assert!(text.contains("subject=\"CN=klaxon test\""), "{text}");
    assert!(text.contains("subjectalternative=\"localhost\""), "{text}");
    let o = probe(&y, "insecure", &url).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(
        val(&o, "probe_ssl_earliest_cert_expiry"),
        cert.not_after as f64
    );
    // An unknown issuer fails verification.
    let o = probe(&y, "strict", &url).await;
    assert!(!o.success);
    assert!(o.metrics.get("probe_ssl_earliest_cert_expiry").is_none());
    let o = probe(&y, "nossl", &url).await;
    assert!(!o.success);
    let plain = http_server().await;
    let o = probe(&y, "needssl", &format!("http://{plain}/")).await;
    assert!(!o.success);
    assert!(o
        .reason
        .clone()
        .unwrap_or_default()
        .contains("not over SSL"));
}

const TCP: &str = "modules:
  plain:
    prober: tcp
  smtp:
    prober: tcp
    tcp:
      query_response:
        - expect: '^220 ([^ ]+) ESMTP'
          send: 'HELO ${1}'
        - expect: '^250 hello klaxon.test'
  wrong:
    prober: tcp
    tcp:
      query_response:
        - expect: '^220'
          send: 'EHLO x'
        - expect: '^250'
  tls:
    prober: tcp
    tcp:
      tls: true
      tls_config:
        insecure_skip_verify: true
  starttls:
    prober: tcp
    tcp:
      tls_config:
        insecure_skip_verify: true
      query_response:
        - expect: '^220 ready'
          send: STARTTLS
        - expect: '^220 go ahead'
          starttls: true
        - expect: '^250 secure'
";

#[tokio::test]
async fn tcp_connect_and_query_response() {
    let addr = line_server().await;
    let o = probe(TCP, "plain", &addr.to_string()).await;
    assert!(o.success);
    assert_eq!(val(&o, "probe_failed_due_to_regex"), 0.0);
    let o = probe(TCP, "smtp", &addr.to_string()).await;
    assert!(o.success, "{:?}", o.log);
    let o = probe(TCP, "wrong", &addr.to_string()).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_failed_due_to_regex"), 1.0);
    let closed = closed_port().await;
    let o = probe(TCP, "plain", &closed.to_string()).await;
    assert!(!o.success);
    let cert = make_cert();
    let tls = https_server(&cert).await;
    let o = probe(TCP, "tls", &tls.to_string()).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(
        val(&o, "probe_ssl_earliest_cert_expiry"),
        cert.not_after as f64
    );
}

const DNS: &str = "modules:
  ok:
    prober: dns
    dns:
      query_name: ok.test
      query_type: A
      validate_answer_rrs:
        fail_if_not_matches_regexp: ['ok\\.test\\.\\t300\\tIN\\tA\\t192\\.0\\.2\\.7']
  wrongip:
    prober: dns
    dns:
      query_name: ok.test
      query_type: A
      validate_answer_rrs:
        fail_if_none_matches_regexp: ['10\\.0\\.0\\.1']
  nx:
    prober: dns
    dns:
      query_name: missing.test
      query_type: A
  tcp:
    prober: dns
    dns:
      query_name: ok.test
      query_type: A
      transport_protocol: tcp
      recursion_desired: false
      validate_answer_rrs:
        fail_if_matches_regexp: ['192\\.0\\.2\\.7']
        fail_if_none_matches_regexp: ['192\\.0\\.2\\.8']
  tcprefused:
    prober: dns
    dns:
      query_name: other.test
      transport_protocol: tcp
      valid_rcodes: [NOERROR, NXDOMAIN]
  nxok:
    prober: dns
    dns:
      query_name: missing.test
      query_type: A
      valid_rcodes: [NXDOMAIN]
";

#[tokio::test]
async fn dns_queries_on_loopback() {
    let addr = dns_server().await;
    let o = probe(DNS, "ok", &addr.to_string()).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(val(&o, "probe_dns_answer_rrs"), 1.0);
    assert_eq!(val(&o, "probe_dns_authority_rrs"), 1.0);
    assert_eq!(val(&o, "probe_dns_additional_rrs"), 0.0);
    assert_eq!(val(&o, "probe_dns_query_succeeded"), 1.0);
    let o = probe(DNS, "wrongip", &addr.to_string()).await;
    assert!(!o.success);
    let o = probe(DNS, "nx", &addr.to_string()).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_dns_query_succeeded"), 1.0);
    let o = probe(DNS, "nxok", &addr.to_string()).await;
    assert!(o.success, "{:?}", o.log);
    let tcp = dns_tcp_server().await;
    let o = probe(DNS, "tcp", &tcp.to_string()).await;
    assert!(o.success, "{:?}", o.log);
    assert_eq!(val(&o, "probe_dns_answer_rrs"), 1.0);
    let o = probe(DNS, "tcprefused", &tcp.to_string()).await;
    assert!(!o.success);
    assert!(
        o.reason.clone().unwrap_or_default().contains("Rcode"),
        "{:?}",
        o.reason
    );
    // The UDP server does not listen on TCP.
    let o = probe(DNS, "tcp", &closed_port().await.to_string()).await;
    assert!(!o.success);
    assert_eq!(val(&o, "probe_dns_query_succeeded"), 0.0);
}

#[tokio::test]
async fn icmp_works_or_names_the_sysctl() {
    let y = "modules:\n  p:\n    prober: icmp\n    icmp:\n      preferred_ip_protocol: ip4\n";
    let o = probe(y, "p", "127.0.0.1").await;
    match klaxon::probe::icmp::available() {
        Ok(()) => assert!(o.success, "{:?}", o.log),
        // .ci/run allows unprivileged ICMP, so CI always takes the success path.
        Err(e) if common::is_ci() => panic!("ICMP sockets not allowed under CI: {e}"),
        Err(e) => {
            assert!(e.contains("net.ipv4.ping_group_range"), "{e}");
            assert!(!o.success);
            assert!(o
                .reason
                .clone()
                .unwrap_or_default()
                .contains("net.ipv4.ping_group_range"));
        }
    }
}
