//! Cost of the operations layer on every API request: the whole middleware
//! (request id, auth, rate limit, metrics, access log) against the same
//! router without it, and its parts (token check, id generation, histogram).

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use klaxon::ops::auth::{Authorizer, Role};
use klaxon::ops::config::{AuthConfig, CommandCenterConfig, RateLimitConfig, TokenConfig};
use klaxon::ops::{Ops, OpsOptions, RequestId};
use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::sync::Arc;
use tower::ServiceExt;

fn auth_config() -> AuthConfig {
    AuthConfig {
        tokens: (0..10)
            .map(|i| TokenConfig {
                name: format!("t{i}"),
                sha256: Sha256::digest(format!("token-{i}").as_bytes()).into(),
                roles: vec![Role::Viewer],
                tenants: Vec::new(),
            })
            .collect(),
        anonymous_role: Some(None),
        probe_role: None,
        rate_limit: Some(RateLimitConfig {
            requests_per_second: 1e12,
            burst: u32::MAX,
        }),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let registry = klaxon::metrics::Registry::new();
    let store = Arc::new(klaxon::store::Store::open_in_memory().unwrap_or_else(|e| panic!("{e}")));
    let cfg = auth_config();
    let ops = Ops::new(OpsOptions {
        registry: &registry,
        events: klaxon::events::Events::new(store.clone()),
        maintenance: Arc::new(klaxon::maintenance::Maintenance::new()),
        reload: Arc::new(klaxon::ops::NoReload),
        store,
        auth: Some(&cfg),
        command_center: &CommandCenterConfig::default(),
        listen_is_loopback: true,
        external_host: None,
    });
    let plain: Router = Router::new().route("/api/v1/x", get(|| async { "ok" }));
    let layered = plain.clone().layer(axum::middleware::from_fn_with_state(
        ops,
        klaxon::api::middleware::layer,
    ));
    let req = || {
        Request::get("/api/v1/x")
            .header("authorization", "Bearer token-9")
            .body(Body::empty())
            .unwrap_or_default()
    };
    let mut g = c.benchmark_group("ops_request");
    g.bench_function("router_without_layer", |b| {
        b.iter(|| rt.block_on(plain.clone().oneshot(req())))
    });
    g.bench_function("router_with_ops_layer", |b| {
        b.iter(|| rt.block_on(layered.clone().oneshot(req())))
    });
    g.finish();

    let a = Authorizer::new(Some(&cfg), false);
    c.bench_function("authenticate_10_tokens", |b| {
        b.iter(|| a.authenticate(black_box(Some("Bearer token-9"))))
    });
    c.bench_function("request_id_generate", |b| b.iter(RequestId::generate));
    let h = registry.histogram_vec(
        "b_seconds",
        "b",
        &["route"],
        klaxon::metrics::DEFAULT_BUCKETS,
    );
    c.bench_function("histogram_observe_labelled", |b| {
        b.iter(|| {
            h.with(black_box(&["/api/v1/query"]))
                .observe(black_box(0.042))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
