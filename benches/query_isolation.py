#!/usr/bin/env python3
"""Do scraping and rule evaluation keep their timing while a heavy query runs?

Starts ../shared/tools/synth_target.py (N targets x S series) and klaxon
scraping every target every second with one recording-rule group evaluated
every second, lets it settle, then measures two phases of --phase seconds:

  quiet  no queries;
  heavy  a heavy query (~10 s; --heavy, a range query of a subquery)
         sent back to back, one at a time (--parallel to send more at once).

Per phase, from klaxon's own data and metrics:
  - scrape duration: the `scrape_duration_seconds` samples of the phase;
  - scrape interval jitter: |gap between consecutive `up` samples - 1 s|;
  - rule evaluation: `klaxon_rule_group_last_duration_seconds` (max seen),
    `klaxon_rule_group_iterations_missed_total` (increase), and the
    gaps between consecutive values of
    `klaxon_rule_group_last_evaluation_timestamp_seconds` beyond 1 s (late or
    skipped slots) and, as lateness, how long after its slot timestamp each
    evaluation was first seen in /metrics (polled every 100 ms, so this
    includes the evaluation's own duration and up to 100 ms of polling).

  cargo build --release --bin klaxon
  python3 benches/query_isolation.py --klaxon target/release/klaxon
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

RULES = """groups:
  - name: isolation
    interval: 1s
    rules:
      - record: service:synth_http_requests:rate1m
        expr: sum by (service) (rate(synth_http_requests_total[1m]))
      - record: instance:synth_queue_depth:avg1m
        expr: avg by (instance) (avg_over_time(synth_queue_depth[1m]))
"""

HEAVY = "count(max_over_time(rate(synth_http_requests_total[1m])[1m:1s]))"


def get(base, path, params=None, timeout=300):
    url = f"{base}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait_http(url, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            get(url, "")
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout}s")


def metric(text, name):
    """Values of the samples of `name` in an exposition text."""
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            out.append(float(line.rsplit(" ", 1)[1]))
    return out


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Poller(threading.Thread):
    """Polls /metrics for the rule group's gauges every 100 ms."""

    def __init__(self, base):
        super().__init__(daemon=True)
        self.base = base
        self.stop = threading.Event()
        self.evals = []  # distinct last-evaluation timestamps, in order
        self.seen = []  # wall time each was first seen minus its timestamp
        self.durations = []
        self.missed = []

    def run(self):
        while not self.stop.is_set():
            try:
                text = get(self.base, "/metrics", timeout=10).decode()
            except Exception:
                time.sleep(0.1)
                continue
            ts = metric(text, "klaxon_rule_group_last_evaluation_timestamp_seconds")
            if ts and (not self.evals or ts[0] != self.evals[-1]):
                self.evals.append(ts[0])
                self.seen.append(time.time() - ts[0])
            self.durations += metric(text, "klaxon_rule_group_last_duration_seconds")
            self.missed += metric(text, "klaxon_rule_group_iterations_missed_total")
            time.sleep(0.1)


