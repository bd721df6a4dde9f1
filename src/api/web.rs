//! Where klaxon is reachable: `--web.external-url` and `--web.route-prefix`
//! with Prometheus' semantics, and Prometheus' classic `/graph?g0.expr=…`
//! links opened on the UI's graph page.
//!
//! The external URL is what klaxon writes into links (`$externalURL` in
//! templates, alerts' `generatorURL`, runbook and silence links in
//! notifications). The route prefix is where the HTTP server serves
//! everything (API, UI, its assets, `/metrics`); it defaults to the external
//! URL's path, so a klaxon behind a proxy at `https://ops.example.org/klaxon/`
//! needs only `--web.external-url`.

use axum::extract::Request;
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// A bad `--web.external-url` or `--web.route-prefix`.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("--web.external-url {url:?}: {reason}")]
    ExternalUrl { url: String, reason: String },
    #[error("--web.route-prefix {0:?}: must be a path starting with /")]
    RoutePrefix(String),
}

/// The resolved external URL and route prefix, and the web config file.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// Without a trailing slash (`http://host:9470`, `https://h/klaxon`),
    /// as Prometheus' `$externalURL`.
    pub external_url: String,
    /// `/` or a path without a trailing slash (`/klaxon`).
    pub route_prefix: String,
    /// `--web.config.file`: TLS, basic auth users, response headers.
    pub config: Option<std::sync::Arc<super::webconfig::WebConfig>>,
}

impl WebOptions {
    /// Resolves the flags. Without `--web.external-url` the URL is
    /// `http://<host>:<port>` of `listen`, where an unspecified address
    /// (`0.0.0.0`, `[::]`, empty) becomes this machine's hostname, as in
    /// Prometheus (a specific address such as 127.0.0.1 is kept: it is what
    /// a user of that listener can reach). The route prefix defaults to the
    /// external URL's path.
    pub fn resolve(
        external_url: Option<&str>,
        route_prefix: Option<&str>,
        listen: &str,
    ) -> Result<WebOptions, WebError> {
        let external_url = match external_url.filter(|u| !u.is_empty()) {
            Some(u) => normalize_external(u)?,
            None => default_external(listen),
        };
        let route_prefix = match route_prefix.filter(|p| !p.is_empty()) {
            Some(p) => {
                if !p.starts_with('/') {
                    return Err(WebError::RoutePrefix(p.to_string()));
                }
                clean_prefix(p)
            }
            None => clean_prefix(url_path(&external_url)),
        };
        Ok(WebOptions {
            external_url,
            route_prefix,
            config: None,
        })
    }

    /// Options for a listener with nothing configured (tests, embedders).
    pub fn for_listen(listen: &str) -> WebOptions {
        WebOptions {
            external_url: default_external(listen),
            route_prefix: "/".to_string(),
            config: None,
        }
    }

    /// `path` (starting with `/`) under the route prefix.
    pub fn path(&self, path: &str) -> String {
        if self.route_prefix == "/" {
            path.to_string()
        } else {
            format!("{}{path}", self.route_prefix)
        }
    }
}

