#!/usr/bin/env python3
"""klaxon vs Prometheus 2.42: HTTP query latency over the same scraped data.

Starts ../shared/tools/synth_target.py (N targets x S series), Prometheus and
klaxon scraping every target every 5 s, waits --wait seconds for data, then
for each expression sends --reqs requests to each server at one fixed
evaluation time, alternating between the two so both see the same machine
load, and prints the median wall time per request (client side, whole HTTP
round trip including JSON encoding and decoding), the klaxon/Prometheus
ratio, the series counts, and how many values agree within 1e-9 relative.

The two servers scrape at different moments of the interval (and the synthetic
targets count scrapes per port, so they hand the two scrapers different
values), so values are not expected to be identical; series counts are.
Differences are reported, never treated as failures.

  cargo build --release && cp target/release/klaxon /tmp/klaxon
  python3 benches/compare_query.py --klaxon /tmp/klaxon

With --dashboard it runs a Grafana-style set instead: node-exporter-like
series for --hosts hosts (42 series each: CPU modes, memory, load,
network, disks, filesystems) over the last 6 h at a 15 s interval, written
into both servers by remote write (same samples on both), then the panel
queries of a node-exporter-full style overview as 6 h range queries at a
15 s step. Values are then expected to agree.

  python3 benches/compare_query.py --klaxon /tmp/klaxon --dashboard

With --histograms it writes --hist-series native-histogram series
(benches/protobuf_target.py's: schema 3, 10 to 40 buckets, integer counts
growing every sample) over the last --hist-minutes minutes at a 15 s
interval into both servers by remote write (Prometheus started with
`--enable-feature=native-histograms`), then times HISTOGRAM_QUERIES as
range queries of 250 steps 15 s apart (off the sample grid) ending at the
newest sample.

  python3 benches/compare_query.py --klaxon /tmp/klaxon --histograms --reqs 5

Needs /usr/bin/prometheus (bash ../shared/tools/install-peers.sh).
"""
import argparse
import json
import math
import os
import signal
import shutil
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

INSTANT = [
    "rate(synth_http_requests_total[1m])",
    "sum by (service) (rate(synth_http_requests_total[1m]))",
    "histogram_quantile(0.99, sum by (le) (rate(synth_request_duration_seconds_bucket[1m])))",
    "avg_over_time(synth_queue_depth[1m])",
    "synth_queue_depth * on(instance) group_left() up",
]
HISTOGRAM_QUERIES = [
    "histogram_quantile(0.9, rate(bench_native_h0_seconds[5m]))",
    "histogram_quantile(0.9, sum by (job) (rate(bench_native_h0_seconds[5m])))",
]
RANGE = "sum by (service) (rate(synth_http_requests_total[1m]))"
GRAPH = [
    "rate(synth_http_requests_total[1m])",
    "sum by (service) (rate(synth_http_requests_total[1m]))",
]


# Panels of a node-exporter-full style overview over every host.
DASHBOARD = [
    '100 - (avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)',
    'sum by (instance, mode) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
    'irate(node_cpu_seconds_total{mode="iowait"}[5m])',
    'count by (instance) (node_cpu_seconds_total{mode="idle"})',
    'topk(5, sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m])))',
    'node_load1',
    'avg_over_time(node_load1[15m])',
    'max_over_time(node_load15[1h])',
    'node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes',
    '100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)',
    'rate(node_network_receive_bytes_total[5m]) * 8',
    'rate(node_network_transmit_bytes_total[5m]) * 8',
    'sum by (instance) (rate(node_network_receive_bytes_total[5m]))',
    'sum(rate(node_network_transmit_bytes_total[5m]))',
    'rate(node_disk_read_bytes_total[5m])',
    'rate(node_disk_written_bytes_total[5m])',
    'rate(node_disk_io_time_seconds_total[5m])',
    '100 - (node_filesystem_avail_bytes * 100 / node_filesystem_size_bytes)',
    'node_time_seconds - node_boot_time_seconds',
    'rate(node_context_switches_total[5m])',
]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def snappy_literal(data):
    """A valid snappy block holding `data` as literals (no compression)."""
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 1 << 16):
        chunk = data[i:i + (1 << 16)]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


