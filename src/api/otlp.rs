//! `POST /api/v1/otlp/v1/metrics`: the OTLP metrics receiver
//! ([`crate::otlp::Receiver`]) when `--web.enable-otlp-receiver` is on,
//! else Prometheus' 404. Protobuf or JSON bodies, plain or gzip.

use super::remote_write::text;
use crate::otlp::{gunzip, Receiver, MAX_REQUEST_BYTES};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use std::sync::Arc;

/// The route: `recv` (`None`: the receiver is off) takes the requests.
pub fn route<S: Clone + Send + Sync + 'static>(recv: Option<Arc<Receiver>>) -> MethodRouter<S> {
    let Some(recv) = recv else {
        return post(disabled);
    };
    post(write)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(recv)
}

async fn disabled() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "otlp write receiver needs to be enabled with --web.enable-otlp-receiver",
    )
}

async fn write(State(recv): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = match content_type.as_str() {
        "" | "application/x-protobuf" => false,
        "application/json" => true,
        _ => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "unsupported content type {content_type:?}: klaxon's OTLP receiver takes application/x-protobuf or application/json"
                ),
            )
        }
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("") | Some("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(e) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("unsupported content encoding {e:?}"),
            )
        }
    };
    // Decoding and appending a large batch is CPU work: off the async
    // workers.
    let res = tokio::task::spawn_blocking(move || {
        let plain;
        let body: &[u8] = if gzip {
            plain = gunzip(&body)?;
            &plain
        } else {
            &body
        };
        if json {
            recv.receive_json(body)
        } else {
            recv.receive(body)
        }
    })
    .await;
    match res {
        // An empty ExportMetricsServiceResponse, in the request's encoding.
        Ok(Ok(_)) if json => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Ok(Ok(_)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "OTLP write refused");
            text(e.status(), &e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "OTLP write task failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
