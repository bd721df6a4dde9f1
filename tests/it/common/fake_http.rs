#![allow(dead_code)]
//! A scriptable HTTP/1.1 server on 127.0.0.1 for discovery tests: each
//! request goes to a handler that answers, streams (watches), hangs or
//! resets the connection. Stops when dropped.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the handler sees it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
pub enum Action {
    Respond {
        status: u16,
        content_type: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Headers now, then each chunk as it arrives; the body ends (the
    /// connection closes) when the sender is dropped.
    Stream {
        content_type: String,
        chunks: mpsc::UnboundedReceiver<Vec<u8>>,
    },
    /// Never answers (the connection stays open until the server stops).
    Hang,
    /// Closes the connection without an answer.
    Reset,
}

impl Action {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Action {
        Action::Respond {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

type Handler = dyn Fn(&Req) -> Action + Send + Sync;

pub struct FakeHttp {
    pub addr: std::net::SocketAddr,
    pub requests: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connected client, TCP or unix.
trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Conn for T {}

enum Listener {
    Tcp(TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    async fn accept(&self) -> Option<Box<dyn Conn>> {
        match self {
            Listener::Tcp(l) => l
                .accept()
                .await
                .ok()
                .map(|(s, _)| Box::new(s) as Box<dyn Conn>),
            Listener::Unix(l) => l
                .accept()
                .await
                .ok()
                .map(|(s, _)| Box::new(s) as Box<dyn Conn>),
        }
    }
}

impl FakeHttp {
    pub async fn start(handler: impl Fn(&Req) -> Action + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self::run(Listener::Tcp(listener), addr, handler)
    }

    /// The same server on a unix socket at `path` (`addr` is unused).
    pub async fn start_unix(
        path: &std::path::Path,
        handler: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> FakeHttp {
        let listener = tokio::net::UnixListener::bind(path).expect("bind unix socket");
        Self::run(
            Listener::Unix(listener),
            ([127, 0, 0, 1], 0).into(),
            handler,
        )
    }

    fn run(
        listener: Listener,
        addr: std::net::SocketAddr,
        handler: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> FakeHttp {
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Some(sock) = listener.accept().await {
                let h = handler.clone();
                let reqs = reqs.clone();
                conns.spawn(async move { serve(sock, h, reqs).await });
            }
        });
        FakeHttp {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self, path_prefix: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path().starts_with(path_prefix))
            .count()
    }
}

async fn serve(mut sock: Box<dyn Conn>, h: Arc<Handler>, reqs: Arc<Mutex<Vec<Req>>>) {
    loop {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1024];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match sock.read(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&byte[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let req = Req {
            method: first.next().unwrap_or("").to_string(),
            target: first.next().unwrap_or("").to_string(),
            headers: lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        };
        reqs.lock().unwrap().push(req.clone());
        match h(&req) {
            Action::Respond {
                status,
                content_type,
                headers,
                body,
            } => {
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                if sock.write_all(out.as_bytes()).await.is_err()
                    || sock.write_all(&body).await.is_err()
                {
                    return;
                }
            }
            Action::Stream {
                content_type,
                mut chunks,
            } => {
                let out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                if sock.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
                while let Some(c) = chunks.recv().await {
                    if c.is_empty() {
                        continue;
                    }
                    let frame = [
                        format!("{:x}\r\n", c.len()).into_bytes(),
                        c,
                        b"\r\n".to_vec(),
                    ]
                    .concat();
                    if sock.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                let _ = sock.write_all(b"0\r\n\r\n").await;
            }
            Action::Hang => {
                std::future::pending::<()>().await;
            }
            Action::Reset => {
                return;
            }
        }
    }
}
