#!/usr/bin/env python3
"""Start-up with 24 h of data (persisted blocks + head chunks + WAL): klaxon
vs Prometheus 2.42 on the same data, same run.

1. Blocks for the older 22 h: --series series (benches/rwload.py's label
   sets, counters and gauges) at one sample every --block-step-s, written as
   OpenMetrics and turned into 2 h blocks by `promtool tsdb
   create-blocks-from openmetrics`; each server gets its own copy.
2. The last 2 h: both servers are started on their copies with the
   remote-write receiver on, and the same requests (one sample per series
   every --head-step-s, timestamps from 2 h ago to now) go to both in
   lockstep. Full chunks go to each one's head chunk files, every sample to
   its WAL. Then both are stopped with SIGTERM and their data directories
   become the golden copies (each server may have compacted the copied
   blocks by its own plan meanwhile; `ls` of both is printed).
3. --runs times each, alternating: a fresh copy of the golden directory,
   the server started on it, the seconds from spawn until `/-/ready`
   answers 200 and the CPU seconds (user + system, /proc/PID/stat) it had
   used by then, the head series it reports, then SIGTERM. On a loaded
   machine the CPU seconds are the steadier comparison.

  python3 benches/compare_startup.py --klaxon /tmp/klaxon-418170a --runs 5 --work /tmp/su
  python3 benches/compare_startup.py --klaxon ... --work /tmp/su --reuse   # restarts only

Memory snapshots (klaxon writes one on SIGTERM by default; Prometheus with
--enable-feature=memory-snapshot-on-shutdown, which --prom-snapshot adds):
--prime starts each server once on its golden directory and stops it with
SIGTERM before the runs, so the golden copies hold what this binary's clean
stop leaves (a snapshot), whoever built them; --drop-snapshot deletes the
snapshots from every run's copy, so each start is what a start after a
SIGKILL does (head chunk files, checkpoint and the whole WAL).

  python3 benches/compare_startup.py --klaxon K --work /tmp/su --reuse --prime --prom-snapshot
  python3 benches/compare_startup.py --klaxon K --work /tmp/su --reuse --drop-snapshot

Everything listens on 127.0.0.1 and is stopped at the end.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwload  # noqa: E402
from compare_blocks import free_port, ready  # noqa: E402
from compare_rss import metric, stop  # noqa: E402

HOUR_MS = 3600 * 1000


def write_openmetrics(path, targets, per_target, start_s, n, step_s):
    with open(path, "w", buffering=1 << 22) as f:
        for t in range(targets):
            inst = f"10.1.{t // 250}.{t % 250}:9100"
            for i in range(per_target):
                s = t * per_target + i
                name = f"bench_c{s % 50}_total" if s % 2 == 0 else f"bench_g{s % 50}"
                lbl = f'{name}{{instance="{inst}",job="bench",series="{i}"}} '
                v = float(s % 1000)
                lines = []
                for k in range(n):
                    if s % 2 == 0:
                        v += (k * 7 + s) % 13
                    else:
                        v = (s % 97) + ((k * 31 + s) % 17) * 0.25
                    lines.append(f"{lbl}{v} {start_s + k * step_s}\n")
                f.write("".join(lines))
        f.write("# EOF\n")


def spawn(kind, binary, data, work, port, remote_write=False, prom_features=()):
    log = open(os.path.join(work, f"{kind}-{port}.log"), "w")
    if kind == "prometheus":
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {}\n")
        cmd = [binary, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        cmd += [f"--enable-feature={f}" for f in prom_features]
    else:
        cfg = os.path.join(work, f"klaxon-{port}.yml")
        with open(cfg, "w") as f:
            f.write(f"storage:\n  path: {data}\nscrape_configs: []\n")
        cmd = [binary, "run", f"--config={cfg}", f"--listen=127.0.0.1:{port}", "--log.level=warn"]
    if remote_write:
        cmd.append("--web.enable-remote-write-receiver")
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    return p, t0


def du(path):
    return int(subprocess.check_output(["du", "-sb", path]).split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--promtool", default="/usr/bin/promtool")
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--per-target", type=int, default=10000)
    ap.add_argument("--block-step-s", type=int, default=120)
    ap.add_argument("--head-step-s", type=int, default=15)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default=None)
    ap.add_argument("--reuse", action="store_true",
                    help="skip steps 1-2 when --work already holds both golden directories")
    ap.add_argument("--prime", action="store_true",
                    help="start and SIGTERM each server once on its golden directory first")
    ap.add_argument("--prom-snapshot", action="store_true",
                    help="run Prometheus with --enable-feature=memory-snapshot-on-shutdown")
    ap.add_argument("--drop-snapshot", action="store_true",
                    help="delete memory snapshots from each run's copy (a start after SIGKILL)")
    args = ap.parse_args()
    args.prom_features = ("memory-snapshot-on-shutdown",) if args.prom_snapshot else ()
    work = args.work or tempfile.mkdtemp(prefix="klaxon-startup-")
    os.makedirs(work, exist_ok=True)
    procs = []
    try:
        golden = {k: os.path.join(work, f"golden-{k}") for k in ("prometheus", "klaxon")}
        if not (args.reuse and all(os.path.isdir(d) for d in golden.values())):
            build_golden(args, work, golden, procs)
        if args.prime:
            prime(args, work, golden, procs)
        restarts(args, work, golden, procs)
    finally:
        for p in procs:
            stop(p)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def build_golden(args, work, golden, procs):
    now_ms = int(time.time() * 1000)
    head_start_ms = now_ms - 2 * HOUR_MS
    block_start_s = (head_start_ms - 22 * HOUR_MS) // 1000
    n_block = 22 * 3600 // args.block_step_s
    om = os.path.join(work, "data.om")
    t = time.time()
    write_openmetrics(om, args.targets, args.per_target, block_start_s, n_block, args.block_step_s)
    blocks = os.path.join(work, "blocks")
    subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                   check=True, stdout=subprocess.DEVNULL)
    os.remove(om)
    print(f"blocks: {len(os.listdir(blocks))} dirs, {du(blocks) / 1e6:.1f} MB, "
          f"{args.targets * args.per_target} series x {n_block} samples ({time.time() - t:.0f} s)", flush=True)

    servers = {}
    for kind in ("prometheus", "klaxon"):
        data = golden[kind]
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(blocks, data)
        port = free_port()
        binary = args.prometheus if kind == "prometheus" else args.klaxon
        p, _ = spawn(kind, binary, data, work, port, remote_write=True,
                     prom_features=args.prom_features)
        procs.append(p)
        ready(port, p)
        servers[kind] = (p, port)
    n_head = 2 * 3600 // args.head_step_s
    load = rwload.Load(args.targets, args.per_target, head_start_ms, args.head_step_s * 1000)
    senders = [rwload.Sender(servers[k][1]) for k in ("prometheus", "klaxon")]
    for s in senders:
        s.start()
    t = time.time()
    rwload.push(load, senders, 0, n_head)
    for s in senders:
        if s.errors:
            raise RuntimeError(f"port {s.port}: {s.errors} failed writes, first: {s.first_error}")
        s.q.put(None)
    # Let the background passes (head chunk writes, compaction of the
    # copied blocks) finish as they would on a running server.
    time.sleep(30)
    for kind, (p, port) in servers.items():
        series = metric(port, f"{kind}_tsdb_head_series")
        stop(p)
        print(f"{kind}: head {series:.0f} series; data dir {du(golden[kind]) / 1e6:.1f} MB: "
              f"{sorted(os.listdir(golden[kind]))}", flush=True)
    print(f"head: {n_head} samples per series pushed in {time.time() - t:.0f} s", flush=True)


def snapshots(data):
    return [n for n in os.listdir(data) if n.startswith("chunk_snapshot")]


def prime(args, work, golden, procs):
    for kind in ("prometheus", "klaxon"):
        port = free_port()
        binary = args.prometheus if kind == "prometheus" else args.klaxon
        p, t0 = spawn(kind, binary, golden[kind], work, port, prom_features=args.prom_features)
        procs.append(p)
        ready(port, p, timeout=900)
        secs = time.time() - t0
        stop(p)
        print(f"primed {kind}: ready after {secs:.2f} s, stopped with SIGTERM; "
              f"snapshots {snapshots(golden[kind])}", flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def restarts(args, work, golden, procs):
    times = {"prometheus": [], "klaxon": []}
    cpus = {"prometheus": [], "klaxon": []}
    for run in range(args.runs):
        for kind in ("prometheus", "klaxon"):
            data = os.path.join(work, f"run-{kind}")
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(golden[kind], data)
            dropped = []
            if args.drop_snapshot:
                for n in snapshots(data):
                    path = os.path.join(data, n)
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    else:
                        os.remove(path)
                    dropped.append(n)
            subprocess.run(["sync"])
            port = free_port()
            binary = args.prometheus if kind == "prometheus" else args.klaxon
            p, t0 = spawn(kind, binary, data, work, port, prom_features=args.prom_features)
            procs.append(p)
            ready(port, p, timeout=900)
            secs = time.time() - t0
            cpu = cpu_seconds(p.pid)
            series = metric(port, f"{kind}_tsdb_head_series")
            stop(p)
            times[kind].append(secs)
            cpus[kind].append(cpu)
            print(f"  run {run} {kind}: ready after {secs:.2f} s ({cpu:.2f} CPU s), head {series:.0f} series, "
                  f"load {os.getloadavg()[0]:.1f}" + (f", dropped {dropped}" if dropped else ""), flush=True)
    pm, km = statistics.median(times["prometheus"]), statistics.median(times["klaxon"])
    print(f"start-up to ready, median of {args.runs}: prometheus {pm:.2f} s, klaxon {km:.2f} s, "
          f"ratio {km / pm:.3f}")
    pc, kc = statistics.median(cpus["prometheus"]), statistics.median(cpus["klaxon"])
    print(f"CPU seconds until ready, median of {args.runs}: prometheus {pc:.2f}, klaxon {kc:.2f}, "
          f"ratio {kc / pc:.3f}")


if __name__ == "__main__":
    main()
