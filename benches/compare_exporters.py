#!/usr/bin/env python3
"""klaxon's built-in exporters vs node_exporter 1.5 and postgres_exporter 0.11,
scraped in the same run.

Starts a throwaway PostgreSQL 15 (initdb in a temp dir, pg_stat_statements
preloaded, 127.0.0.1), node_exporter (Debian defaults), postgres_exporter
(DATA_SOURCE_NAME, built-in queries) and klaxon serving /metrics/host and
/metrics/postgres (DATA_SOURCE_NAME too; an empty config, so klaxon scrapes
nothing itself). Then, one endpoint at a time, 100 sequential scrapes, and
the scraped process's whole CPU time (utime+stime from /proc/PID/stat) over
those scrapes:

  CPU seconds per 100 scrapes: klaxon /metrics/host vs node_exporter /metrics,
                               klaxon /metrics/postgres vs postgres_exporter

Repeats --runs times (order of the pairs alternates) and prints medians and
klaxon/peer ratios (goal <= 0.5). The database's own CPU is not counted for
either side. Everything is stopped at the end.

  cargo build --release
  python3 benches/compare_exporters.py --runs 3

Needs /usr/bin/prometheus-node-exporter, /usr/bin/prometheus-postgres-exporter
(../shared/tools/install-peers.sh) and /usr/lib/postgresql/15/bin.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_BIN = "/usr/lib/postgresql/15/bin"
NODE = "/usr/bin/prometheus-node-exporter"
PGEXP = "/usr/bin/prometheus-postgres-exporter"


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url):
    return urllib.request.urlopen(url, timeout=30).read()


def wait_http(url, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            get(url)
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def as_pg(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


def start_postgres(tmp):
    data = os.path.join(tmp, "pg")
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    subprocess.run(as_pg([f"{PG_BIN}/initdb", "-D", data, "-U", "postgres",
                          "--auth=trust", "--no-sync"]), check=True,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    with open(os.path.join(data, "postgresql.auto.conf"), "a") as f:
        f.write(f"listen_addresses='127.0.0.1'\nport={port}\n"
                f"unix_socket_directories='{data}'\n"
                "shared_preload_libraries='pg_stat_statements'\n")
    subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", data, "-l",
                          os.path.join(data, "log"), "-w", "start"]), check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(as_pg([f"{PG_BIN}/psql", "-X", "-q", "-h", "127.0.0.1", "-p",
                          str(port), "-U", "postgres", "-c",
                          "CREATE EXTENSION pg_stat_statements"]), check=True)
    return data, port


def measure(pid, url, n):
    for _ in range(5):
        get(url)
    c0 = cpu(pid)
    size = 0
    for _ in range(n):
        size = len(get(url))
    return cpu(pid) - c0, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scrapes", type=int, default=100)
    ap.add_argument("--klaxon", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
        "release", "klaxon"))
    args = ap.parse_args()
    for b in (args.klaxon, NODE, PGEXP, f"{PG_BIN}/initdb"):
        if not os.path.exists(b):
            sys.exit(f"missing {b}")

    tmp = tempfile.mkdtemp(prefix="klaxon-exp-bench-")
    procs = []
    data = None
    try:
        data, pgport = start_postgres(tmp)
        dsn = f"postgresql://postgres@127.0.0.1:{pgport}/postgres?sslmode=disable"
        env = dict(os.environ, DATA_SOURCE_NAME=dsn)
        node_port, pgexp_port, klaxon_port = free_port(), free_port(), free_port()
        node = subprocess.Popen([NODE, f"--web.listen-address=127.0.0.1:{node_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pgexp = subprocess.Popen([PGEXP, f"--web.listen-address=127.0.0.1:{pgexp_port}"],
                                 env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        cfg = os.path.join(tmp, "klaxon.yml")
        with open(cfg, "w") as f:
            f.write(f"storage:\n  path: {tmp}/klaxon-data\n")
        klaxon = subprocess.Popen([args.klaxon, "run", "--config", cfg, "--listen",
                                   f"127.0.0.1:{klaxon_port}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs = [node, pgexp, klaxon]
        pairs = {
            "host": ((klaxon.pid, f"http://127.0.0.1:{klaxon_port}/metrics/host"),
                     (node.pid, f"http://127.0.0.1:{node_port}/metrics")),
            "postgres": ((klaxon.pid, f"http://127.0.0.1:{klaxon_port}/metrics/postgres"),
                         (pgexp.pid, f"http://127.0.0.1:{pgexp_port}/metrics")),
        }
        for (_, u1), (_, u2) in pairs.values():
            wait_http(u1)
            wait_http(u2)
        # Some statements for pg_stat_statements to rank.
        for i in range(20):
            get(pairs["postgres"][0][1])
        results = {k: ([], []) for k in pairs}
        for run in range(args.runs):
            for name, ((kpid, kurl), (ppid, purl)) in pairs.items():
                order = [(0, kpid, kurl), (1, ppid, purl)]
                if run % 2:
                    order.reverse()
                for side, pid, url in order:
                    secs, size = measure(pid, url, args.scrapes)
                    results[name][side].append(secs * 100.0 / args.scrapes)
                    print(f"run {run + 1} {name:8} {'klaxon' if side == 0 else 'peer':6} "
                          f"{secs:.3f} CPU s / {args.scrapes} scrapes ({size} bytes)",
                          flush=True)
        print()
        print(f"{'exporter':10} {'klaxon CPU s/100':>17} {'peer CPU s/100':>15} {'ratio':>7}")
        for name, (k, p) in results.items():
            mk, mp = statistics.median(k), statistics.median(p)
            ratio = mk / mp if mp else float("nan")
            print(f"{name:10} {mk:17.3f} {mp:15.3f} {ratio:7.3f}   "
                  f"(klaxon {min(k):.3f}-{max(k):.3f}, peer {min(p):.3f}-{max(p):.3f})")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if data:
            subprocess.run(as_pg([f"{PG_BIN}/pg_ctl", "-D", data, "-m", "immediate",
                                  "-w", "stop"]), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
