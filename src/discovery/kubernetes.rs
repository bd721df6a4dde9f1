//! stub
pub async fn run(_c: super::config::KubernetesSdConfig, _ctx: super::ProviderCtx) {}
