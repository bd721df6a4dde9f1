//! The web UI: static files from the top-level `ui/` folder, embedded in the
//! binary so `klaxon run` serves them with no files beside it and no build
//! step (plain JS modules, no Node.js).
//!
//! The pages hold no data of their own: they call the same JSON APIs any
//! client uses, with the user's bearer token, so RBAC stays in one place
//! (the API). That is why the assets themselves are public.
//!
//! Every answer carries a strict Content-Security-Policy: scripts only from
//! this origin as files (no inline script, no eval), so a label value that
//! reaches the DOM cannot run as code even if a page forgot to escape it.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// `default-src 'none'` first, then only what the pages use. `img-src data:`
/// is for the favicon; styles are files (no inline `style=` attributes).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// One embedded file: path under `/ui/`, content type, bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ct:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file under `ui/`. A file a page imports but missing here is a 404
/// in the browser; `tests/it/ui_assets.rs` follows the imports to catch it.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("favicon.svg", SVG),
    asset!("lib/api.js", JS),
    asset!("lib/dom.js", JS),
    asset!("lib/exemplars.js", JS),
    asset!("lib/chart.js", JS),
    asset!("lib/complete.js", JS),
    asset!("lib/matchers.js", JS),
    asset!("lib/metric-browser.js", JS),
    asset!("lib/panels.js", JS),
    asset!("lib/sse.js", JS),
    asset!("lib/time.js", JS),
    asset!("lib/yaml.js", JS),
    asset!("pages/alerts.js", JS),
    asset!("pages/graph.js", JS),
    asset!("pages/rules.js", JS),
    asset!("pages/targets.js", JS),
    asset!("pages/probes.js", JS),
    asset!("pages/tenants.js", JS),
    asset!("pages/deliveries.js", JS),
    asset!("pages/autoheal.js", JS),
    asset!("pages/silences.js", JS),
    asset!("pages/status.js", JS),
];

/// Paths of every embedded asset (for tests and docs).
pub fn asset_paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

/// A strong ETag per asset, computed once: the content changes only with
/// the binary, so browsers revalidate cheaply (`no-cache` + 304) and never
/// run a stale script after an upgrade.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(a.body)))
            .collect()
    })
}

fn serve(index: usize, headers: &HeaderMap) -> Response {
    let Some(a) = ASSETS.get(index) else {
        return not_found();
    };
    let tag = etags().get(index).map(String::as_str).unwrap_or("");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h);
    resp
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn not_found() -> Response {
    let mut r = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "asset not found\n",
    )
        .into_response();
    security_headers(r.headers_mut());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /`: the single page; routing happens in the browser (`#/alerts`).
pub async fn index(headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == "index.html") {
        Some(i) => serve(i, &headers),
        None => not_found(),
    }
}

/// `GET /ui/{*path}`: one embedded asset, 404 for anything else (no
/// filesystem access, so no path traversal to guard against).
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path) {
        Some(i) => serve(i, &headers),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_path_and_a_body() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{}", a.path);
            assert!(
                !ASSETS[i + 1..].iter().any(|b| b.path == a.path),
                "{}",
                a.path
            );
        }
        assert_eq!(etags().len(), ASSETS.len());
    }

    #[test]
    fn csp_forbids_inline_script() {
        let script = CSP
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or("");
        assert_eq!(script, "script-src 'self'");
        assert!(!CSP.contains("unsafe"));
    }
}