def node_series(hosts):
    """(labels, kind, start value, step scale) per series, node_exporter names."""
    out = []
    for h in range(hosts):
        inst = {"instance": f"host{h:03d}:9100", "job": "node"}
        for cpu in range(4):
            for mode, rate in (("idle", 0.7), ("user", 0.15), ("system", 0.08), ("iowait", 0.02), ("steal", 0.01)):
                out.append(({"__name__": "node_cpu_seconds_total", "cpu": str(cpu), "mode": mode, **inst}, "counter", rate))
        out.append(({"__name__": "node_memory_MemTotal_bytes", **inst}, "const", 16e9))
        out.append(({"__name__": "node_memory_MemAvailable_bytes", **inst}, "gauge", 8e9))
        for n in ("node_load1", "node_load5", "node_load15"):
            out.append(({"__name__": n, **inst}, "gauge", 1.5))
        for dev in ("eth0", "eth1"):
            out.append(({"__name__": "node_network_receive_bytes_total", "device": dev, **inst}, "counter", 2e6))
            out.append(({"__name__": "node_network_transmit_bytes_total", "device": dev, **inst}, "counter", 1e6))
        for dev in ("sda", "sdb"):
            out.append(({"__name__": "node_disk_read_bytes_total", "device": dev, **inst}, "counter", 5e5))
            out.append(({"__name__": "node_disk_written_bytes_total", "device": dev, **inst}, "counter", 8e5))
            out.append(({"__name__": "node_disk_io_time_seconds_total", "device": dev, **inst}, "counter", 0.05))
        for mp in ("/", "/var"):
            out.append(({"__name__": "node_filesystem_size_bytes", "mountpoint": mp, **inst}, "const", 1e11))
            out.append(({"__name__": "node_filesystem_avail_bytes", "mountpoint": mp, **inst}, "gauge", 5e10))
        out.append(({"__name__": "node_boot_time_seconds", **inst}, "const", 1.7e9))
        out.append(({"__name__": "node_time_seconds", **inst}, "time", 0))
        out.append(({"__name__": "node_context_switches_total", **inst}, "counter", 3000))
    return out


