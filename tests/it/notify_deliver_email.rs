//! E-mail through a real SMTP conversation on 127.0.0.1: a small SMTP sink
//! in the test receives the message; both MIME parts must carry the
//! runbook link, and the AUTH credentials must be the configured ones.

use crate::notify_deliver_support;

use base64::Engine as _;
use klaxon::metrics::Registry;
use klaxon::model::now_millis;
use klaxon::notify::config::GlobalConfig;
use klaxon::notify::NotificationSink;
use klaxon::store::Store;
use notify_deliver_support::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Default, Debug, Clone)]
struct Mail {
    auth: Option<String>,
    from: String,
    rcpt: Vec<String>,
    data: String,
}

/// Accepts SMTP sessions (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) and
/// keeps each message.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let m = m.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut mail = Mail::default();
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("AUTH PLAIN") {
                        mail.auth = cmd.split_whitespace().nth(2).map(str::to_string);
                        b"235 ok\r\n"
                    } else if upper.starts_with("MAIL FROM") {
                        mail.from = cmd.clone();
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT TO") {
                        mail.rcpt.push(cmd.clone());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        w.write_all(b"354 go\r\n").await.unwrap();
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        mail.data = data;
                        m.lock().push(std::mem::take(&mut mail));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else if upper == "RSET" || upper == "NOOP" {
                        b"250 ok\r\n"
                    } else {
                        b"502 unknown\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() && u8::from_str_radix(&s[i + 1..i + 3], 16).is_ok() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded bodies of the parts of a multipart message, with their
/// content types.
fn parts(data: &str) -> Vec<(String, String)> {
    let boundary = data
        .split("boundary=")
        .nth(1)
        .map(|s| {
            s.trim_start_matches('"')
                .split(['"', '\r', ';'])
                .next()
                .unwrap()
                .to_string()
        })
        .expect("multipart boundary");
    let mut out = Vec::new();
    for chunk in data.split(&format!("--{boundary}")).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let Some((head, body)) = chunk.split_once("\r\n\r\n") else {
            continue;
        };
        let head_l = head.to_ascii_lowercase();
        let ctype = head_l
            .lines()
            .find(|l| l.starts_with("content-type:"))
            .map(|l| l.trim_start_matches("content-type:").trim().to_string())
            .unwrap_or_default();
        let body = body.trim_end_matches("\r\n");
        let decoded = if head_l.contains("content-transfer-encoding: base64") {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap(),
            )
            .unwrap()
        } else if head_l.contains("content-transfer-encoding: quoted-printable") {
            qp_decode(body)
        } else {
            body.to_string()
        };
        out.push((ctype, decoded));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_has_runbook_in_both_parts_and_authenticates() {
    let (port, mails) = smtp_sink().await;
    let global = GlobalConfig {
        smtp_from: Some("klaxon@example.org".into()),
        smtp_smarthost: Some(format!("127.0.0.1:{port}")),
        smtp_require_tls: false,
        ..Default::default()
    };
    let recv = receivers(
        "- name: mail\n  email_configs:\n    - to: 'oncall@example.org, lead@example.org'\n      auth_username: 'pager'\n      auth_password: 'hunter2'\n      headers:\n        X-Team: storage\n",
        &global,
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    ob.enqueue(notification(
        "mail",
        vec![alert("DiskFull", "a:1", false, now)],
        now,
    ));
    assert!(
        eventually(Duration::from_secs(15), || !mails.lock().is_empty()).await,
        "no mail received"
    );
    assert!(
        eventually(Duration::from_secs(5), || store
            .get_delivery(1)
            .unwrap()
            .map(|d| d.status)
            == Some("success".into()))
        .await
    );
    let mail = mails.lock()[0].clone();

    let auth = base64::engine::general_purpose::STANDARD
        .decode(mail.auth.expect("AUTH PLAIN used"))
        .unwrap();
    assert_eq!(auth, b"\0pager\0hunter2");
    assert!(mail.from.contains("<klaxon@example.org>"), "{}", mail.from);
    assert_eq!(mail.rcpt.len(), 2);
    assert!(
        mail.data
            .contains("Subject: [FIRING:1] DiskFull (a:1 critical)"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("X-Team: storage"), "{}", mail.data);
    assert!(mail
        .data
        .to_ascii_lowercase()
        .contains("multipart/alternative"));

    let ps = parts(&mail.data);
    assert_eq!(ps.len(), 2, "{:?}", ps);
    let text = &ps
        .iter()
        .find(|p| p.0.starts_with("text/plain"))
        .expect("text part")
        .1;
    let html = &ps
        .iter()
        .find(|p| p.0.starts_with("text/html"))
        .expect("html part")
        .1;
    assert!(text.contains(&format!("Runbook: {RUNBOOK}")), "{text}");
    // In HTML the `&` of the URL is escaped inside the attribute.
    let escaped = RUNBOOK.replace('&', "&amp;");
    assert!(
        html.contains(&format!("<a href=\"{escaped}\">Runbook</a>")),
        "{html}"
    );
    for part in [text, html] {
        assert!(part.contains("Disk almost full"));
        assert!(part.contains("/#/silences?matchers="));
        assert!(part.contains("http://prometheus:9090/graph?g0.expr"));
    }
    // The password is not in the stored payload.
    assert!(!store
        .get_delivery(1)
        .unwrap()
        .unwrap()
        .payload
        .contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_permanent_rejection_is_not_retried() {
    // A server that rejects the sender with 550.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(Mutex::new(0));
    let s2 = sessions.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            *s2.lock() += 1;
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                w.write_all(b"220 sink\r\n").await.unwrap();
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let u = line.to_ascii_uppercase();
                    let reply: &[u8] = if u.starts_with("EHLO") {
                        b"250 sink\r\n"
                    } else if u.starts_with("MAIL") {
                        b"550 sender rejected\r\n"
                    } else {
                        b"221 bye\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let global = GlobalConfig {
        smtp_from: Some("klaxon@example.org".into()),
        smtp_smarthost: Some(format!("127.0.0.1:{port}")),
        smtp_require_tls: false,
        ..Default::default()
    };
    let recv = receivers(
        "- name: mail\n  email_configs:\n    - to: 'oncall@example.org'\n",
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
            .map(|d| d.status)
            == Some("failed".into()))
        .await
    );
    let d = store.get_delivery(id).unwrap().unwrap();
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_reason.as_deref(), Some("smtp_5xx"));
}
