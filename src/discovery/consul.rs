//! stub
pub async fn run(_c: super::config::ConsulSdConfig, _ctx: super::ProviderCtx) {}
