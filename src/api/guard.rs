//! Browser-facing defaults: what stops a web page open on the same machine
//! from driving klaxon (CSRF) or reading it through a rebound DNS name.
//!
//! - A loopback listener answers only loopback `Host` names (`localhost`,
//!   `*.localhost`, `127.0.0.0/8`, `::1`): a DNS-rebinding page reaches it
//!   under its own name and is refused.
//! - A change (any method but GET/HEAD/OPTIONS) sent by a browser from
//!   another origin is refused: `Sec-Fetch-Site: cross-site|same-site`, or
//!   an `Origin` whose host is not the request's `Host`. Tools (curl,
//!   amtool, Prometheus, Grafana's server-side proxy) send neither.
//! - A change with a body must say what it is: `application/json`, or on
//!   the query routes the form type Prometheus' API reads, or protobuf on
//!   remote write. The types a browser may send cross-origin without asking
//!   first (`text/plain`, forms, multipart) are refused elsewhere.

use axum::http::{header, HeaderMap, Method, StatusCode};

/// Why a request was refused, with the status it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("host {0:?} not allowed on a loopback listener (DNS rebinding protection); use localhost or 127.0.0.1")]
    Host(String),
    #[error("cross-origin request refused ({0})")]
    CrossOrigin(String),
    #[error("unsupported content type {0:?}: send application/json")]
    ContentType(String),
}

impl GuardError {
    pub fn status(&self) -> StatusCode {
        match self {
            GuardError::Host(_) | GuardError::CrossOrigin(_) => StatusCode::FORBIDDEN,
            GuardError::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            GuardError::Host(_) => "bad_host",
            GuardError::CrossOrigin(_) => "cross_origin",
            GuardError::ContentType(_) => "unsupported_media_type",
        }
    }
}

/// Routes whose POST takes Prometheus' form-encoded parameters.
const FORM_ROUTES: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/query_exemplars",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/format_query",
    "/api/v1/admin/tsdb/delete_series",
    "/api/v1/admin/tsdb/snapshot",
];

/// Remote write's body is snappy-compressed protobuf, OTLP's protobuf.
const PROTOBUF_ROUTES: &[&str] = &["/api/v1/write", "/api/v1/otlp/v1/metrics"];

/// Checks one request; `loopback` is whether the listener is, and
/// `external_host` the host of `--web.external-url` (allowed too: the name
/// a reverse proxy in front of a loopback listener forwards).
pub fn check(
    method: &Method,
    route: &str,
    headers: &HeaderMap,
    loopback: bool,
    external_host: Option<&str>,
) -> Result<(), GuardError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if loopback {
        if let Some(h) = host {
            let external = external_host.is_some_and(|e| strip_port(h).eq_ignore_ascii_case(e));
            if !is_loopback_host(h) && !external {
                return Err(GuardError::Host(h.to_string()));
            }
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    check_origin(headers, host)?;
    check_content_type(route, headers)
}

fn check_origin(headers: &HeaderMap, host: Option<&str>) -> Result<(), GuardError> {
    let get = |h: &str| headers.get(h).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(site) = get("sec-fetch-site") {
        // `same-site` is another port or subdomain: another origin still.
        if !matches!(site, "same-origin" | "none") {
            return Err(GuardError::CrossOrigin(format!("Sec-Fetch-Site: {site}")));
        }
    }
    if let Some(origin) = get("origin") {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
        let same = match (origin_host, host) {
            (Some(o), Some(h)) => o.eq_ignore_ascii_case(h),
            _ => false,
        };
        if !same {
            return Err(GuardError::CrossOrigin(format!("Origin: {origin}")));
        }
    }
    Ok(())
}

/// Whether the request has a body (a `Content-Length` above 0, or a
/// chunked one).
fn has_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
}

fn check_content_type(route: &str, headers: &HeaderMap) -> Result<(), GuardError> {
    if !has_body(headers) {
        // `curl -X POST /-/reload`: nothing to misread; the origin check
        // above is what stops a browser here.
        return Ok(());
    }
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let ok = json
        || (FORM_ROUTES.contains(&route) && essence == "application/x-www-form-urlencoded")
        || (PROTOBUF_ROUTES.contains(&route) && essence == "application/x-protobuf");
    if ok {
        Ok(())
    } else {
        Err(GuardError::ContentType(raw.to_string()))
    }
}

