//! Local servers for the probe tests: a small HTTP/1.1 server (plain or
//! TLS with a freshly generated certificate) whose paths produce the cases
//! the prober must handle, a TCP line server, and a DNS responder.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What the HTTP server answers for a path.
async fn respond<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, https: bool) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&req).to_string();
    let first = text.lines().next().unwrap_or("").to_string();
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let simple = |code: u16, reason: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let resp = if path == "/hang" {
        // Never answer; keep the connection open.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        return;
    } else if path == "/endless" {
        let _ = s
            .write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )
            .await;
        let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
        loop {
            if s.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    } else if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        simple(code, "Status", "", "status body")
    } else if let Some(n) = path.strip_prefix("/redirect/") {
        let n: u32 = n.parse().unwrap_or(0);
        if n == 0 {
            simple(
                200,
                "OK",
                "",
                &format!("landed after redirects, method {method}"),
            )
        } else {
            simple(
                302,
                "Found",
                &format!("Location: /redirect/{}\r\n", n - 1),
                "",
            )
        }
    } else if path == "/echo-method" {
        simple(200, "OK", "", &format!("method={method}"))
    } else if path == "/headers" {
        simple(
            200,
            "OK",
            "X-Version: build-1234\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
            "hi",
        )
    } else if path == "/gzip" {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = e.write_all(&b"z".repeat(1000));
        let gz = e.finish().unwrap_or_default();
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        r.extend_from_slice(&gz);
        let _ = s.write_all(&r).await;
        let _ = s.shutdown().await;
        return;
    } else {
        simple(
            200,
            "OK",
            "",
            if https {
                "hello over tls"
            } else {
                "hello world"
            },
        )
    };
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Starts the plain HTTP server; returns its address.
pub async fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(respond(s, false));
        }
    });
    addr
}

/// A self-signed certificate for `localhost` expiring at a known instant.
pub struct TestCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    /// Unix seconds of notAfter.
    pub not_after: i64,
}

pub fn make_cert() -> TestCert {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2031, 7, 9);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "klaxon test");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCert {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        // 2031-07-09T00:00:00Z
        not_after: 1_941_321_600,
    }
}

/// Starts the HTTPS server with `cert`; returns its address.
pub async fn https_server(cert: &TestCert) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(
                cert.cert_der.clone(),
            )],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acc = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acc.accept(s).await {
                    respond(tls, true).await;
                }
            });
        }
    });
    addr
}

/// A port nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// An SMTP-like line server: greets, answers `HELO x` with `250 hello x`.
pub async fn line_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"220 klaxon.test ESMTP ready\r\n").await;
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                if let Some(who) = line.strip_prefix("HELO ") {
                    let _ = s.write_all(format!("250 hello {who}\r\n").as_bytes()).await;
                } else {
                    let _ = s.write_all(b"500 what\r\n").await;
                }
            });
        }
    });
    addr
}

/// A DNS responder on UDP loopback: `A` for `ok.test.` → 192.0.2.7 (and an
/// NS in authority), NXDOMAIN for anything else.
pub async fn dns_server() -> SocketAddr {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, NS};
    use hickory_proto::rr::{Name, RData, Record};
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.message_type = MessageType::Response;
            r.metadata.recursion_desired = q.metadata.recursion_desired;
            r.add_queries(q.queries.clone());
            let name = q.queries.first().map(|q| q.name().to_string());
            if name.as_deref() == Some("ok.test.") {
                let n = Name::from_ascii("ok.test.").unwrap();
                r.answers.push(Record::from_rdata(
                    n.clone(),
                    300,
                    RData::A(A::new(192, 0, 2, 7)),
                ));
                r.authorities.push(Record::from_rdata(
                    n,
                    300,
                    RData::NS(NS(Name::from_ascii("ns1.ok.test.").unwrap())),
                ));
            } else {
                r.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = s.send_to(&r.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

/// Whether the shared data/tools a test needs may be missing (outside CI).
pub fn require(path: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    assert!(
        !crate::common::is_ci(),
        "{path} missing under CI (install with ../shared/tools/install-peers.sh)"
    );
    eprintln!("note: {path} missing; check not run");
    false
}

/// A STARTTLS line server: `220 ready`, then on `STARTTLS` answers
/// `220 go ahead` and switches to TLS with `cert`, greeting `250 secure`.
pub async fn starttls_server(cert: &TestCert) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(
                cert.cert_der.clone(),
            )],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let acc = acceptor.clone();
            tokio::spawn(async move {
                let _ = s.write_all(b"220 ready\r\n").await;
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n]).trim() != "STARTTLS" {
                    return;
                }
                let _ = s.write_all(b"220 go ahead\r\n").await;
                if let Ok(mut tls) = acc.accept(s).await {
                    let _ = tls.write_all(b"250 secure\r\n").await;
                    let _ = tls.flush().await;
                    let _ = tls.read(&mut buf).await;
                }
            });
        }
    });
    addr
}

/// The DNS responder's answers over TCP (2-byte length framing).
pub async fn dns_tcp_server() -> SocketAddr {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(n) = s.read_u16().await else { return };
                let mut q = vec![0u8; usize::from(n)];
                if s.read_exact(&mut q).await.is_err() {
                    return;
                }
                let Ok(q) = Message::from_vec(&q) else { return };
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.add_queries(q.queries.clone());
                if q.queries.first().map(|q| q.name().to_string()).as_deref() == Some("ok.test.") {
                    r.answers.push(Record::from_rdata(
                        Name::from_ascii("ok.test.").unwrap(),
                        60,
                        RData::A(A::new(192, 0, 2, 8)),
                    ));
                } else {
                    r.metadata.response_code = ResponseCode::Refused;
                }
                let b = r.to_vec().unwrap();
                let mut out = (b.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&b);
                let _ = s.write_all(&out).await;
            });
        }
    });
    addr
}
