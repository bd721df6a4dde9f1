#!/usr/bin/env python3
"""klaxon vs Prometheus 2.42 scraping the same synthetic targets, in the same run.

Starts ../shared/tools/synth_target.py (N targets x S series), then Prometheus and
klaxon side by side, both scraping every target every 5 s, for --duration seconds.
At the end reads from /proc each process's resident memory and CPU time, and from
each one's /metrics its active series and appended samples, and prints:

  memory per series = RSS / head series
  CPU per million samples = (user+sys CPU seconds) / samples appended * 1e6

as absolute values and klaxon/Prometheus ratios. Both write a WAL (klaxon's
under its own storage.path in the run's temp dir), so the run also reports

  WAL bytes per sample = size of the WAL directory / samples appended since start
  replay to ready      = seconds from starting the process again on the same data
                         (after a clean stop) until /-/ready answers 200

With --rss-at 200,1200 the run also samples both processes' RSS per series
when klaxon's head holds that many samples per series (samples appended since
start / head series, polled every 2 s), and reports klaxon's growth between the
first and the last point (the "flat memory" goal) and the ratio at each point.
The run then lasts until the last point (use --interval 1 to get 1,200 samples
in 20 minutes).

Repeats --runs times and prints the medians. Everything listens on 127.0.0.1 and
is stopped at the end.

  cargo build --release
  python3 benches/compare_prometheus.py --runs 3 --duration 180
  python3 benches/compare_prometheus.py --runs 1 --interval 1 --rss-at 200,1200 --duration 60

Needs /usr/bin/prometheus (bash ../shared/tools/install-peers.sh).
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    rss = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


def metric(url, name):
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(f"{name} not in {url}")


def wait_http(url, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def time_to_ready(cmd, url, env=None):
    """Starts cmd, returns (seconds until url answers 200, process)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while True:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return time.time() - t0, p
        except Exception:
            pass
        if p.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {p.returncode} before ready")
        if time.time() - t0 > 600:
            raise RuntimeError(f"{url} not ready after 600 s")
        time.sleep(0.05)


