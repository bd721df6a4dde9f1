//! Compatibility with blackbox_exporter 0.23: the metric families (names and
//! types) of our probes against its recorded outputs in
//! `../shared/reference/metrics/`, and side by side with the real
//! `prometheus-blackbox-exporter` (started here with the same modules file)
//! probing the same local targets.

use crate::probe_support;

use klaxon::probe::{run_probe, Modules};
use probe_support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const REF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/metrics");
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";

/// `# TYPE` lines as name → type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// `# HELP` lines as name → text.
fn helps(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| {
            let (n, h) = l.split_once(' ')?;
            Some((n.to_string(), h.to_string()))
        })
        .collect()
}

/// The unlabelled sample value of `name`.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

const MODULES: &str = "modules:
  http_2xx:
    prober: http
    http:
      preferred_ip_protocol: ip4
  http_regex:
    prober: http
    http:
      preferred_ip_protocol: ip4
      fail_if_body_matches_regexp: ['world']
  http_insecure:
    prober: http
    http:
      preferred_ip_protocol: ip4
      tls_config:
        insecure_skip_verify: true
  tcp_connect:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
  tcp_dialogue:
    prober: tcp
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: '^220 ([^ ]+) ESMTP'
          send: 'HELO ${1}'
        - expect: '^250 hello'
  dns_ok:
    prober: dns
    dns:
      preferred_ip_protocol: ip4
      query_name: ok.test
      query_type: A
  dns_nx:
    prober: dns
    dns:
      preferred_ip_protocol: ip4
      query_name: nope.test
      query_type: A
";

async fn ours(module: &str, target: &str) -> String {
    let mods = Modules::parse(MODULES, "bb.yml").unwrap();
    let m = mods.get(module).unwrap();
    run_probe(&m, target, Duration::from_secs(3))
        .await
        .metrics
        .render()
}

#[tokio::test]
async fn families_match_recorded_blackbox_output() {
    if !require(REF) {
        return;
    }
    let http = http_server().await;
    // /headers sends Last-Modified like the recorded target did.
    let cases = [
        (
            "blackbox_probe_http.prom",
            "http_2xx",
            format!("http://{http}/headers"),
        ),
        (
            "blackbox_probe_http_fail.prom",
            "http_2xx",
            format!("http://{}/", closed_port().await),
        ),
        ("blackbox_probe_tcp.prom", "tcp_connect", http.to_string()),
    ];
    for (file, module, target) in cases {
        let want = std::fs::read_to_string(format!("{REF}/{file}")).unwrap();
        let got = ours(module, &target).await;
        assert_eq!(families(&got), families(&want), "{file}\n{got}");
        assert_eq!(helps(&got), helps(&want), "{file}");
        assert_eq!(
            value(&got, "probe_success"),
            value(&want, "probe_success"),
            "{file}"
        );
        assert_eq!(
            value(&got, "probe_http_status_code"),
            value(&want, "probe_http_status_code"),
            "{file}"
        );
    }
}

/// Kills the exporter when the test ends, whatever happens.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_blackbox(dir: &std::path::Path) -> (Child, String) {
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, MODULES).unwrap();
    let port = closed_port().await.port();
    let child = std::process::Command::new(BLACKBOX)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Child(child);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/metrics")).await.is_ok() {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("blackbox_exporter did not start on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_by_side_with_blackbox_exporter() {
    if !require(BLACKBOX) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_child, base) = start_blackbox(dir.path()).await;
    let http = http_server().await;
    let cert = make_cert();
    let https = https_server(&cert).await;
    let lines = line_server().await;
    let dns = dns_server().await;
    let closed = closed_port().await;
    let cases = [
        ("http_2xx", format!("http://{http}/")),
        ("http_2xx", format!("http://{http}/headers")),
        ("http_2xx", format!("http://{http}/status/404")),
        ("http_2xx", format!("http://{http}/redirect/2")),
        ("http_2xx", format!("http://{closed}/")),
        ("http_regex", format!("http://{http}/")),
        ("http_insecure", format!("https://{https}/")),
        ("tcp_connect", http.to_string()),
        ("tcp_connect", closed.to_string()),
        ("tcp_dialogue", lines.to_string()),
        ("dns_ok", dns.to_string()),
        ("dns_nx", dns.to_string()),
    ];
    let client = reqwest::Client::new();
    for (module, target) in cases {
        let theirs = client
            .get(format!(
                "{base}/probe?module={module}&target={}",
                form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let got = ours(module, &target).await;
        let what = format!("{module} {target}\n--- blackbox:\n{theirs}\n--- klaxon:\n{got}");
        assert_eq!(
            value(&got, "probe_success"),
            value(&theirs, "probe_success"),
            "{what}"
        );
        for v in [
            "probe_http_status_code",
            "probe_http_redirects",
            "probe_http_ssl",
            "probe_http_content_length",
            "probe_http_uncompressed_body_length",
            "probe_failed_due_to_regex",
            "probe_ssl_earliest_cert_expiry",
            "probe_ip_protocol",
            "probe_ip_addr_hash",
            "probe_dns_answer_rrs",
            "probe_dns_authority_rrs",
            "probe_dns_query_succeeded",
        ] {
            assert_eq!(value(&got, v), value(&theirs, v), "{v}: {what}");
        }
        let a: BTreeSet<_> = families(&got).into_iter().collect();
        let b: BTreeSet<_> = families(&theirs).into_iter().collect();
        assert_eq!(a, b, "{what}");
        assert_eq!(helps(&got), helps(&theirs), "{what}");
    }
}
