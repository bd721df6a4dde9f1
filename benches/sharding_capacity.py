#!/usr/bin/env python3
"""How many series one klaxon holds while scrapes stay under the interval.

For each total series count in --steps, starts --targets synthetic targets
(../shared/tools/synth_target.py, one process per target so Python's GIL does
not serialize the scrapes) sharing the series evenly, and one `klaxon run`
scraping them every --interval seconds (scrape_timeout = interval). After
--warmup seconds (series creation on the first scrapes is not the steady state)
it measures for --measure seconds:

  scrape duration p50/p99/max  over every scrape_duration_seconds sample of the window
  up                           whether any scrape failed in the window
  RSS                          klaxon's resident memory at the end (peak sampled each second)
  CPU                          klaxon's user+sys CPU seconds per second of the window
  series                       klaxon_tsdb_head_series

A step passes when every scrape in the window succeeded and the slowest took
less than the interval. It stops at the first failing step, or when klaxon's
RSS passes --rss-limit (default 8 GiB). The synthetic targets run on the same
machine and take CPU klaxon would have on its own host: the numbers are
conservative. Everything listens on 127.0.0.1 and is stopped at the end.

  cargo build --release
  python3 benches/sharding_capacity.py --steps 100000,250000,500000,1000000,2000000

Writes --json (every step's figures) when given.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


def get(url, timeout=30):
    return urllib.request.urlopen(url, timeout=timeout).read().decode()


def wait_http(url, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            get(url, 2)
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def query(base, expr):
    v = json.loads(get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"))
    if v.get("status") != "success":
        raise RuntimeError(f"{expr}: {v}")
    return v["data"]["result"]


def metric(base, name):
    for line in get(f"{base}/metrics").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def one_step(args, tmp, total):
    per = total // args.targets
    ports = [args.port + i for i in range(args.targets)]
    targets = [f"127.0.0.1:{p}" for p in ports]
    base = f"http://127.0.0.1:{args.listen_port}"
    cfg = os.path.join(tmp, f"klaxon-{total}.yml")
    with open(cfg, "w") as f:
        f.write(
            f"global:\n  scrape_interval: {args.interval}s\n  scrape_timeout: {args.interval}s\n"
            f"storage: {{path: '{os.path.join(tmp, f'data-{total}')}'}}\n"
            "scrape_configs:\n  - job_name: synth\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n")
    procs = []
    try:
        for p in ports:
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"),
                 "--ports", str(p), "--series", str(per)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for t in targets:
            wait_http(f"http://{t}/stats")
        klaxon = subprocess.Popen(
            [args.klaxon, "run", "--config", cfg, "--listen", f"127.0.0.1:{args.listen_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "KLAXON_LOG": "warn"})
        procs.append(klaxon)
        wait_http(f"{base}/-/ready")
        peak = 0
        over = False
        deadline = time.time() + args.warmup
        while time.time() < deadline:
            peak = max(peak, proc_stats(klaxon.pid)[1])
            if peak > args.rss_limit:
                over = True
                break
            time.sleep(1)
        c0, _ = proc_stats(klaxon.pid)
        synth_cpu0 = sum(proc_stats(p.pid)[0] for p in procs[:-1])
        t0 = time.time()
        while not over and time.time() - t0 < args.measure:
            peak = max(peak, proc_stats(klaxon.pid)[1])
            over = peak > args.rss_limit
            time.sleep(1)
        elapsed = time.time() - t0
        c1, rss = proc_stats(klaxon.pid)
        synth_cpu1 = sum(proc_stats(p.pid)[0] for p in procs[:-1])
        window = f"{int(elapsed)}s"
        durations = [float(v[1]) for s in query(base, f'scrape_duration_seconds{{job="synth"}}[{window}]')
                     for v in s["values"]]
        ups = [float(v[1]) for s in query(base, f'up{{job="synth"}}[{window}]') for v in s["values"]]
        r = {
            "series_target": total,
            "series_head": metric(base, "klaxon_tsdb_head_series"),
            "scrapes": len(durations),
            "scrape_p50_s": pct(durations, 0.5) if durations else None,
            "scrape_p99_s": pct(durations, 0.99) if durations else None,
            "scrape_max_s": max(durations) if durations else None,
            "failed_scrapes": sum(1 for u in ups if u != 1.0),
            "rss_bytes": rss,
            "rss_peak_bytes": peak,
            "cpu_cores": (c1 - c0) / elapsed,
            "synth_cpu_cores": (synth_cpu1 - synth_cpu0) / elapsed,
            "rss_over_limit": over,
        }
        r["pass"] = (not over and bool(durations) and r["failed_scrapes"] == 0
                     and r["scrape_max_s"] < args.interval)
        return r
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", default="100000,250000,500000,1000000,2000000",
                    help="total series counts, comma-separated, in increasing order")
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--interval", type=int, default=15, help="scrape interval, seconds")
    ap.add_argument("--warmup", type=int, default=45, help="seconds before measuring")
    ap.add_argument("--measure", type=int, default=90, help="measured seconds per step")
    ap.add_argument("--rss-limit", type=float, default=8 * 2**30, help="bytes")
    ap.add_argument("--port", type=int, default=19300, help="first synthetic target port")
    ap.add_argument("--listen-port", type=int, default=19471)
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target", "release", "klaxon"))
    ap.add_argument("--json", help="write every step's figures here")
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    tmp = tempfile.mkdtemp(prefix="klaxon-shard-cap-")
    results = []
    try:
        for total in steps:
            r = one_step(args, tmp, total)
            results.append(r)
            mib = r["rss_bytes"] / 2**20
            d = {k: (f"{r[k]:.3f}s" if r[k] is not None else "-") for k in ("scrape_p50_s", "scrape_p99_s", "scrape_max_s")}
            print(f"{total:>9} series: head={r['series_head']:.0f} scrapes={r['scrapes']} "
                  f"duration p50={d['scrape_p50_s']} p99={d['scrape_p99_s']} max={d['scrape_max_s']} "
                  f"failed={r['failed_scrapes']} RSS={mib:.0f} MiB (peak {r['rss_peak_bytes'] / 2**20:.0f}) "
                  f"CPU={r['cpu_cores']:.3f} cores (synth {r['synth_cpu_cores']:.3f}) "
                  f"{'PASS' if r['pass'] else 'FAIL'}", flush=True)
            if not r["pass"] or r["rss_peak_bytes"] > 0.9 * args.rss_limit:
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
