#!/usr/bin/env python3
"""klaxon vs Alertmanager 0.25: alert-to-webhook latency and alert intake rate.

For each peer in turn (same alertmanager.yml for both: one webhook receiver,
group_by ['...'] so every alert is its own group, group_wait 0s), this script
1. latency: POSTs --alerts alerts one by one to /api/v2/alerts, each with a
   unique label, paced at --rate per second, and records when the webhook
   sink (in this process, on 127.0.0.1) receives each one; prints p50/p99 of
   (webhook arrival - POST start);
2. intake: POSTs --intake alerts in batches of --batch from --workers
   connections as fast as it can (route to a receiver with a long group_wait
   so nothing is sent) and prints accepted alerts per second.
Runs --runs rounds alternating the peers and prints medians and ratios.

  cargo build --release && cp target/release/klaxon /tmp/klaxon
  python3 benches/compare_alertmanager.py --klaxon /tmp/klaxon --runs 3

Alertmanager runs with gossip off (--cluster.listen-address=), see
../shared/reference/PEERS-NOTES.md point 2. Needs /usr/bin/prometheus-alertmanager
(bash ../shared/tools/install-peers.sh).
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AM_CONFIG = """
route:
  receiver: sink
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['bench="intake"']
      receiver: hold
      group_by: ['alertname']
      group_wait: 1h
      group_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:{sink_port}/hook
        send_resolved: false
  - name: hold
    webhook_configs:
      - url: http://127.0.0.1:{sink_port}/hold
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Webhook receiver recording the arrival time of every alert by its `id` label."""

    def __init__(self):
        self.arrivals = {}
        self.lock = threading.Lock()
        sink = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                t = time.perf_counter()
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                with sink.lock:
                    for a in body.get("alerts", []):
                        i = a.get("labels", {}).get("id")
                        if i is not None and i not in sink.arrivals:
                            sink.arrivals[i] = t
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, key, timeout):
        t0 = time.time()
        while time.time() - t0 < timeout:
            with self.lock:
                if key in self.arrivals:
                    return self.arrivals[key]
            time.sleep(0.0005)
        return None


def wait_http(url, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_peer(kind, binary, cfg_path, tmp):
    port = free_port()
    if kind == "alertmanager":
        cmd = [binary, f"--config.file={cfg_path}", f"--storage.path={tmp}/am",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
               f"--web.external-url=http://127.0.0.1:{port}"]
    else:
        empty = os.path.join(tmp, "klaxon.yml")
        with open(empty, "w") as f:
            f.write(f"storage:\n  path: {tmp}/klaxon-data\n")
        cmd = [binary, "run", "--config", empty, "--listen", f"127.0.0.1:{port}",
               "--notify-config", cfg_path]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/api/v2/status")
    return p, port


def alert(labels):
    return {"labels": labels, "annotations": {"summary": "bench"},
            "generatorURL": "http://bench/graph"}


def latency_phase(port, sink, n, rate, run_tag):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    gap = 1.0 / rate
    for i in range(n):
        key = f"{run_tag}-{i}"
        body = json.dumps([alert({"alertname": "BenchLatency", "id": key})])
        t0 = time.perf_counter()
        conn.request("POST", "/api/v2/alerts", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"POST /api/v2/alerts: {r.status}")
        t1 = sink.wait_for(key, 10)
        out.append((t1 - t0) * 1000 if t1 is not None else float("inf"))
        rest = gap - (time.perf_counter() - t0)
        if rest > 0:
            time.sleep(rest)
    conn.close()
    return out


def intake_phase(port, n, batch, workers, run_tag):
    bodies = []
    for b in range(0, n, batch):
        bodies.append(json.dumps([alert({"alertname": "BenchIntake", "bench": "intake",
                                         "id": f"{run_tag}-{i}"})
                                  for i in range(b, min(n, b + batch))]))

    def send(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in chunk:
            conn.request("POST", "/api/v2/alerts", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"POST /api/v2/alerts: {r.status}")
        conn.close()

    chunks = [bodies[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(send, chunks))
    return n / (time.perf_counter() - t0)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", default="target/release/klaxon")
    ap.add_argument("--alertmanager", default="/usr/bin/prometheus-alertmanager")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--intake", type=int, default=50000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    sink = Sink()
    results = {"klaxon": [], "alertmanager": []}
    for run in range(args.runs):
        for kind, binary in (("alertmanager", args.alertmanager), ("klaxon", args.klaxon)):
            tmp = tempfile.mkdtemp(prefix=f"bench-{kind}-")
            cfg = os.path.join(tmp, "am.yml")
            with open(cfg, "w") as f:
                f.write(AM_CONFIG.format(sink_port=sink.port))
            p, port = start_peer(kind, binary, cfg, tmp)
            try:
                tag = f"{kind}-{run}"
                lat = latency_phase(port, sink, args.alerts, args.rate, tag)
                rate = intake_phase(port, args.intake, args.batch, args.workers, tag)
                missing = sum(1 for x in lat if x == float("inf"))
                row = {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "missing": missing,
                       "intake_per_s": rate}
                results[kind].append(row)
                print(f"run {run} {kind:12s} p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  "
                      f"missing {missing}  intake {rate:,.0f} alerts/s", flush=True)
            finally:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                shutil.rmtree(tmp, ignore_errors=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("p50_ms", "p99_ms", "intake_per_s")}
           for k, v in results.items()}
    print(json.dumps(med, indent=1))
    print(f"ratio klaxon/alertmanager: p50 {med['klaxon']['p50_ms'] / med['alertmanager']['p50_ms']:.3f}  "
          f"p99 {med['klaxon']['p99_ms'] / med['alertmanager']['p99_ms']:.3f}  "
          f"intake {med['klaxon']['intake_per_s'] / med['alertmanager']['intake_per_s']:.3f}")
    sink.server.shutdown()


if __name__ == "__main__":
    main()
