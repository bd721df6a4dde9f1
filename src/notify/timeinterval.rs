//! Time intervals (`time_intervals:` and the older `mute_time_intervals:`):
//! when a route's notifications are muted or active.
//!
//! Each interval is a list of periods; a period is the conjunction of its
//! fields (times of day, weekdays, days of month, months, years), each field
//! a list of inclusive ranges, an empty field meaning "any". Evaluated in the
//! period's `location` (UTC when unset), as Alertmanager does.

use crate::model::Timestamp;
use serde::Deserialize;

/// A named interval: matching any of its periods matches the interval.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeInterval {
    pub name: String,
    pub periods: Vec<Period>,
}

/// One `time_intervals[]` entry of a named interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Period {
    /// Minutes of the day, `[start, end)`.
    pub times: Vec<(u32, u32)>,
    /// 0 = Sunday, inclusive ranges.
    pub weekdays: Vec<(u32, u32)>,
    /// 1..=31 or -31..=-1 (from the end of the month), inclusive ranges.
    pub days_of_month: Vec<(i32, i32)>,
    pub months: Vec<(u32, u32)>,
    pub years: Vec<(i32, i32)>,
    pub location: Location,
}

/// Where the wall clock of a period is read.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Location {
    #[default]
    Utc,
    /// The process' local zone (`Local`).
    Local,
    /// An IANA zone read from the system zoneinfo: its transitions.
    Zone(std::sync::Arc<Zone>),
}

/// A zone's UTC offsets: `(transition_time_secs, offset_secs)` sorted, and
/// the offset before the first transition.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub name: String,
    initial: i32,
    transitions: Vec<(i64, i32)>,
}

impl Zone {
    fn offset_at(&self, secs: i64) -> i32 {
        match self.transitions.partition_point(|(t, _)| *t <= secs) {
            0 => self.initial,
            i => self
                .transitions
                .get(i - 1)
                .map(|x| x.1)
                .unwrap_or(self.initial),
        }
    }
}

/// Raw YAML shape of one period.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeriod {
    pub times: Option<Vec<RawTimeRange>>,
    pub weekdays: Option<Vec<String>>,
    pub days_of_month: Option<Vec<String>>,
    pub months: Option<Vec<String>>,
    pub years: Option<Vec<String>>,
    pub location: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeRange {
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn parse_hhmm(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(format!("timestamp {s} out of range"));
    }
    Ok(h * 60 + m)
}

/// `a` or `a:b`, each end parsed by `one`.
fn range<T: PartialOrd + Copy>(
    s: &str,
    one: impl Fn(&str) -> Result<T, String>,
    what: &str,
) -> Result<(T, T), String> {
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let v = one(s)?;
            (v, v)
        }
    };
    if a > b {
        return Err(format!("start {what} cannot be after end {what}: {s}"));
    }
    Ok((a, b))
}

fn by_name(s: &str, names: &[&str], first: u32, what: &str) -> Result<u32, String> {
    let l = s.trim().to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == l) {
        return Ok(i as u32 + first);
    }
    if first == 1 {
        if let Ok(n) = l.parse::<u32>() {
            if (1..=names.len() as u32).contains(&n) {
                return Ok(n);
            }
        }
    }
    Err(format!("{l} is not a valid {what}"))
}

