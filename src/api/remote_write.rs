//! `POST /api/v1/write`: the remote-write receiver
//! ([`crate::remote::receive::Receiver`]) when
//! `--web.enable-remote-write-receiver` is on, else Prometheus' 404.

use crate::remote::receive::{Receiver, MAX_DECOMPRESSED};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use std::sync::Arc;

/// The route: `recv` (`None`: the receiver is off) takes the requests.
pub fn route<S: Clone + Send + Sync + 'static>(recv: Option<Arc<Receiver>>) -> MethodRouter<S> {
    let Some(recv) = recv else {
        return post(disabled);
    };
    // The compressed body can be a little larger than the decompressed
    // limit (snappy's worst case); the exact limit is checked on the
    // snappy header.
    post(write)
        .layer(DefaultBodyLimit::max(snap::raw::max_compress_len(
            MAX_DECOMPRESSED,
        )))
        .with_state(recv)
}

async fn disabled() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "remote write receiver needs to be enabled with --web.enable-remote-write-receiver",
    )
}

async fn write(
    State(recv): State<Arc<Receiver>>,
    ext: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    // Decoding and appending a large batch is CPU work: off the async
    // workers.
    let res = tokio::task::spawn_blocking(move || {
        recv.receive_admitting(&body, &|l| match &scope {
            Some(sc) if !sc.allows(l) => Err(format!(
                "label {} must be one of the token's tenants {:?}",
                sc.label, sc.tenants
            )),
            _ => Ok(()),
        })
    })
    .await;
    match res {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "remote write refused");
            text(e.status(), &e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "remote write task failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Plain text with a trailing newline, like Go's `http.Error`.
pub(super) fn text(code: StatusCode, msg: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}
