#!/usr/bin/env python3
"""Server time of every API call the web UI's pages make, with 10k series and 1k firing alerts.

The issue's bar: "each page renders in < 200 ms server time with 10k series and 1k firing alerts".
This script starts, on 127.0.0.1:
  - ../shared/tools/synth_target.py serving --series series (10k: counters, gauges, a histogram);
  - klaxon (the binary given by --klaxon) scraping it every --scrape-interval, with one alerting rule
    over 1000 of the gauges (`synth_queue_depth{queue=~"q[0-9]{1,2}"} >= 0`, always true), a few
    recording rules, a scheduled probe, 20 silences (matching nothing) and a webhook receiver (in this
    process) with group_by [alertname, service, queue], so the deliveries history has ~1000 rows;
then waits --fill seconds so range queries have data, and times each API call of each page
(the table below, checked against the URLs in ui/**/*.js so a page's new call cannot be missed)
--runs times on a kept-alive connection: request sent -> last body byte read. Prints medians as a
Markdown table: per call, and per page the sum of its calls (the server time the page costs; the
browser runs them in parallel, so the wall time is nearer the largest).

  cargo build --release --bin klaxon
  python3 benches/ui_pages.py --klaxon "${CARGO_TARGET_DIR:-target}/release/klaxon"

Assertion-free (a measurement, not a test); exits 2 only when the setup fails or ui/pages/*.js call an
API this table does not time (scanned: ui/**/*.js). Python stdlib only.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")

# The graph page's auto step: range / 250 points (ui/pages/graph.js TARGET_POINTS).
GRAPH_RANGE = 3600
GRAPH_STEP = max(1, round(GRAPH_RANGE / 250))
GRAPH_EXPRS = [
    ("graph: sum by (service) (rate(...[1m]))", "sum by (service) (rate(synth_http_requests_total[1m]))"),
    ("graph: rate(synth_http_requests_total[1m]) (4.5k series)", "rate(synth_http_requests_total[1m])"),
    ("graph: ALERTS (1k series)", "ALERTS"),
]

# Calls the pages make that are actions (POST/DELETE on a click) or a stream, not page renders.
NOT_RENDER = {"/api/v1/deliveries/{}/replay", "/api/v2/silence/{}", "/api/v1/events/stream"}

CONFIG = """
global:
  scrape_interval: {scrape}
  scrape_timeout: {timeout}
  evaluation_interval: {scrape}
rule_files: [rules.yml]
scrape_configs:
- job_name: synth
  static_configs:
  - targets: ['127.0.0.1:{synth_port}']
probes:
- targets: ['http://127.0.0.1:{synth_port}/stats']
  module: http_2xx
  interval: 10s
  job: synth-probe
storage:
  path: {data}
notify:
  route:
    receiver: hook
    group_by: [alertname, service, queue]
    group_wait: 0s
    group_interval: 5m
    repeat_interval: 4h
  receivers:
  - name: hook
    webhook_configs:
    - url: http://127.0.0.1:{hook_port}/hook
      send_resolved: false
"""

RULES = """
groups:
- name: queues
  rules:
  - alert: QueueDepthBench
    expr: synth_queue_depth{queue=~"q[0-9]{1,2}"} >= 0
    labels:
      severity: ticket
    annotations:
      summary: "{{ $labels.service }}/{{ $labels.queue }} depth {{ $value }}"
      runbook_url: https://runbooks.example.org/queue-depth
- name: recording
  rules:
  - record: service:synth_http_requests:rate1m
    expr: sum by (service) (rate(synth_http_requests_total[1m]))
  - record: service_code:synth_http_requests:rate1m
    expr: sum by (service, code) (rate(synth_http_requests_total[1m]))
  - record: service:synth_queue_depth:max
    expr: max by (service) (synth_queue_depth)
  - record: route:synth_request_duration_seconds:p99
    expr: histogram_quantile(0.99, sum by (route, le) (rate(synth_request_duration_seconds_bucket[1m])))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hook:
    """Webhook receiver answering 200, counting POSTs."""

    def __init__(self):
        self.count = 0
        hook = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                self.rfile.read(n)
                hook.count += 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def get(port, path, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"content-type": "application/json"} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def get_json(port, path):
    status, data = get(port, path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {data[:300]!r}")
    return json.loads(data)


def wait(what, fn, timeout):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = fn()
            if last is True:
                return
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.5)
    sys.exit(f"ui_pages: timed out waiting for {what} (last: {last})")


