#!/usr/bin/env python3
"""Queries over persisted blocks and start-up time: klaxon vs Prometheus
2.42 on copies of the same 24 h of blocks, in the same run.

1. Generates 24 h of data (ending an hour ago, one sample a minute) for
   --series series: half `bench_requests_total{inst,svc}` counters, half
   `bench_latency_seconds_bucket{inst,svc,le}` histogram buckets (10
   buckets), and writes blocks with `promtool tsdb create-blocks-from
   openmetrics` (2 h blocks).
2. Start-up: --runs times each, alternating, a server is started on a
   fresh copy of the blocks and timed from spawn to `/-/ready` = 200.
   Prometheus runs with compaction off (min = max block duration = 2h) so
   it does not rewrite the blocks during the run.
3. Queries: one server of each on its own copy; each range query over the
   whole 24 h in 250 steps is sent --reqs times to each server,
   alternating; median wall time of the HTTP round trip. Series counts
   and values (1e-9 relative) are compared.

    cargo build --release --bin klaxon
    python3 benches/compare_blocks.py --klaxon target/release/klaxon
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
QUERIES = [
    "rate(bench_requests_total[5m])",
    "sum by (svc) (rate(bench_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le, svc) (rate(bench_latency_seconds_bucket[5m])))",
    "sum(rate(bench_latency_seconds_bucket[5m]))",
]


def generate(path, series, start_s, n):
    half = series // 2
    with open(path, "w", buffering=1 << 20) as f:
        f.write("# TYPE bench_requests counter\n")
        for s in range(half):
            lbl = f'bench_requests_total{{inst="i{s // 10}",svc="s{s % 10}"}} '
            acc = 0
            lines = []
            for k in range(n):
                acc += (k * 7 + s) % 13
                lines.append(f"{lbl}{acc} {start_s + k * 60}\n")
            f.write("".join(lines))
        f.write("# TYPE bench_latency_seconds histogram\n")
        groups = max(1, half // len(LE))
        for g in range(groups):
            for j, le in enumerate(LE):
                lbl = f'bench_latency_seconds_bucket{{inst="i{g // 10}",le="{le}",svc="s{g % 10}"}} '
                acc = 0
                lines = []
                for k in range(n):
                    obs = 10 + (k + g) % 5
                    acc += obs if le == "+Inf" else obs * (j + 1) // len(LE)
                    lines.append(f"{lbl}{acc} {start_s + k * 60}\n")
                f.write("".join(lines))
        f.write("# EOF\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port, proc, timeout=300):
    url = f"http://127.0.0.1:{port}/-/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.02)
    raise RuntimeError("not ready")


def start(kind, binary, data, work, port):
    log = open(os.path.join(work, f"{kind}-{port}.log"), "w")
    if kind == "prometheus":
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {}\n")
        cmd = [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.min-block-duration=2h",
            "--storage.tsdb.max-block-duration=2h",
            "--query.max-samples=500000000",
        ]
    else:
        cfg = os.path.join(work, f"klaxon-{port}.yml")
        with open(cfg, "w") as f:
            f.write(f"storage:\n  path: {data}\nscrape_configs: []\n")
        cmd = [binary, "run", f"--config={cfg}", f"--listen=127.0.0.1:{port}",
               "--query.max-samples=500000000"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def query(port, expr, start, end, step):
    body = urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": step}
    ).encode()
    t0 = time.monotonic()
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/v1/query_range", data=body, timeout=600
    ) as r:
        raw = r.read()
    wall = time.monotonic() - t0
    v = json.loads(raw)
    if v.get("status") != "success":
        raise RuntimeError(f"{expr}: {v}")
    return wall, v["data"]["result"]


def canon(result):
    out = {}
    for s in result:
        key = json.dumps(s["metric"], sort_keys=True)
        out[key] = [(p[0], float(p[1])) for p in s["values"]]
    return out


def agree(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        if len(a[k]) != len(b[k]):
            return False
        for (t1, v1), (t2, v2) in zip(a[k], b[k]):
            if t1 != t2:
                return False
            same = v1 == v2 or (math.isnan(v1) and math.isnan(v2)) or abs(v1 - v2) <= 1e-9 * max(abs(v1), abs(v2))
            if not same:
                return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--klaxon")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--promtool", default="/usr/bin/promtool")
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reqs", type=int, default=5)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="compare_blocks.")
    os.makedirs(work, exist_ok=True)
    n = args.hours * 60
    end_s = (int(time.time()) - 3600) // 60 * 60
    start_s = end_s - (n - 1) * 60
    blocks = os.path.join(work, "blocks")
    if not os.path.isdir(blocks):
        om = os.path.join(work, "in.om")
        t0 = time.monotonic()
        generate(om, args.series, start_s, n)
        print(f"generated {args.series} series x {n} samples in {time.monotonic() - t0:.0f}s", flush=True)
        t0 = time.monotonic()
        subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, blocks], check=True)
        print(f"promtool wrote the blocks in {time.monotonic() - t0:.0f}s", flush=True)
        os.remove(om)
    else:
        with open(os.path.join(work, "range.json")) as f:
            start_s, end_s = json.load(f)
    with open(os.path.join(work, "range.json"), "w") as f:
        json.dump([start_s, end_s], f)
    nblocks = len([d for d in os.listdir(blocks) if os.path.isfile(os.path.join(blocks, d, "meta.json"))])
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(blocks) for f in fs)
    print(f"{nblocks} blocks, {size / 1e6:.1f} MB", flush=True)

    if args.generate_only:
        return 0
    bins = {"prometheus": args.prometheus, "klaxon": args.klaxon}
    startup = {k: [] for k in bins}
    for run in range(args.runs):
        for kind in (["prometheus", "klaxon"] if run % 2 == 0 else ["klaxon", "prometheus"]):
            data = os.path.join(work, f"startup-{kind}")
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(blocks, data)
            port = free_port()
            t0 = time.monotonic()
            p = start(kind, bins[kind], data, work, port)
            try:
                ready(port, p)
                startup[kind].append(time.monotonic() - t0)
            finally:
                stop(p)
            shutil.rmtree(data, ignore_errors=True)
    print("\nstart-up to ready (s):")
    for k, v in startup.items():
        print(f"  {k}: median {statistics.median(v):.3f}  runs {['%.3f' % x for x in v]}")
    print(f"  ratio klaxon/prometheus: {statistics.median(startup['klaxon']) / statistics.median(startup['prometheus']):.2f}", flush=True)

    procs, ports = {}, {}
    try:
        for kind in bins:
            data = os.path.join(work, f"query-{kind}")
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(blocks, data)
            ports[kind] = free_port()
            procs[kind] = start(kind, bins[kind], data, work, ports[kind])
            ready(ports[kind], procs[kind])
        step = (end_s - start_s) / 249
        print(f"\nrange queries over {args.hours} h, 250 steps (step {step:.1f}s), {args.reqs} requests each, medians (ms):")
        print("| query | Prometheus ms | klaxon ms | ratio | series P / k | values agree |")
        print("|---|---:|---:|---:|---:|---|")
        for q in QUERIES:
            times = {k: [] for k in bins}
            last = {}
            # One warm-up each (page cache, first postings reads).
            for kind in bins:
                query(ports[kind], q, start_s, end_s, step)
            for i in range(args.reqs):
                for kind in (["prometheus", "klaxon"] if i % 2 == 0 else ["klaxon", "prometheus"]):
                    w, res = query(ports[kind], q, start_s, end_s, step)
                    times[kind].append(w * 1000)
                    last[kind] = res
            pm, km = statistics.median(times["prometheus"]), statistics.median(times["klaxon"])
            a, b = canon(last["prometheus"]), canon(last["klaxon"])
            print(f"| `{q}` | {pm:.1f} | {km:.1f} | {km / pm:.2f} | {len(a)} / {len(b)} | {'yes' if agree(a, b) else 'NO'} |", flush=True)
    finally:
        for p in procs.values():
            stop(p)
    print(f"\nwork dir: {work}")


if __name__ == "__main__":
    sys.exit(main())
