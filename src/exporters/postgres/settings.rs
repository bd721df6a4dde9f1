//! `pg_settings_*`: every numeric and boolean server setting, with
//! postgres_exporter's unit handling: time units become `_seconds`, memory
//! units (including block-sized ones such as `8kB`) become `_bytes`, and a
//! value of -1 ("disabled") is kept as -1 rather than scaled.

use super::fams::Fams;
use super::row::text;
use tokio_postgres::SimpleQueryRow;

pub const SQL: &str = "SELECT name, setting, COALESCE(unit, '') AS unit, short_desc, vartype \
     FROM pg_settings WHERE vartype IN ('bool', 'integer', 'real') \
     AND name <> 'sync_commit_cancel_wait'";

/// The suffix and factor for a `pg_settings.unit`; `None` for a unit
/// postgres_exporter does not know (the setting is skipped).
pub fn unit(unit: &str) -> Option<(&'static str, f64)> {
    let digits = unit.bytes().take_while(|b| b.is_ascii_digit()).count();
    let (mult, base) = unit.split_at(digits);
    let mult: f64 = if mult.is_empty() {
        1.0
    } else {
        mult.parse().ok()?
    };
    let (suffix, f) = match base {
        "" => ("", 1.0),
        "ms" => ("_seconds", 0.001),
        "s" => ("_seconds", 1.0),
        "min" => ("_seconds", 60.0),
        "h" => ("_seconds", 3600.0),
        "d" => ("_seconds", 86400.0),
        "B" => ("_bytes", 1.0),
        "kB" => ("_bytes", 1024.0),
        "MB" => ("_bytes", 1024.0 * 1024.0),
        "GB" => ("_bytes", 1024.0 * 1024.0 * 1024.0),
        "TB" => ("_bytes", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        _ => return None,
    };
    Some((suffix, f * mult))
}

/// One setting row to its family name, help and value.
pub fn convert(
    name: &str,
    setting: &str,
    unit_s: &str,
    desc: &str,
    vartype: &str,
) -> Option<(String, String, f64)> {
    let raw = match vartype {
        "bool" => match setting {
            "on" => 1.0,
            "off" => 0.0,
            _ => return None,
        },
        _ => setting.trim().parse::<f64>().ok()?,
    };
    let (suffix, factor) = unit(unit_s)?;
    let v = if raw == -1.0 { raw } else { raw * factor };
    let metric = format!("pg_settings_{}{}", name.replace(['.', '-'], "_"), suffix);
    let help = match suffix {
        "_seconds" => format!("{desc} [Units converted to seconds.]"),
        "_bytes" => format!("{desc} [Units converted to bytes.]"),
        _ => desc.to_string(),
    };
    Some((metric, help, v))
}

pub fn handle(server: &str, rows: &[SimpleQueryRow], out: &mut Fams) {
    for r in rows {
        let name = text(r, "name");
        match convert(
            name,
            text(r, "setting"),
            text(r, "unit"),
            text(r, "short_desc"),
            text(r, "vartype"),
        ) {
            Some((metric, help, v)) => out.gauge(&metric, &help, &[("server", server)], v),
            None => tracing::debug!(
                setting = name,
                "pg_settings: unknown unit or value, skipped"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_postgres_exporter() {
        let c = |n, s, u, t| convert(n, s, u, "d", t).map(|(m, _, v)| (m, v));
        assert_eq!(
            c("shared_buffers", "16384", "8kB", "integer"),
            Some(("pg_settings_shared_buffers_bytes".into(), 134217728.0))
        );
        assert_eq!(
            c("wal_segment_size", "16777216", "B", "integer"),
            Some(("pg_settings_wal_segment_size_bytes".into(), 16777216.0))
        );
        assert_eq!(
            c("vacuum_cost_delay", "2", "ms", "real"),
            Some(("pg_settings_vacuum_cost_delay_seconds".into(), 0.002))
        );
        assert_eq!(
            c("autovacuum_naptime", "1", "min", "integer"),
            Some(("pg_settings_autovacuum_naptime_seconds".into(), 60.0))
        );
        assert_eq!(
            c("autovacuum_work_mem", "-1", "kB", "integer"),
            Some(("pg_settings_autovacuum_work_mem_bytes".into(), -1.0))
        );
        assert_eq!(
            c("pg_stat_statements.track_utility", "on", "", "bool"),
            Some(("pg_settings_pg_stat_statements_track_utility".into(), 1.0))
        );
        assert_eq!(c("x", "1", "furlongs", "integer"), None);
        let (_, help, _) = convert("a", "1", "s", "Sets A.", "integer").unwrap();
        assert_eq!(help, "Sets A. [Units converted to seconds.]");
    }
}
