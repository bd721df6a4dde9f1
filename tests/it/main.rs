//! The integration tests: one binary, one module per area (as ripgrep's
//! `tests/tests.rs`), so the crate is linked once instead of once per file.
//! Shared starters and peers live in `common`; run one area with
//! `cargo test --test it scrape::` or one test by name.

// Tests: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod notify_deliver_support;
mod probe_support;

mod alerting_alertmanager;
mod anomaly;
mod api;
mod api_blocking;
mod autoheal;
mod cli;
mod config;
mod config_parity;
mod dashboards;
mod discovery;
mod docker_files;
mod exposition_parser;
mod first_hour_ops;
mod ha_postgres;
mod hardening;
mod host_exporter;
mod no_false_alerts;
mod notify_api_amtool;
mod notify_api_prometheus;
mod notify_api_v2;
mod notify_deliver_config;
mod notify_deliver_email;
mod notify_deliver_http;
mod notify_deliver_smtp_tls;
mod notify_e2e;
mod notify_jira;
mod notify_receivers_diff;
mod notify_reload;
mod notify_route_config;
mod notify_route_dispatch;
mod notify_sns_sigv4;
mod ops_commands;
mod ops_events;
mod ops_heartbeat;
mod ops_http;
mod ops_sse;
mod postgres_exporter;
mod probe_blackbox;
mod probe_cli;
mod probe_local;
mod promql_differential;
mod promql_fuzz;
mod promql_parser;
mod promql_series_pass;
mod promqltest;
mod query_api;
mod query_lookback;
mod remote_write_in;
mod remote_write_out;
mod rules_check;
mod rules_datasource;
mod rules_eval;
mod rules_persist;
mod rules_reload;
mod rules_run;
mod rules_template;
mod rules_unittest;
mod scrape;
mod scrape_protobuf;
mod scrape_sharding;
mod shipped_rules;
mod slo;
mod store_backends;
mod store_faults;
mod tenants;
mod tsdb_admin;
mod tsdb_blocks;
mod tsdb_compaction;
mod tsdb_head;
mod tsdb_head_chunks;
mod tsdb_wal;
mod ui_assets;
mod ui_browser;
mod web_config_tls;
mod web_links;
