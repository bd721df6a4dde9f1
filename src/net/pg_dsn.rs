//! PostgreSQL connection strings (the store's `storage.dsn` and the postgres
//! exporter's DSNs), in both forms postgres_exporter accepts
//! (`postgresql://user:pass@host:port/db?sslmode=disable` and
//! `host=... port=... user=...`). Nothing here ever formats the DSN: it may
//! hold a password, and only `host:port` (the `server` label) leaves.

use tokio_postgres::config::{Host, SslMode};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DsnError {
    #[error("invalid connection string: {0}")]
    Invalid(String),
    #[error(
        "sslmode=require is not supported: klaxon connects without TLS (use a loopback or \
         otherwise trusted network and sslmode=disable or prefer)"
    )]
    TlsRequired,
    #[error("connection string names no host")]
    NoHost,
}

/// A parsed DSN and the label postgres_exporter derives from it.
#[derive(Clone, Debug)]
pub struct ParsedDsn {
    pub config: tokio_postgres::Config,
    /// `host:port`, as postgres_exporter 0.11's `server` label.
    pub server: String,
}

/// Parses and checks one DSN.
pub fn parse(dsn: &str) -> Result<ParsedDsn, DsnError> {
    let config: tokio_postgres::Config =
        dsn.trim().parse().map_err(|e: tokio_postgres::Error| {
            // tokio-postgres' parse errors name the option, never its value.
            DsnError::Invalid(e.to_string())
        })?;
    if config.get_ssl_mode() != SslMode::Disable && config.get_ssl_mode() != SslMode::Prefer {
        return Err(DsnError::TlsRequired);
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => return Err(DsnError::NoHost),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    Ok(ParsedDsn {
        server: format!("{host}:{port}"),
        config,
    })
}

/// postgres_exporter's `DATA_SOURCE_NAME`: several DSNs separated by commas.
pub fn split_env(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A `dsn_file`: one DSN per line; blank lines and `#` comments skipped.
pub fn split_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_label_is_host_port_in_both_forms() {
        let u = parse("postgresql://mon:s3cret@db.example:6543/app?sslmode=disable").unwrap();
        assert_eq!(u.server, "db.example:6543");
        let k = parse("host=127.0.0.1 user=postgres password=x dbname=postgres").unwrap();
        assert_eq!(k.server, "127.0.0.1:5432");
    }

    #[test]
    fn tls_required_is_refused_and_errors_do_not_leak_secrets() {
        assert_eq!(
            parse("postgresql://u:hunter2@h/db?sslmode=require").unwrap_err(),
            DsnError::TlsRequired
        );
        let e = parse("host=h password=hunter2 bogus_option=1").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn env_and_file_lists() {
        assert_eq!(split_env("a=1, b=2,,"), vec!["a=1", "b=2"]);
        assert_eq!(
            split_file("# c\n\nhost=a\n host=b \n"),
            vec!["host=a", "host=b"]
        );
    }
}
