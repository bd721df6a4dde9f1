//! The HTTP prober. Written on hyper's connection-level client over our own
//! TCP/TLS connect so each phase blackbox reports (resolve, connect, tls,
//! processing, transfer) is measured where it happens, summed over
//! redirects, and so the peer certificate chain is at hand.

use super::module::{Compression, HeaderMatch, HttpModule};
use super::{resolve, tls, Ctx, ProbeError, ProbeMetrics};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use reqwest::Url;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

const DUR: &str = "probe_http_duration_seconds";
const DUR_HELP: &str = "Duration of http request by phase, summed over all redirects";
const PHASES: [&str; 5] = ["connect", "processing", "resolve", "tls", "transfer"];
/// Go's http.Client stops after this many redirects; blackbox too.
const MAX_REDIRECTS: u32 = 10;

/// Parses a target as blackbox does: `http://` is assumed when no scheme is
/// given; any scheme other than http/https is refused up front.
pub fn parse_target(target: &str) -> Result<Url, ProbeError> {
    let lower = target.to_ascii_lowercase();
    let with_scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
        target.to_string()
    } else if let Some((scheme, _)) = target.split_once("://") {
        return Err(ProbeError::UnsupportedScheme {
            target: target.to_string(),
            scheme: scheme.to_string(),
        });
    } else {
        format!("http://{target}")
    };
    let bad = |reason: String| ProbeError::BadTarget {
        target: target.to_string(),
        reason,
    };
    let url = Url::parse(&with_scheme).map_err(|e| bad(e.to_string()))?;
    match url.host_str() {
        Some(h) if !h.is_empty() => Ok(url),
        _ => Err(bad("missing host".into())),
    }
}

/// Aborts the spawned connection task when the probe ends or times out.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Response {
    status: u16,
    version: hyper::Version,
    headers: HeaderMap,
    /// Go's `ContentLength`: the header's value, -1 when unknown.
    content_length: f64,
    body: Vec<u8>,
    body_error: Option<String>,
}

fn add_phase(m: &mut ProbeMetrics, phase: &str, secs: f64) {
    m.add_labeled(DUR, DUR_HELP, &[("phase", phase)], secs);
}

/// Sends one request on a fresh connection and reads the response. Phase
/// times are added to `ctx` as each phase completes, so a timeout keeps
/// what was measured.
async fn exchange<S>(
    ctx: &mut Ctx,
    io: S,
    req: hyper::Request<Full<Bytes>>,
    limit: u64,
) -> Result<Response, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t0 = Instant::now();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let _guard = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    add_phase(&mut ctx.metrics, "processing", (t1 - t0).as_secs_f64());
    let (parts, mut body) = resp.into_parts();
    let content_length = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
        .unwrap_or(-1.0);
    let mut data = Vec::new();
    let mut body_error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(chunk) = f.into_data() {
                    data.extend_from_slice(&chunk);
                    if limit > 0 && data.len() as u64 > limit {
                        data.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                        body_error = Some("http: request body too large".to_string());
                        break;
                    }
                }
            }
            Err(e) => {
                body_error = Some(e.to_string());
                break;
            }
        }
    }
    if body_error.is_none() {
        add_phase(&mut ctx.metrics, "transfer", t1.elapsed().as_secs_f64());
    }
    Ok(Response {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        content_length,
        body: data,
        body_error,
    })
}