impl RawPeriod {
    pub(crate) fn resolve(&self) -> Result<Period, String> {
        let mut p = Period::default();
        for t in self.times.iter().flatten() {
            let s = parse_hhmm(t.start_time.as_deref().unwrap_or(""))?;
            let e = parse_hhmm(t.end_time.as_deref().unwrap_or(""))?;
            if s >= e {
                return Err("start time cannot be equal or greater than end time".into());
            }
            p.times.push((s, e));
        }
        for w in self.weekdays.iter().flatten() {
            p.weekdays
                .push(range(w, |x| by_name(x, &WEEKDAYS, 0, "weekday"), "day")?);
        }
        for d in self.days_of_month.iter().flatten() {
            let one = |x: &str| -> Result<i32, String> {
                let n: i32 = x
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid day of month {x}"))?;
                if n == 0 || !(-31..=31).contains(&n) {
                    return Err(format!("{n} is not a valid day of the month: out of range"));
                }
                Ok(n)
            };
            let (a, b) = match d.split_once(':') {
                Some((a, b)) => (one(a)?, one(b)?),
                None => {
                    let v = one(d)?;
                    (v, v)
                }
            };
            // Mixed signs are resolved per month at evaluation time.
            if a.signum() == b.signum() && a > b {
                return Err(format!("start day cannot be after end day: {d}"));
            }
            p.days_of_month.push((a, b));
        }
        for m in self.months.iter().flatten() {
            p.months
                .push(range(m, |x| by_name(x, &MONTHS, 1, "month"), "month")?);
        }
        for y in self.years.iter().flatten() {
            p.years.push(range(
                y,
                |x| {
                    x.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{x} is not a valid year"))
                },
                "year",
            )?);
        }
        p.location = match self.location.as_deref() {
            None | Some("UTC") | Some("") => Location::Utc,
            Some("Local") => Location::Local,
            Some(name) => Location::Zone(std::sync::Arc::new(load_zone(name)?)),
        };
        Ok(p)
    }
}

/// Reads an IANA zone from the system zoneinfo (TZif, 64-bit section).
fn load_zone(name: &str) -> Result<Zone, String> {
    let bad = || format!("unknown time zone {name}");
    if name.contains("..") || name.starts_with('/') {
        return Err(bad());
    }
    let dir = std::env::var("ZONEINFO").unwrap_or_else(|_| "/usr/share/zoneinfo".into());
    let data = std::fs::read(std::path::Path::new(&dir).join(name)).map_err(|_| bad())?;
    parse_tzif(name, &data).ok_or_else(bad)
}

fn parse_tzif(name: &str, d: &[u8]) -> Option<Zone> {
    fn be32(d: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
    }
    if d.get(0..4)? != b"TZif" {
        return None;
    }
    let version = *d.get(4)?;
    let counts = |base: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            *v = be32(d, base + 20 + 4 * i)? as usize;
        }
        Some(c)
    };
    // [isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt]
    let c1 = counts(0)?;
    let (base, tsize) = if version >= b'2' {
        let v1len = c1[3] * 4 + c1[3] + c1[4] * 6 + c1[5] + c1[2] * 8 + c1[1] + c1[0];
        (44 + v1len, 8usize)
    } else {
        (0, 4usize)
    };
    let c = counts(base)?;
    let (timecnt, typecnt) = (c[3], c[4]);
    // Counts larger than the file are corrupt; refuse before allocating.
    if timecnt > d.len() || typecnt > d.len() {
        return None;
    }
    let mut p = base + 44;
    let mut times = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let at = p + i * tsize;
        let t = if tsize == 8 {
            i64::from_be_bytes(d.get(at..at + 8)?.try_into().ok()?)
        } else {
            be32(d, at)? as i32 as i64
        };
        times.push(t);
    }
    p += timecnt * tsize;
    let idx = d.get(p..p + timecnt)?.to_vec();
    p += timecnt;
    let mut types = Vec::with_capacity(typecnt);
    for i in 0..typecnt {
        types.push(be32(d, p + i * 6)? as i32);
    }
    let initial = *types.first()?;
    let transitions = times
        .into_iter()
        .zip(idx)
        .filter_map(|(t, i)| types.get(i as usize).map(|o| (t, *o)))
        .collect();
    Some(Zone {
        name: name.to_string(),
        initial,
        transitions,
    })
}

fn days_in_month(y: i64, m: u32) -> i32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn local_offset(secs: i64) -> i32 {
    #[cfg(unix)]
    {
        let t: libc::time_t = secs as libc::time_t;
        // SAFETY: localtime_r writes only into the zeroed tm we pass.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::localtime_r(&t, &mut tm) };
        if !r.is_null() {
            return tm.tm_gmtoff as i32;
        }
    }
    0
}

