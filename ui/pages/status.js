// Status: version and uptime, heartbeat and maintenance (/meta), head
// stats (/api/v1/status/tsdb), runtime, and the redacted config (admin).

import { api, apiData, whoami } from '../lib/api.js';
import { h, replace, badge } from '../lib/dom.js';
import { fmtTime, fmtAgo, fmtDuration } from '../lib/time.js';

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function section(id, title, ...body) {
  return h('section', { class: 'card', 'data-testid': 'status-section', 'data-section': id, 'aria-labelledby': `status-${id}` },
    h('header', null, h('h2', { id: `status-${id}` }, title)),
    h('div', { class: 'body' }, body));
}

function bytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function millisTime(ms) {
  const n = Number(ms);
  // Prometheus' empty-head sentinels are far outside any real time.
  if (!Number.isFinite(n) || Math.abs(n) > 1e15) return 'none';
  return fmtTime(n);
}

/** A settled promise's value, or an error paragraph. */
function orError(r, f) {
  if (r.status === 'fulfilled') return f(r.value);
  const e = r.reason;
  return h('p', { class: 'error' }, e && e.status === 403
    ? `Needs a more privileged token (${e.message}).`
    : `Unavailable: ${(e && e.message) || e}`);
}

export async function render(view, ctx) {
  replace(view, h('h1', null, 'Status'), h('p', { class: 'muted' }, 'Loading…'));
  const signal = ctx.abort.signal;
  // The config is admin-only: others get a note instead of a 403 banner.
  const who = await whoami();
  const isAdmin = ((who && who.roles) || []).includes('admin');
  const [build, runtime, meta, tsdb, health, config, flags] = await Promise.allSettled([
    apiData('/api/v1/status/buildinfo', { signal }),
    apiData('/api/v1/status/runtimeinfo', { signal }),
    api('/meta', { signal }),
    apiData('/api/v1/status/tsdb?limit=5', { signal }),
    api('/healthz', { signal }),
    isAdmin
      ? apiData('/api/v1/status/config', { signal })
      : Promise.reject(Object.assign(new Error('the configuration is shown to admins only'), { status: 403 })),
    apiData('/api/v1/status/flags', { signal }),
  ]);
  if (!ctx.live()) return;
  replace(view,
    h('h1', null, 'Status'),
    h('div', { class: 'sections' },
      section('build', 'Build and uptime',
        orError(build, (b) => kv([
          ['Version', b.version],
          ['Revision', b.revision],
          ['Started', runtime.status === 'fulfilled' ? fmtTime(runtime.value.startTime) : '-'],
          ['Uptime', health.status === 'fulfilled' ? fmtDuration(health.value.uptime_seconds) : '-'],
        ]))),
      section('maintenance', 'Heartbeat and maintenance',
        orError(meta, (m) => {
          const mt = m.maintenance || {};
          const hb = m.heartbeat || {};
          const st = mt.state || {};
          return kv([
            ['Maintenance', mt.enabled ? badge('ON: notifications held', 'firing') : badge('off', 'ok')],
            mt.enabled ? ['Reason', `${st.reason || ''} (by ${st.operator || '?'}, since ${fmtTime(st.since_ms)})`] : null,
            ['Heartbeat', hb.enabled ? badge('enabled', 'ok') : badge('not configured', 'neutral')],
            hb.enabled ? ['Last ACK', hb.last_ack ? `${fmtTime(hb.last_ack)} (${fmtAgo(hb.last_ack)})` : 'never'] : null,
            hb.enabled ? ['Last status', hb.last_status || '-'] : null,
            hb.enabled ? ['Failed beats in a row', String(hb.consecutive_failed_beats ?? 0)] : null,
            ['Features', (m.features || []).join(', ')],
          ]);
        })),
      section('head', 'TSDB head',
        orError(tsdb, (t) => {
          const s = t.headStats || {};
          return h('div', null, kv([
            ['Series', String(s.numSeries ?? '-')],
            ['Samples appended', String(s.samplesAppended ?? '-')],
            ['Memory', s.memoryBytes !== undefined ? bytes(s.memoryBytes) : '-'],
            ['Chunks', String(s.chunkCount ?? '-')],
            ['Label pairs', String(s.numLabelPairs ?? '-')],
            ['Oldest sample', millisTime(s.minTime)],
            ['Newest sample', millisTime(s.maxTime)],
          ]),
          (t.seriesCountByMetricName || []).length
            ? h('details', null, h('summary', null, 'Top metrics by series'),
              kv(t.seriesCountByMetricName.map((x) => [x.name, String(x.value)])))
            : null);
        })),
      section('runtime', 'Runtime',
        orError(runtime, (r) => kv([
          ['Last config reload', `${r.reloadConfigSuccess ? 'succeeded' : 'FAILED'} at ${fmtTime(r.lastConfigTime)}`],
          ['Retention', r.storageRetention],
          ['Working directory', r.CWD],
          ['Threads', String(r.GOMAXPROCS)],
        ])),
        flags.status === 'fulfilled' && Object.keys(flags.value || {}).length
          ? h('details', null, h('summary', null, 'Flags'), kv(Object.entries(flags.value).map(([k, v]) => [k, v])))
          : null),
      section('config', 'Configuration (secrets redacted)',
        orError(config, (c) => h('pre', { class: 'mono', id: 'status-config' }, c.yaml)))));
}