def page_calls(filled=None):
    """The render-time calls per page (paths with their query strings).

    The graph page's default range is 1h, but the bench has only `filled`
    seconds of data, so most 1h steps are empty; each graph query is also
    timed over the filled window at a step giving as many points as that
    window allows (up to the page's 250), every step with data: the cost of
    a 1h graph on a server with an hour of data, within a factor of
    points/250."""
    now = int(time.time())
    pages = [
        ("shell (every page)", ["/", "/ui/app.js", "/api/v1/auth/whoami"]),
        ("alerts", ["/api/v1/rules?type=alert", "/api/v2/alerts"]),
    ]
    for name, expr in GRAPH_EXPRS:
        q = urllib.parse.quote(expr, safe="")
        pages.append((name + ", 1h", [
            f"/api/v1/query_range?query={q}&start={now - GRAPH_RANGE}&end={now}&step={GRAPH_STEP}",
            f"/api/v1/query?query={q}&time={now}",
        ]))
        if filled:
            rng = filled - 60  # rate()'s first minute has no value
            step = max(1, round(rng / 250))
            pages.append((f"{name}, last {rng}s (step {step}s, every step has data)", [
                f"/api/v1/query_range?query={q}&start={now - rng}&end={now}&step={step}",
                f"/api/v1/query?query={q}&time={now}",
            ]))
    pages += [
        # Typing in the expression box and the metric browser.
        ("graph: completions and metric browser", [
            "/api/v1/label/__name__/values", "/api/v1/metadata",
            "/api/v1/labels?match[]=synth_http_requests_total",
            "/api/v1/label/service/values?match[]=synth_http_requests_total",
        ]),
        ("rules", ["/api/v1/rules"]),
        ("targets", ["/api/v1/targets?state=active"]),
        ("probes", ["/api/v1/probes"]),
        ("deliveries", ["/api/v1/deliveries?limit=100"]),
        ("silences", ["/api/v2/silences"]),
        ("status", ["/api/v1/status/buildinfo", "/api/v1/status/runtimeinfo", "/meta",
                    "/api/v1/status/tsdb?limit=5", "/healthz", "/api/v1/status/config",
                    "/api/v1/status/flags"]),
    ]
    return pages


def check_coverage():
    """Every API path named in ui/pages/*.js is timed here (or is an action/stream)."""
    timed = {p.split("?")[0] for _, calls in page_calls() for p in calls}
    # A label's values, whatever the label: `/api/v1/label/{}/values`.
    timed |= {re.sub(r"^/api/v1/label/[^/]+/values$", "/api/v1/label/{}/values", p) for p in timed}
    missing = []
    ui = os.path.join(ROOT, "ui")
    files = [os.path.join(d, f) for d, _, fs in os.walk(ui) for f in fs if f.endswith(".js")]
    for path_js in sorted(files):
        f = os.path.relpath(path_js, ROOT)
        text = open(path_js, encoding="utf-8").read()
        # Comment lines (`// …`, ` * …`) name paths as examples, not calls.
        text = re.sub(r"^\s*(//|/?\*).*$", "", text, flags=re.M)
        # Path parameters (`${encodeURIComponent(x)}`) become {}; a query string
        # (`${qs(...)}` or `?...`) ends the path.
        text = re.sub(r"\$\{encodeURIComponent\([^)]*\)\}", "{}", text)
        for m in re.finditer(r"['`](/(?:api|meta|healthz)[A-Za-z0-9_/.{}-]*)", text):
            path = m.group(1)
            if path not in timed and path not in NOT_RENDER:
                missing.append(f"{f}: {path}")
    if missing:
        sys.exit("ui_pages: the pages call APIs this bench does not time:\n  " + "\n  ".join(missing))


def time_call(port, path, runs):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, size, status = [], 0, 0
    for _ in range(runs + 1):  # the first is a warm-up, not counted
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        status, size = r.status, len(body)
        times.append(dt * 1000)
    c.close()
    return statistics.median(times[1:]), max(times[1:]), size, status


