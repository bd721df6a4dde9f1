#!/usr/bin/env python3
"""Graph page: time from Enter to drawn chart for 1,000 series x 250 steps, in headless Chromium.

Starts, on 127.0.0.1: ../shared/tools/synth_target.py (--series 2220, which makes exactly 1,000
synth_http_requests_total series), klaxon (the binary given by --klaxon) scraping it, and
chromedriver with Debian's Chromium. The expression

    synth_http_requests_total @ end() + time() % 600

has 1,000 series with a value at every step of any range (`@ end()` reads the last scrape, `time()`
makes the lines move), so no hour of history is needed. The graph page is opened on it with a range
of 3,750 s and a 15 s step: 251 points per series.

Each run types Enter in the expression box (a keydown event, as the page's own handler sees it) and
waits until the panel says its chart is drawn (`data-evaluated="graph"`), then for the next two
animation frames so layout and paint of the SVG are included: Enter -> painted chart. Split in two
by the browser's resource timing of the query_range call: Enter -> last byte of the answer, and
that -> painted (JSON parse, SVG build, layout, paint: the page's own cost). The same query_range
over HTTP from this script is printed beside it.

  cargo build --release --bin klaxon
  python3 benches/graph_render.py --klaxon "${CARGO_TARGET_DIR:-target}/release/klaxon"

Prints a Markdown table of medians. Assertion-free (a measurement); exits 2 when the setup fails.
Python stdlib only.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ui_pages import free_port, wait  # noqa: E402  (same helpers as the page bench)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
EXPR = "synth_http_requests_total @ end() + time() % 600"
RANGE = 3750
STEP = 15

CONFIG = """
global:
  scrape_interval: 2s
  scrape_timeout: 1800ms
  evaluation_interval: 2s
scrape_configs:
- job_name: synth
  static_configs:
  - targets: ['127.0.0.1:{synth_port}']
storage:
  path: {data}
