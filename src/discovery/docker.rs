//! stub
pub async fn run(_c: super::config::DockerSdConfig, _ctx: super::ProviderCtx) {}
