#!/usr/bin/env python3
"""klaxon vs Prometheus 2.42 scraping the same protobuf target, in the same run.

Starts Prometheus 2.42 (`--enable-feature=native-histograms`, which makes it
ask for protobuf) and klaxon (`scrape_native_histograms: true`, which puts
PrometheusProto first in its Accept header) with the same scrape config,
reads each one's resident memory while nothing is scraped yet (the idle
RSS), then starts benches/protobuf_target.py (--mode classic: counters,
gauges and classic histograms; --mode native: native histograms only) and
measures, after --warmup seconds:

  CPU per million samples = (user+sys CPU seconds of the process) / samples
                            appended (the head's appended counters; a native
                            histogram is one sample)
  memory per series       = RSS / head series, and (RSS - idle RSS) / head
                            series, at each --rss-at point (samples per
                            series in klaxon's head), with klaxon's own
                            accounting (klaxon_tsdb_head_memory_bytes) and
                            both heads' chunk counts

and prints klaxon/Prometheus ratios; repeats --runs times and prints medians.
The target refuses (406) any scrape that did not ask for protobuf, and the
run fails when a scraper stored nothing.

  cp target/release/klaxon /tmp/klaxon
  python3 benches/compare_protobuf.py --klaxon /tmp/klaxon --mode classic --runs 3 --duration 90
  python3 benches/compare_protobuf.py --klaxon /tmp/klaxon --mode native --runs 2 --rss-at 120,240,360

Needs /usr/bin/prometheus (bash ../shared/tools/install-peers.sh).
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
from compare_prometheus import proc_stats, stop, wait_http  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "benches", "protobuf_target.py")


def scrape_metrics(base):
    """Every sample line of base/metrics as {line-without-value: value}."""
    body = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def total(ms, name):
    """Sum of every series of `name` (any labels; 0 when none: Prometheus
    exports its per-type appended counters only once something was)."""
    return sum(v for k, v in ms.items() if k == name or k.startswith(name + "{"))


def anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class Side:
    def __init__(self, name, proc, base, prefix):
        self.name, self.proc, self.base, self.prefix = name, proc, base, prefix

    def read(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
        ms = scrape_metrics(self.base)
        cpu, rss = proc_stats(self.proc.pid)
        p = self.prefix
        r = {"cpu": cpu, "rss": rss, "anon": anon_kib(self.proc.pid) * 1024,
             "samples": total(ms, f"{p}_tsdb_head_samples_appended_total"),
             "series": total(ms, f"{p}_tsdb_head_series"),
             "chunks": total(ms, f"{p}_tsdb_head_chunks")}
        if p == "klaxon":
            r["head_bytes"] = total(ms, "klaxon_tsdb_head_memory_bytes")
        return r


def one_run(args, tmp, run):
    targets = [f"127.0.0.1:{args.port + i}" for i in range(args.targets)]
    scrape = (f"global:\n  scrape_interval: {args.interval}s\n  scrape_timeout: {args.interval * 900}ms\n"
              "scrape_configs:\n  - job_name: proto\n    static_configs:\n"
              f"      - targets: {json.dumps(targets)}\n")
    cfg = os.path.join(tmp, f"prom-{run}.yml")
    with open(cfg, "w") as f:
        f.write(scrape)
    kdata = os.path.join(tmp, f"klaxon-data-{run}")
    kcfg = os.path.join(tmp, f"klaxon-{run}.yml")
    with open(kcfg, "w") as f:
        f.write(scrape.replace("  - job_name: proto\n", "  - job_name: proto\n    scrape_native_histograms: true\n")
                + f"storage:\n  path: {kdata}\n  retention: 6h\n")
    procs = []
    try:
        prom = subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/prom-data-{run}",
             f"--web.listen-address=127.0.0.1:{args.prom_port}", "--log.level=warn",
             "--enable-feature=native-histograms"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(prom)
        klaxon = subprocess.Popen(
            [args.klaxon, "run", "--config", kcfg, "--listen", f"127.0.0.1:{args.klaxon_port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(klaxon)
        sides = [Side("prom", prom, f"http://127.0.0.1:{args.prom_port}", "prometheus"),
                 Side("klaxon", klaxon, f"http://127.0.0.1:{args.klaxon_port}", "klaxon")]
        for s in sides:
            wait_http(f"{s.base}/-/ready")
        # Idle: ready, scraping a target that is not there yet.
        time.sleep(5)
        idle = {s.name: s.read() for s in sides}
        target = subprocess.Popen(
            [sys.executable, TARGET, "--mode", args.mode, "--port", str(args.port), "--targets", str(args.targets),
             "--series", str(args.series), "--interval", str(args.interval)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.insert(0, target)
        wait_http(f"http://{targets[0]}/stats")
        time.sleep(args.warmup)
        start = {s.name: s.read() for s in sides}
        t_end = time.time() + args.duration
        r = {}
        for n in args.rss_at:
            while True:
                k = sides[1].read()
                if k["series"] > 0 and k["samples"] / k["series"] >= n:
                    break
                time.sleep(2)
            now = {s.name: s.read() for s in sides}
            for name, v in now.items():
                r[f"{name}_bps_at_{n}"] = v["rss"] / v["series"]
                r[f"{name}_net_bps_at_{n}"] = (v["rss"] - idle[name]["rss"]) / v["series"]
                r[f"{name}_anon_bps_at_{n}"] = v["anon"] / v["series"]
                r[f"{name}_chunks_at_{n}"] = v["chunks"]
                r[f"{name}_spp_at_{n}"] = v["samples"] / v["series"]
            r[f"klaxon_head_bps_at_{n}"] = now["klaxon"]["head_bytes"] / now["klaxon"]["series"]
            r[f"mem_ratio_at_{n}"] = r[f"klaxon_bps_at_{n}"] / r[f"prom_bps_at_{n}"]
            r[f"net_mem_ratio_at_{n}"] = r[f"klaxon_net_bps_at_{n}"] / r[f"prom_net_bps_at_{n}"]
            print(f"  at {n} samples/series: RSS/series prom {r[f'prom_bps_at_{n}']:.0f} "
                  f"klaxon {r[f'klaxon_bps_at_{n}']:.0f} (ratio {r[f'mem_ratio_at_{n}']:.3f}); "
                  f"net of idle prom {r[f'prom_net_bps_at_{n}']:.0f} klaxon {r[f'klaxon_net_bps_at_{n}']:.0f} "
                  f"(ratio {r[f'net_mem_ratio_at_{n}']:.3f}); klaxon head accounting "
                  f"{r[f'klaxon_head_bps_at_{n}']:.0f}; chunks prom {r[f'prom_chunks_at_{n}']:.0f} "
                  f"klaxon {r[f'klaxon_chunks_at_{n}']:.0f}", flush=True)
        time.sleep(max(0.0, t_end - time.time()))
        end = {s.name: s.read() for s in sides}
        for name in ("prom", "klaxon"):
            a, b = start[name], end[name]
            r[f"{name}_cpu_s"] = b["cpu"] - a["cpu"]
            r[f"{name}_samples"] = b["samples"] - a["samples"]
            r[f"{name}_series"] = b["series"]
            r[f"{name}_idle_rss"] = idle[name]["rss"]
            r[f"{name}_rss"] = b["rss"]
            r[f"{name}_cpu_per_msample"] = r[f"{name}_cpu_s"] / r[f"{name}_samples"] * 1e6
        r["cpu_ratio"] = r["klaxon_cpu_per_msample"] / r["prom_cpu_per_msample"]
        st = json.loads(urllib.request.urlopen(f"http://{targets[0]}/stats", timeout=10).read())
        r["target_refused"] = st["refused"]
        r["target_encode_s"] = st["encode_s"]
        if st["refused"]:
            print(f"  warning: the target refused {st['refused']} non-protobuf scrapes", flush=True)
        return r
    finally:
        for p in procs:
            if p.poll() is None:
                stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("classic", "native"), default="native")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=90, help="measured seconds per run (at least)")
    ap.add_argument("--warmup", type=int, default=15, help="seconds of scraping before measuring")
    ap.add_argument("--targets", type=int, default=1)
    ap.add_argument("--series", type=int, default=10000, help="series per target")
    ap.add_argument("--interval", type=int, default=1, help="scrape interval, seconds")
    ap.add_argument("--rss-at", default="", help="samples per series to read memory at, e.g. 120,240,360")
    ap.add_argument("--port", type=int, default=19600)
    ap.add_argument("--prom-port", type=int, default=19690)
    ap.add_argument("--klaxon-port", type=int, default=19670)
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target", "release", "klaxon"))
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    args.rss_at = sorted(int(x) for x in args.rss_at.split(",") if x.strip())
    if not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus: bash ../shared/tools/install-peers.sh")
    runs = []
    tmp = tempfile.mkdtemp(prefix="klaxon-pbbench-")
    try:
        for i in range(args.runs):
            r = one_run(args, tmp, i)
            runs.append(r)
            print(f"run {i + 1} ({args.mode}): series prom={r['prom_series']:.0f} klaxon={r['klaxon_series']:.0f}; "
                  f"samples prom={r['prom_samples']:.0f} klaxon={r['klaxon_samples']:.0f}; CPU s per 1M samples "
                  f"prom={r['prom_cpu_per_msample']:.3f} klaxon={r['klaxon_cpu_per_msample']:.3f} "
                  f"(ratio {r['cpu_ratio']:.3f}); idle RSS prom={r['prom_idle_rss'] / 2**20:.0f} MiB "
                  f"klaxon={r['klaxon_idle_rss'] / 2**20:.0f} MiB; end RSS prom={r['prom_rss'] / 2**20:.0f} MiB "
                  f"klaxon={r['klaxon_rss'] / 2**20:.0f} MiB", flush=True)
            shutil.rmtree(os.path.join(tmp, f"klaxon-data-{i}"), ignore_errors=True)
            shutil.rmtree(os.path.join(tmp, f"prom-data-{i}"), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"median of {len(runs)} runs ({args.mode}, {args.targets} target(s) x {args.series} series, "
          f"{args.interval}s interval, {args.duration}s measured): CPU per sample ratio {med['cpu_ratio']:.3f}"
          + "".join(f"; at {n} samples/series RSS/series ratio {med[f'mem_ratio_at_{n}']:.3f}, "
                    f"net of idle {med[f'net_mem_ratio_at_{n}']:.3f}" for n in args.rss_at))
    print(json.dumps(med, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
