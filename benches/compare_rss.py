#!/usr/bin/env python3
"""RSS per series as the head grows: klaxon vs Prometheus 2.42, same samples,
same run.

Both servers start empty with their remote-write receiver on and no scrape
jobs. The same remote-write requests (benches/rwload.py: --targets x
--per-target series, half counters and half gauges, one sample per series
every --step-ms, timestamps ending about now so the head spans
points[-1] x step, under Prometheus' 3 h head compaction) go to both in
lockstep. When every series holds N samples (each of --rss-at), the load
pauses --settle seconds and each process' memory is read from
/proc/PID/status:

  VmRSS   resident set, what the goal compares (Prometheus'
          process_resident_memory_bytes is the same number)
  RssAnon heap and stacks
  RssFile mapped file pages (binary, and Prometheus' mmapped head chunks)

divided by the head series each one reports on /metrics. klaxon's growth
is its RSS per series at the last point over the first.

  python3 benches/compare_rss.py --klaxon /tmp/klaxon-418170a --runs 3
  python3 benches/compare_rss.py --klaxon ... --runs 1 --targets 100 --rss-at 200
  python3 benches/compare_rss.py --klaxon NEW --baseline OLD --runs 1

Everything listens on 127.0.0.1 and is stopped at the end.
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
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rwload  # noqa: E402
from compare_blocks import free_port, ready  # noqa: E402


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(line.split()[1]) * 1024
    return out


def metric(port, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def start_servers(args, work, tag):
    """Prometheus, klaxon and (with --klaxon-env) a second klaxon with that
    environment, as [(name, process, port)]."""
    out = []
    pport = free_port()
    pcfg = os.path.join(work, "prometheus.yml")
    with open(pcfg, "w") as f:
        f.write("global: {}\n")
    plog = open(os.path.join(work, f"prom-{tag}.log"), "w")
    prom = subprocess.Popen(
        [args.prometheus, f"--config.file={pcfg}", f"--storage.tsdb.path={os.path.join(work, f'prom-{tag}')}",
         f"--web.listen-address=127.0.0.1:{pport}", "--web.enable-remote-write-receiver", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=plog)
    out.append(("prom", prom, pport))
    variants = [("klaxon", {}, args.klaxon)]
    if args.klaxon_env:
        env = dict(kv.split("=", 1) for kv in args.klaxon_env.split(","))
        variants.append(("tuned", env, args.klaxon))
    if args.baseline:
        variants.append(("before", {}, args.baseline))
    for name, extra, binary in variants:
        kport = free_port()
        kdata = os.path.join(work, f"{name}-{tag}")
        kcfg = os.path.join(work, f"{name}-{tag}.yml")
        with open(kcfg, "w") as f:
            f.write(f"storage:\n  path: {kdata}\nscrape_configs: []\n")
        klog = open(os.path.join(work, f"{name}-{tag}.log"), "w")
        klaxon = subprocess.Popen(
            [binary, "run", f"--config={kcfg}", f"--listen=127.0.0.1:{kport}",
             "--web.enable-remote-write-receiver", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=klog, env={**os.environ, **extra})
        out.append((name, klaxon, kport))
    return out


def stop(p):
    """SIGTERM, and two minutes for a clean stop: a 100k-series head takes
    a while to close on a loaded machine, and the start-up benchmark needs
    the clean stop's files."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_run(args, work, run, load):
    servers = start_servers(args, work, run)
    try:
        for _, p, port in servers:
            ready(port, p)
        senders = [rwload.Sender(port) for _, _, port in servers]
        for s in senders:
            s.start()
        out = {}
        done = 0
        t0 = time.time()
        for n in args.rss_at:
            rwload.push(load, senders, done, n, args.batch_series, args.steps_per_req)
            done = n
            for s in senders:
                if s.errors:
                    raise RuntimeError(f"port {s.port}: {s.errors} failed writes, first: {s.first_error}")
            time.sleep(args.settle)
            pt = {"elapsed_s": time.time() - t0, "load": os.getloadavg()[0]}
            line = []
            for name, p, port in servers:
                m = mem(p.pid)
                prefix = "prometheus" if name == "prom" else "klaxon"
                series = metric(port, f"{prefix}_tsdb_head_series")
                pt[f"{name}_series"] = series
                pt[f"{name}_samples"] = metric(port, f"{prefix}_tsdb_head_samples_appended_total")
                for k, v in m.items():
                    pt[f"{name}_{k}"] = v
                    pt[f"{name}_{k}_per_series"] = v / series
                line.append(f"{name} {series:.0f} series {pt[f'{name}_VmRSS_per_series']:.0f} B/series "
                            f"(anon {pt[f'{name}_RssAnon_per_series']:.0f}, file {pt[f'{name}_RssFile_per_series']:.0f})")
            for name, _, _ in servers[1:]:
                pt[f"{name}_ratio"] = pt[f"{name}_VmRSS_per_series"] / pt["prom_VmRSS_per_series"]
                line.append(f"{name} ratio {pt[f'{name}_ratio']:.3f}")
            out[n] = pt
            print(f"  run {run} at {n} samples/series ({pt['elapsed_s']:.0f} s, load {pt['load']:.1f}): "
                  + "; ".join(line), flush=True)
        for s in senders:
            s.q.put(None)
        return out
    finally:
        for _, p, _ in servers:
            stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--per-target", type=int, default=10000)
    ap.add_argument("--rss-at", default="200,600,1200")
    ap.add_argument("--step-ms", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=20)
    ap.add_argument("--batch-series", type=int, default=2000)
    ap.add_argument("--steps-per-req", type=int, default=10)
    ap.add_argument("--klaxon-env", default=None,
                    help="NAME=VALUE[,...]: also run a second klaxon ('tuned') with this environment")
    ap.add_argument("--baseline", default=None,
                    help="another klaxon binary ('before') fed the same requests in the same run")
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", default=None, help="write every run's points here")
    args = ap.parse_args()
    args.rss_at = [int(x) for x in args.rss_at.split(",")]
    work = args.work or tempfile.mkdtemp(prefix="klaxon-rss-")
    os.makedirs(work, exist_ok=True)
    runs = []
    try:
        for run in range(args.runs):
            # Timestamps end about now (the head of a real server holds recent data).
            now_ms = int(time.time() * 1000)
            load = rwload.Load(args.targets, args.per_target,
                               now_ms - args.rss_at[-1] * args.step_ms, args.step_ms)
            runs.append(one_run(args, work, run, load))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(runs, f, indent=1)
            for d in os.listdir(work):
                p = os.path.join(work, d)
                if os.path.isdir(p):
                    shutil.rmtree(p, ignore_errors=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"medians of {len(runs)} run(s), {args.targets * args.per_target} series:")
    names = ["prom", "klaxon"] + (["tuned"] if args.klaxon_env else []) + (["before"] if args.baseline else [])

    def med(n, key):
        return statistics.median(r[n][key] for r in runs)

    for n in args.rss_at:
        parts = [f"{name} {med(n, name + '_VmRSS_per_series'):.0f} B/series "
                 f"(anon {med(n, name + '_RssAnon_per_series'):.0f}, file {med(n, name + '_RssFile_per_series'):.0f})"
                 for name in names]
        parts += [f"{name} ratio {med(n, name + '_ratio'):.3f}" for name in names[1:]]
        print(f"  {n:5d} samples/series: " + "; ".join(parts))
    lo, hi = args.rss_at[0], args.rss_at[-1]
    for name in names:
        g = statistics.median(r[hi][f"{name}_VmRSS_per_series"] / r[lo][f"{name}_VmRSS_per_series"] - 1
                              for r in runs)
        print(f"  {name} RSS per series {lo} -> {hi}: {g * 100:+.1f} %")

if __name__ == "__main__":
    main()