"""

# Types Enter into panel 0's expression box and resolves with the ms until
# the chart is drawn and painted (two animation frames later).
MEASURE = """
const done = arguments[arguments.length - 1];
const panel = document.querySelector('[data-testid=panel]');
const input = document.getElementById('expr-input');
panel.dataset.evaluated = '';
performance.clearResourceTimings();
performance.clearMarks();
const t0 = performance.now();
input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
const poll = () => {
  if (panel.dataset.evaluated === 'graph') {
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const t1 = performance.now();
      // Lines drawn: SVG paths, or the canvas' count for a large result.
      const cv = document.querySelector('#graph-chart canvas[data-lines]');
      const n = cv ? Number(cv.dataset.lines) : document.querySelectorAll('#graph-chart path[data-testid=series-line]').length;
      const r = performance.getEntriesByType('resource').filter((e) => e.name.includes('query_range')).pop();
      const mark = (name) => (performance.getEntriesByName(name).pop() || {startTime: NaN}).startTime - t0;
      done({ms: t1 - t0, fetched: r && r.responseEnd > t0 ? r.responseEnd - t0 : -1, lines: n,
            parsed: mark('graph-answer'), drawn: mark('graph-drawn')});
    }));
  } else if (performance.now() - t0 > 60000) {
    done({ms: -1, lines: 0});
  } else {
    setTimeout(poll, 1);
  }
};
poll();
"""


def call(port, method, path, body=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    c.request(method, path, body=data, headers={"content-type": "application/json"} if data else {})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out


def wd(port, session, method, path, body=None):
    status, out = call(port, method, f"/session/{session}{path}", body)
    v = json.loads(out).get("value")
    if status != 200:
        raise RuntimeError(f"webdriver {path}: {status} {v}")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                     "release", "klaxon"))
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = ap.parse_args()
    args.klaxon = os.path.abspath(args.klaxon)
    for exe in (args.klaxon, args.chromium, args.chromedriver):
        if not os.access(exe, os.X_OK):
            print(f"graph_render: {exe} missing", file=sys.stderr)
            sys.exit(2)

    tmp = tempfile.mkdtemp(prefix="graph-render-bench-")
    synth_port, port, wd_port = free_port(), free_port(), free_port()
    procs = []
    session = None
    try:
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"), "--port", str(synth_port),
             "--series", "2220"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(os.path.join(tmp, "klaxon.yml"), "w") as f:
            f.write(CONFIG.format(synth_port=synth_port, data=os.path.join(tmp, "data")))
        procs.append(subprocess.Popen(
            [args.klaxon, "run", "--listen", f"127.0.0.1:{port}", "--config", os.path.join(tmp, "klaxon.yml")],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "klaxon.log"), "w")))
        q = urllib.parse.quote(EXPR, safe="")
        api = f"/api/v1/query_range?query={q}&start={{s}}&end={{e}}&step={STEP}"

        def ready():
            e = int(time.time())
            status, body = call(port, "GET", api.format(s=e - RANGE, e=e))
            if status != 200:
                return f"{status} {body[:200]!r}"
            res = json.loads(body)["data"]["result"]
            pts = min((len(r["values"]) for r in res), default=0)
            return len(res) == 1000 and pts >= 250 or f"{len(res)} series, {pts} points"
        wait("1000 series x 250 points", ready, 120)

        procs.append(subprocess.Popen([args.chromedriver, f"--port={wd_port}", "--allowed-ips=127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
        wait("chromedriver", lambda: json.loads(call(wd_port, "GET", "/status")[1])["value"]["ready"] is True, 20)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": args.chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900"]}}}}
        status, out = call(wd_port, "POST", "/session", caps)
        session = json.loads(out)["value"]["sessionId"]
        frag = urllib.parse.urlencode({"g0.expr": EXPR, "g0.tab": "0", "g0.range_input": f"{RANGE}s",
                                       "g0.step_input": str(STEP)})
        wd(wd_port, session, "POST", "/url", {"url": f"http://127.0.0.1:{port}/#/graph?{frag}"})
        wait("graph page", lambda: wd(wd_port, session, "POST", "/execute/sync", {
            "script": "return document.body.dataset.loaded === 'true' && "
                      "document.querySelector('[data-testid=panel]').dataset.evaluated === 'graph';",
            "args": []}) is True, 60)
        wd(wd_port, session, "POST", "/timeouts", {"script": 120000})

        browser, fetched, parsed, drawn, server, lines = [], [], [], [], [], 0
        for i in range(args.runs + 1):  # the first is a warm-up
            r = wd(wd_port, session, "POST", "/execute/async", {"script": MEASURE, "args": []})
            e = int(time.time())
            t0 = time.perf_counter()
            status, body = call(port, "GET", api.format(s=e - RANGE, e=e))
            st = (time.perf_counter() - t0) * 1000
            if r["ms"] < 0 or status != 200:
                sys.exit(f"graph_render: run {i} failed: {r} {status}")
            lines = r["lines"]
            if i:
                browser.append(r["ms"])
                fetched.append(r["fetched"])
                parsed.append(r["parsed"])
                drawn.append(r["drawn"])
                server.append(st)
        print(f"graph_render: {EXPR!r}, {RANGE} s at {STEP} s steps, {lines} lines drawn, "
              f"median of {args.runs} runs")
        print()
        print("| measure | median ms | min | max |")
        print("|---|---:|---:|---:|")

        def row(name, xs):
            print(f"| {name} | {statistics.median(xs):.0f} | {min(xs):.0f} | {max(xs):.0f} |")
        row("Enter -> painted chart (Chromium)", browser)
        row("of which Enter -> answer received", fetched)
        # A build without the page's performance marks gives no split.
        if None not in parsed and None not in drawn:
            row("of which answer -> parsed (text, JSON.parse)", [p - f for p, f in zip(parsed, fetched)])
            row("of which parsed -> chart built (drawChart)", [d - p for d, p in zip(drawn, parsed)])
            row("of which built -> painted (style, layout, paint)", [b - d for b, d in zip(browser, drawn)])
        else:
            row("of which answer received -> painted", [b - f for b, f in zip(browser, fetched)])
        row("query_range alone (HTTP, server + JSON)", server)
    finally:
        if session:
            try:
                call(wd_port, "DELETE", f"/session/{session}", timeout=20)
            except OSError:
                pass
        for p in reversed(procs):
            try:
                os.killpg(p.pid, 9) if p.args[0] == args.chromedriver else p.terminate()
                p.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
