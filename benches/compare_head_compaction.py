#!/usr/bin/env python3
"""Head -> block compaction: klaxon against Prometheus 2.42 on the same
samples, in the same run.

Both servers start on an empty data directory with the remote-write
receiver on and nothing to scrape, and receive the same samples by remote
write (protobuf and snappy encoded here): --series series every 15 s from
an aligned 2 h boundary T0 for 3 h (each request 5 minutes of every
series), then, after a pause in which each process' idle CPU rate is
measured, one more sample per series at T0 + 3 h + 15 s. That sample makes
the head span more than 1.5 block ranges, so each writes the head's oldest
range [T0, T0 + 2 h) as a block: Prometheus at once (its appender commit
triggers compaction), klaxon at its next compaction pass (each minute).

Reported, medians over --runs:
- compaction time as each server measures it: the sum of
  prometheus_tsdb_compaction_duration_seconds (the block write), and
  klaxon_tsdb_compaction_seconds_total (reading the head, writing and
  opening the block; only the head is compacted here, so it equals
  klaxon_tsdb_head_compaction_seconds_total, which older builds lack);
- process CPU (polled every 0.1 s) from just before the compaction began
  (the moment its counter moved minus its own duration) to 2 s after,
  covering the block write, head truncation and WAL checkpoint, minus the
  idle rate times that window;
- bytes on disk per sample (index + chunks) of the block.
The two blocks are dumped with `promtool tsdb dump` and must be equal.

    cargo build --release --bin klaxon
    python3 benches/compare_head_compaction.py --klaxon target/release/klaxon --series 2000 --runs 3
"""

import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_backfill import disk_bytes, dump  # noqa: E402
from compare_compaction import free_port, scrape, report, _only  # noqa: E402
from compare_query import pb_bytes, snappy_literal, varint  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
STEP_MS = 15_000
BLOCK_MS = 2 * 3600 * 1000


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- remote write 1.0 encoding (protobuf by hand, snappy literals only) ---

def _label(name, value):
    return pb_bytes(1, name.encode()) + pb_bytes(2, value.encode())


def _sample(t, v):
    return b"\x09" + struct.pack("<d", v) + b"\x10" + varint(t & (2**64 - 1))


def write_request(series):
    """series: [(labels dict, [(t_ms, value)])]"""
    out = bytearray()
    for labels, samples in series:
        ts = b"".join(pb_bytes(1, _label(k, labels[k])) for k in sorted(labels))
        ts += b"".join(pb_bytes(2, _sample(t, v)) for t, v in samples)
        out += pb_bytes(1, ts)
    return bytes(out)


