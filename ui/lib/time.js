// Time and number formatting shared by the pages.

/** RFC 3339 string or millis → Date, or null for Go's zero time / invalid. */
export function toDate(t) {
  if (t === null || t === undefined || t === '') return null;
  const d = typeof t === 'number' ? new Date(t) : new Date(t);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return null;
  return d;
}

/** "2026-11-23 07:10:45Z" (UTC, second precision). */
export function fmtTime(t) {
  const d = toDate(t);
  if (!d) return 'never';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** Seconds → "1h 2m", "3.2s", "12ms". */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || !Number.isFinite(Number(sec))) return '-';
  sec = Number(sec);
  const neg = sec < 0;
  sec = Math.abs(sec);
  let out;
  if (sec < 1e-3) out = `${(sec * 1e6).toFixed(0)}µs`;
  else if (sec < 1) out = `${(sec * 1000).toFixed(sec < 0.01 ? 2 : 0)}ms`;
  else if (sec < 60) out = `${sec.toFixed(sec < 10 ? 2 : 1)}s`;
  else {
    const parts = [];
    let r = Math.floor(sec);
    for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
      if (r >= n) {
        parts.push(`${Math.floor(r / n)}${u}`);
        r %= n;
      }
      if (parts.length === 2) break;
    }
    out = parts.join(' ');
  }
  return neg ? `-${out}` : out;
}

/** "3m ago" / "in 2h" relative to now. */
export function fmtAgo(t) {
  const d = toDate(t);
  if (!d) return 'never';
  const sec = (Date.now() - d.getTime()) / 1000;
  if (Math.abs(sec) < 1) return 'just now';
  return sec >= 0 ? `${fmtDuration(Math.round(sec))} ago` : `in ${fmtDuration(Math.round(-sec))}`;
}

/** A sample value as text, compact but exact enough to read. */
export function fmtValue(v) {
  if (v === null || v === undefined) return '-';
  const n = Number(v);
  if (typeof v === 'string' && !Number.isFinite(n)) return v;
  if (!Number.isFinite(n)) return String(v);
  if (n !== 0 && (Math.abs(n) >= 1e6 || Math.abs(n) < 1e-3)) return n.toExponential(3);
  return String(Math.round(n * 1e4) / 1e4);
}

/**
 * A Prometheus-style duration ("1h", "30m", "1h30m", "2d", "90s", "500ms")
 * → seconds, or null when it is not one.
 */
export function parseDuration(text) {
  const str = String(text || '').trim();
  if (str === '') return null;
  if (/^\d+(\.\d+)?$/.test(str)) return Number(str);
  const re = /(\d+)(ms|y|w|d|h|m|s)/y;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  let pos = 0;
  while (pos < str.length) {
    re.lastIndex = pos;
    const m = re.exec(str);
    if (!m) return null;
    total += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  return total;
}
