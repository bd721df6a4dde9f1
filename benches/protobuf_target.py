#!/usr/bin/env python3
"""A protobuf scrape target, and native-histogram remote-write data, for benchmarks.

Serves /metrics as Prometheus' length-delimited protobuf
(`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
encoding=delimited`, hand-encoded here: no protobuf library) on --targets
consecutive ports, --series series per target, in one of two mixes:

  classic  counters (~45%), gauges (~45%) and classic histograms (~10% of the
           series: 10 bounds, so 11 `_bucket` series plus `_sum` and `_count`)
  native   native histograms only (integer counts, schema 3, 10 to 40
           populated buckets per series in two spans, a zero bucket), in 10
           families `bench_native_h<k>_seconds` with `service` and `route`
           labels; client_golang's encoding (unpacked `positive_delta`)

Values change every scrape interval: counters and bucket counts only grow
(no counter resets), gauges wander. The payload is a function of the
interval number (wall clock / --interval), encoded once per interval and
served to every scraper and every port alike, so two servers scraping the
same target store the same values. A request whose Accept header does not
offer protobuf gets 406 (counted in /stats): a scraper that did not
negotiate protobuf stores nothing instead of silently measuring text.

  python3 benches/protobuf_target.py --mode native --series 10000 --port 19600
  curl 127.0.0.1:19600/stats

`hist_write_request` encodes the same native histograms as a remote-write
1.0 request (benches/compare_query.py --histograms uses it).

Binds 127.0.0.1 only. Python stdlib only.
"""
import argparse
import json
import random
import signal
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rwload import varint

PACK_D = struct.Struct("<d").pack
PROTO_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"


def zigzag(n):
    return n << 1 if n >= 0 else ((~n) << 1) | 1