def profile(pid, port, slowest):
    """`perf record` of klaxon while it answers the slowest call 5 times; the
    top of `perf report` goes to stderr."""
    med, path = slowest
    data = os.path.join(tempfile.mkdtemp(prefix="ui-pages-perf-"), "perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", data],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    time_call(port, path, 5)
    rec.send_signal(2)
    rec.wait(timeout=60)
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "2",
                          "-g", "none", "--sort", "symbol"], capture_output=True, text=True)
    print(f"ui_pages: perf profile of {urllib.parse.unquote(path)} ({med:.0f} ms median):", file=sys.stderr)
    lines = [l for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
    print("\n".join(lines[:25]), file=sys.stderr)
    shutil.rmtree(os.path.dirname(data), ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                     "release", "klaxon"))
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--scrape-interval", default="2s")
    ap.add_argument("--fill", type=int, default=360, help="seconds of scraping before timing (range-query data)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--profile", action="store_true",
                    help="perf-record klaxon answering the slowest call; the report goes to stderr")
    args = ap.parse_args()
    check_coverage()
    if not os.access(args.klaxon, os.X_OK):
        sys.exit(f"ui_pages: no klaxon binary at {args.klaxon} (cargo build --release --bin klaxon)")

    tmp = tempfile.mkdtemp(prefix="ui-pages-bench-")
    hook = Hook()
    synth_port, port = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"), "--port", str(synth_port),
             "--series", str(args.series)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        secs = float(args.scrape_interval.rstrip("s"))
        with open(os.path.join(tmp, "klaxon.yml"), "w") as f:
            f.write(CONFIG.format(scrape=args.scrape_interval, timeout=f"{max(int(secs * 900), 500)}ms",
                                  synth_port=synth_port, hook_port=hook.port, data=os.path.join(tmp, "data")))
        with open(os.path.join(tmp, "rules.yml"), "w") as f:
            f.write(RULES)
        procs.append(subprocess.Popen(
            [args.klaxon, "run", "--listen", f"127.0.0.1:{port}", "--config", os.path.join(tmp, "klaxon.yml")],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "klaxon.log"), "w")))

        def ready():
            if procs[-1].poll() is not None:
                sys.exit("ui_pages: klaxon exited: " + open(os.path.join(tmp, "klaxon.log")).read()[-2000:])
            return get(port, "/-/ready")[0] == 200
        wait("klaxon ready", ready, 60)
        wait(f">= {args.series} head series", lambda: get_json(port, "/api/v1/status/tsdb")["data"]["headStats"][
            "numSeries"] >= args.series, 120)

        def firing():
            alerts = get_json(port, "/api/v1/alerts")["data"]["alerts"]
            return sum(1 for a in alerts if a["state"] == "firing") >= 1000 or len(alerts)
        wait("1000 firing alerts", firing, 120)
        for i in range(20):
            s = json.dumps({"matchers": [{"name": "alertname", "value": f"NoSuchAlert{i}", "isRegex": False}],
                            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400)),
                            "createdBy": "bench", "comment": f"bench silence {i}"})
            status, body = get(port, "/api/v2/silences", "POST", s)
            if status != 200:
                sys.exit(f"ui_pages: POST silence: {status} {body[:200]!r}")
        fill_start = time.time()
        print(f"ui_pages: filling for {args.fill}s (scrape every {args.scrape_interval})", file=sys.stderr)
        time.sleep(args.fill)

        tsdb = get_json(port, "/api/v1/status/tsdb")["data"]["headStats"]
        alerts = get_json(port, "/api/v1/alerts")["data"]["alerts"]
        deliveries = get_json(port, "/api/v1/deliveries?limit=1000")["data"]["deliveries"]
        print(f"head series {tsdb['numSeries']}, firing alerts "
              f"{sum(1 for a in alerts if a['state'] == 'firing')}, deliveries listed (limit 1000) {len(deliveries)}, "
              f"webhook POSTs {hook.count}, runs {args.runs} (+1 warm-up) per call\n")
        print("| page | call | median ms | max ms | bytes |")
        print("|---|---|---:|---:|---:|")
        totals = []
        slowest = (0.0, "")
        filled = int(time.time() - fill_start)
        for page, calls in page_calls(filled):
            total = 0.0
            for path in calls:
                med, worst, size, status = time_call(port, path, args.runs)
                total += med
                if med > slowest[0]:
                    slowest = (med, path)
                shown = urllib.parse.unquote(path)
                if len(shown) > 90:
                    shown = shown[:87] + "..."
                note = "" if status == 200 else f" (HTTP {status})"
                print(f"| {page} | `{shown}`{note} | {med:.1f} | {worst:.1f} | {size} |")
            totals.append((page, total))
        if args.profile:
            profile(procs[-1].pid, port, slowest)
        print("\n| page | server time (sum of call medians), ms |")
        print("|---|---:|")
        for page, total in totals:
            print(f"| {page} | {total:.1f}{' **over 200**' if total > 200 else ''} |")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        hook.server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
