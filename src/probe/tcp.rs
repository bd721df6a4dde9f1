//! The TCP prober: connect (optionally TLS from the start), then the
//! module's expect/send/starttls dialogue, line by line as blackbox does.

use super::module::TcpModule;
use super::{resolve, tls, Ctx, ProbeMetrics};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

enum Conn {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
}

impl Conn {
    async fn read_line(&mut self, buf: &mut String) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read_line(buf).await,
            Conn::Tls(s) => s.read_line(buf).await,
        }
    }

    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.get_mut().write_all(b).await,
            Conn::Tls(s) => s.get_mut().write_all(b).await,
        }
    }
}

fn register_regex(m: &mut ProbeMetrics, v: f64) {
    m.set(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        v,
    );
}

/// Runs the TCP probe against `host:port`.
pub async fn probe(ctx: &mut Ctx, t: &TcpModule, target: &str) -> bool {
    register_regex(&mut ctx.metrics, 0.0);
    let (host, port) = match resolve::split_host_port(target, None) {
        Ok(hp) => hp,
        Err(e) => {
            ctx.error("Error splitting target address and port", &[("err", &e)]);
            return false;
        }
    };
    let (ip, _) = match resolve::choose(ctx, &host, &t.ip).await {
        Ok(v) => v,
        Err(_) => return false,
    };
    let addr = SocketAddr::new(ip, port);
    ctx.info("Dialing TCP without TLS", &[("address", &addr.to_string())]);
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            ctx.error(
                "Error dialing TCP",
                &[("err", &format!("dial tcp {addr}: connect: {e}"))],
            );
            return false;
        }
    };
    ctx.info("Successfully dialed", &[]);
    let mut conn = if t.tls {
        match tls::handshake(tcp, &t.tls_config, &host, &[]).await {
            Ok(s) => {
                tls::record(
                    &mut ctx.metrics,
                    s.get_ref().1,
                    !t.tls_config.insecure_skip_verify,
                );
                Conn::Tls(Box::new(BufReader::new(s)))
            }
            Err(e) => {
                ctx.error("Error dialing TCP", &[("err", &e)]);
                return false;
            }
        }
    } else {
        Conn::Plain(BufReader::new(tcp))
    };
    for (i, qr) in t.query_response.iter().enumerate() {
        let step = i.to_string();
        ctx.info(
            "Processing query response entry",
            &[("entry_number", &step)],
        );
        let mut caps_text: Option<(regex::Regex, String)> = None;
        if let Some(re) = &qr.expect {
            ctx.info("Expecting", &[("regexp", re.as_str())]);
            let mut matched = false;
            loop {
                let mut line = String::new();
                match conn.read_line(&mut line).await {
                    Ok(0) => break,
                    Ok(_) => {
                        let l = line.trim_end_matches(['\n', '\r']).to_string();
                        ctx.info("Read line", &[("line", &l)]);
                        if re.is_match(&l) {
                            ctx.info("Regexp matched", &[("regexp", re.as_str()), ("line", &l)]);
                            caps_text = Some((re.clone(), l));
                            matched = true;
                            break;
                        }
                    }
                    Err(e) => {
                        ctx.error("Error reading from connection", &[("err", &e.to_string())]);
                        return false;
                    }
                }
            }
            if !matched {
                ctx.error("Regexp did not match", &[("regexp", re.as_str())]);
                register_regex(&mut ctx.metrics, 1.0);
                return false;
            }
        }
        if let Some(send) = &qr.send {
            // Like Go's Regexp.Expand: `${1}`/`$name` from the last match.
            let text = match &caps_text {
                Some((re, line)) => match re.captures(line) {
                    Some(c) => {
                        let mut out = String::new();
                        c.expand(send, &mut out);
                        out
                    }
                    None => send.clone(),
                },
                None => send.clone(),
            };
            ctx.info("Sending line", &[("line", &text)]);
            if let Err(e) = conn.write_all(format!("{text}\n").as_bytes()).await {
                ctx.error("Failed to send", &[("err", &e.to_string())]);
                return false;
            }
        }
        if qr.starttls {
            let Conn::Plain(reader) = conn else {
                ctx.error("STARTTLS on a connection already using TLS", &[]);
                return false;
            };
            let tcp = reader.into_inner();
            match tls::handshake(tcp, &t.tls_config, &host, &[]).await {
                Ok(s) => {
                    ctx.info("TLS Handshake (STARTTLS) succeeded", &[]);
                    tls::record(
                        &mut ctx.metrics,
                        s.get_ref().1,
                        !t.tls_config.insecure_skip_verify,
                    );
                    conn = Conn::Tls(Box::new(BufReader::new(s)));
                }
                Err(e) => {
                    ctx.error("TLS Handshake (STARTTLS) failed", &[("err", &e)]);
                    return false;
                }
            }
        }
    }
    true
}
