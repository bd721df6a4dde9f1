// Calls klaxon's public JSON APIs with the user's bearer token. The token
// lives in sessionStorage (gone when the tab closes) under `klaxon.token`.

const KEY = 'klaxon.token';

export function getToken() {
  try {
    return window.sessionStorage.getItem(KEY) || '';
  } catch (_) {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) window.sessionStorage.setItem(KEY, token);
    else window.sessionStorage.removeItem(KEY);
  } catch (_) {
    // Storage disabled: the token lasts until the page reloads.
  }
  whoamiCache = null;
}

export function authHeaders(extra) {
  const hdrs = new Headers(extra || {});
  const t = getToken();
  if (t) hdrs.set('Authorization', `Bearer ${t}`);
  return hdrs;
}

/** An API failure: HTTP status plus the server's message. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Shows (or clears, with '') the header's authentication message. */
export function showAuthMessage(text) {
  const el = document.getElementById('auth-message');
  if (!el) return;
  el.textContent = text;
  el.hidden = !text;
}

function authText(status, msg) {
  if (status === 401) {
    return getToken()
      ? `The API token was refused (401: ${msg}). Check it and save it again.`
      : `This server needs an API token (401: ${msg}). Enter it under "API token".`;
  }
  return `Your token is not allowed to do this (403: ${msg}).`;
}

/**
 * `/api/v1/x` → `api/v1/x`: API paths resolve against the page's URL, so
 * the UI works under a route prefix (`--web.route-prefix`).
 */
export function relative(path) {
  return path.startsWith('/') ? path.slice(1) : path;
}

/**
 * fetch() with the token; JSON answers are parsed. Throws ApiError with
 * the server's error text for non-2xx answers; 401/403 also show the
 * header message.
 */
export async function api(path, opts = {}) {
  const init = { ...opts, headers: authHeaders(opts.headers) };
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers.set('Content-Type', 'application/json');
    delete init.json;
  }
  let resp;
  try {
    resp = await fetch(relative(path), init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach klaxon: ${e.message || e}`, null);
  }
  const text = await resp.text();
  let body = null;
  if ((resp.headers.get('content-type') || '').includes('json') && text) {
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = null;
    }
  }
  if (!resp.ok) {
    const msg = (body && (body.error || body.message)) || text.trim() || resp.statusText;
    if (resp.status === 401 || resp.status === 403) showAuthMessage(authText(resp.status, msg));
    throw new ApiError(resp.status, `${resp.status}: ${msg}`, body);
  }
  return body !== null ? body : text;
}

/** `data` of a Prometheus-style envelope. */
export async function apiData(path, opts) {
  const b = await api(path, opts);
  return b && typeof b === 'object' && 'data' in b ? b.data : b;
}

let whoamiCache = null;

/** The caller as the server sees it: {name, roles}. Cached per token. */
export function whoami() {
  if (!whoamiCache) {
    whoamiCache = api('/api/v1/auth/whoami').catch(() => ({ name: 'anonymous', roles: [] }));
  }
  return whoamiCache;
}

/** Whether the caller may change things (silence, replay): operator or admin. */
export function canOperate(w) {
  const r = (w && w.roles) || [];
  return r.includes('operator') || r.includes('admin');
}

/** Query string from an object (skipping empty values). */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.set(k, v);
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}
