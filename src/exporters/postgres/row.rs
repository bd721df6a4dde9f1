//! Reading text-protocol rows: every value arrives as text (simple query
//! protocol, one round trip, no statement preparation), so numbers,
//! booleans and timestamps are parsed here. Absent columns and NULLs are
//! NaN, as postgres_exporter reports NULLs.

use tokio_postgres::SimpleQueryRow;

/// A column's text, "" for NULL or a missing column.
pub fn text<'a>(r: &'a SimpleQueryRow, col: &str) -> &'a str {
    r.try_get(col).ok().flatten().unwrap_or("")
}

/// A column as a number: numbers, `t`/`f`, and ISO timestamps (the
/// session runs with `TimeZone=UTC`, `DateStyle=ISO`) as Unix seconds.
pub fn val(r: &SimpleQueryRow, col: &str) -> f64 {
    match r.try_get(col) {
        Ok(Some(s)) => parse_value(s),
        _ => f64::NAN,
    }
}

/// Like `val`, by column position.
pub fn val_at(r: &SimpleQueryRow, i: usize) -> f64 {
    match r.try_get(i) {
        Ok(Some(s)) => parse_value(s),
        _ => f64::NAN,
    }
}

pub fn parse_value(s: &str) -> f64 {
    match s {
        "t" | "true" => return 1.0,
        "f" | "false" => return 0.0,
        "NaN" => return f64::NAN,
        "Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    if let Ok(v) = s.parse::<f64>() {
        return v;
    }
    parse_timestamp(s).unwrap_or(f64::NAN)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]` to Unix seconds.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, rest) = s.split_once(' ')?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
    let day: u32 = d.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
    let tz_at = rest.find(['+', '-']).unwrap_or(rest.len());
    let (time, tz) = rest.split_at(tz_at);
    let mut t = time.splitn(3, ':');
    let hh: f64 = t.next()?.parse().ok()?;
    let mm: f64 = t.next()?.parse().ok()?;
    let ss: f64 = t.next()?.parse().ok()?;
    let offset = if tz.is_empty() {
        0.0
    } else {
        let sign = if tz.starts_with('-') { -1.0 } else { 1.0 };
        let mut p = tz.get(1..)?.split(':');
        let oh: f64 = p.next()?.parse().ok()?;
        let om: f64 = p.next().map(|x| x.parse().ok()).unwrap_or(Some(0.0))?;
        sign * (oh * 3600.0 + om * 60.0)
    };
    Some(
        crate::model::time::days_from_civil(y, m, day) as f64 * 86400.0
            + hh * 3600.0
            + mm * 60.0
            + ss
            - offset,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_timestamps() {
        assert_eq!(parse_value("42"), 42.0);
        assert_eq!(parse_value("t"), 1.0);
        assert_eq!(parse_value("-1.5e3"), -1500.0);
        assert!(parse_value("banana").is_nan());
        assert_eq!(parse_timestamp("1970-01-01 00:00:00+00"), Some(0.0));
        assert_eq!(
            parse_timestamp("2026-11-23 04:27:21.5+00"),
            Some(1795408041.5)
        );
        assert_eq!(
            parse_timestamp("2026-11-23 06:27:21+02:00"),
            Some(1795408041.0)
        );
    }
}
