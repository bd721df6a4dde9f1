//! E-mail over STARTTLS (Alertmanager's default `require_tls: true`): an
//! SMTP sink on 127.0.0.1 that upgrades the connection with a self-signed
//! certificate, trusted through `tls_config.ca_file`; and a server without
//! STARTTLS is refused rather than sent to in clear.

use crate::notify_deliver_support;

use klaxon::metrics::Registry;
use klaxon::model::now_millis;
use klaxon::notify::config::GlobalConfig;
use klaxon::store::Store;
use notify_deliver_support::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

struct Cert {
    pem: String,
    der: Vec<u8>,
    key_der: Vec<u8>,
}

fn cert() -> Cert {
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let c = params.self_signed(&key).unwrap();
    Cert {
        pem: c.pem(),
        der: c.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

enum End<S> {
    Done,
    StartTls(S),
}

/// One SMTP conversation; returns the stream when the client asks for TLS.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    offer_tls: bool,
    greet: bool,
    log: Arc<Mutex<Vec<String>>>,
) -> End<S> {
    let mut r = BufReader::new(s);
    if greet {
        r.get_mut().write_all(b"220 sink ESMTP\r\n").await.unwrap();
    }
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return End::Done;
        }
        let u = line.trim_end().to_ascii_uppercase();
        log.lock().push(u.clone());
        let reply: &[u8] = if u.starts_with("EHLO") {
            if offer_tls {
                b"250-sink\r\n250 STARTTLS\r\n"
            } else {
                b"250 sink\r\n"
            }
        } else if u == "STARTTLS" {
            r.get_mut().write_all(b"220 go ahead\r\n").await.unwrap();
            return End::StartTls(r.into_inner());
        } else if u == "DATA" {
            r.get_mut().write_all(b"354 go\r\n").await.unwrap();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return End::Done;
                }
                if line == ".\r\n" {
                    break;
                }
            }
            log.lock().push("MESSAGE".into());
            b"250 queued\r\n"
        } else if u == "QUIT" {
            let _ = r.get_mut().write_all(b"221 bye\r\n").await;
            return End::Done;
        } else {
            b"250 ok\r\n"
        };
        if r.get_mut().write_all(reply).await.is_err() {
            return End::Done;
        }
    }
}

async fn sink(cert: Option<&Cert>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let acceptor = cert.map(|c| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(c.der.clone())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(c.key_der.clone().into()),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let log = l2.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let offer = acceptor.is_some();
                if let End::StartTls(plain) = converse(sock, offer, true, log.clone()).await {
                    let Some(acc) = acceptor else { return };
                    match acc.accept(plain).await {
                        Ok(tls) => {
                            log.lock().push("TLS".into());
                            converse(tls, false, false, log).await;
                        }
                        Err(e) => log.lock().push(format!("TLS FAILED {e}")),
                    }
                }
            });
        }
    });
    (port, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_configured_ca() {
    let c = cert();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &c.pem).unwrap();
    let (port, log) = sink(Some(&c)).await;
    let global = GlobalConfig {
        smtp_from: Some("klaxon@example.org".into()),
        smtp_smarthost: Some(format!("localhost:{port}")),
        ..Default::default()
    };
    let recv = receivers(
        &format!(
            "- name: mail\n  email_configs:\n    - to: oncall@example.org\n      tls_config:\n        ca_file: '{}'\n",
            ca.display()
        ),
        &global,
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "mail",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    let done = eventually(Duration::from_secs(15), || {
        store.get_delivery(id).unwrap().map(|d| d.status) == Some("success".into())
    })
    .await;
    let l = log.lock().clone();
    assert!(
        done,
        "not delivered: {:?} log {l:?}",
        store.get_delivery(id).unwrap().unwrap().last_error
    );
    let tls_at = l.iter().position(|x| x == "TLS").expect("TLS negotiated");
    let mail_at = l
        .iter()
        .position(|x| x.starts_with("MAIL FROM"))
        .expect("MAIL FROM sent");
    assert!(tls_at < mail_at, "envelope sent before TLS: {l:?}");
    assert!(l.contains(&"MESSAGE".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_tls_refuses_a_server_without_starttls() {
    let (port, log) = sink(None).await;
    let global = GlobalConfig {
        smtp_from: Some("klaxon@example.org".into()),
        smtp_smarthost: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    };
    let recv = receivers(
        "- name: mail\n  email_configs:\n    - to: oncall@example.org\n",
        &global,
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "mail",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        eventually(Duration::from_secs(10), || store
            .get_delivery(id)
            .unwrap()
            .map(|d| d.attempts)
            >= Some(1))
        .await
    );
    let d = store.get_delivery(id).unwrap().unwrap();
    assert_ne!(d.status, "success");
    assert!(
        !log.lock()
            .iter()
            .any(|x| x.starts_with("MAIL FROM") || x == "MESSAGE"),
        "{:?}",
        log.lock()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_not_accepted() {
    let c = cert();
    let (port, log) = sink(Some(&c)).await;
    let global = GlobalConfig {
        smtp_from: Some("klaxon@example.org".into()),
        smtp_smarthost: Some(format!("localhost:{port}")),
        ..Default::default()
    };
    let recv = receivers(
        "- name: mail\n  email_configs:\n    - to: oncall@example.org\n",
        &global,
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "mail",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        eventually(Duration::from_secs(10), || store
            .get_delivery(id)
            .unwrap()
            .map(|d| d.attempts)
            >= Some(1))
        .await
    );
    assert_ne!(store.get_delivery(id).unwrap().unwrap().status, "success");
    let l = log.lock().clone();
    assert!(
        !l.iter()
            .any(|x| x == "MESSAGE" || x.starts_with("MAIL FROM")),
        "{l:?}"
    );
}
