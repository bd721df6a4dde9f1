// Targets: scrape targets by job with health, endpoint, labels (and the
// labels discovery gave before relabeling), last scrape, duration and
// error; the targets relabeling dropped, as Prometheus' service discovery
// page lists them.

import { apiData } from '../lib/api.js';
import { h, replace, badge, labelChips, table, scrollable, plural } from '../lib/dom.js';
import { fmtTime, fmtAgo, fmtDuration } from '../lib/time.js';

function row(t) {
  return h('tr', { 'data-testid': 'target', 'data-health': t.health, 'data-endpoint': t.scrapeUrl },
    h('td', { class: 'mono' }, h('a', { href: t.scrapeUrl, rel: 'noopener noreferrer' }, t.scrapeUrl)),
    h('td', null, badge(t.health, t.health)),
    h('td', null, labelChips(t.labels),
      h('details', { 'data-testid': 'discovered-labels' }, h('summary', null, 'Discovered labels'), labelChips(t.discoveredLabels))),
    h('td', { title: fmtTime(t.lastScrape) }, fmtAgo(t.lastScrape)),
    h('td', { class: 'num' }, fmtDuration(t.lastScrapeDuration)),
    h('td', { class: 'mono' }, t.lastError || ''));
}

function droppedView(dropped) {
  if (!dropped.length) return null;
  return h('details', { 'data-testid': 'dropped-targets' },
    h('summary', null, `${plural(dropped.length, 'dropped target')} (relabeling dropped them; labels as discovered)`),
    h('ul', { class: 'plain' }, dropped.map((d) => h('li', null, labelChips(d.discoveredLabels)))));
}

function poolView(name, targets, dropped) {
  const up = targets.filter((t) => t.health === 'up').length;
  return h('section', { class: 'card', 'data-testid': 'target-pool', 'data-pool': name },
    h('header', null, h('h2', null, name), h('span', { class: up === targets.length ? 'muted' : 'error-text' }, `${up}/${targets.length} up`)),
    scrollable(table(['Endpoint', 'State', 'Labels', 'Last scrape', 'Duration', 'Error'], targets.map(row)), `Targets of ${name}`),
    droppedView(dropped || []));
}

export async function render(view, ctx) {
  const onlyBad = h('input', { id: 'target-unhealthy', type: 'checkbox' });
  const list = h('div', { id: 'target-list' });
  const summary = h('p', { class: 'summary-line', 'aria-live': 'polite' });
  replace(view,
    h('h1', null, 'Targets'),
    h('div', { class: 'toolbar' },
      h('label', { for: 'target-unhealthy' }, onlyBad, ' Only unhealthy targets')),
    summary, list);
  const data = await apiData('/api/v1/targets', { signal: ctx.abort.signal });
  if (!ctx.live()) return;
  const all = (data && data.activeTargets) || [];
  const droppedByPool = new Map();
  for (const d of (data && data.droppedTargets) || []) {
    if (!droppedByPool.has(d.scrapePool)) droppedByPool.set(d.scrapePool, []);
    droppedByPool.get(d.scrapePool).push(d);
  }
  const draw = () => {
    const pools = new Map();
    if (!onlyBad.checked) for (const p of droppedByPool.keys()) pools.set(p, []);
    for (const t of all) {
      if (onlyBad.checked && t.health === 'up') continue;
      if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
      pools.get(t.scrapePool).push(t);
    }
    const down = all.filter((t) => t.health !== 'up').length;
    summary.textContent = `${plural(all.length, 'target')}, ${down} not up`;
    replace(list, pools.size
      ? [...pools.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([n, ts]) => poolView(n, ts, droppedByPool.get(n)))
      : h('p', { class: 'muted' }, all.length ? 'Every target is up.' : 'No scrape targets configured.'));
  };
  onlyBad.addEventListener('change', draw);
  draw();
}
