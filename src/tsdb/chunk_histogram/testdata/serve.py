"""Serves one native histogram per scrape in the protobuf exposition format
(length-delimited io.prometheus.client.MetricFamily), so a Prometheus with
--enable-feature=native-histograms stores it in histogram chunks. The values
follow a fixed script: scrape k (k = 0, 1, ...) serves SCRIPT(k); every
served histogram is logged as JSON to served.jsonl."""
import http.server, json, struct, sys

def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def zz(n):
    return (n << 1) ^ (n >> 63)

def key(field, wt):
    return varint((field << 3) | wt)

def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload

def span(offset, length):
    return key(1, 0) + varint(zz(offset) & ((1 << 64) - 1)) + key(2, 0) + varint(length)

def histogram(h):
    p = key(1, 0) + varint(h["count"])
    p += key(2, 1) + struct.pack("<d", h["sum"])
    p += key(5, 0) + varint(zz(h["schema"]) & ((1 << 64) - 1))
    p += key(6, 1) + struct.pack("<d", h["zt"])
    p += key(7, 0) + varint(h["zc"])
    for o, l in h["nspans"]:
        p += ld(9, span(o, l))
    for d in h["ndeltas"]:
        p += key(10, 0) + varint(zz(d) & ((1 << 64) - 1))
    for o, l in h["pspans"]:
        p += ld(12, span(o, l))
    for d in h["pdeltas"]:
        p += key(13, 0) + varint(zz(d) & ((1 << 64) - 1))
    return p

def family(h):
    metric = ld(7, histogram(h))
    mf = ld(1, b"nh_test") + ld(2, b"test histogram") + key(3, 0) + varint(4) + ld(4, metric)
    return varint(len(mf)) + mf

def deltas(abs_):
    out, prev = [], 0
    for a in abs_:
        out.append(a - prev)
        prev = a
    return out

def script(k):
    # Positive buckets 0..2 from the start; bucket 5 appears at k=40 (the
    # chunk must be rewritten with a wider layout); a negative bucket from
    # k=80; counts grow irregularly; a counter reset at k=150.
    j = k if k < 150 else k - 150
    pos_idx = [0, 1, 2] + ([5] if j >= 40 else [])
    pos = [1 + j * 3 + (j % 7), 2 * j, (j * j) % 11 + j][: 3] + ([j - 39] if j >= 40 else [])
    # Keep buckets monotonic in time: cumulative by construction.
    pos = [1 + 3 * j + j // 7, 2 * j, j + j // 3] + ([j - 39] if j >= 40 else [])
    neg = [j - 79] if j >= 80 else []
    zc = j // 2
    spans = []
    prev = None
    for i in pos_idx:
        if prev is not None and i == prev + 1:
            spans[-1][1] += 1
        else:
            spans.append([i if prev is None else i - prev - 1, 1])
        prev = i
    return {
        "schema": 1, "zt": 2.0 ** -128, "zc": zc,
        "count": sum(pos) + sum(neg) + zc, "sum": 0.25 * j + 0.1 * (j % 3),
        "pspans": [tuple(s) for s in spans], "pdeltas": deltas(pos),
        "nspans": [(3, 1)] if neg else [], "ndeltas": deltas(neg),
    }

k = 0
log = open(sys.argv[2], "a")

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global k
        h = script(k)
        body = family(h)
        log.write(json.dumps({"k": k, **h}) + "\n"); log.flush()
        k += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
