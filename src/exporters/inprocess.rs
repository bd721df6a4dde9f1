//! The built-in exporters as in-process scrape jobs: one synthetic scrape
//! config per enabled exporter (`job="host"`, `job="postgres"`, one target
//! whose `instance` is klaxon's listen address or the configured name) and
//! a body source that calls the exporter directly. The target's URL is the
//! HTTP path serving the same data, so `/api/v1/targets` points somewhere
//! real.

use crate::config::GlobalConfig;
use crate::config::{HttpClientConfig, Scheme, TargetGroup};
use crate::exporters::config::ExportersConfig;
use crate::exporters::config::{JobConfig, HOST_JOB, POSTGRES_JOB};
use crate::exporters::host::{collect as host_collect, HostOptions};
use crate::exporters::postgres::{PostgresError, PostgresExporter};
use crate::scrape::config::ScrapeConfig;
use crate::scrape::local::{LocalFuture, LocalSource};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The exporters of one running klaxon, shared by the in-process jobs and
/// the `/metrics/host` and `/metrics/postgres` handlers.
#[derive(Default)]
pub struct Exporters {
    pub host: Arc<HostSource>,
    /// Configured by `exporters.postgres`, or by `DATA_SOURCE_NAME` alone
    /// (then only served at `/metrics/postgres`, as postgres_exporter).
    pub postgres: Option<Arc<PostgresExporter>>,
}

/// What the in-process exporters read from the configuration:
/// `exporters:` and the `global:` scrape defaults their jobs inherit (the
/// whole file converts into it, in `crate::settings`).
#[derive(Clone, Copy, Debug)]
pub struct ExportersSection<'a> {
    pub exporters: &'a ExportersConfig,
    pub global: &'a GlobalConfig,
}

impl Exporters {
    pub fn build<'a>(cfg: impl Into<ExportersSection<'a>>) -> Result<Self, PostgresError> {
        let cfg = cfg.into();
        let postgres = match &cfg.exporters.postgres {
            Some(p) => Some(Arc::new(PostgresExporter::new(p)?)),
            None if std::env::var_os("DATA_SOURCE_NAME").is_some_and(|v| !v.is_empty()) => {
                Some(Arc::new(PostgresExporter::new(&Default::default())?))
            }
            None => None,
        };
        Ok(Exporters {
            host: Arc::new(HostSource::default()),
            postgres,
        })
    }

    /// The in-process scrape jobs the config asks for.
    pub fn scrape_jobs<'a>(
        &self,
        cfg: impl Into<ExportersSection<'a>>,
        listen: &str,
    ) -> Vec<(ScrapeConfig, Arc<dyn LocalSource>)> {
        let cfg = cfg.into();
        let mut out: Vec<(ScrapeConfig, Arc<dyn LocalSource>)> = Vec::new();
        if let Some(j) = &cfg.exporters.host {
            out.push((
                scrape_config(cfg, j, HOST_JOB, "/metrics/host", listen),
                self.host.clone(),
            ));
        }
        if let (Some(j), Some(pg)) = (&cfg.exporters.postgres, &self.postgres) {
            out.push((
                scrape_config(cfg, &j.job, POSTGRES_JOB, "/metrics/postgres", listen),
                pg.clone(),
            ));
        }
        out
    }
}

fn scrape_config(
    cfg: ExportersSection<'_>,
    j: &JobConfig,
    job: &str,
    path: &str,
    listen: &str,
) -> ScrapeConfig {
    let g = &cfg.global;
    let scrape_interval = j.scrape_interval.unwrap_or(g.scrape_interval);
    let scrape_timeout = j
        .scrape_timeout
        .unwrap_or(g.scrape_timeout)
        .min(scrape_interval);
    let mut labels = BTreeMap::new();
    if let Some(i) = &j.instance {
        labels.insert("instance".to_string(), i.clone());
    }
    ScrapeConfig {
        job_name: job.to_string(),
        scrape_interval,
        scrape_timeout,
        metrics_path: path.to_string(),
        scheme: Scheme::Http,
        params: BTreeMap::new(),
        honor_labels: false,
        honor_timestamps: true,
        static_configs: vec![TargetGroup {
            targets: vec![listen.to_string()],
            labels,
            source: "exporters/0".to_string(),
            target_labels: Vec::new(),
        }],
        file_sd_configs: Vec::new(),
        service_discovery: Vec::new(),
        http_client: HttpClientConfig::default(),
        relabel_configs: Vec::new(),
        metric_relabel_configs: Vec::new(),
        sample_limit: g.sample_limit,
        label_limit: g.label_limit,
        label_name_length_limit: g.label_name_length_limit,
        label_value_length_limit: g.label_value_length_limit,
        body_size_limit: 0,
        target_limit: 0,
        scrape_protocols: g.scrape_protocols.clone(),
        enable_compression: false,
        names: Default::default(),
        histograms: g.histograms,
    }
}

/// The host exporter as a body source: the /proc and /sys reads block, so
/// they run on the blocking pool.
#[derive(Default)]
pub struct HostSource {
    pub opts: HostOptions,
}

impl HostSource {
    /// One collection in the text format.
    pub async fn render(&self) -> Result<String, String> {
        let opts = self.opts.clone();
        let fams = tokio::task::spawn_blocking(move || host_collect(&opts))
            .await
            .map_err(|e| format!("host collection: {e}"))?;
        Ok(crate::metrics::encode(&fams, false))
    }
}

impl LocalSource for HostSource {
    fn scrape<'a>(&'a self, buf: &'a mut Vec<u8>) -> LocalFuture<'a> {
        Box::pin(async move {
            buf.extend_from_slice(self.render().await?.as_bytes());
            Ok(())
        })
    }
}

impl LocalSource for PostgresExporter {
    fn scrape<'a>(&'a self, buf: &'a mut Vec<u8>) -> LocalFuture<'a> {
        Box::pin(async move {
            buf.extend_from_slice(self.render().await.as_bytes());
            Ok(())
        })
    }
}