fn build_request(
    h: &HttpModule,
    url: &Url,
    method: &str,
    body: Option<&str>,
) -> Result<hyper::Request<Full<Bytes>>, String> {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host = match (url.host_str(), url.port()) {
        (Some(hs), Some(p)) => format!("{hs}:{p}"),
        (Some(hs), None) => hs.to_string(),
        _ => return Err("missing host".into()),
    };
    let mut b = hyper::Request::builder().method(method).uri(path);
    let mut has_host = false;
    let mut has_ua = false;
    let mut has_ae = false;
    for (k, v) in &h.headers {
        if k.eq_ignore_ascii_case("host") {
            has_host = true;
        }
        if k.eq_ignore_ascii_case("user-agent") {
            has_ua = true;
        }
        if k.eq_ignore_ascii_case("accept-encoding") {
            has_ae = true;
        }
        b = b.header(k.as_str(), v.as_str());
    }
    if !has_host {
        b = b.header("Host", host);
    }
    if !has_ua {
        b = b.header("User-Agent", concat!("klaxon/", env!("CARGO_PKG_VERSION")));
    }
    if let Some(c) = h.compression {
        if !has_ae {
            let v = match c {
                Compression::Gzip => "gzip",
                Compression::Deflate => "deflate",
                Compression::Identity => "identity",
            };
            b = b.header("Accept-Encoding", v);
        }
    }
    if let Some((user, pass, pass_file)) = &h.basic_auth {
        use base64::Engine as _;
        let pass = match (pass, pass_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("unable to read password file {f}: {e}"))?
                .trim()
                .to_string(),
            (None, None) => String::new(),
        };
        let tok = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        b = b.header("Authorization", format!("Basic {tok}"));
    } else if let Some(t) = &h.bearer_token {
        b = b.header("Authorization", format!("Bearer {t}"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        b = b.header("Content-Length", body.len().to_string());
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())
}

/// Go's header-regex checks; false when the probe must fail.
fn check_headers(ctx: &mut Ctx, headers: &HeaderMap, h: &HttpModule) -> bool {
    let values = |m: &HeaderMatch| -> Vec<String> {
        headers
            .get_all(m.header.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    for m in &h.fail_if_header_matches {
        let vs = values(m);
        if vs.is_empty() {
            if !m.allow_missing {
                ctx.error("Missing required header", &[("header", &m.header)]);
                return false;
            }
            continue;
        }
        if vs.iter().any(|v| m.regexp.is_match(v)) {
            ctx.error(
                "Header matched regular expression",
                &[("header", &m.header), ("regexp", m.regexp.as_str())],
            );
            return false;
        }
    }
    for m in &h.fail_if_header_not_matches {
        let vs = values(m);
        if vs.is_empty() {
            if !m.allow_missing {
                ctx.error("Missing required header", &[("header", &m.header)]);
                return false;
            }
            continue;
        }
        if !vs.iter().any(|v| m.regexp.is_match(v)) {
            ctx.error(
                "Header did not match regular expression",
                &[("header", &m.header), ("regexp", m.regexp.as_str())],
            );
            return false;
        }
    }
    true
}

fn check_body(ctx: &mut Ctx, body: &[u8], h: &HttpModule) -> bool {
    let text = String::from_utf8_lossy(body);
    for re in &h.fail_if_body_matches {
        if re.is_match(&text) {
            ctx.error(
                "Body matched regular expression",
                &[("regexp", re.as_str())],
            );
            return false;
        }
    }
    for re in &h.fail_if_body_not_matches {
        if !re.is_match(&text) {
            ctx.error(
                "Body did not match regular expression",
                &[("regexp", re.as_str())],
            );
            return false;
        }
    }
    true
}

/// Decompressed bodies are capped like raw ones: at `body_size_limit`, or
/// at this much without one, so a small compressed body from the target
/// cannot expand into all of klaxon's memory.
const MAX_DECOMPRESSED: u64 = 256 << 20;

fn decompress(c: Compression, raw: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let cap = if limit > 0 { limit } else { MAX_DECOMPRESSED };
    let mut out = Vec::new();
    let r = match c {
        Compression::Gzip => flate2::read::GzDecoder::new(raw)
            .take(cap + 1)
            .read_to_end(&mut out),
        Compression::Deflate => flate2::read::DeflateDecoder::new(raw)
            .take(cap + 1)
            .read_to_end(&mut out),
        Compression::Identity => {
            out.extend_from_slice(raw);
            Ok(out.len())
        }
    };
    r.map_err(|e| e.to_string())?;
    if out.len() as u64 > cap {
        return Err(format!("decompressed body larger than {cap} bytes"));
    }
    Ok(out)
}

/// One hop: resolve (if the host changed), connect, TLS, exchange.
struct Hop {
    resp: Response,
    tls_metrics: Option<ProbeMetrics>,
}

async fn hop(
    ctx: &mut Ctx,
    h: &HttpModule,
    url: &Url,
    ip: IpAddr,
    method: &str,
    body: Option<&str>,
) -> Result<Hop, String> {
    let port = url.port_or_known_default().unwrap_or(80);
    let req = build_request(h, url, method, body)?;
    let t0 = Instant::now();
    let tcp = TcpStream::connect(SocketAddr::new(ip, port))
        .await
        .map_err(|e| format!("dial tcp {}: connect: {e}", SocketAddr::new(ip, port)))?;
    let connected = Instant::now();
    if url.scheme() == "https" {
        let host = url.host_str().unwrap_or_default();
        let stream = tls::handshake(tcp, &h.tls, host, &[b"http/1.1"]).await?;
        add_phase(&mut ctx.metrics, "connect", (connected - t0).as_secs_f64());
        add_phase(&mut ctx.metrics, "tls", connected.elapsed().as_secs_f64());
        let mut tm = ProbeMetrics::default();
        tls::record(&mut tm, stream.get_ref().1, !h.tls.insecure_skip_verify);
        let resp = exchange(ctx, stream, req, h.body_size_limit).await?;
        Ok(Hop {
            resp,
            tls_metrics: Some(tm),
        })
    } else {
        add_phase(&mut ctx.metrics, "connect", (connected - t0).as_secs_f64());
        let resp = exchange(ctx, tcp, req, h.body_size_limit).await?;
        Ok(Hop {
            resp,
            tls_metrics: None,
        })
    }
}

/// Runs the HTTP probe; true on success.
pub async fn probe(ctx: &mut Ctx, h: &HttpModule, target: &str) -> bool {
    let m = &mut ctx.metrics;
    for p in PHASES {
        m.set_labeled(DUR, DUR_HELP, &[("phase", p)], 0.0);
    }
    m.set(
        "probe_http_content_length",
        "Length of http content response",
        0.0,
    );
    m.set(
        "probe_http_uncompressed_body_length",
        "Length of uncompressed response body",
        0.0,
    );
    m.set("probe_http_redirects", "The number of redirects", 0.0);
    m.set(
        "probe_http_ssl",
        "Indicates if SSL was used for the final redirect",
        0.0,
    );
    m.set("probe_http_status_code", "Response HTTP status code", 0.0);
    m.set(
        "probe_http_version",
        "Returns the version of HTTP of the probe response",
        0.0,
    );
    m.set(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        0.0,
    );
    let mut url = match parse_target(target) {
        Ok(u) => u,
        Err(e) => {
            ctx.error("Could not parse target URL", &[("err", &e.to_string())]);
            return false;
        }
    };
    let host = url.host_str().unwrap_or_default().to_string();
    let (mut ip, lookup) = match resolve::choose(ctx, &host, &h.ip).await {
        Ok(v) => v,
        Err(_) => return false,
    };
    add_phase(&mut ctx.metrics, "resolve", lookup);
    let mut method = h.method.clone();
    let mut body: Option<String> = h.body.clone();
    let mut redirects: u32 = 0;
    ctx.info(
        "Making HTTP request",
        &[("url", url.as_str()), ("host", &host)],
    );
    let final_hop = loop {
        let hop = match hop(ctx, h, &url, ip, &method, body.as_deref()).await {
            Ok(hp) => hp,
            Err(e) => {
                ctx.error("Error for HTTP request", &[("err", &e)]);
                ctx.metrics.set(
                    "probe_http_redirects",
                    "The number of redirects",
                    f64::from(redirects),
                );
                return false;
            }
        };
        let status = hop.resp.status;
        let location = hop
            .resp
            .headers
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        let Some(loc) = location.filter(|_| is_redirect) else {
            break hop;
        };
        redirects += 1;
        ctx.info("Received redirect", &[("location", &loc)]);
        if !h.follow_redirects || redirects > MAX_REDIRECTS {
            ctx.info("Not following redirect", &[]);
            break hop;
        }
        let next = match url.join(&loc) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            Ok(u) => {
                ctx.error(
                    "Error for HTTP request",
                    &[(
                        "err",
                        &format!("unsupported protocol scheme {:?}", u.scheme()),
                    )],
                );
                return false;
            }
            Err(e) => {
                ctx.error("Error for HTTP request", &[("err", &e.to_string())]);
                return false;
            }
        };
        if matches!(status, 301..=303) && method != "HEAD" {
            method = "GET".into();
            body = None;
        }
        let next_host = next.host_str().unwrap_or_default().to_string();
        if next_host != url.host_str().unwrap_or_default() {
            let t = Instant::now();
            let r = resolve::choose(ctx, &next_host, &h.ip).await;
            add_phase(&mut ctx.metrics, "resolve", t.elapsed().as_secs_f64());
            match r {
                Ok((a, _)) => ip = a,
                Err(_) => return false,
            }
        }
        url = next;
    };
    ctx.metrics.set(
        "probe_http_redirects",
        "The number of redirects",
        f64::from(redirects),
    );
    finish(ctx, h, final_hop)
}

/// Judges the final response, as blackbox does after `client.Do`.
fn finish(ctx: &mut Ctx, h: &HttpModule, hop: Hop) -> bool {
    let r = hop.resp;
    ctx.status = Some(r.status);
    let code = r.status.to_string();
    ctx.info("Received HTTP response", &[("status_code", &code)]);
    let mut success = if !h.valid_status_codes.is_empty() {
        let ok = h.valid_status_codes.contains(&r.status);
        if !ok {
            let want: Vec<String> = h.valid_status_codes.iter().map(u16::to_string).collect();
            ctx.error(
                "Invalid HTTP response status code",
                &[
                    ("status_code", &code),
                    ("valid_status_codes", &want.join(",")),
                ],
            );
            // The one-line reason says what was wanted and what came.
            ctx.reason = Some(format!(
                "Invalid HTTP response status code: wanted {}, got {code}",
                want.join(" or ")
            ));
        }
        ok
    } else if (200..300).contains(&r.status) {
        true
    } else {
        ctx.error(
            "Invalid HTTP response status code, wanted 2xx",
            &[("status_code", &code)],
        );
        ctx.reason = Some(format!(
            "Invalid HTTP response status code: wanted 2xx, got {code}"
        ));
        false
    };
    let regex_fail = |ctx: &mut Ctx, v: f64| {
        ctx.metrics.set(
            "probe_failed_due_to_regex",
            "Indicates if probe failed due to regex",
            v,
        );
    };
    if success && !(h.fail_if_header_matches.is_empty() && h.fail_if_header_not_matches.is_empty())
    {
        success = check_headers(ctx, &r.headers, h);
        if !success {
            regex_fail(ctx, 1.0);
        }
    }
    let body = match (h.compression, &r.body_error) {
        (Some(c), None) => decompress(c, &r.body, h.body_size_limit),
        (_, Some(e)) => Err(e.clone()),
        (None, None) => Ok(r.body),
    };
    let body_len = match body {
        Ok(b) => {
            if success
                && !(h.fail_if_body_matches.is_empty() && h.fail_if_body_not_matches.is_empty())
            {
                success = check_body(ctx, &b, h);
                regex_fail(ctx, if success { 0.0 } else { 1.0 });
            }
            b.len()
        }
        Err(e) => {
            // blackbox reads the body inside its regex check when regexes
            // are configured, so a read error then counts as a regex failure.
            if success
                && !(h.fail_if_body_matches.is_empty() && h.fail_if_body_not_matches.is_empty())
            {
                regex_fail(ctx, 1.0);
            }
            ctx.error("Failed to read HTTP response body", &[("err", &e)]);
            success = false;
            0
        }
    };
    let (proto, ver) = match r.version {
        hyper::Version::HTTP_09 => ("HTTP/0.9", 0.9),
        hyper::Version::HTTP_10 => ("HTTP/1.0", 1.0),
        hyper::Version::HTTP_11 => ("HTTP/1.1", 1.1),
        hyper::Version::HTTP_2 => ("HTTP/2.0", 2.0),
        _ => ("HTTP/3.0", 3.0),
    };
    if success && !h.valid_http_versions.is_empty() {
        let ok = h
            .valid_http_versions
            .iter()
            .any(|v| v == proto || (v == "HTTP/2" && proto == "HTTP/2.0"));
        if !ok {
            ctx.error("Invalid HTTP version number", &[("version", proto)]);
            success = false;
        }
    }
    ctx.metrics.set(
        "probe_http_version",
        "Returns the version of HTTP of the probe response",
        ver,
    );
    if let Some(lm) = r
        .headers
        .get(hyper::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
    {
        match parse_http_date(lm) {
            Some(t) => ctx.metrics.set(
                "probe_http_last_modified_timestamp_seconds",
                "Returns the Last-Modified HTTP response header in unixtime",
                t as f64,
            ),
            None => ctx.error(
                "Error parsing last-modified header",
                &[("err", &format!("cannot parse {lm:?}"))],
            ),
        }
    }
    match hop.tls_metrics {
        Some(tm) => {
            ctx.metrics.set(
                "probe_http_ssl",
                "Indicates if SSL was used for the final redirect",
                1.0,
            );
            ctx.metrics.merge(tm);
            if h.fail_if_ssl {
                ctx.error("Final request was over SSL", &[]);
                success = false;
            }
        }
        None => {
            if h.fail_if_not_ssl {
                ctx.error("Final request was not over SSL", &[]);
                success = false;
            }
        }
    }
    ctx.metrics.set(
        "probe_http_status_code",
        "Response HTTP status code",
        f64::from(r.status),
    );
    ctx.metrics.set(
        "probe_http_content_length",
        "Length of http content response",
        r.content_length,
    );
    ctx.metrics.set(
        "probe_http_uncompressed_body_length",
        "Length of uncompressed response body",
        body_len as f64,
    );
    success
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "GMT" && *zone != "UTC" {
        return None;
    }
    // The header comes from the probed server: every field is range-checked
    // so no arithmetic below can overflow.
    let d: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as u32 + 1;
    let y: i64 = year.parse().ok().filter(|y| (0..=9999).contains(y))?;
    let mut hms = [0i64; 3];
    let mut fields = time.split(':');
    for (slot, max) in hms.iter_mut().zip([23, 59, 60]) {
        *slot = fields
            .next()?
            .parse()
            .ok()
            .filter(|v| (0..=max).contains(v))?;
    }
    if fields.next().is_some() {
        return None;
    }
    let [hh, mm, ss] = hms;
    let days = crate::model::time::days_from_civil(y, m, d);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn targets() {
        assert!(parse_target("localhost:80").is_ok());
        assert_eq!(
            parse_target("127.0.0.1:8080/x").map(|u| u.to_string()).ok(),
            Some("http://127.0.0.1:8080/x".into())
        );
        assert!(matches!(
            parse_target("gopher://x"),
            Err(ProbeError::UnsupportedScheme { .. })
        ));
    }
}
