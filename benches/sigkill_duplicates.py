#!/usr/bin/env python3
"""The SIGKILL experiment: N alerts (one group each) are POSTed to klaxon,
klaxon is killed with SIGKILL shortly after, then restarted on the same
store. A webhook receiver on 127.0.0.1 records every notification with its
group key and Idempotency-Key header. Reported per run:

  sent       notifications received in total
  groups     distinct groups notified (of N)
  dups       sent - groups: repeats a receiver sees
  dups_key   repeats left for a receiver that drops a known Idempotency-Key
  lost       N - groups: alerts accepted with 200 and never notified

  python3 benches/sigkill_duplicates.py --klaxon target/debug/klaxon --runs 5

Needs only the Python standard library; binds 127.0.0.1 only.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Sink:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []
        self.last = time.time()
        sink = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                with sink.lock:
                    sink.records.append((body.get("groupKey"), self.headers.get("Idempotency-Key")))
                    sink.last = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def start(binary, d, port):
    p = subprocess.Popen(
        [binary, "run", "--listen", f"127.0.0.1:{port}", "--config", os.path.join(d, "klaxon.yml"),
         "--notify-config", os.path.join(d, "am.yml")],
        cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 30
    while time.time() < end:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=1).read()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("klaxon did not start")


def run_once(binary, n, delay):
    sink = Sink()
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "klaxon.yml"), "w") as f:
            f.write(f"scrape_configs: []\nstorage:\n  path: {d}/data\n")
        with open(os.path.join(d, "am.yml"), "w") as f:
            f.write("route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n"
                    "  group_interval: 1h\n  repeat_interval: 4h\nreceivers:\n- name: hook\n"
                    f"  webhook_configs:\n  - url: http://127.0.0.1:{sink.port}/hook\n")
        port = free_port()
        p = start(binary, d, port)
        alerts = [{"labels": {"alertname": f"A{i}", "severity": "page"}} for i in range(n)]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts",
                                     data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"})
        status = urllib.request.urlopen(req, timeout=30).status
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        with sink.lock:
            before = len(sink.records)
        p = start(binary, d, port)
        # Settled: nothing new for 15 s.
        while time.time() - sink.last < 15:
            time.sleep(0.5)
        p.kill()
        p.wait()
    sink.srv.shutdown()
    recs = sink.records
    groups = {g for g, _ in recs}
    keys = {(g, k) for g, k in recs}
    return {
        "post": status,
        "before_kill": before,
        "sent": len(recs),
        "groups": len(groups),
        "dups": len(recs) - len(groups),
        "dups_key": len(keys) - len(groups) if all(k for _, k in recs) else None,
        "lost": n - len(groups),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klaxon", required=True)
    ap.add_argument("--alerts", type=int, default=300)
    ap.add_argument("--delay", type=float, default=0.15)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    rows = [run_once(a.klaxon, a.alerts, a.delay) for _ in range(a.runs)]
    for r in rows:
        print(json.dumps(r))
    for k in ("before_kill", "sent", "dups", "dups_key", "lost"):
        vals = [r[k] for r in rows if r[k] is not None]
        if vals:
            print(f"median {k}: {statistics.median(vals)}")


if __name__ == "__main__":
    main()