def backfill(bases, hosts, end_ms, hours=6, interval_ms=15000, slice_samples=60):
    """Writes the same generated samples to every server by remote write,
    in time order (slices of `slice_samples` per series), so both accept
    them as in-order samples."""
    rng = random.Random(24)
    series = node_series(hosts)
    encoded_labels = []
    for labels, _, _ in series:
        enc = b"".join(pb_bytes(1, pb_bytes(1, k.encode()) + pb_bytes(2, v.encode()))
                       for k, v in sorted(labels.items()))
        encoded_labels.append(enc)
    state = [v for _, _, v in series]
    n = hours * 3600 * 1000 // interval_ms + 1
    start_ms = end_ms - (n - 1) * interval_ms
    total = 0
    for s0 in range(0, n, slice_samples):
        body = bytearray()
        steps = range(s0, min(n, s0 + slice_samples))
        for i, (labels, kind, scale) in enumerate(series):
            samples = bytearray()
            for k in steps:
                t = start_ms + k * interval_ms
                if kind == "counter":
                    state[i] += scale * 15 * (0.5 + rng.random())
                    v = state[i]
                elif kind == "gauge":
                    v = max(0.0, state[i] * (0.8 + 0.4 * rng.random()))
                elif kind == "time":
                    v = t / 1000.0
                else:
                    v = scale
                samples += pb_bytes(2, b"\x09" + struct.pack("<d", v) + b"\x10" + varint(t))
            body += pb_bytes(1, encoded_labels[i] + bytes(samples))
            total += len(steps)
        payload = snappy_literal(bytes(body))
        for base in bases:
            req = urllib.request.Request(f"{base}/api/v1/write", data=payload, method="POST", headers={
                "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"{base}: remote write refused: {e.code} {e.read()[:300]!r}") from e
    return len(series), total, start_ms


def backfill_histograms(bases, nseries, end_ms, minutes, interval_ms=15000, slice_stamps=20, batch=1000):
    """Writes the same native histograms to every server by remote write, in
    time order (slices of `slice_stamps` samples per series); all series
    under one metric name (the queries select them all)."""
    import protobuf_target as pt
    import rwload
    data = pt.NativeSet(nseries)
    data.family = [0] * nseries
    senders = [rwload.Sender(int(b.rsplit(":", 1)[1])) for b in bases]
    for s in senders:
        s.start()
    n = minutes * 60 * 1000 // interval_ms + 1
    start_ms = end_ms - (n - 1) * interval_ms
    stamps = [start_ms + k * interval_ms for k in range(n)]
    for k in range(0, n, slice_stamps):
        rows = pt.hist_rows(data, stamps[k:k + slice_stamps])
        for lo in range(0, nseries, batch):
            body = rwload.snappy_literal(pt.hist_write_request(data, rows, lo, min(nseries, lo + batch)))
            for s in senders:
                s.q.put(body)
    for s in senders:
        s.q.put(None)
        s.join()
        if s.errors:
            raise RuntimeError(f"remote write to port {s.port}: {s.errors} errors, first: {s.first_error}")
    return nseries * n, start_ms


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def wait_http(url, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def fetch(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    dt = time.perf_counter() - t0
    return dt, json.loads(body)


def series_key(metric):
    return tuple(sorted(metric.items()))


def compare(a, b):
    """(series in a, series in b, common series, values within 1e-9, values compared)."""
    ra, rb = a["data"]["result"], b["data"]["result"]

    def points(res):
        out = {}
        for s in res:
            vals = s.get("values") or [s["value"]]
            out[series_key(s["metric"])] = {float(t): v for t, v in vals}
        return out

    pa, pb = points(ra), points(rb)
    common = set(pa) & set(pb)
    close = total = 0
    for k in common:
        for t, va in pa[k].items():
            vb = pb[k].get(t)
            if vb is None:
                continue
            total += 1
            x, y = float(va), float(vb)
            if (math.isnan(x) and math.isnan(y)) or x == y or (
                    abs(x - y) <= 1e-9 * max(abs(x), abs(y))):
                close += 1
    return len(ra), len(rb), len(common), close, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--port", type=int, default=19300)
    ap.add_argument("--wait", type=int, default=190, help="seconds of scraping before querying")
    ap.add_argument("--reqs", type=int, default=20, help="requests per expression per server")
    ap.add_argument("--klaxon", default=os.path.join(ROOT, "target", "release", "klaxon"))
    ap.add_argument("--prom-listen", default="127.0.0.1:19090")
    ap.add_argument("--klaxon-listen", default="127.0.0.1:19470")
    ap.add_argument("--json", help="write the table here too")
    ap.add_argument("--dashboard", action="store_true",
                    help="the node-exporter dashboard set over remote-written data instead")
    ap.add_argument("--hosts", type=int, default=100, help="hosts for --dashboard")
    ap.add_argument("--histograms", action="store_true",
                    help="histogram_quantile over remote-written native histograms instead")
    ap.add_argument("--hist-series", type=int, default=10000, help="native-histogram series for --histograms")
    ap.add_argument("--hist-minutes", type=int, default=70, help="minutes of data for --histograms")
    ap.add_argument("--prom-reqs", type=int, default=None,
                    help="requests per expression to Prometheus (default --reqs; 0: time klaxon alone)")
    ap.add_argument("--mem-runs", type=int, default=5, help="requests for the peak-memory figure")
    ap.add_argument("--klaxon-log", default=os.devnull, help="klaxon's log (warnings) goes here")
    ap.add_argument("--klaxon-args", default="", help="more klaxon flags, space-separated")
    ap.add_argument("--alt-args", default=None,
                    help="also run a second klaxon with these flags instead (written with =, e.g. "
                         "--alt-args=--query.parallelism=2) on --alt-listen, queried in the same rounds")
    ap.add_argument("--alt-listen", default="127.0.0.1:19471")
    args = ap.parse_args()
    prom_reqs = args.reqs if args.prom_reqs is None else min(args.prom_reqs, args.reqs)
    if not os.path.exists("/usr/bin/prometheus"):
        sys.exit("needs /usr/bin/prometheus: bash ../shared/tools/install-peers.sh")
    tmp = tempfile.mkdtemp(prefix="klaxon-qbench-")
    targets = [f"127.0.0.1:{args.port + i}" for i in range(args.targets)]
    cfg = os.path.join(tmp, "bench.yml")
    with open(cfg, "w") as f:
        if args.dashboard or args.histograms:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        else:
            f.write("global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\n"
                    "scrape_configs:\n  - job_name: synth\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
    prom_base, klaxon_base = f"http://{args.prom_listen}", f"http://{args.klaxon_listen}"
    procs = []
    rows = []
    alt_base = f"http://{args.alt_listen}" if args.alt_args is not None else None
    try:
        rw = ["--web.enable-remote-write-receiver"] if args.dashboard or args.histograms else []
        if not (args.dashboard or args.histograms):
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(SHARED, "tools", "synth_target.py"),
                 "--port", str(args.port), "--targets", str(args.targets), "--series", str(args.series)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_http(f"http://{targets[0]}/metrics")
        procs.append(subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address={args.prom_listen}", "--log.level=warn", *rw,
             *(["--enable-feature=native-histograms"] if args.histograms else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prom_proc = procs[-1]
        # klaxon's storage in the run's temp dir, as Prometheus'. Left at
        # its default (./data under the working directory), a previous
        # run's samples were replayed and the backfill's first batch was
        # refused as out of order; klaxon keeps 6 h by default: hold the
        # whole backfill.
        for which, listen, extra in (("alt", args.alt_listen, args.alt_args), ("main", args.klaxon_listen, args.klaxon_args)):
            if extra is None:
                continue
            kcfg = os.path.join(tmp, f"klaxon-{which}.yml")
            with open(cfg) as src, open(kcfg, "w") as f:
                f.write(src.read())
                f.write(f"storage:\n  path: {tmp}/klaxon-data-{which}\n  retention: 1d\n")
            procs.append(subprocess.Popen(
                [args.klaxon, "run", "--config", kcfg, "--listen", listen, *rw, *extra.split()],
                stdout=subprocess.DEVNULL, stderr=open(args.klaxon_log, "a"), env={**os.environ, "KLAXON_LOG": "warn"}))
        wait_http(f"{prom_base}/-/ready")
        wait_http(f"{klaxon_base}/-/ready")
        if alt_base:
            wait_http(f"{alt_base}/-/ready")
        if args.histograms:
            end_ms = (math.floor(time.time()) - 60) * 1000
            t0 = time.time()
            nsamples, start_ms = backfill_histograms(
                [prom_base, klaxon_base] + ([alt_base] if alt_base else []), args.hist_series, end_ms,
                args.hist_minutes)
            print(f"wrote {args.hist_series} native-histogram series, {nsamples} samples in "
                  f"{time.time() - t0:.0f}s", flush=True)
            time.sleep(args.wait)
            # 250 points 15 s apart, each half way between two samples:
            # Prometheus 2.42's windows are closed at the start, 3.x's
            # open; off the sample grid both select the same samples.
            end_s = end_ms / 1000 - 7.5
            start_s = end_s - 249 * 15
            if start_s - 300 < start_ms / 1000:
                raise SystemExit("--hist-minutes too short for 250 steps of 15 s and a 5m window")
            cases = [("graph 250 steps", q, "/api/v1/query_range",
                      {"query": q, "start": start_s, "end": end_s, "step": 15})
                     for q in HISTOGRAM_QUERIES]
        elif args.dashboard:
            end_ms = (math.floor(time.time()) - 60) * 1000
            t0 = time.time()
            nseries, nsamples, start_ms = backfill([prom_base, klaxon_base] + ([alt_base] if alt_base else []), args.hosts, end_ms)
            print(f"wrote {nseries} series, {nsamples} samples each in {time.time() - t0:.0f}s", flush=True)
            # Let Prometheus' head compaction (spans over 3 h) settle.
            time.sleep(args.wait)
            # 6 h less the first 5 minutes (windows reaching before the data).
            cases = [("dashboard 6h/15s", q, "/api/v1/query_range",
                      {"query": q, "start": start_ms / 1000 + 300, "end": end_ms / 1000, "step": 15})
                     for q in DASHBOARD]
        else:
            print(f"scraping {args.targets} targets x {args.series} series for {args.wait}s ...", flush=True)
            time.sleep(args.wait)
            # A whole second a little in the past: both have ingested up to it.
            t = math.floor(time.time()) - 10
            cases = [("instant", q, "/api/v1/query", {"query": q, "time": t}) for q in INSTANT]
            cases.append(("range 2m/15s", RANGE, "/api/v1/query_range",
                          {"query": RANGE, "start": t - 120, "end": t, "step": 15}))
            # What the UI's graph page asks: the whole filled window in 250
            # steps (every step has data).
            span = args.wait - 20
            for q in GRAPH:
                cases.append(("graph 250 steps", q, "/api/v1/query_range",
                              {"query": q, "start": t - span, "end": t, "step": span / 250}))
        for kind, q, path, params in cases:
            # One warm-up request each (first-touch effects are not the point).
            _, ka = fetch(klaxon_base, path, params)
            pa = fetch(prom_base, path, params)[1] if prom_reqs else ka
            if alt_base:
                fetch(alt_base, path, params)
            pt, kt, at = [], [], []
            for i in range(args.reqs):
                if i < prom_reqs:
                    pt.append(fetch(prom_base, path, params)[0])
                kt.append(fetch(klaxon_base, path, params)[0])
                if alt_base:
                    at.append(fetch(alt_base, path, params)[0])
            np_, nk, common, close, total = compare(pa, ka) if prom_reqs else (0, len(ka["data"]["result"]), 0, 0, 0)
            rows.append({
                "kind": kind, "query": q,
                "prom_ms": statistics.median(pt) * 1e3 if pt else math.nan, "klaxon_ms": statistics.median(kt) * 1e3,
                "prom_series": np_, "klaxon_series": nk, "common_series": common,
                "values_within_1e-9": close, "values_compared": total,
                "points": sum(len(x.get("values") or [1]) for x in pa["data"]["result"]),
            })
            r = rows[-1]
            r["ratio"] = r["klaxon_ms"] / r["prom_ms"] if pt else math.nan
            alt_col = ""
            if at:
                r["alt_ms"] = statistics.median(at) * 1e3
                r["alt_ratio"] = r["alt_ms"] / r["prom_ms"]
                alt_col = f" | alt {r['alt_ms']:9.2f} {r['alt_ratio']:5.2f}"
            print(f"  {r['prom_ms']:9.2f} {r['klaxon_ms']:9.2f} {r['ratio']:5.2f}{alt_col}  [{kind}] {q}", flush=True)
        # Peak memory of the biggest query: each server's resident-set
        # high-water mark is reset (/proc/PID/clear_refs) before one request
        # and read after it; the growth over the resident size before is
        # what the query took at its peak (evaluation plus the encoded
        # response). Medians of --mem-runs requests.
        big = cases[max(range(len(cases)), key=lambda i: rows[i]["points"])]
        big_points = rows[cases.index(big)]["points"]
        mem = {"prom": [], "klaxon": []}
        for _ in range(args.mem_runs):
            for name, base, proc in (("prom", prom_base, prom_proc), ("klaxon", klaxon_base, procs[-1])):
                if name == "prom" and not prom_reqs:
                    continue
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
                with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
                    f.write("5")
                before = proc_kib(proc.pid, "VmRSS")
                fetch(base, big[2], big[3])
                mem[name].append(proc_kib(proc.pid, "VmHWM") - before)
        peak = {k: statistics.median(v) / 1024 if v else math.nan for k, v in mem.items()}
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.histograms:
        print(f"\n{args.hist_series} native-histogram series, 15s interval over {args.hist_minutes} min, "
              f"{args.reqs} requests each, medians")
    elif args.dashboard:
        print(f"\n{args.hosts} hosts x 42 node series, 15s interval over 6h, {args.reqs} requests each, medians")
    else:
        print(f"\n{args.targets} targets x {args.series} series, 5s interval, {args.reqs} requests each, medians")
    print(f"{'query':<92} {'prom ms':>8} {'klaxon ms':>9} {'ratio':>6} {'series p/k':>11} {'equal vals':>11}")
    for r in rows:
        label = r["query"] if r["kind"] == "instant" else f"[{r['kind']}] {r['query']}"
        print(f"{label:<92} {r['prom_ms']:8.2f} {r['klaxon_ms']:9.2f} {r['ratio']:6.2f} "
              f"{r['prom_series']:>5}/{r['klaxon_series']:<5} {r['values_within_1e-9']:>5}/{r['values_compared']:<5}"
              + (f"  alt {r['alt_ms']:8.2f} {r['alt_ratio']:6.2f}" if "alt_ms" in r else ""))
    print(f"\npeak memory growth during one [{big[0]}] {big[1]} request ({big_points} points, median of {args.mem_runs}): "
          f"Prometheus {peak['prom']:.1f} MiB, klaxon {peak['klaxon']:.1f} MiB, ratio {peak['klaxon'] / max(peak['prom'], 1e-9):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "peak_mib": peak, "peak_query": big[1]}, f, indent=1)


if __name__ == "__main__":
    main()
