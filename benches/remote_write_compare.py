#!/usr/bin/env python3
"""Remote write out: klaxon vs Prometheus 2.42, same targets, same receiver, same run.

Starts ../shared/tools/synth_target.py (N targets x S series), a small remote-write
sink (this script, answering 204 to every POST and counting bytes), then Prometheus
and klaxon side by side, both scraping every target every 5 s. Two phases per run:

  1. both without remote_write: CPU seconds per million samples appended;
  2. both with remote_write to the sink: CPU per million samples, and samples sent
     per second (each process's own *_remote_storage_samples_total delta).

The difference between the phases is the CPU remote write costs each process, per
million samples sent. CPU is user+sys from /proc/PID/stat over the measured
window, after a warm-up. Everything listens on 127.0.0.1 and is stopped at the end.

  cargo build --release
  python3 benches/remote_write_compare.py --klaxon /work/target/release/klaxon

Needs /usr/bin/prometheus (bash ../shared/tools/install-peers.sh).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Ports are picked free at start: fixed ones collide with other benchmarks.
PROM, KX = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"


class Sink(BaseHTTPRequestHandler):
    counts = {}
    lock = threading.Lock()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        agent = (self.headers.get("User-Agent") or "?").split("/")[0]
        with Sink.lock:
            c = Sink.counts.setdefault(agent, [0, 0])
            c[0] += 1
            c[1] += n
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def metric_sum(url, name):
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    # Labelled counters (Prometheus' appended{type=...}) appear only after
    # their first increment: absent means zero.
    return total


def wait_http(url, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def phase(args, tmp, sink_port, remote):
    targets = [f"127.0.0.1:{p}" for p in args.ports]
    cfg = os.path.join(tmp, f"bench-{remote}.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\n"
                "scrape_configs:\n  - job_name: synth\n    static_configs:\n"
                f"      - targets: {json.dumps(targets)}\n")
        if remote:
            f.write(f"remote_write:\n  - url: http://127.0.0.1:{sink_port}/write\n    name: sink\n")
    procs = []
    try:
        data = tempfile.mkdtemp(dir=tmp)
        prom = subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
             f"--web.listen-address={PROM}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(prom)
        kx = subprocess.Popen(
            [args.klaxon, "run", "--config", cfg, "--listen", KX],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
            env={**os.environ, "KLAXON_LOG": "warn"})
        procs.append(kx)
        wait_http(f"http://{PROM}/-/ready")
        wait_http(f"http://{KX}/-/ready")
        time.sleep(args.warmup)
        names = {
            "prom": ("prometheus_tsdb_head_samples_appended_total", "prometheus_remote_storage_samples_total"),
            "klaxon": ("klaxon_tsdb_head_samples_appended_total", "klaxon_remote_storage_samples_total"),
        }
        urls = {"prom": f"http://{PROM}/metrics", "klaxon": f"http://{KX}/metrics"}
        pids = {"prom": prom.pid, "klaxon": kx.pid}

        def snap():
            s = {}
            for k in names:
                s[k] = {"cpu": cpu(pids[k]), "appended": metric_sum(urls[k], names[k][0]),
                        "sent": metric_sum(urls[k], names[k][1]) if remote else 0.0}
            return s

        a = snap()
        time.sleep(args.duration)
        b = snap()
        out = {}
        for k in names:
            d = {x: b[k][x] - a[k][x] for x in a[k]}
            d["cpu_per_msample"] = d["cpu"] / d["appended"] * 1e6
            d["sent_per_s"] = d["sent"] / args.duration
            out[k] = d
        return out
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=60, help="measured seconds per phase")
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--series", type=int, default=5000)
    ap.add_argument("--klaxon", default="/work/target/release/klaxon")
    args = ap.parse_args()
    if not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus: bash ../shared/tools/install-peers.sh")
    args.ports = [free_port() for _ in range(args.targets)]
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    synth = subprocess.Popen(
        [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"),
         "--ports", ",".join(map(str, args.ports)), "--series", str(args.series)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for p in args.ports:
            wait_http(f"http://127.0.0.1:{p}/metrics")
        with tempfile.TemporaryDirectory(prefix="klaxon-rw-bench-") as tmp:
            base = phase(args, tmp, sink.server_address[1], False)
            rw = phase(args, tmp, sink.server_address[1], True)
    finally:
        synth.send_signal(signal.SIGTERM)
        synth.wait(timeout=20)
        sink.shutdown()
    res = {"base": base, "remote_write": rw, "sink": Sink.counts}
    for k in ("prom", "klaxon"):
        extra = rw[k]["cpu_per_msample"] - base[k]["cpu_per_msample"]
        res[f"{k}_rw_cpu_per_msample_sent"] = extra * rw[k]["appended"] / max(rw[k]["sent"], 1)
        print(f"{k}: {rw[k]['sent_per_s']:.0f} samples/s sent; CPU s per 1M samples "
              f"{base[k]['cpu_per_msample']:.3f} without remote write, "
              f"{rw[k]['cpu_per_msample']:.3f} with; remote write alone "
              f"{res[f'{k}_rw_cpu_per_msample_sent']:.3f} s per 1M samples sent")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
