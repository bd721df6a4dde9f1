//! A throwaway PostgreSQL 15 on 127.0.0.1 for integration tests: initdb in a
//! temp dir, a free port, `pg_stat_statements` preloaded. Runs the server
//! binaries through `runuser -u postgres` when the tests run as root
//! (PostgreSQL refuses to run as root), so the temp dir is handed to that
//! user. The server is stopped when the guard drops, also on panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct PgServer {
    pub port: u16,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    as_postgres: bool,
    running: bool,
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    /// Starts a server, or returns `None` (after a loud message) when
    /// PostgreSQL 15 is not installed outside CI. Under `CI=true` a missing
    /// PostgreSQL is a failure.
    pub fn start(extra_conf: &[&str]) -> Option<PgServer> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            assert!(
                !super::is_ci(),
                "PostgreSQL 15 missing under CI ({PG_BIN}): .ci/run must install postgresql-15"
            );
            eprintln!("\n*** SKIPPED: PostgreSQL 15 not installed ({PG_BIN}); postgres tests not run ***\n");
            return None;
        }
        let tmp = tempfile::Builder::new()
            .prefix("klaxon-pg-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().join("data");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(tmp.path())
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown of the temp dir to postgres failed");
        }
        let mut s = PgServer {
            port: super::free_port(),
            dir,
            _tmp: tmp,
            as_postgres,
            running: false,
        };
        let out = s.run(
            "initdb",
            &[
                "-D",
                &s.dir.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             shared_preload_libraries = 'pg_stat_statements'\nmax_connections = 100\nfsync = off\n",
            s.port,
            s.dir.display()
        );
        for l in extra_conf {
            conf.push_str(l);
            conf.push('\n');
        }
        let auto = s.dir.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
        text.push_str(&conf);
        std::fs::write(&auto, text).expect("write postgresql.auto.conf");
        s.start_again();
        s.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        Some(s)
    }

    fn run(&self, bin: &str, args: &[&str]) -> Output {
        let path = Path::new(PG_BIN).join(bin);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        c.args(args)
            .output()
            .unwrap_or_else(|e| panic!("{bin}: {e}"))
    }

    /// A DSN for the superuser on loopback.
    pub fn dsn(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// `host:port`, the `server` label.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs SQL with psql in database `postgres`, returning its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// Runs SQL with psql in database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-At",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server (fast shutdown: sessions are terminated).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let d = self.dir.display().to_string();
        let _ = self.run("pg_ctl", &["-D", &d, "-m", "fast", "-w", "stop"]);
        self.running = false;
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&mut self) {
        let d = self.dir.display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let out = self.run("pg_ctl", &["-D", &d, "-l", &log, "-w", "-t", "30", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let d = self.dir.display().to_string();
            let _ = self.run("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"]);
            self.running = false;
        }
    }
}