/// `localhost`, `*.localhost`, `127.0.0.0/8` and `::1`, with or without a
/// port.
/// The host of a URL (`https://klaxon.example:8443/x` → `klaxon.example`),
/// brackets of an IPv6 literal removed.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = strip_port(authority);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `host:port` → `host`, `[::1]:80` → `::1`.
fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => h,
    }
}

pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, _)) => ip,
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:9470",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1:9470",
            "127.1.2.3",
            "[::1]:9470",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9470",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:9470",
            "[::2]:1",
            "[::1",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn rebinding_refused_on_loopback_only() {
        let m = h(&[("host", "rebind.example:9470")]);
        assert!(matches!(
            check(&Method::GET, "/api/v2/alerts", &m, true, None),
            Err(GuardError::Host(_))
        ));
        assert_eq!(
            check(&Method::GET, "/api/v2/alerts", &m, false, None),
            Ok(())
        );
        // The external URL's host is what a reverse proxy forwards.
        assert_eq!(
            check(
                &Method::GET,
                "/api/v2/alerts",
                &m,
                true,
                Some("rebind.example")
            ),
            Ok(())
        );
        assert_eq!(
            url_host("https://Rebind.example:8443/kx"),
            Some("rebind.example".into())
        );
        assert_eq!(url_host("http://[::1]:9470"), Some("::1".into()));
        assert_eq!(url_host("http://u:p@h.example/"), Some("h.example".into()));
        // HTTP/1.0 without Host: nothing to check.
        assert_eq!(
            check(&Method::GET, "/-/healthy", &HeaderMap::new(), true, None),
            Ok(())
        );
    }

    #[test]
    fn cross_origin_writes_refused() {
        let post = Method::POST;
        let json = [
            ("host", "127.0.0.1:9470"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = json.to_vec();
            v.push(extra);
            h(&v)
        };
        assert_eq!(
            check(&post, "/api/v2/silences", &h(&json), true, None),
            Ok(())
        );
        for bad in [
            ("origin", "http://evil.example"),
            ("origin", "null"),
            ("origin", "http://127.0.0.1:9999"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            assert!(
                matches!(
                    check(&post, "/api/v2/silences", &with(bad), true, None),
                    Err(GuardError::CrossOrigin(_))
                ),
                "{bad:?}"
            );
        }
        for ok in [
            ("origin", "http://127.0.0.1:9470"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-site", "none"),
        ] {
            assert_eq!(
                check(&post, "/api/v2/silences", &with(ok), true, None),
                Ok(()),
                "{ok:?}"
            );
        }
        // Reads from anywhere (the browser keeps the answer from the page).
        let read = h(&[
            ("host", "127.0.0.1:9470"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(
            check(&Method::GET, "/api/v2/alerts", &read, true, None),
            Ok(())
        );
    }

    #[test]
    fn writes_must_declare_json() {
        let post = Method::POST;
        let body = |ct: &'static str| h(&[("content-type", ct), ("content-length", "10")]);
        for bad in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
        ] {
            assert!(
                matches!(
                    check(&post, "/api/v2/silences", &body(bad), true, None),
                    Err(GuardError::ContentType(_))
                ),
                "{bad}"
            );
        }
        let no_type = h(&[("transfer-encoding", "chunked")]);
        assert!(check(&post, "/api/v2/alerts", &no_type, true, None).is_err());
        assert_eq!(
            check(
                &post,
                "/api/v2/silences",
                &body("Application/JSON; charset=utf-8"),
                true,
                None
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &post,
                "/api/v1/query",
                &body("application/x-www-form-urlencoded"),
                true,
                None
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &post,
                "/api/v1/write",
                &body("application/x-protobuf"),
                true,
                None
            ),
            Ok(())
        );
        // An empty body needs no type (`curl -X POST /-/reload`).
        let empty = h(&[("content-length", "0"), ("content-type", "text/plain")]);
        assert_eq!(check(&post, "/-/reload", &empty, true, None), Ok(()));
        assert_eq!(
            check(&post, "/-/reload", &HeaderMap::new(), true, None),
            Ok(())
        );
    }
}
