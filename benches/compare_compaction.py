#!/usr/bin/env python3
"""Block compaction: klaxon against Prometheus 2.42 compacting the same
blocks, in the same run.

One generated OpenMetrics file (10 h of data, a sample every 30 s,
starting 6 h before an 18 h boundary) is backfilled once with `promtool
tsdb create-blocks-from openmetrics` into five 2 h blocks. Each run copies
them into a fresh data directory for klaxon and for Prometheus (both with
15 d retention, so both merge the first three into one 6 h block and
nothing else: the next two lie in the next 18 h window, the newest is left
out), starts the server with nothing to scrape and polls its /metrics
every 0.1 s until the compaction is done.

Reported, medians over --runs: compaction wall time as each server measures
it (klaxon_tsdb_compaction_seconds_total, the sum of
prometheus_tsdb_compaction_duration_seconds), process CPU from the first
answer of /metrics to the end of the compaction (both are idle otherwise:
both start compacting a minute after start; the polls every 0.5 s are
included), and bytes on disk per sample (index + chunks) of the merged 6 h
block. The merged blocks of both are dumped with `promtool tsdb dump` and
must be equal.

    cargo build --release --bin klaxon
    python3 benches/compare_compaction.py --series 2000 --runs 3
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_backfill import generate, disk_bytes, dump  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def run_one(cmd, port, counter, seconds, data, timeout=300):
    """Starts a server, waits until `counter` has moved and stayed put for
    3 s, returns (compaction seconds, process CPU seconds from the first
    answer of /metrics to the end of the compaction)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        first_cpu = None
        moved_at = None
        last = 0.0
        cpu_after = None
        while time.monotonic() < deadline:
            m = scrape(port)
            if m is None:
                time.sleep(0.1)
                continue
            c = m.get(counter, 0.0)
            cpu = m.get("process_cpu_seconds_total", 0.0)
            if first_cpu is None:
                first_cpu = cpu
            if c != last:
                moved_at = time.monotonic()
                cpu_after = cpu
            elif moved_at and time.monotonic() - moved_at > 3:
                return m.get(seconds, 0.0), cpu_after - first_cpu
            last = c
            # Slow polls while idle, so polling costs little CPU.
            time.sleep(0.1 if moved_at else 0.5)
        raise RuntimeError(f"{cmd[0]}: no compaction within {timeout}s")
    finally:
        p.terminate()
        p.wait()


def merged_block(d):
    best = None
    for name in os.listdir(d):
        meta = os.path.join(d, name, "meta.json")
        if os.path.isfile(meta):
            m = json.load(open(meta))
            if best is None or m["compaction"]["level"] > best[1]["compaction"]["level"]:
                best = (os.path.join(d, name), m)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--klaxon", default="target/release/klaxon")
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    h18 = 18 * 3600
    start = (int(time.time()) // h18) * h18 - h18 - 6 * 3600
    samples = 10 * 120  # 10 h every 30 s
    with tempfile.TemporaryDirectory() as tmp:
        om = os.path.join(tmp, "in.om")
        generate(om, a.series, samples, start)
        blocks = os.path.join(tmp, "blocks")
        subprocess.run([a.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, blocks],
                       check=True, stdout=subprocess.DEVNULL)
        res = {"klaxon": [], "prometheus": []}
        merged = {}
        for r in range(a.runs):
            for name in ("klaxon", "prometheus"):
                d = os.path.join(tmp, f"{name}-{r}")
                shutil.copytree(blocks, d)
                port = free_port()
                if name == "klaxon":
                    cfg = os.path.join(tmp, "klaxon.yml")
                    with open(cfg, "w") as f:
                        f.write(f"storage:\n  path: {d}\n  retention: 15d\nscrape_configs: []\n")
                    cmd = [a.klaxon, "run", f"--config={cfg}", f"--listen=127.0.0.1:{port}"]
                    counter, secs = "klaxon_tsdb_compactions_total", "klaxon_tsdb_compaction_seconds_total"
                else:
                    cfg = os.path.join(tmp, "prometheus.yml")
                    with open(cfg, "w") as f:
                        f.write("global: {}\n")
                    cmd = [a.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={d}",
                           f"--web.listen-address=127.0.0.1:{port}"]
                    counter = "prometheus_tsdb_compactions_total"
                    secs = "prometheus_tsdb_compaction_duration_seconds_sum"
                wall, cpu = run_one(cmd, port, counter, secs, d)
                path, meta = merged_block(d)
                assert meta["compaction"]["level"] >= 2, f"{name}: nothing merged"
                n = meta["stats"]["numSamples"]
                res[name].append((wall, cpu, disk_bytes(path) / n, n))
                merged[name] = path
        dk = dump(a.promtool, _only(merged["klaxon"], tmp), tmp)
        dp = dump(a.promtool, _only(merged["prometheus"], tmp), tmp)
        assert dk == dp, "the merged blocks dump differently"
        n = res["klaxon"][0][3]
        report(res, f"{a.series} series, three 2 h blocks -> one 6 h block ({n} samples), {a.runs} runs, medians",
               "in the merged block")


def report(res, title, where):
    """Prints medians of (compaction s, CPU s, bytes/sample) per server
    and klaxon's ratios to Prometheus'."""
    print(title)
    for name in res:
        w = statistics.median(x[0] for x in res[name])
        c = statistics.median(x[1] for x in res[name])
        b = statistics.median(x[2] for x in res[name])
        print(f"{name:10} compaction {w:7.3f} s  cpu {c:7.3f} s  {b:5.3f} bytes/sample {where}")
    ratio = lambda i: statistics.median(x[i] for x in res["klaxon"]) / statistics.median(
        x[i] for x in res["prometheus"])
    print(f"klaxon/prometheus: time {ratio(0):.2f}x  cpu {ratio(1):.2f}x  bytes/sample {ratio(2):.2f}x")


def _only(block, tmp):
    """A directory holding just `block` (promtool dump reads a directory)."""
    d = os.path.join(tmp, "only-" + os.path.basename(block))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copytree(block, os.path.join(d, os.path.basename(block)))
    return d


if __name__ == "__main__":
    main()