def one_run(args, tmp, run):
    targets = [f"127.0.0.1:{args.port + i}" for i in range(args.targets)]
    scrape = (
        f"global:\n  scrape_interval: {args.interval}s\n  scrape_timeout: {args.interval * 800}ms\n"
        "scrape_configs:\n  - job_name: synth\n    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    cfg = os.path.join(tmp, "bench.yml")
    with open(cfg, "w") as f:
        f.write(scrape)
    kdata = os.path.join(tmp, f"klaxon-data-{run}")
    kcfg = os.path.join(tmp, "klaxon.yml")
    with open(kcfg, "w") as f:
        f.write(scrape + f"storage:\n  path: {kdata}\n  retention: 6h\n")
    procs = []
    try:
        synth = subprocess.Popen(
            [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"),
             "--port", str(args.port), "--targets", str(args.targets), "--series", str(args.series)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(synth)
        wait_http(f"http://{targets[0]}/metrics")
        data = os.path.join(tmp, f"prom-data-{run}")
        prom_cmd = ["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{args.prom_port}", "--log.level=warn"]
        prom = subprocess.Popen(prom_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(prom)
        klaxon_cmd = [args.klaxon, "run", "--config", kcfg, "--listen", f"127.0.0.1:{args.klaxon_port}",
                      "--log.level=warn"]
        klaxon = subprocess.Popen(klaxon_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(klaxon)
        wait_http(f"http://127.0.0.1:{args.prom_port}/-/ready")
        wait_http(f"http://127.0.0.1:{args.klaxon_port}/-/ready")
        # Startup (loading, first allocations) is not what we compare: measure deltas.
        time.sleep(args.warmup)
        p0, k0 = proc_stats(prom.pid), proc_stats(klaxon.pid)
        ps0 = metric(f"http://127.0.0.1:{args.prom_port}/metrics", "prometheus_tsdb_head_samples_appended_total")
        ks0 = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_samples_appended_total")
        t_end = time.time() + args.duration
        points = {}
        for n in args.rss_at:
            while True:
                kall = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_samples_appended_total")
                kser = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_series")
                if kser > 0 and kall / kser >= n:
                    break
                time.sleep(2)
            pall = metric(f"http://127.0.0.1:{args.prom_port}/metrics", "prometheus_tsdb_head_samples_appended_total")
            pser = metric(f"http://127.0.0.1:{args.prom_port}/metrics", "prometheus_tsdb_head_series")
            pr, kr = proc_stats(prom.pid)[1], proc_stats(klaxon.pid)[1]
            points[n] = {"prom_spp": pall / pser, "klaxon_spp": kall / kser,
                         "prom_bps": pr / pser, "klaxon_bps": kr / kser}
            print(f"  at {n} samples/series: prom {pall / pser:.0f} spp {pr / pser:.0f} B/series, "
                  f"klaxon {kall / kser:.0f} spp {kr / kser:.0f} B/series", flush=True)
        time.sleep(max(0.0, t_end - time.time()))
        p1, k1 = proc_stats(prom.pid), proc_stats(klaxon.pid)
        ps1 = metric(f"http://127.0.0.1:{args.prom_port}/metrics", "prometheus_tsdb_head_samples_appended_total")
        ks1 = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_samples_appended_total")
        pser = metric(f"http://127.0.0.1:{args.prom_port}/metrics", "prometheus_tsdb_head_series")
        kser = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_series")
        r = {
            "prom_rss": p1[1], "klaxon_rss": k1[1],
            "prom_series": pser, "klaxon_series": kser,
            "prom_cpu": p1[0] - p0[0], "klaxon_cpu": k1[0] - k0[0],
            "prom_samples": ps1 - ps0, "klaxon_samples": ks1 - ks0,
        }
        for n, pt in points.items():
            r[f"prom_bps_at_{n}"] = pt["prom_bps"]
            r[f"klaxon_bps_at_{n}"] = pt["klaxon_bps"]
            r[f"prom_spp_at_{n}"] = pt["prom_spp"]
            r[f"mem_ratio_at_{n}"] = pt["klaxon_bps"] / pt["prom_bps"]
        if len(points) >= 2:
            lo, hi = min(points), max(points)
            r["klaxon_growth"] = points[hi]["klaxon_bps"] / points[lo]["klaxon_bps"] - 1
            r["prom_growth"] = points[hi]["prom_bps"] / points[lo]["prom_bps"] - 1
        r["prom_bytes_per_series"] = r["prom_rss"] / pser
        r["klaxon_bytes_per_series"] = r["klaxon_rss"] / kser
        r["prom_cpu_per_msample"] = r["prom_cpu"] / r["prom_samples"] * 1e6
        r["klaxon_cpu_per_msample"] = r["klaxon_cpu"] / r["klaxon_samples"] * 1e6
        r["mem_ratio"] = r["klaxon_bytes_per_series"] / r["prom_bytes_per_series"]
        r["cpu_ratio"] = r["klaxon_cpu_per_msample"] / r["prom_cpu_per_msample"]
        # WAL size against every sample appended since start.
        pall = metric(f"http://127.0.0.1:{args.prom_port}/metrics", "prometheus_tsdb_head_samples_appended_total")
        kall = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_samples_appended_total")
        r["prom_wal_bytes"] = dir_bytes(os.path.join(data, "wal"))
        r["klaxon_wal_bytes"] = dir_bytes(os.path.join(kdata, "wal"))
        r["prom_wal_bytes_per_sample"] = r["prom_wal_bytes"] / pall
        r["klaxon_wal_bytes_per_sample"] = r["klaxon_wal_bytes"] / kall
        r["wal_bytes_ratio"] = r["klaxon_wal_bytes_per_sample"] / r["prom_wal_bytes_per_sample"]
        # Replay: stop both cleanly, start each alone on its data, time to ready.
        stop(klaxon)
        stop(prom)
        procs.clear()
        procs.append(synth)
        r["prom_replay_s"], p2 = time_to_ready(prom_cmd, f"http://127.0.0.1:{args.prom_port}/-/ready")
        procs.append(p2)
        stop(p2)
        r["klaxon_replay_s"], k2 = time_to_ready(klaxon_cmd, f"http://127.0.0.1:{args.klaxon_port}/-/ready")
        procs.append(k2)
        r["klaxon_series_after_replay"] = metric(f"http://127.0.0.1:{args.klaxon_port}/metrics", "klaxon_tsdb_head_series")
        r["replay_ratio"] = r["klaxon_replay_s"] / r["prom_replay_s"]
        return r
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=180, help="measured seconds per run")
    ap.add_argument("--warmup", type=int, default=20, help="seconds before measuring")
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--port", type=int, default=19200)
    ap.add_argument("--prom-port", type=int, default=19090)
    ap.add_argument("--klaxon-port", type=int, default=19470)
    ap.add_argument("--interval", type=int, default=5, help="scrape interval, seconds")
    ap.add_argument("--rss-at", default="", help="samples per series to sample RSS at, e.g. 200,1200")
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target", "release", "klaxon"))
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    args.rss_at = sorted(int(x) for x in args.rss_at.split(",") if x.strip())
    if not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus: bash ../shared/tools/install-peers.sh")
    runs = []
    tmp = tempfile.mkdtemp(prefix="klaxon-bench-")
    try:
        for i in range(args.runs):
            try:
                r = one_run(args, tmp, i)
            except (KeyError, ZeroDivisionError) as e:
                # A run where one side stored nothing (an overloaded machine whose
                # targets could not answer in time) is reported and left out of the
                # medians rather than aborting the others.
                print(f"run {i + 1}: failed, left out: {type(e).__name__}: {e}", flush=True)
                continue
            runs.append(r)
            print(f"run {i + 1}: series prom={r['prom_series']:.0f} klaxon={r['klaxon_series']:.0f}; "
                  f"bytes/series prom={r['prom_bytes_per_series']:.0f} klaxon={r['klaxon_bytes_per_series']:.0f} "
                  f"(ratio {r['mem_ratio']:.3f}); CPU s per 1M samples prom={r['prom_cpu_per_msample']:.3f} "
                  f"klaxon={r['klaxon_cpu_per_msample']:.3f} (ratio {r['cpu_ratio']:.3f}); "
                  f"WAL B/sample prom={r['prom_wal_bytes_per_sample']:.3f} klaxon={r['klaxon_wal_bytes_per_sample']:.3f} "
                  f"(ratio {r['wal_bytes_ratio']:.3f}); replay to ready prom={r['prom_replay_s']:.2f}s "
                  f"klaxon={r['klaxon_replay_s']:.2f}s (ratio {r['replay_ratio']:.3f})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not runs:
        sys.exit("no run completed")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"median of {len(runs)} runs ({args.targets} targets x {args.series} series, {args.interval}s interval, "
          f"{args.duration}s measured): memory per series ratio {med['mem_ratio']:.3f}, "
          f"CPU per sample ratio {med['cpu_ratio']:.3f}, WAL bytes per sample ratio "
          f"{med['wal_bytes_ratio']:.3f}, replay-to-ready ratio {med['replay_ratio']:.3f}")
    if "klaxon_growth" in med:
        print(f"RSS per series from {args.rss_at[0]} to {args.rss_at[-1]} samples/series: klaxon "
              f"{med['klaxon_growth'] * 100:+.1f}%, Prometheus {med['prom_growth'] * 100:+.1f}%; ratio at "
              + ", ".join(f"{n}: {med[f'mem_ratio_at_{n}']:.3f}" for n in args.rss_at))
    print(json.dumps(med, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
