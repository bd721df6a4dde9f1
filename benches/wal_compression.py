#!/usr/bin/env python3
"""Bytes of a klaxon WAL directory under each record compression choice.

Reads every segment of WAL_DIR (klaxon's `storage.path/wal`), undoes the
snappy compression of records that have it, and prints the total size of
the records' payloads stored three ways, each record compressed on its own
as the WAL does:

  none       the payloads as they are
  snappy     as klaxon stores them (snappy when it makes a record smaller)
  zstd -1/-3 each payload through the `zstd` command line tool

plus the 9-byte record headers, and bytes per sample when the number of
samples is given (`--samples`, e.g. klaxon_tsdb_head_samples_appended_total).

  python3 benches/wal_compression.py /path/to/data/wal --samples 1234567

Needs /usr/bin/zstd. Python stdlib otherwise.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HEADER = 9
COMPRESSED = 0x80
KINDS = {1: "series", 2: "samples (format 1)", 3: "deletions", 4: "chunks", 5: "samples"}


def uvarint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return n, i


def snappy_decompress(b):
    _, i = uvarint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n < 60:
                n += 1
            else:
                k = n - 59
                n = int.from_bytes(b[i:i + k], "little") + 1
                i += k
            out += b[i:i + n]
            i += n
            continue
        if kind == 1:
            n = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            n = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            n = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(n):
            out.append(out[-off])
    return bytes(out)


def records(path):
    data = open(path, "rb").read()
    pos = 0
    while pos + HEADER <= len(data):
        kind = data[pos]
        n = int.from_bytes(data[pos + 1:pos + 5], "little")
        body = data[pos + HEADER:pos + HEADER + n]
        if len(body) < n:
            break
        raw = snappy_decompress(body) if kind & COMPRESSED else body
        yield kind & ~COMPRESSED, len(body), raw
        pos += HEADER + n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wal_dir")
    ap.add_argument("--samples", type=float, help="samples the WAL holds, for bytes per sample")
    args = ap.parse_args()
    segs = sorted(f for f in os.listdir(args.wal_dir) if len(f) == 8 and f.isdigit())
    stored = raw = headers = count = 0
    zstd = {1: 0, 3: 0}
    by_kind = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for s in segs:
            for kind, body_len, payload in records(os.path.join(args.wal_dir, s)):
                count += 1
                headers += HEADER
                stored += body_len
                raw += len(payload)
                k = by_kind.setdefault(KINDS.get(kind, kind), [0, 0, 0])
                k[0] += 1
                k[1] += len(payload)
                k[2] += body_len
                p = os.path.join(tmp, f"r{count}")
                with open(p, "wb") as f:
                    f.write(payload)
                files.append(p)
        for level in zstd:
            for i in range(0, len(files), 500):
                subprocess.run(["zstd", f"-{level}", "-q", "-f", "--no-check"] + files[i:i + 500],
                               check=True)
            for p in files:
                z = os.path.getsize(p + ".zst")
                # A record is only stored compressed when that is smaller.
                zstd[level] += min(z, os.path.getsize(p))
                os.remove(p + ".zst")
    rows = [("none", raw), ("snappy (as stored)", stored), ("zstd -1", zstd[1]), ("zstd -3", zstd[3])]
    print(f"{count} records in {len(segs)} segments, headers {headers} B")
    for name, (n, r, st) in sorted(by_kind.items(), key=str):
        print(f"  {name}: {n} records, {r} B uncompressed, {st} B as stored")
    for name, b in rows:
        total = b + headers
        per = f", {total / args.samples:.3f} B/sample" if args.samples else ""
        print(f"{name:20s} {total:>12d} B{per}")


if __name__ == "__main__":
    sys.exit(main())
