//! Durations and byte sizes in the exact syntax Prometheus accepts.
//!
//! Users copy `prometheus.yml` files verbatim, so a value Prometheus accepts
//! must parse here to the same quantity, and a value it rejects must be
//! rejected: `1h30m` yes, `1.5h` or `30m1h` no.

use std::time::Duration;

/// Parses a Prometheus duration (`model.ParseDuration`): one or more
/// `<integer><unit>` groups with units `y w d h m s ms` in strictly
/// descending order, no spaces, no fractions, no sign; `0` alone is zero.
/// A year is 365 days, a week 7 days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    let invalid = || format!("not a valid duration string: {s:?}");
    // Units in the only order allowed, with their size in milliseconds.
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    // Go's time.Duration is an i64 of nanoseconds; beyond that Prometheus
    // reports an overflow.
    let max_ms: u64 = (i64::MAX as u64) / 1_000_000;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(invalid());
        }
        let digits = &s[start..pos];
        let ustart = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &s[ustart..pos];
        let idx = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .map(|i| i + next_unit)
            .ok_or_else(invalid)?;
        next_unit = idx + 1;
        let n: u64 = digits
            .parse()
            .map_err(|_| "duration out of range".to_string())?;
        let mult = UNITS[idx].1;
        let part = n
            .checked_mul(mult)
            .filter(|v| *v <= max_ms)
            .ok_or_else(|| "duration out of range".to_string())?;
        total = total
            .checked_add(part)
            .filter(|v| *v <= max_ms)
            .ok_or_else(|| "duration out of range".to_string())?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way Prometheus prints `model.Duration`
/// (largest units first, zero parts omitted, years and weeks only when
/// they divide evenly, `0s` for zero): the PromQL printer's rules.
pub fn format_duration(d: Duration) -> String {
    crate::model::gofmt::format_duration(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses a byte size like Prometheus' `units.Base2Bytes`: a sequence of
/// `<number>[.<fraction>]<unit>` groups summed, units `B`, `KB`..`EB` or
/// `KiB`..`EiB`, all powers of 1024 (`10MB` = 10·1024²); `0` alone is zero
/// (unlimited where used as a limit). A unit is required on every group.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let invalid = || format!("units: invalid {s}");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Two unit spellings, tried in turn like upstream: binary (`KiB`) first,
    // then the older `KB` form; both mean powers of 1024.
    let total_a = parse_size_with(rest, "iB");
    let total = match total_a {
        Ok(v) => v,
        Err(SizeErr::Invalid) => return Err(invalid()),
        Err(SizeErr::Unit(_)) => match parse_size_with(rest, "B") {
            Ok(v) => v,
            Err(SizeErr::Invalid) => return Err(invalid()),
            Err(SizeErr::Unit(u)) => return Err(format!("units: unknown unit {u} in {s}")),
        },
    };
    if neg && total > 0.0 {
        return Err(format!("size must not be negative: {s}"));
    }
    if total >= 18446744073709551615.0 || total > i64::MAX as f64 {
        return Err("units: overflow parsing unit".to_string());
    }
    Ok(total as u64)
}

enum SizeErr {
    Invalid,
    Unit(String),
}

fn unit_scale(unit: &str, suffix: &str) -> Option<f64> {
    if unit == "B" {
        return Some(1.0);
    }
    let prefix = unit.strip_suffix(suffix)?;
    let pow = match prefix {
        "K" => 1,
        "M" => 2,
        "G" => 3,
        "T" => 4,
        "P" => 5,
        "E" => 6,
        _ => return None,
    };
    Some(1024f64.powi(pow))
}

fn parse_size_with(s: &str, suffix: &str) -> Result<f64, SizeErr> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut total = 0f64;
    while pos < b.len() {
        if !(b[pos] == b'.' || b[pos].is_ascii_digit()) {
            return Err(SizeErr::Invalid);
        }
        let istart = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[istart..pos];
        let mut value: f64 = if int_part.is_empty() {
            0.0
        } else {
            int_part.parse::<f64>().map_err(|_| SizeErr::Invalid)?
        };
        let mut frac_digits = 0;
        if pos < b.len() && b[pos] == b'.' {
            pos += 1;
            let fstart = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = pos - fstart;
            if frac_digits > 0 {
                let frac: f64 = s[fstart..pos].parse().map_err(|_| SizeErr::Invalid)?;
                value += frac / 10f64.powi(frac_digits as i32);
            }
        }
        if int_part.is_empty() && frac_digits == 0 {
            return Err(SizeErr::Invalid);
        }
        let ustart = pos;
        while pos < b.len() && !(b[pos] == b'.' || b[pos].is_ascii_digit()) {
            pos += 1;
        }
        let unit = &s[ustart..pos];
        let scale = unit_scale(unit, suffix).ok_or_else(|| SizeErr::Unit(unit.to_string()))?;
        total += value * scale;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accepted_like_prometheus() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("15s", 15_000),
            ("1m", 60_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            (
                "1y2w3d4h5m6s7ms",
                31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_400_000 + 300_000 + 6_000 + 7,
            ),
        ];
        for (s, ms) in cases {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(*ms)), "{s}");
        }
    }

    #[test]
    fn durations_rejected_like_prometheus() {
        for s in [
            "", "1.5h", "30m1h", "1h 30m", "-1s", "1", "10x", "1mm", "s", "1h1h", "1ms1s", " 1s",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?} should fail");
        }
        assert_eq!(
            parse_duration("1.5h").unwrap_err(),
            "not a valid duration string: \"1.5h\""
        );
        assert_eq!(
            parse_duration("999999y").unwrap_err(),
            "duration out of range"
        );
    }

    #[test]
    fn duration_format_round_trips() {
        for s in ["1h30m", "1d", "500ms", "2w", "1y", "15d", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        // Prometheus prints 15 days as 15d and a year and two weeks in days.
        assert_eq!(format_duration(parse_duration("1y2w").unwrap()), "379d");
    }

    #[test]
    fn sizes_base2() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("10MB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(
            parse_size("1GB512MB"),
            Ok(1024 * 1024 * 1024 + 512 * 1024 * 1024)
        );
        assert_eq!(parse_size("1.5KB"), Ok(1536));
        assert_eq!(parse_size("2TB"), Ok(2 * 1024u64.pow(4)));
        for bad in [
            "", "10", "10mb", "10 MB", "MB", ".KB", "10XB", "-1KB", "1KiB1KB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
    }
}
