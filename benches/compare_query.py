#!/usr/bin/env python3
"""klaxon vs Prometheus 2.42: HTTP query latency over the same scraped data.

Starts ../shared/tools/synth_target.py (N targets x S series), Prometheus and
klaxon scraping every target every 5 s, waits --wait seconds for data, then
for each expression sends --reqs requests to each server at one fixed
evaluation time, alternating between the two so both see the same machine
load, and prints the median wall time per request (client side, whole HTTP
round trip including JSON encoding and decoding), the klaxon/Prometheus
ratio, the series counts, and how many values agree within 1e-9 relative.

The two servers scrape at different moments of the interval (and the synthetic
targets count scrapes per port, so they hand the two scrapers different
values), so values are not expected to be identical; series counts are.
Differences are reported, never treated as failures.

  cargo build --release && cp target/release/klaxon /tmp/klaxon
  python3 benches/compare_query.py --klaxon /tmp/klaxon

Needs /usr/bin/prometheus (bash ../shared/tools/install-peers.sh).
"""
import argparse
import json
import math
import os
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

INSTANT = [
    "rate(synth_http_requests_total[1m])",
    "sum by (service) (rate(synth_http_requests_total[1m]))",
    "histogram_quantile(0.99, sum by (le) (rate(synth_request_duration_seconds_bucket[1m])))",
    "avg_over_time(synth_queue_depth[1m])",
    "synth_queue_depth * on(instance) group_left() up",
]
RANGE = "sum by (service) (rate(synth_http_requests_total[1m]))"
GRAPH = [
    "rate(synth_http_requests_total[1m])",
    "sum by (service) (rate(synth_http_requests_total[1m]))",
]


def wait_http(url, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def fetch(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    dt = time.perf_counter() - t0
    return dt, json.loads(body)


def series_key(metric):
    return tuple(sorted(metric.items()))


def compare(a, b):
    """(series in a, series in b, common series, values within 1e-9, values compared)."""
    ra, rb = a["data"]["result"], b["data"]["result"]

    def points(res):
        out = {}
        for s in res:
            vals = s.get("values") or [s["value"]]
            out[series_key(s["metric"])] = {float(t): v for t, v in vals}
        return out

    pa, pb = points(ra), points(rb)
    common = set(pa) & set(pb)
    close = total = 0
    for k in common:
        for t, va in pa[k].items():
            vb = pb[k].get(t)
            if vb is None:
                continue
            total += 1
            x, y = float(va), float(vb)
            if (math.isnan(x) and math.isnan(y)) or x == y or (
                    abs(x - y) <= 1e-9 * max(abs(x), abs(y))):
                close += 1
    return len(ra), len(rb), len(common), close, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--port", type=int, default=19300)
    ap.add_argument("--wait", type=int, default=190, help="seconds of scraping before querying")
    ap.add_argument("--reqs", type=int, default=20, help="requests per expression per server")
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target", "release", "klaxon"))
    ap.add_argument("--prom-listen", default="127.0.0.1:19090")
    ap.add_argument("--klaxon-listen", default="127.0.0.1:19470")
    ap.add_argument("--json", help="write the table here too")
    args = ap.parse_args()
    if not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus: bash ../shared/tools/install-peers.sh")
    tmp = tempfile.mkdtemp(prefix="klaxon-qbench-")
    targets = [f"127.0.0.1:{args.port + i}" for i in range(args.targets)]
    cfg = os.path.join(tmp, "bench.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\n"
                "scrape_configs:\n  - job_name: synth\n    static_configs:\n"
                f"      - targets: {json.dumps(targets)}\n")
    prom_base, klaxon_base = f"http://{args.prom_listen}", f"http://{args.klaxon_listen}"
    procs = []
    rows = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"),
             "--port", str(args.port), "--targets", str(args.targets), "--series", str(args.series)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://{targets[0]}/metrics")
        procs.append(subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address={args.prom_listen}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [args.klaxon, "run", "--config", cfg, "--listen", args.klaxon_listen],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "KLAXON_LOG": "warn"}))
        wait_http(f"{prom_base}/-/ready")
        wait_http(f"{klaxon_base}/-/ready")
        print(f"scraping {args.targets} targets x {args.series} series for {args.wait}s ...", flush=True)
        time.sleep(args.wait)
        # A whole second a little in the past: both have ingested up to it.
        t = math.floor(time.time()) - 10
        cases = [("instant", q, "/api/v1/query", {"query": q, "time": t}) for q in INSTANT]
        cases.append(("range 2m/15s", RANGE, "/api/v1/query_range",
                      {"query": RANGE, "start": t - 120, "end": t, "step": 15}))
        # What the UI's graph page asks: the whole filled window in 250
        # steps (every step has data).
        span = args.wait - 20
        for q in GRAPH:
            cases.append(("graph 250 steps", q, "/api/v1/query_range",
                          {"query": q, "start": t - span, "end": t, "step": span / 250}))
        for kind, q, path, params in cases:
            # One warm-up request each (first-touch effects are not the point).
            _, pa = fetch(prom_base, path, params)
            _, ka = fetch(klaxon_base, path, params)
            pt, kt = [], []
            for _ in range(args.reqs):
                pt.append(fetch(prom_base, path, params)[0])
                kt.append(fetch(klaxon_base, path, params)[0])
            np_, nk, common, close, total = compare(pa, ka)
            rows.append({
                "kind": kind, "query": q,
                "prom_ms": statistics.median(pt) * 1e3, "klaxon_ms": statistics.median(kt) * 1e3,
                "prom_series": np_, "klaxon_series": nk, "common_series": common,
                "values_within_1e-9": close, "values_compared": total,
            })
            r = rows[-1]
            r["ratio"] = r["klaxon_ms"] / r["prom_ms"]
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.targets} targets x {args.series} series, 5s interval, {args.reqs} requests each, medians")
    print(f"{'query':<92} {'prom ms':>8} {'klaxon ms':>9} {'ratio':>6} {'series p/k':>11} {'equal vals':>11}")
    for r in rows:
        label = r["query"] if r["kind"] == "instant" else f"[{r['kind']}] {r['query']}"
        print(f"{label:<92} {r['prom_ms']:8.2f} {r['klaxon_ms']:9.2f} {r['ratio']:6.2f} "
              f"{r['prom_series']:>5}/{r['klaxon_series']:<5} {r['values_within_1e-9']:>5}/{r['values_compared']:<5}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