fn normalize_external(u: &str) -> Result<String, WebError> {
    let err = |reason: &str| WebError::ExternalUrl {
        url: u.to_string(),
        reason: reason.to_string(),
    };
    let parsed = reqwest::Url::parse(u).map_err(|e| err(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(err("scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(err("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(err("no query or fragment allowed"));
    }
    // Prometheus strips the trailing slashes of the path.
    Ok(u.trim_end_matches('/').to_string())
}

fn default_external(listen: &str) -> String {
    let (host, port) = match listen.rsplit_once(':') {
        Some((h, p)) => (h.trim_matches(['[', ']']), p),
        None => (listen, "80"),
    };
    let host = if host.is_empty() || host == "0.0.0.0" || host == "::" {
        hostname()
    } else {
        host.to_string()
    };
    if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The path of an absolute URL (`""` when it has none).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("", |i| &rest[i..])
}

fn clean_prefix(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else if t.starts_with('/') {
        t.to_string()
    } else {
        format!("/{t}")
    }
}

/// Serves `inner` under `prefix`: `{prefix}/x` reaches `inner` as `/x`,
/// `{prefix}` and `/` redirect to `{prefix}/` (the UI), anything else is
/// 404. With prefix `/` this is `inner` itself.
pub fn with_prefix(inner: Router, prefix: &str) -> Router {
    if prefix == "/" {
        return inner;
    }
    let prefix = prefix.to_string();
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(move |req, next| {
            strip_prefix(prefix.clone(), req, next)
        }))
}

async fn strip_prefix(prefix: String, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/" || path == prefix {
        return redirect(&format!("{prefix}/"));
    }
    let Some(rest) = path.strip_prefix(prefix.as_str()) else {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    };
    if !rest.starts_with('/') {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    }
    let pq = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = pq.parse().ok();
    match Uri::from_parts(parts) {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad request path\n").into_response(),
    }
    next.run(req).await
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// The UI route (`#/graph?g0.expr=…`) for Prometheus' classic graph query
/// string (`g0.expr=…&g0.tab=1&g0.range_input=1h&g1.expr=…`). The UI keeps
/// its panels in that same format (ui/lib/panels.js reads every `gN.`
/// option), so the panel keys pass through in their order; anything else
/// in the query is dropped.
pub fn classic_graph_route(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let is_panel_key = k
            .strip_prefix('g')
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(n, field)| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !field.is_empty()
            });
        if is_panel_key {
            out.append_pair(&k, &v);
        }
    }
    let q = out.finish();
    if q.is_empty() {
        "#/graph".to_string()
    } else {
        format!("#/graph?{q}")
    }
}

/// `GET /graph`: Prometheus' classic graph links (the `generatorURL` of
/// every alert, the runbooks' query links) open the UI's graph page. The
/// redirect is relative (`./#/graph?…`), so it works under any route prefix.
pub async fn classic_graph(uri: Uri) -> Response {
    redirect(&format!(
        "./{}",
        classic_graph_route(uri.query().unwrap_or(""))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_prometheus_defaults() {
        let w = WebOptions::resolve(None, None, "127.0.0.1:9470").unwrap();
        assert_eq!(w.external_url, "http://127.0.0.1:9470");
        assert_eq!(w.route_prefix, "/");
        let w = WebOptions::resolve(None, None, "0.0.0.0:9470").unwrap();
        assert_eq!(w.external_url, format!("http://{}:9470", hostname()));
        assert!(!w.external_url.contains("0.0.0.0"));
        let w = WebOptions::resolve(Some("https://ops.example.org/klaxon/"), None, "x:1").unwrap();
        assert_eq!(w.external_url, "https://ops.example.org/klaxon");
        assert_eq!(w.route_prefix, "/klaxon");
        let w = WebOptions::resolve(Some("https://ops.example.org/a"), Some("/"), "x:1").unwrap();
        assert_eq!(w.route_prefix, "/");
        let w = WebOptions::resolve(None, Some("/p/"), "x:1").unwrap();
        assert_eq!(w.route_prefix, "/p");
        assert_eq!(w.path("/metrics"), "/p/metrics");
    }

    #[test]
    fn rejects_bad_flags() {
        for bad in [
            "ops.example.org",
            "ftp://x/",
            "http://h/?a=1",
            "http://h/#f",
        ] {
            let e = WebOptions::resolve(Some(bad), None, "x:1").unwrap_err();
            assert!(e.to_string().contains("--web.external-url"), "{bad}: {e}");
        }
        assert!(WebOptions::resolve(None, Some("p"), "x:1").is_err());
    }

    #[test]
    fn classic_graph_query_to_ui_route() {
        assert_eq!(
            classic_graph_route("g0.expr=rate(x%5B5m%5D)&g0.tab=1&g0.range_input=6h"),
            "#/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1&g0.range_input=6h"
        );
        // Every panel, in the link's order; other keys are dropped.
        assert_eq!(
            classic_graph_route("g0.expr=a&x=1&g1.expr=b&g1.tab=0&g12.end_input=2026-01-02+03%3A04%3A05&gx.expr=c&g.expr=d"),
            "#/graph?g0.expr=a&g1.expr=b&g1.tab=0&g12.end_input=2026-01-02+03%3A04%3A05"
        );
        assert_eq!(classic_graph_route(""), "#/graph");
        assert_eq!(classic_graph_route("foo=bar"), "#/graph");
    }
}
