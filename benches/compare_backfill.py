#!/usr/bin/env python3
"""Block writing: `klaxon tsdb create-blocks-from openmetrics` against
`promtool tsdb create-blocks-from openmetrics` (2.42) on one generated
OpenMetrics file, in the same run.

Reports medians over --runs alternating runs of wall time and CPU time
(user+sys of the child), the ratio klaxon/promtool, and the bytes on disk
per sample of both outputs (chunks + index). Both outputs are dumped with
`promtool tsdb dump` and must be equal.

    cargo build --release --bin klaxon
    python3 benches/compare_backfill.py --series 2000 --samples 720 --runs 3
"""

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time


def generate(path, series, samples, start_s):
    with open(path, "w") as f:
        f.write("# TYPE bench_requests counter\n")
        for s in range(series // 2):
            acc = 0
            for i in range(samples):
                acc += (i * 7 + s) % 13
                f.write(
                    f'bench_requests_total{{inst="i{s}",zone="z{s % 5}"}} {acc} {start_s + i * 30}\n'
                )
        f.write("# TYPE bench_temp gauge\n")
        for s in range(series - series // 2):
            for i in range(samples):
                v = round(math.sin((i + s) / 9.0) * 30 + 40, 3)
                f.write(f'bench_temp{{inst="i{s}",zone="z{s % 5}"}} {v} {start_s + i * 30}\n')
        f.write("# EOF\n")


def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def disk_bytes(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            if f in ("index",) or root.endswith("chunks"):
                total += os.path.getsize(os.path.join(root, f))
    return total


def dump(promtool, d, scratch):
    copy = os.path.join(scratch, "dumpcopy")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(d, copy)
    os.makedirs(os.path.join(copy, "wal"), exist_ok=True)
    out = subprocess.run(
        [promtool, "tsdb", "dump", copy], check=True, capture_output=True, text=True
    ).stdout
    return sorted(out.splitlines())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--klaxon", default="target/release/klaxon")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=720)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        om = os.path.join(tmp, "in.om")
        generate(om, a.series, a.samples, 1_700_000_000)
        n = a.series * a.samples
        res = {"klaxon": [], "promtool": []}
        outs = {}
        for r in range(a.runs):
            for name, cmd in (
                ("klaxon", [a.klaxon, "tsdb", "create-blocks-from", "openmetrics", "-q"]),
                ("promtool", [a.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet"]),
            ):
                out = os.path.join(tmp, f"{name}-{r}")
                res[name].append(timed(cmd + [om, out]))
                outs[name] = out
        kd = dump(a.promtool, outs["klaxon"], tmp)
        pd = dump(a.promtool, outs["promtool"], tmp)
        assert kd == pd, "klaxon's blocks dump differently from promtool's"
        print(f"{a.series} series x {a.samples} samples = {n} samples, {a.runs} runs, medians")
        for name in res:
            wall = statistics.median(x[0] for x in res[name])
            cpu = statistics.median(x[1] for x in res[name])
            b = disk_bytes(outs[name])
            print(f"{name:9} wall {wall:7.3f} s  cpu {cpu:7.3f} s  {n / wall / 1e6:6.2f} M samples/s  "
                  f"{b / n:5.3f} bytes/sample on disk")
        kw = statistics.median(x[0] for x in res["klaxon"]) / statistics.median(x[0] for x in res["promtool"])
        kc = statistics.median(x[1] for x in res["klaxon"]) / statistics.median(x[1] for x in res["promtool"])
        print(f"klaxon/promtool: wall {kw:.2f}x  cpu {kc:.2f}x")


if __name__ == "__main__":
    main()