def post(port, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/write",
        data=snappy_literal(body),
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        if r.status // 100 != 2:
            raise RuntimeError(f"remote write: HTTP {r.status}")


def labels_of(s):
    if s % 2 == 0:
        return {"__name__": "bench_requests_total", "inst": f"i{s}", "zone": f"z{s % 5}"}
    return {"__name__": "bench_temp", "inst": f"i{s}", "zone": f"z{s % 5}"}


def value(s, i):
    if s % 2 == 0:
        # A counter: the sum of (k * 7 + s) % 13 over k <= i.
        full, rest = divmod(i + 1, 13)
        return float(full * 78 + sum((k * 7 + s) % 13 for k in range(full * 13, i + 1)))
    return round(math.sin((i + s) / 9.0) * 30 + 40, 3)


def requests(series, t0, steps_per_request, steps):
    """The bodies to send, oldest first: every series, a slice of steps."""
    out = []
    for first in range(0, steps, steps_per_request):
        idx = range(first, min(steps, first + steps_per_request))
        out.append(write_request(
            [(labels_of(s), [(t0 + i * STEP_MS, value(s, i)) for i in idx]) for s in range(series)]))
    return out


def wait_up(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"port {port}: not ready within {timeout}s")


def the_block(d):
    for name in os.listdir(d):
        meta = os.path.join(d, name, "meta.json")
        if os.path.isfile(meta):
            return os.path.join(d, name), json.load(open(meta))
    return None


def run_one(name, cmd, port, d, bodies, last, done_counter, secs, timeout=180):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port)
        for b in bodies:
            post(port, b)
        # Idle rate over 5 s, after ingestion has settled.
        time.sleep(3)
        c0, w0 = cpu_seconds(p.pid), time.monotonic()
        time.sleep(5)
        c1, w1 = cpu_seconds(p.pid), time.monotonic()
        idle = (c1 - c0) / (w1 - w0)
        if the_block(d) is not None:
            raise RuntimeError(f"{name}: compacted before the head spanned 1.5 ranges")
        polls = [(time.monotonic(), cpu_seconds(p.pid))]
        post(port, last)
        deadline = time.monotonic() + timeout
        moved = None
        while time.monotonic() < deadline:
            m = scrape(port) or {}
            polls.append((time.monotonic(), cpu_seconds(p.pid)))
            if m.get(done_counter, 0) >= 1 and the_block(d) is not None:
                if moved is None:
                    moved = polls[-1][0]
                    secs_done = m.get(secs, 0.0)
                elif polls[-1][0] - moved > 2:
                    # Settled (the WAL checkpoint after the block is done).
                    # The window starts at the last poll before the
                    # compaction began (its end minus its own duration).
                    began = moved - secs_done - 0.2
                    start, start_cpu = max((q for q in polls if q[0] <= began), default=polls[0])
                    end, end_cpu = polls[-1]
                    return secs_done, (end_cpu - start_cpu) - idle * (end - start)
            time.sleep(0.1)
        raise RuntimeError(f"{name}: no head compaction within {timeout}s")
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--klaxon", default="target/release/klaxon")
    ap.add_argument("--prometheus", default="prometheus")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    now = int(time.time() * 1000)
    t0 = now // BLOCK_MS * BLOCK_MS - 2 * BLOCK_MS
    steps = 3 * 3600 * 1000 // STEP_MS  # [T0, T0 + 3 h)
    bodies = requests(a.series, t0, 20, steps)
    # One sample per series at T0 + 3 h + 15 s: the head spans > 3 h.
    last = write_request([(labels_of(s), [(t0 + (steps + 1) * STEP_MS, value(s, steps + 1))])
                          for s in range(a.series)])
    with tempfile.TemporaryDirectory() as tmp:
        res = {"klaxon": [], "prometheus": []}
        blocks = {}
        for r in range(a.runs):
            for name in ("klaxon", "prometheus"):
                d = os.path.join(tmp, f"{name}-{r}")
                os.makedirs(d)
                port = free_port()
                if name == "klaxon":
                    cfg = os.path.join(tmp, "klaxon.yml")
                    with open(cfg, "w") as f:
                        f.write(f"storage:\n  path: {d}\n  retention: 15d\nscrape_configs: []\n")
                    cmd = [a.klaxon, "run", f"--config={cfg}", f"--listen=127.0.0.1:{port}",
                           "--web.enable-remote-write-receiver"]
                    counter, secs = "klaxon_tsdb_head_compactions_total", "klaxon_tsdb_compaction_seconds_total"
                else:
                    cfg = os.path.join(tmp, "prometheus.yml")
                    with open(cfg, "w") as f:
                        f.write("global: {}\n")
                    cmd = [a.prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={d}",
                           f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"]
                    counter = "prometheus_tsdb_compactions_total"
                    secs = "prometheus_tsdb_compaction_duration_seconds_sum"
                wall, cpu = run_one(name, cmd, port, d, bodies, last, counter, secs)
                path, meta = the_block(d)
                assert (meta["minTime"], meta["maxTime"]) == (t0, t0 + BLOCK_MS), f"{name}: {meta}"
                n = meta["stats"]["numSamples"]
                res[name].append((wall, cpu, disk_bytes(path) / n, n))
                blocks[name] = path
        dk = dump(a.promtool, _only(blocks["klaxon"], tmp), tmp)
        dp = dump(a.promtool, _only(blocks["prometheus"], tmp), tmp)
        assert dk == dp, "the head blocks dump differently"
        n = res["klaxon"][0][3]
        report(res, f"{a.series} series every 15 s, head -> one 2 h block ({n} samples), {a.runs} runs, medians",
               "in the block")

if __name__ == "__main__":
    main()
