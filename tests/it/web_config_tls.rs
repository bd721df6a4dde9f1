//! `--web.config.file` (exporter-toolkit format) end to end: curl over TLS
//! with basic auth, the configured headers, a renewed certificate picked up
//! without a restart, client-certificate auth, and Prometheus 2.42 sending
//! alerts and remote write to klaxon over TLS with basic auth.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KLAXON: &str = env!("CARGO_BIN_EXE_klaxon");
const T: Duration = Duration::from_secs(60);

/// A CA `name` and a server (and client) certificate it signs, via openssl.
fn certs(dir: &Path, name: &str) {
    let script = format!(
        r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {n}-ca.key -out {n}-ca.crt -days 2 -subj /CN={n}-ca 2>/dev/null
for who in server client; do
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout {n}-$who.key -out {n}-$who.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > ext.cnf
openssl x509 -req -in {n}-$who.csr -CA {n}-ca.crt -CAkey {n}-ca.key -CAcreateserial -out {n}-$who.crt -days 2 -extfile ext.cnf 2>/dev/null
done
"#,
        n = name
    );
    let ok = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("openssl");
    assert!(ok.success(), "making certificates");
}

struct Klaxon {
    _p: common::Proc,
    url: String,
}

fn start(dir: &Path, args: &[&str]) -> Klaxon {
    let port = common::free_port();
    std::fs::write(
        dir.join("klaxon.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nstorage:\n  path: {}\n",
            dir.join("data").display()
        ),
    )
    .expect("config");
    let child = Command::new(KLAXON)
        .args(["run", "--config", "klaxon.yml", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("klaxon");
    let k = Klaxon {
        _p: common::Proc(child),
        url: format!("https://127.0.0.1:{port}"),
    };
    let end = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "klaxon never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    k
}

/// curl's status code and headers for `url` with `args`.
fn curl(dir: &Path, args: &[&str], url: &str) -> (String, String) {
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .current_dir(dir)
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let code = out.lines().last().unwrap_or("").to_string();
    (
        if o.status.success() {
            code
        } else {
            format!("curl exit {:?}", o.status.code())
        },
        out,
    )
}

#[test]
fn tls_basic_auth_headers_and_certificate_reload_with_curl() {
    if common::peer("curl").is_none() || common::peer("openssl").is_none() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    certs(dir, "one");
    certs(dir, "two");
    std::fs::copy(dir.join("one-server.crt"), dir.join("server.crt")).expect("cp");
    std::fs::copy(dir.join("one-server.key"), dir.join("server.key")).expect("cp");
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    std::fs::write(
        dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: DENY\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    )
    .expect("web.yml");
    let k = start(dir, &["--web.config.file", "web.yml"]);
    let api = format!("{}/api/v1/status/buildinfo", k.url);
    let ok = ["--cacert", "one-ca.crt", "-u", "alice:s3cret"];
    let end = Instant::now() + T;
    loop {
        let (code, _) = curl(dir, &ok, &api);
        if code == "200" {
            break;
        }
        assert!(Instant::now() < end, "never 200: {code}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, headers) = curl(dir, &ok, &api);
    assert_eq!(code, "200");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-frame-options: deny"),
        "{headers}"
    );
    let (code, headers) = curl(dir, &["--cacert", "one-ca.crt"], &api);
    assert_eq!(code, "401", "{headers}");
    assert!(
        headers.contains("WWW-Authenticate: Basic") || headers.contains("www-authenticate: Basic"),
        "{headers}"
    );
    let (code, _) = curl(dir, &["--cacert", "one-ca.crt", "-u", "alice:wrong"], &api);
    assert_eq!(code, "401");
    // Plain HTTP to the TLS port is not served.
    let (code, _) = curl(
        dir,
        &["-u", "alice:s3cret"],
        &api.replace("https://", "http://"),
    );
    assert_ne!(code, "200");

    // A renewed certificate (another CA here, to tell them apart).
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::copy(dir.join("two-server.key"), dir.join("server.key")).expect("cp");
    std::fs::copy(dir.join("two-server.crt"), dir.join("server.crt")).expect("cp");
    let end = Instant::now() + T;
    loop {
        let (code, _) = curl(dir, &["--cacert", "two-ca.crt", "-u", "alice:s3cret"], &api);
        if code == "200" {
            break;
        }
        assert!(
            Instant::now() < end,
            "renewed certificate not served: {code}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _) = curl(dir, &ok, &api);
    assert_ne!(code, "200", "the old CA still verifies");
}

#[test]
fn client_certificates_are_required_when_configured() {
    if common::peer("curl").is_none() || common::peer("openssl").is_none() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    certs(dir, "one");
    std::fs::write(
        dir.join("web.yml"),
        "tls_server_config:\n  cert_file: one-server.crt\n  key_file: one-server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: one-ca.crt\n",
    )
    .expect("web.yml");
    let k = start(dir, &["--web.config.file", "web.yml"]);
    let api = format!("{}/-/healthy", k.url);
    let end = Instant::now() + T;
    loop {
        let (code, _) = curl(
            dir,
            &[
                "--cacert",
                "one-ca.crt",
                "--cert",
                "one-client.crt",
                "--key",
                "one-client.key",
            ],
            &api,
        );
        if code == "200" {
            break;
        }
        assert!(Instant::now() < end, "never 200 with a client cert: {code}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _) = curl(dir, &["--cacert", "one-ca.crt"], &api);
    assert_ne!(code, "200", "served without a client certificate");
}

#[test]
fn prometheus_sends_alerts_and_remote_write_over_tls_with_basic_auth() {
    let Some(prometheus) = common::peer("prometheus") else {
        return;
    };
    if common::peer("curl").is_none() || common::peer("openssl").is_none() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    certs(dir, "one");
    let hash = bcrypt::hash("pw", 4).expect("bcrypt");
    std::fs::write(
        dir.join("web.yml"),
        format!("tls_server_config:\n  cert_file: one-server.crt\n  key_file: one-server.key\nbasic_auth_users:\n  prom: {hash}\n"),
    )
    .expect("web.yml");
    let k = start(
        dir,
        &[
            "--web.config.file",
            "web.yml",
            "--web.enable-remote-write-receiver",
        ],
    );
    let hostport = k.url.trim_start_matches("https://").to_string();
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: FromPrometheusOverTls\n    expr: vector(1)\n",
    )
    .expect("rules");
    let ca = dir.join("one-ca.crt").display().to_string();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {{sender: prom242}}
rule_files: [rules.yml]
scrape_configs:
- job_name: prom
  static_configs:
  - targets: ['127.0.0.1:{pport}']
alerting:
  alertmanagers:
  - scheme: https
    api_version: v2
    basic_auth: {{username: prom, password: pw}}
    tls_config: {{ca_file: {ca}}}
    static_configs:
    - targets: ['{hostport}']
remote_write:
- url: https://{hostport}/api/v1/write
  basic_auth: {{username: prom, password: pw}}
  tls_config: {{ca_file: {ca}}}
  queue_config: {{batch_send_deadline: 1s}}
"#,
            pport = {
                let p = common::free_port();
                std::fs::write(dir.join("pport"), p.to_string()).expect("pport");
                p
            },
        ),
    )
    .expect("prometheus.yml");
    let pport = std::fs::read_to_string(dir.join("pport")).expect("pport");
    // The first alert may come before the Alertmanager target is
    // discovered (then dropped); resend soon rather than after 1m.
    let _prom = common::spawn_prometheus(
        &prometheus,
        dir,
        pport.trim().parse().expect("pport"),
        &["--rules.alert.resend-delay=1s"],
    );
    let auth = ["--cacert", "one-ca.crt", "-u", "prom:pw"];
    let body = |path: &str| {
        let o = Command::new("curl")
            .args(["-s"])
            .args(auth)
            .arg(format!("{}{path}", k.url))
            .current_dir(dir)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let end = Instant::now() + T;
    let (mut alert, mut written) = (false, false);
    while !(alert && written) {
        alert = alert || body("/api/v2/alerts").contains("FromPrometheusOverTls");
        written = written
            || body("/api/v1/query?query=up%7Bsender%3D%22prom242%22%7D").contains("\"prom242\"");
        assert!(
            Instant::now() < end,
            "alert received: {alert}, remote write received: {written}; klaxon has {}; prometheus: {}; prometheus said:\n{}",
            body("/api/v2/alerts"),
            {
                let o = Command::new("curl").arg("-s").arg(format!("http://127.0.0.1:{pport}/api/v1/query?query=%7B__name__%3D~%22prometheus_notifications.*%7CALERTS%22%7D")).output().expect("curl");
                String::from_utf8_lossy(&o.stdout).to_string()
            },
            std::fs::read_to_string(dir.join("prometheus.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("level=error") || l.contains("level=warn") || l.contains("notifier") || l.contains("rule"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
