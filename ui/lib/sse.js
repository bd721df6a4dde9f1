// Server-Sent Events over fetch(): EventSource cannot send an
// Authorization header, so the stream is read and parsed here.

import { authHeaders, relative } from './api.js';

/**
 * Parses SSE text into events; returns the unconsumed tail. Each event is
 * {event, data, id}; comment lines (keepalives) are skipped.
 */
export function parseSse(buffer, onEvent) {
  const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
  const tail = blocks.pop();
  for (const block of blocks) {
    const ev = { event: 'message', data: [], id: null };
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') ev.event = value;
      else if (field === 'data') ev.data.push(value);
      else if (field === 'id') ev.id = value;
    }
    if (ev.data.length) onEvent({ event: ev.event, data: ev.data.join('\n'), id: ev.id });
  }
  return tail;
}

/**
 * Subscribes to `url`, calling onEvent for each event, reconnecting after
 * errors (with Last-Event-ID) until `signal` aborts.
 */
export async function subscribe(url, onEvent, signal, onState) {
  let lastId = null;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      if (lastId) headers.set('Last-Event-ID', lastId);
      const resp = await fetch(relative(url), { headers, signal, cache: 'no-store' });
      if (!resp.ok || !resp.body) throw new Error(`stream answered ${resp.status}`);
      if (onState) onState('live');
      delay = 1000;
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf = parseSse(buf + dec.decode(value, { stream: true }), (ev) => {
          if (ev.id) lastId = ev.id;
          onEvent(ev);
        });
      }
    } catch (e) {
      if (signal.aborted) return;
      if (onState) onState(`reconnecting (${e.message || e})`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30000);
  }
}
