// Label matchers as Prometheus and amtool write them: `{a="b", c=~"d|e"}`
// or without braces. Used by the alerts filter and the silence form.

/** Thrown with the position (1-based column) of the problem. */
export class MatcherError extends Error {
  constructor(msg, pos) {
    super(`${msg} at column ${pos + 1}`);
    this.pos = pos;
  }
}

const NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;
const OPS = ['=~', '!~', '!=', '='];

function skipSpace(str, i) {
  while (i < str.length && /\s/.test(str[i])) i++;
  return i;
}

function readQuoted(str, i) {
  const q = str[i];
  let out = '';
  i++;
  while (i < str.length && str[i] !== q) {
    if (str[i] === '\\' && i + 1 < str.length) {
      const c = str[i + 1];
      out += c === 'n' ? '\n' : c === 't' ? '\t' : c;
      i += 2;
    } else {
      out += str[i++];
    }
  }
  if (i >= str.length) throw new MatcherError('unterminated string', i);
  return [out, i + 1];
}

function readBare(str, i) {
  const start = i;
  while (i < str.length && !/[,}\s]/.test(str[i])) i++;
  return [str.slice(start, i), i];
}

/**
 * Parses matchers into [{name, op, value}]. Throws MatcherError. An empty
 * string (or `{}`) gives [].
 */
export function parseMatchers(text) {
  const str = String(text || '');
  let i = skipSpace(str, 0);
  let braced = false;
  if (str[i] === '{') {
    braced = true;
    i++;
  }
  const out = [];
  for (;;) {
    i = skipSpace(str, i);
    if (i >= str.length) {
      if (braced) throw new MatcherError('missing closing "}"', i);
      break;
    }
    if (braced && str[i] === '}') {
      i = skipSpace(str, i + 1);
      if (i < str.length) throw new MatcherError('unexpected text after "}"', i);
      break;
    }
    NAME.lastIndex = i;
    const m = NAME.exec(str);
    if (!m) throw new MatcherError('expected a label name', i);
    const name = m[0];
    i = skipSpace(str, NAME.lastIndex);
    const op = OPS.find((o) => str.startsWith(o, i));
    if (!op) throw new MatcherError(`expected one of = != =~ !~ after ${name}`, i);
    i = skipSpace(str, i + op.length);
    let value;
    if (str[i] === '"' || str[i] === "'") [value, i] = readQuoted(str, i);
    else [value, i] = readBare(str, i);
    let re = null;
    if (op === '=~' || op === '!~') {
      try {
        re = new RegExp(`^(?:${value})$`);
      } catch (e) {
        throw new MatcherError(`invalid regular expression for ${name}: ${e.message}`, i);
      }
    }
    out.push({ name, op, value, re });
    i = skipSpace(str, i);
    if (str[i] === ',') i++;
    else if (i < str.length && !(braced && str[i] === '}')) throw new MatcherError('expected "," between matchers', i);
  }
  return out;
}

/** Whether a label set (object) matches every matcher. */
export function matches(labels, matchers) {
  return matchers.every((m) => {
    const v = (labels && labels[m.name]) || '';
    switch (m.op) {
      case '=': return v === m.value;
      case '!=': return v !== m.value;
      case '=~': return m.re.test(v);
      case '!~': return !m.re.test(v);
      default: return false;
    }
  });
}

function quote(v) {
  return `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** `{a="b", c=~"d"}` from [{name, op, value}] or from a label object. */
export function formatMatchers(ms) {
  const list = Array.isArray(ms)
    ? ms
    : Object.keys(ms).sort().map((k) => ({ name: k, op: '=', value: ms[k] }));
  return `{${list.map((m) => `${m.name}${m.op}${quote(m.value)}`).join(', ')}}`;
}

/** Alertmanager v2 matcher objects (isRegex, isEqual) for POST /api/v2/silences. */
export function toAmMatchers(ms) {
  return ms.map((m) => ({
    name: m.name,
    value: m.value,
    isRegex: m.op === '=~' || m.op === '!~',
    isEqual: m.op === '=' || m.op === '=~',
  }));
}

/** The reverse of toAmMatchers (isEqual defaults to true, as in Alertmanager). */
export function fromAmMatchers(list) {
  return (list || []).map((m) => {
    const eq = m.isEqual !== false;
    const op = m.isRegex ? (eq ? '=~' : '!~') : (eq ? '=' : '!=');
    return { name: m.name, value: m.value, op };
  });
}
