//! The HTTP server loop: axum's router on hyper's HTTP/1 connections, with
//! the limits a long-running server needs and `axum::serve` does not set.
//!
//! - Header read timeout: a connection must send a request's headers within
//!   `header_read_timeout` of being accepted or of its previous response
//!   (so it also closes idle keep-alive connections); slow-header and idle
//!   sockets cannot pile up.
//! - At most `max_connections` connections at once (`--web.max-connections`,
//!   Prometheus' default 512): beyond it new connections wait in the
//!   kernel's backlog until one closes, and the limit is logged and counted.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower::ServiceExt;

pub use crate::settings::{ServeOptions, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS};

/// Descriptors kept for everything but HTTP connections (targets, the
/// store, remote write, probes), at least this many or a quarter.
const RESERVED_FDS: u64 = 64;

/// `--web.max-connections`, lowered (and logged) when the open-files limit
/// could not hold that many connections besides the descriptors klaxon
/// needs otherwise: past it, `accept` fails and nothing, `/-/healthy`
/// included, gets in.
pub fn connections_within(max: usize, nofile: Option<u64>) -> usize {
    let Some(limit) = nofile else {
        return max;
    };
    let room = limit.saturating_sub(RESERVED_FDS.max(limit / 4)).max(16);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if room < max {
        tracing::warn!(
            max_connections = max,
            open_files_limit = limit,
            using = room,
            "the open files limit leaves room for fewer connections than --web.max-connections; raise `ulimit -n`"
        );
        room
    } else {
        max
    }
}

/// How often the "connection limit reached" warning may repeat.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (plain TCP, or the TLS listener of
/// `--web.config.file`) until `shutdown` resolves, then lets open
/// connections finish their request.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    opts: ServeOptions,
    limit_hits: crate::metrics::Counter,
    shutdown: impl std::future::Future<Output = ()>,
) where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut last_warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                limit_hits.inc();
                if last_warned.is_none_or(|t| t.elapsed() >= LIMIT_LOG_EVERY) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(
                        max_connections = opts.max_connections,
                        "connection limit reached; new connections wait until one closes (--web.max-connections)"
                    );
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        // The listener backs off on EMFILE and friends itself.
        let (stream, peer) = tokio::select! {
            x = listener.accept() => x,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                // What `into_make_service_with_connect_info` provided: the
                // peer address for the audit log and per-address limits.
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(opts.header_read_timeout)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "HTTP connection");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn connections_fit_the_open_files_limit() {
        use super::connections_within as f;
        assert_eq!(f(512, None), 512);
        assert_eq!(f(512, Some(1 << 20)), 512);
        assert_eq!(f(512, Some(256)), 192);
        assert_eq!(f(512, Some(1024)), 512);
        assert_eq!(f(512, Some(20)), 16);
    }
}
