#!/usr/bin/env python3
"""Kubernetes service discovery at scale: klaxon vs Prometheus 2.42, same run.

Starts a fake Kubernetes API server (this file) holding --pods pods, with
--churn percent of them replaced per minute (a pod deleted, a new one
added, evenly spread), and points Prometheus 2.42 and klaxon at it with the
same `kubernetes_sd_configs` (role pod, `api_server:`). Relabeling drops
every pod but the "probe" pods added once every 10 s, whose metrics path
names the pod: the fake server also serves their /metrics and records when
each process (by User-Agent) first scraped each probe pod.

After a warm-up (initial list) it measures for --duration seconds:
  - CPU seconds (user+sys, /proc/PID/stat delta) of each process,
  - resident memory at the end (VmRSS),
  - time from a probe pod's ADDED watch event to its first scrape (median).
Repeats --runs times; prints medians and klaxon/Prometheus ratios.

  cargo build --release --bin klaxon
  python3 benches/k8s_sd_compare.py --runs 3 --duration 120

Needs /usr/bin/prometheus (bash ../shared/tools/install-peers.sh).
Everything listens on 127.0.0.1 and is stopped at the end.
"""
import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Cluster:
    """Pods, a resourceVersion counter, an event log and open watches."""

    def __init__(self, n):
        self.lock = threading.Lock()
        self.rv = 1
        self.pods = {}
        self.watchers = []
        self.seq = 0
        self.added_at = {}  # probe pod name -> time of its ADDED event
        self.first_scrape = {}  # (agent, pod) -> time
        for _ in range(n):
            self._add(self._pod(False))

    def _pod(self, probe):
        self.seq += 1
        i = self.seq
        name = f"{'probe' if probe else 'pod'}-{i}"
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": "bench",
                "uid": f"uid-{i}",
                "labels": {"app": "bench", "pod-template-hash": "abc123", "probe": str(probe).lower()},
                "annotations": {"metrics-path": f"/probe/{name}"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "bench-abc123", "controller": True}],
            },
            "spec": {
                "nodeName": f"node-{i % 50}",
                "containers": [
                    {"name": "app", "image": "bench:1", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}
                ],
            },
            "status": {
                "phase": "Running",
                "podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                "hostIP": f"192.168.0.{i % 50}",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "containerID": f"containerd://{i:064x}"}],
            },
        }

    def _add(self, pod):
        self.rv += 1
        pod["metadata"]["resourceVersion"] = str(self.rv)
        self.pods[pod["metadata"]["name"]] = pod
        return pod

    def _emit(self, kind, pod):
        line = (json.dumps({"type": kind, "object": pod}) + "\n").encode()
        for q in self.watchers:
            q.put(line)

    def churn_one(self):
        with self.lock:
            victim = next(n for n in self.pods if n.startswith("pod-"))
            pod = self.pods.pop(victim)
            self.rv += 1
            pod["metadata"]["resourceVersion"] = str(self.rv)
            self._emit("DELETED", pod)
            self._emit("ADDED", self._add(self._pod(False)))

    def add_probe(self):
        with self.lock:
            pod = self._add(self._pod(True))
            self.added_at[pod["metadata"]["name"]] = time.time()
            self._emit("ADDED", pod)
            # Keep the number of probe pods small: drop the oldest.
            probes = [n for n in self.pods if n.startswith("probe-")]
            for n in probes[:-5]:
                p = self.pods.pop(n)
                self.rv += 1
                p["metadata"]["resourceVersion"] = str(self.rv)
                self._emit("DELETED", p)

    def list_body(self):
        with self.lock:
            return json.dumps({
                "kind": "PodList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.rv)},
                "items": list(self.pods.values()),
            }).encode()


