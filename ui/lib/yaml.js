// A rule as it would be written in a rule file, from the rules API's JSON
// (Prometheus' /api/v1/rules has no YAML, only the fields).

const PLAIN = /^[A-Za-z0-9_][A-Za-z0-9_ ./:@-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

/** A YAML scalar: plain when unambiguous, else double-quoted. */
export function scalar(v) {
  const str = String(v);
  if (str !== '' && PLAIN.test(str) && !RESERVED.test(str) && !/^[\d.+-]/.test(str) && !/\s$/.test(str) && !str.includes(': ')) {
    return str;
  }
  return JSON.stringify(str);
}

/** Seconds → a Prometheus duration ("5m", "1h30m", "90s"). */
export function promDuration(sec) {
  let ms = Math.round(Number(sec) * 1000);
  if (!ms) return '0s';
  let out = '';
  for (const [u, n] of [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000], ['ms', 1]]) {
    if (ms >= n) {
      out += `${Math.floor(ms / n)}${u}`;
      ms %= n;
    }
  }
  return out;
}

function block(key, text, indent) {
  const pad = ' '.repeat(indent);
  if (!String(text).includes('\n')) return `${pad}${key}: ${scalar(text)}\n`;
  const body = String(text).replace(/\n+$/, '').split('\n').map((l) => (l ? `${pad}  ${l}` : '')).join('\n');
  return `${pad}${key}: |\n${body}\n`;
}

function map(key, obj, indent) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return '';
  const pad = ' '.repeat(indent);
  return `${pad}${key}:\n${keys.map((k) => block(scalar(k), obj[k], indent + 2)).join('')}`;
}

/** The rule-file YAML of one rule from /api/v1/rules. */
export function ruleYaml(rule) {
  let out = rule.type === 'alerting'
    ? `- alert: ${scalar(rule.name)}\n`
    : `- record: ${scalar(rule.name)}\n`;
  out += block('expr', rule.query, 2);
  if (rule.type === 'alerting') {
    if (rule.duration) out += `  for: ${promDuration(rule.duration)}\n`;
    if (rule.keepFiringFor) out += `  keep_firing_for: ${promDuration(rule.keepFiringFor)}\n`;
  }
  out += map('labels', rule.labels, 2);
  if (rule.type === 'alerting') out += map('annotations', rule.annotations, 2);
  return out;
}
