// The shell: hash routing between the pages, the token box, and the
// `data-page` / `data-loaded` markers the end-to-end tests wait for.

import { setToken, getToken, showAuthMessage, whoami } from './lib/api.js';
import { h, replace } from './lib/dom.js';
import * as alerts from './pages/alerts.js';
import * as graph from './pages/graph.js';
import * as rules from './pages/rules.js';
import * as targets from './pages/targets.js';
import * as probes from './pages/probes.js';
import * as tenants from './pages/tenants.js';
import * as deliveries from './pages/deliveries.js';
import * as silences from './pages/silences.js';
import * as status from './pages/status.js';
import * as autoheal from './pages/autoheal.js';

const PAGES = { alerts, graph, rules, targets, probes, deliveries, autoheal, silences, tenants, status };
const TITLES = {
  alerts: 'Alerts', graph: 'Graph', rules: 'Rules', targets: 'Targets',
  probes: 'Probes', deliveries: 'Deliveries', autoheal: 'Auto-healing', silences: 'Silences', tenants: 'Tenants', status: 'Status',
};

let current = null; // {abort: AbortController, cleanups: []}
let navSeq = 0;

/** `#/graph?expr=up&range=1h` → {page: 'graph', params: URLSearchParams}. */
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const name = (q < 0 ? raw : raw.slice(0, q)) || 'alerts';
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  // Alertmanager's silence link (`#/silences/new?filter={...}`), which
  // templates written for Alertmanager still produce.
  if (name === 'silences/new') {
    const np = new URLSearchParams();
    if (params.get('filter')) np.set('matchers', params.get('filter'));
    return { page: 'silences', params: np };
  }
  return { page: name, params };
}

/** Rewrites the current hash's query without navigating (filters). */
export function replaceParams(page, params) {
  const s = params.toString();
  const url = `#/${page}${s ? `?${s}` : ''}`;
  if (window.location.hash !== url) window.history.replaceState(null, '', url);
}

async function route() {
  const seq = ++navSeq;
  if (current) {
    current.abort.abort();
    current.cleanups.forEach((f) => { try { f(); } catch (_) { /* ignore */ } });
  }
  const { page, params } = parseHash(window.location.hash);
  const mod = PAGES[page];
  document.body.dataset.loaded = 'false';
  showAuthMessage('');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${page}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = document.getElementById('view');
  const ctx = {
    abort: new AbortController(),
    cleanups: [],
    params,
    page,
    /** Whether this navigation is still the current one. */
    live: () => seq === navSeq,
    onLeave(f) { this.cleanups.push(f); },
    replaceParams: (p) => replaceParams(page, p),
  };
  current = ctx;
  if (!mod) {
    replace(view, h('h1', null, 'Not found'), h('p', null, `No page "${page}". `, h('a', { href: '#/alerts' }, 'Go to alerts')));
    document.title = 'klaxon';
    document.body.dataset.page = 'notfound';
    document.body.dataset.loaded = 'true';
    return;
  }
  document.title = `${TITLES[page]} · klaxon`;
  try {
    await mod.render(view, ctx);
  } catch (e) {
    if (!ctx.live()) return;
    if (!(e && e.name === 'AbortError')) {
      view.append(h('p', { class: 'error', role: 'alert' }, `Could not load this page: ${e.message || e}`));
    }
  }
  if (!ctx.live()) return;
  document.body.dataset.page = page;
  document.body.dataset.loaded = 'true';
}

async function showWhoami() {
  const el = document.getElementById('whoami');
  const w = await whoami();
  el.textContent = w.roles && w.roles.length
    ? `${w.name} (${w.roles[w.roles.length - 1]})`
    : `${w.name} (no access)`;
}

function setupToken() {
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  input.value = getToken();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    showWhoami();
    route();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    input.value = '';
    setToken('');
    showWhoami();
    route();
  });
}

function start() {
  setupToken();
  showWhoami();
  window.addEventListener('hashchange', route);
  if (!window.location.hash) window.history.replaceState(null, '', '#/alerts');
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