impl Period {
    /// Whether the instant `t` (ms since epoch) falls in this period.
    pub fn contains(&self, t: Timestamp) -> bool {
        let secs = t.div_euclid(1000);
        let off = match &self.location {
            Location::Utc => 0,
            Location::Local => local_offset(secs),
            Location::Zone(z) => z.offset_at(secs),
        };
        let local = secs + off as i64;
        let days = local.div_euclid(86_400);
        let minute = (local.rem_euclid(86_400) / 60) as u32;
        let (y, m, d) = crate::model::time::civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
        let in_any =
            |v: &[(u32, u32)], x: u32| v.is_empty() || v.iter().any(|(a, b)| *a <= x && x <= *b);
        if !self.times.is_empty() && !self.times.iter().any(|(a, b)| *a <= minute && minute < *b) {
            return false;
        }
        if !in_any(&self.weekdays, weekday) || !in_any(&self.months, m) {
            return false;
        }
        if !self.years.is_empty()
            && !self
                .years
                .iter()
                .any(|(a, b)| (*a as i64) <= y && y <= (*b as i64))
        {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(y, m);
            let abs = |v: i32| if v < 0 { dim + v + 1 } else { v.min(dim) };
            let day = d as i32;
            if !self
                .days_of_month
                .iter()
                .any(|(a, b)| abs(*a) <= day && day <= abs(*b))
            {
                return false;
            }
        }
        true
    }
}

impl TimeInterval {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.periods.iter().any(|p| p.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(yaml: &str) -> Result<Period, String> {
        let r: RawPeriod = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        r.resolve()
    }

    // 2024-03-04 was a Monday.
    const MON_2024_03_04_1000_UTC: i64 = 1_709_546_400_000;

    #[test]
    fn weekday_and_time_window() {
        let p = period(
            "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']\n",
        )
        .unwrap();
        assert!(p.contains(MON_2024_03_04_1000_UTC));
        assert!(!p.contains(MON_2024_03_04_1000_UTC + 8 * 3_600_000)); // 18:00
        assert!(!p.contains(MON_2024_03_04_1000_UTC - 2 * 86_400_000)); // Saturday
    }

    #[test]
    fn negative_days_months_years() {
        let p =
            period("days_of_month: ['-3:-1']\nmonths: ['february']\nyears: ['2024']\n").unwrap();
        // 2024-02-29 12:00 UTC (leap year: last day)
        assert!(p.contains(1_709_208_000_000));
        // 2024-02-26: 4th from the end
        assert!(!p.contains(1_709_208_000_000 - 3 * 86_400_000));
        assert!(!p.contains(MON_2024_03_04_1000_UTC));
    }

    #[test]
    fn invalid_values_are_rejected() {
        assert!(period("weekdays: ['funday']").is_err());
        assert!(period("weekdays: ['friday:monday']").is_err());
        assert!(period("days_of_month: ['0']").is_err());
        assert!(period("times: [{start_time: '10:00', end_time: '09:00'}]").is_err());
        assert!(period("times: [{start_time: '25:00', end_time: '26:00'}]").is_err());
        assert!(period("months: ['13']").is_err());
        assert!(period("location: 'Nowhere/Atlantis'").is_err());
    }

    #[test]
    fn zone_offsets_apply() {
        if !std::path::Path::new("/usr/share/zoneinfo/Asia/Tokyo").exists() {
            // Machines without tzdata: covered by the UTC tests above.
            assert!(std::env::var("CI").is_err(), "tzdata missing under CI");
            return;
        }
        // 10:00 UTC is 19:00 in Tokyo (UTC+9, no DST).
        let p = period("times: [{start_time: '18:30', end_time: '19:30'}]\nlocation: Asia/Tokyo\n")
            .unwrap();
        assert!(p.contains(MON_2024_03_04_1000_UTC));
        let p = period("times: [{start_time: '09:30', end_time: '10:30'}]\nlocation: Asia/Tokyo\n")
            .unwrap();
        assert!(!p.contains(MON_2024_03_04_1000_UTC));
    }
}