def phase(base, seconds, heavy, heavy_params, parallel):
    poller = Poller(base)
    poller.start()
    t0 = time.time()
    qtimes = []
    errors = []
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            p = dict(heavy_params)
            now = time.time()
            p.update({"start": now - 180, "end": now - 1})
            q0 = time.perf_counter()
            try:
                get(base, "/api/v1/query_range", {"query": heavy, **p})
            except Exception as e:  # a timeout (503) is a result too
                errors.append(str(e))
                continue
            qtimes.append(time.perf_counter() - q0)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(parallel if heavy else 0)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    t1 = time.time()
    poller.stop.set()
    poller.join()
    # Raw samples of the phase (range selectors return them unchanged).
    span = int(t1 - t0)
    res = json.loads(get(base, "/api/v1/query", {
        "query": f"scrape_duration_seconds[{span}s]", "time": t1}))["data"]["result"]
    durations = [float(v) for s in res for _, v in s["values"]]
    res = json.loads(get(base, "/api/v1/query", {"query": f"up[{span}s]", "time": t1}))["data"]["result"]
    jitter = []
    for s in res:
        ts = [float(t) for t, _ in s["values"]]
        jitter += [abs((b - a) - 1.0) for a, b in zip(ts, ts[1:])]
    gaps = [b - a for a, b in zip(poller.evals, poller.evals[1:])]
    late = [max(0.0, g - 1.0) for g in gaps]
    missed = (poller.missed[-1] - poller.missed[0]) if poller.missed else float("nan")
    return {
        "seconds": t1 - t0,
        "heavy_queries": len(qtimes),
        "heavy_errors": len(errors),
        "heavy_median_s": statistics.median(qtimes) if qtimes else None,
        "scrapes": len(durations),
        "scrape_ms_p50": pct(durations, 50) * 1e3,
        "scrape_ms_p99": pct(durations, 99) * 1e3,
        "scrape_ms_max": max(durations, default=float("nan")) * 1e3,
        "jitter_ms_p50": pct(jitter, 50) * 1e3,
        "jitter_ms_p99": pct(jitter, 99) * 1e3,
        "jitter_ms_max": max(jitter, default=float("nan")) * 1e3,
        "rule_evals": len(poller.evals),
        "rule_late_ms_p99": pct(late, 99) * 1e3,
        "rule_late_ms_max": max(late, default=float("nan")) * 1e3,
        "rule_seen_ms_p50": pct(poller.seen[1:], 50) * 1e3,
        "rule_seen_ms_max": max(poller.seen[1:], default=float("nan")) * 1e3,
        "rule_duration_ms_max": max(poller.durations, default=float("nan")) * 1e3,
        "rule_missed": missed,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target", "release", "klaxon"))
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--port", type=int, default=29900)
    ap.add_argument("--listen", default="127.0.0.1:29970")
    ap.add_argument("--settle", type=int, default=190, help="seconds of scraping before measuring")
    ap.add_argument("--phase", type=int, default=60, help="seconds per phase")
    ap.add_argument("--rounds", type=int, default=1, help="quiet/heavy pairs")
    ap.add_argument("--heavy", default=HEAVY)
    ap.add_argument("--heavy-step", default="10", help="step of the heavy range query (s)")
    ap.add_argument("--parallel", type=int, default=1, help="heavy queries in flight at once")
    ap.add_argument("--extra-args", default="", help="more klaxon flags, space-separated")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="klaxon-isolation-")
    targets = [f"127.0.0.1:{args.port + i}" for i in range(args.targets)]
    with open(os.path.join(tmp, "rules.yml"), "w") as f:
        f.write(RULES)
    cfg = os.path.join(tmp, "klaxon.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                f"rule_files: [{json.dumps(os.path.join(tmp, 'rules.yml'))}]\n"
                "scrape_configs:\n  - job_name: synth\n    static_configs:\n"
                f"      - targets: {json.dumps(targets)}\n"
                f"storage:\n  path: {tmp}/data\n  retention: 1d\n")
    base = f"http://{args.listen}"
    procs = []
    results = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"),
             "--port", str(args.port), "--targets", str(args.targets), "--series", str(args.series)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://{targets[0]}/metrics")
        procs.append(subprocess.Popen(
            [args.klaxon, "run", "--config", cfg, "--listen", args.listen, *args.extra_args.split()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "KLAXON_LOG": "warn"}))
        wait_http(f"{base}/-/ready")
        print(f"scraping {args.targets} x {args.series} series at 1 s for {args.settle} s ...", flush=True)
        time.sleep(args.settle)
        params = {"step": args.heavy_step}
        for r in range(args.rounds):
            for name, heavy in (("quiet", None), ("heavy", args.heavy)):
                if procs[-1].poll() is not None:
                    raise RuntimeError(f"klaxon exited with {procs[-1].returncode}")
                res = phase(base, args.phase, heavy, params, args.parallel)
                res["phase"] = name
                res["round"] = r
                results.append(res)
                print(json.dumps(res), flush=True)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    cols = ["phase", "heavy_queries", "heavy_errors", "heavy_median_s", "scrape_ms_p50", "scrape_ms_p99", "scrape_ms_max",
            "jitter_ms_p50", "jitter_ms_p99", "jitter_ms_max", "rule_late_ms_p99", "rule_late_ms_max", "rule_seen_ms_p50", "rule_seen_ms_max",
            "rule_duration_ms_max", "rule_missed"]
    print("\n" + " | ".join(cols))
    for r in results:
        print(" | ".join(f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
