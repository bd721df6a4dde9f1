"""Remote-write load shared by the memory and start-up benchmarks.

Encodes Prometheus remote-write 1.0 requests (protobuf `WriteRequest`) by
hand and frames them as a snappy block made of literals only (valid snappy
that every decoder accepts; no compression library needed), and sends the
same bytes to several servers in lockstep, each from its own thread, so
both ingest the same samples in the same run.

The series: `targets` x `per_target`, labels
`__name__`, `instance`, `job`, `series` (sorted, as the protocol requires).
Half are counters (`bench_c<m>_total`, growing by small integers), half
gauges (`bench_g<m>`, wandering in quarter steps), with 50 metric names
each, so the chunks compress as scraped data does (not constant values).
"""

import http.client
import queue
import struct
import threading

PACK_D = struct.Struct("<d").pack


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def label_bytes(name, value):
    return field_bytes(1, field_bytes(1, name.encode()) + field_bytes(2, value.encode()))


def snappy_literal(raw):
    """A snappy block holding `raw` as literals (at most 16 MiB each)."""
    out = [varint(len(raw))]
    pos = 0
    while pos < len(raw):
        piece = raw[pos : pos + (1 << 24)]
        n = len(piece) - 1
        if n < 60:
            out.append(bytes([n << 2]))
        else:
            out.append(bytes([62 << 2]) + n.to_bytes(3, "little"))
        out.append(piece)
        pos += len(piece)
    return b"".join(out)


class Load:
    def __init__(self, targets, per_target, start_ms, step_ms):
        self.n = targets * per_target
        self.start_ms = start_ms
        self.step_ms = step_ms
        self.labels = []
        for t in range(targets):
            inst = f"10.1.{t // 250}.{t % 250}:9100"
            for i in range(per_target):
                s = t * per_target + i
                name = f"bench_c{s % 50}_total" if s % 2 == 0 else f"bench_g{s % 50}"
                self.labels.append(
                    label_bytes("__name__", name)
                    + label_bytes("instance", inst)
                    + label_bytes("job", "bench")
                    + label_bytes("series", str(i))
                )
        self.value = [float(s % 1000) for s in range(self.n)]

    def request(self, lo, hi, k0, k1):
        """Samples k0..k1 (exclusive) of series lo..hi as one request body."""
        ts = []
        for k in range(k0, k1):
            tb = b"\x10" + varint(self.start_ms + k * self.step_ms)
            ts.append((k, bytes([0x12, 9 + len(tb)]) + b"\x09", tb))
        parts = []
        labels, value = self.labels, self.value
        for s in range(lo, hi):
            v = value[s]
            samples = []
            counter = s % 2 == 0
            for k, head, tb in ts:
                if counter:
                    v += (k * 7 + s) % 13
                else:
                    v = (s % 97) + ((k * 31 + s) % 17) * 0.25
                samples.append(head + PACK_D(v) + tb)
            value[s] = v
            body = labels[s] + b"".join(samples)
            parts.append(b"\x0a" + varint(len(body)) + body)
        return snappy_literal(b"".join(parts))


class Sender(threading.Thread):
    """Posts every body it is given to one server, in order."""

    def __init__(self, port, path="/api/v1/write"):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.q = queue.Queue(maxsize=4)
        self.errors = 0
        self.first_error = None

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        while True:
            body = self.q.get()
            if body is None:
                self.q.task_done()
                break
            for attempt in (0, 1):
                try:
                    conn.request("POST", self.path, body, {
                        "Content-Encoding": "snappy",
                        "Content-Type": "application/x-protobuf",
                        "X-Prometheus-Remote-Write-Version": "0.1.0",
                    })
                    r = conn.getresponse()
                    text = r.read()
                    if r.status // 100 != 2:
                        self.errors += 1
                        self.first_error = self.first_error or f"{r.status} {text[:300]!r}"
                    break
                except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as e:
                    # The server closed an idle keep-alive connection (the
                    # load pauses between points): the request was not
                    # taken; send it again on a new connection, once.
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                    if attempt == 1:
                        self.errors += 1
                        self.first_error = self.first_error or repr(e)
                except Exception as e:  # counted; the run reports it and stops
                    self.errors += 1
                    self.first_error = self.first_error or repr(e)
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                    break
            self.q.task_done()


def push(load, senders, k0, k1, batch_series=2000, steps_per_req=10):
    """Samples k0..k1 of every series to every sender, in time order per series;
    returns when every server has answered every request."""
    for k in range(k0, k1, steps_per_req):
        ke = min(k1, k + steps_per_req)
        for lo in range(0, load.n, batch_series):
            body = load.request(lo, min(load.n, lo + batch_series), k, ke)
            for s in senders:
                s.q.put(body)
    for s in senders:
        s.q.join()