def make_handler(cluster):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            u = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(u.query)
            if u.path.startswith("/probe/"):
                pod = u.path.rsplit("/", 1)[1]
                agent = "klaxon" if "klaxon" in self.headers.get("User-Agent", "") else "prometheus"
                with cluster.lock:
                    cluster.first_scrape.setdefault((agent, pod), time.time())
                body = b"probe_up 1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if u.path not in ("/api/v1/pods", "/api/v1/namespaces/bench/pods"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if q.get("watch", [""])[0] in ("1", "true"):
                return self.watch()
            body = cluster.list_body()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def watch(self):
            qu = queue.Queue()
            with cluster.lock:
                cluster.watchers.append(qu)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    try:
                        line = qu.get(timeout=30)
                    except queue.Empty:
                        continue
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with cluster.lock:
                    cluster.watchers.remove(qu)

    return H


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: k8s
    kubernetes_sd_configs:
      - role: pod
        api_server: http://127.0.0.1:{port}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_label_probe]
        regex: 'true'
        action: keep
      - target_label: __address__
        replacement: 127.0.0.1:{port}
      - source_labels: [__meta_kubernetes_pod_annotation_metrics_path]
        target_label: __metrics_path__
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
"""


def one_run(args, klaxon_bin):
    cluster = Cluster(args.pods)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(cluster))
    srv.daemon_threads = True
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="k8s-sd-bench-")
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=port))
    procs = {}
    try:
        if args.with_prometheus:
          procs["prometheus"] = subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/prom",
             "--web.listen-address=127.0.0.1:0", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kcfg = os.path.join(tmp, "klaxon.yml")
        with open(kcfg, "w") as f:
            f.write(CONFIG.format(port=port) + f"storage:\n  path: {tmp}/klaxon\n")
        procs["klaxon"] = subprocess.Popen(
            [klaxon_bin, "run", "--config", kcfg, "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(args.warmup)
        start = {k: proc_stats(p.pid)[0] for k, p in procs.items()}
        t0 = time.time()
        n = 0
        every = 60.0 / (args.pods * args.churn / 100.0)
        next_probe = t0
        while time.time() - t0 < args.duration:
            cluster.churn_one()
            n += 1
            if time.time() >= next_probe:
                cluster.add_probe()
                next_probe += 10
            time.sleep(every)
        time.sleep(5)  # the last probe pods' first scrapes
        out = {}
        for k, p in procs.items():
            cpu, rss = proc_stats(p.pid)
            lat = [cluster.first_scrape[(k, pod)] - t for pod, t in cluster.added_at.items()
                   if (k, pod) in cluster.first_scrape and t >= t0]
            out[k] = {
                "cpu_s": cpu - start[k],
                "rss_mib": rss / 2**20,
                "latency_s": statistics.median(lat) if lat else float("nan"),
                "probes_seen": len(lat),
            }
        out["events"] = 2 * n
        return out
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        srv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--churn", type=float, default=1.0, help="percent of pods replaced per minute")
    ap.add_argument("--duration", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target/release/klaxon"))
    args = ap.parse_args()
    if not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus (../shared/tools/install-peers.sh)")
    # Debian's prometheus 2.42.0+ds is built without some SD mechanisms;
    # ask promtool whether this one knows kubernetes_sd_configs.
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write(CONFIG.format(port=1))
        f.flush()
        chk = subprocess.run(["/usr/bin/promtool", "check", "config", f.name],
                             capture_output=True, text=True)
    args.with_prometheus = chk.returncode == 0
    if not args.with_prometheus:
        print("NOTE: this Prometheus cannot run kubernetes_sd_configs "
              f"({(chk.stdout + chk.stderr).strip().splitlines()[-1]}); measuring klaxon alone",
              flush=True)
    runs = []
    for i in range(args.runs):
        r = one_run(args, args.klaxon)
        print(f"run {i + 1}: {json.dumps(r)}", flush=True)
        runs.append(r)
    med = lambda who, k: statistics.median(r[who][k] for r in runs)
    print(f"\nmedians of {args.runs} runs, {args.pods} pods, {args.churn}%/min churn, {args.duration}s measured:")
    for k in ("cpu_s", "rss_mib", "latency_s"):
        x = med("klaxon", k)
        if not args.with_prometheus:
            print(f"  {k:10s} klaxon {x:9.3f}")
            continue
        p = med("prometheus", k)
        print(f"  {k:10s} prometheus {p:9.3f}  klaxon {x:9.3f}  ratio {x / p if p else float('nan'):.3f}")


if __name__ == "__main__":
    main()