def f_bytes(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_double(field, v):
    return varint(field << 3 | 1) + PACK_D(v)


def f_sint(field, n):
    return f_varint(field, zigzag(n))


def label_pair(name, value):
    """io.prometheus.client.LabelPair as a Metric's field 1."""
    return f_bytes(1, f_bytes(1, name.encode()) + f_bytes(2, value.encode()))


# Tag-and-value bytes of small zigzagged deltas: one table lookup per bucket.
TABLE = 1 << 16


def tagged_table(field):
    tag = varint(field << 3)
    return [tag + varint(z) for z in range(TABLE)]


def tagged(table, field, zz):
    """The tag-value bytes of every zigzagged value (unpacked repeated field)."""
    if max(zz) < TABLE:
        return b"".join(map(table.__getitem__, zz))
    return b"".join(f_varint(field, z) for z in zz)


SCRAPE_DELTA = tagged_table(13)  # Histogram.positive_delta (client_golang writes it unpacked)
SCHEMA = 3
ZERO_THRESHOLD = 2.938735877055719e-39  # client_golang's default
PATTERNS = 17
NFAMILIES = 10


class NativeSet:
    """Native-histogram series: layout, counts, and one step of growth."""

    def __init__(self, series, seed=23):
        rng = random.Random(seed)
        # Increments per bucket and step, picked from a few patterns so a
        # step costs list arithmetic, not random draws.
        self.inc = [[rng.choice((0, 0, 1, 1, 1, 2, 2, 3, 4)) for _ in range(40)] for _ in range(PATTERNS)]
        self.n = series
        self.nb, self.spans, self.counts, self.zero, self.sum = [], [], [], [], []
        self.family, self.labels = [], []
        for i in range(series):
            nb = 10 + (i * 7) % 31
            first = nb // 2
            start = -8 + i % 12
            self.nb.append(nb)
            # (offset, length) pairs: two spans with a gap of 1 to 3 buckets.
            self.spans.append(((start, first), (1 + i % 3, nb - first)))
            mid = nb / 2
            self.counts.append([1 + int(40 / (1 + (k - mid) ** 2 / 8)) + (i + k) % 5 for k in range(nb)])
            self.zero.append(i % 4)
            self.sum.append(float(i % 100))
            self.family.append(i % NFAMILIES)
            self.labels.append((("service", f"svc{i % 20}"), ("route", f"/r{i // 20}")))
        self.spans_pb = [b"".join(f_bytes(12, f_sint(1, o) + f_varint(2, n)) for o, n in s) for s in self.spans]
        self.labels_pb = [b"".join(label_pair(k, v) for k, v in lab) for lab in self.labels]

    def step(self, gen):
        """Grows every series by one scrape's worth of observations."""
        inc, counts, zero, sums = self.inc, self.counts, self.zero, self.sum
        for i in range(self.n):
            d = inc[(i + gen) % PATTERNS]
            c = [a + b for a, b in zip(counts[i], d)]
            counts[i] = c
            added = sum(d[: len(c)])
            zero[i] += gen % 3 == 0
            sums[i] += added * 0.0137 + (i % 7) * 0.001

    def deltas(self, i):
        c = self.counts[i]
        prev = [0] + c[:-1]
        return [zigzag(a - b) for a, b in zip(c, prev)]

    def histogram_pb(self, i):
        """io.prometheus.client.Histogram of series i, as a Metric's field 7."""
        total = sum(self.counts[i]) + self.zero[i]
        body = (f_varint(1, total) + f_double(2, self.sum[i]) + f_sint(5, SCHEMA)
                + f_double(6, ZERO_THRESHOLD) + f_varint(7, self.zero[i]) + self.spans_pb[i]
                + tagged(SCRAPE_DELTA, 13, self.deltas(i)))
        return f_bytes(7, body)

    def payload(self):
        metrics = [[] for _ in range(NFAMILIES)]
        for i in range(self.n):
            metrics[self.family[i]].append(f_bytes(4, self.labels_pb[i] + self.histogram_pb(i)))
        out = []
        for k, ms in enumerate(metrics):
            if not ms:
                continue
            fam = (f_bytes(1, f"bench_native_h{k}_seconds".encode())
                   + f_bytes(2, b"Synthetic native-histogram latency.") + f_varint(3, 4) + b"".join(ms))
            out.append(varint(len(fam)) + fam)
        return b"".join(out)

    def samples_per_scrape(self):
        return self.n


BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FRACS = (0.05, 0.12, 0.3, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99, 0.997)


class ClassicSet:
    """Counters, gauges and classic histograms, about synth_target.py's mix."""

    def __init__(self, series):
        per_hist = len(BOUNDS) + 3  # buckets, +Inf, _sum, _count
        self.nhist = max(1, series // 10 // per_hist)
        rest = max(0, series - self.nhist * per_hist)
        self.ncounter = (rest + 1) // 2
        self.ngauge = rest - self.ncounter
        self.series = self.nhist * per_hist + self.ncounter + self.ngauge
        self.gen = 0
        self.counter_labels = [label_pair("service", f"svc{i % 10}") + label_pair("code", str(200 + (i // 10) % 5))
                               + label_pair("path", f"/api/p{i // 50}") for i in range(self.ncounter)]
        self.gauge_labels = [label_pair("service", f"svc{i % 10}") + label_pair("queue", f"q{i // 10}")
                             for i in range(self.ngauge)]
        self.hist_labels = [label_pair("service", f"svc{j % 10}") + label_pair("route", f"/r{j // 10}")
                            for j in range(self.nhist)]
        self.bounds_pb = [f_double(2, b) for b in BOUNDS]

    def step(self, gen):
        self.gen = gen

    def payload(self):
        n = self.gen + 1
        out = []

        def family(name, help_, typ, metrics):
            fam = f_bytes(1, name) + f_bytes(2, help_) + f_varint(3, typ) + b"".join(metrics)
            out.append(varint(len(fam)) + fam)

        hs = []
        for j, lab in enumerate(self.hist_labels):
            count = n * 10 * (1 + j % 3)
            buckets = b"".join(f_bytes(3, f_varint(1, int(count * fr)) + bnd)
                               for fr, bnd in zip(FRACS, self.bounds_pb))
            h = f_varint(1, count) + f_double(2, count * 0.137 + j % 7) + buckets
            hs.append(f_bytes(4, lab + f_bytes(7, h)))
        family(b"bench_request_duration_seconds", b"Synthetic request latency.", 4, hs)
        family(b"bench_http_requests_total", b"Synthetic requests served.", 0,
               [f_bytes(4, lab + f_bytes(3, f_double(1, float(n * (1 + i % 7) + i % 13))))
                for i, lab in enumerate(self.counter_labels)])
        family(b"bench_queue_depth", b"Synthetic queue depth.", 1,
               [f_bytes(4, lab + f_bytes(2, f_double(1, ((i * 7919 + n * 104729) % 1000) / 10)))
                for i, lab in enumerate(self.gauge_labels)])
        return b"".join(out)

    def samples_per_scrape(self):
        return self.series


# Remote write 1.0: prometheus.Histogram inside TimeSeries field 4.
RW_DELTA = tagged_table(12)  # Histogram.positive_deltas (unpacked; every decoder takes both forms)


def rw_histogram(s, i, t_ms):
    """prometheus.Histogram of series i of NativeSet s at t_ms."""
    total = sum(s.counts[i]) + s.zero[i]
    spans = b"".join(f_bytes(11, f_sint(1, o) + f_varint(2, n)) for o, n in s.spans[i])
    body = (f_varint(1, total) + f_double(3, s.sum[i]) + f_sint(4, SCHEMA) + f_double(5, ZERO_THRESHOLD)
            + f_varint(6, s.zero[i]) + spans + tagged(RW_DELTA, 12, s.deltas(i)) + f_varint(15, t_ms))
    return f_bytes(4, body)


def hist_rows(s, stamps):
    """Every series' remote-write histograms at each stamp (ms, increasing),
    stepping s once per stamp."""
    rows = [[] for _ in range(s.n)]
    for t in stamps:
        s.step(t // 1000)
        for i in range(s.n):
            rows[i].append(rw_histogram(s, i, t))
    return rows


def hist_write_request(s, rows, lo, hi, job="bench", instance="127.0.0.1:9999"):
    """A WriteRequest (not compressed) with series lo..hi of `hist_rows`;
    labels sorted by name, as the protocol requires."""
    out = []
    for i in range(lo, hi):
        labels = [("__name__", f"bench_native_h{s.family[i]}_seconds"), ("instance", instance), ("job", job),
                  *s.labels[i]]
        lab = b"".join(f_bytes(1, f_bytes(1, k.encode()) + f_bytes(2, v.encode())) for k, v in sorted(labels))
        out.append(f_bytes(1, lab + b"".join(rows[i])))
    return b"".join(out)


class Source:
    """The payload of the current interval, encoded once."""

    def __init__(self, data, interval):
        self.data, self.interval = data, interval
        self.lock = threading.Lock()
        self.gen = None
        self.body = b""
        self.encode_s = 0.0

    def current(self):
        gen = int(time.time() // self.interval)
        with self.lock:
            if gen != self.gen:
                t0 = time.perf_counter()
                self.data.step(gen)
                self.body = self.data.payload()
                self.encode_s += time.perf_counter() - t0
                self.gen = gen
            return self.body


def serve(port, source, stats, bind):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _send(self, code, body, ctype):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                if "application/vnd.google.protobuf" not in self.headers.get("Accept", ""):
                    stats["refused"] += 1
                    self._send(406, b"protobuf only\n", "text/plain")
                    return
                body = source.current()
                stats["scrapes"] += 1
                self._send(200, body, PROTO_TYPE)
            elif path == "/stats":
                st = dict(stats, bytes=len(source.body), encode_s=round(source.encode_s, 3))
                self._send(200, json.dumps(st).encode(), "application/json")
            else:
                self._send(404, b"see /metrics and /stats\n", "text/plain")

    srv = ThreadingHTTPServer((bind, port), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("classic", "native"), default="native")
    ap.add_argument("--port", type=int, default=19600, help="first port")
    ap.add_argument("--targets", type=int, default=1, help="consecutive ports serving the same payload")
    ap.add_argument("--series", type=int, default=10000, help="series per target")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between value changes")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--dump", action="store_true", help="write one payload to stdout and exit")
    args = ap.parse_args()
    if not args.bind.startswith("127."):
        sys.exit("protobuf_target: refusing to bind a non-loopback address")
    data = NativeSet(args.series) if args.mode == "native" else ClassicSet(args.series)
    source = Source(data, args.interval)
    if args.dump:
        sys.stdout.buffer.write(source.current())
        return
    stats = {"scrapes": 0, "refused": 0, "samples_per_scrape": data.samples_per_scrape()}
    servers = [serve(args.port + k, source, stats, args.bind) for k in range(args.targets)]
    print(f"protobuf_target: {args.mode}, {args.targets} target(s) x {data.samples_per_scrape()} samples "
          f"on {args.bind}:{args.port}..{args.port + args.targets - 1}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()
    for s in servers:
        s.shutdown()


if __name__ == "__main__":
    main()
