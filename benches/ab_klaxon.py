#!/usr/bin/env python3
"""A/B: two klaxon builds scrape the same synthetic targets side by side;
CPU seconds per 1M samples over the same window. Usage: ab.py BIN_A BIN_B [runs] [secs]"""
import subprocess, sys, time, os, urllib.request, shutil, statistics
A, B = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
secs = int(sys.argv[4]) if len(sys.argv) > 4 else 60
CLK = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    rest = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK
def metric(port, name):
    for l in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode().splitlines():
        if l.startswith(name + " "):
            return float(l.rsplit(" ", 1)[1])
    raise KeyError(name)
targets = ",".join(f'"127.0.0.1:{29400+i}"' for i in range(10))
ratios = []
for run in range(runs):
    synth = subprocess.Popen([sys.executable, "/work/shared/tools/synth_target.py", "--port", "29400", "--targets", "10", "--series", "10000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        time.sleep(3)
        res = {}
        order = [("A", A, 29481), ("B", B, 29482)] if run % 2 == 0 else [("B", B, 29482), ("A", A, 29481)]
        for name, b, port in order:
            d = f"/tmp/klaxon-ab/{name}"
            shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
            open(f"{d}/k.yml", "w").write(f"global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\nscrape_configs:\n  - job_name: synth\n    static_configs:\n      - targets: [{targets}]\nstorage:\n  path: {d}/data\n  retention: 6h\n")
            p = subprocess.Popen([b, "run", "--config", f"{d}/k.yml", "--listen", f"127.0.0.1:{port}", "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append((name, p, port))
        time.sleep(20)
        s0 = {n: (cpu(p.pid), metric(port, "klaxon_tsdb_head_samples_appended_total")) for n, p, port in procs}
        time.sleep(secs)
        s1 = {n: (cpu(p.pid), metric(port, "klaxon_tsdb_head_samples_appended_total")) for n, p, port in procs}
        for n in s0:
            res[n] = (s1[n][0] - s0[n][0]) / (s1[n][1] - s0[n][1]) * 1e6
        print(f"run {run+1}: CPU s per 1M samples A={res['A']:.3f} B={res['B']:.3f} B/A={res['B']/res['A']:.3f}", flush=True)
        ratios.append(res['B'] / res['A'])
    finally:
        for n, p, port in procs:
            p.terminate()
        for n, p, port in procs:
            p.wait()
        synth.terminate(); synth.wait()
print(f"median B/A over {runs} runs: {statistics.median(ratios):.3f}")
