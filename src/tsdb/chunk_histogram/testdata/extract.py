"""Extracts the histogram chunks Prometheus wrote to chunks_head/ (the
head's memory-mapped chunk files) and pairs every sample with the histogram
serve.py served for that scrape; writes them as a JSON fixture."""
import glob, json, struct, sys

def uvarint(b, i):
    x = s = 0
    while True:
        c = b[i]; i += 1
        x |= (c & 0x7f) << s
        if c < 0x80:
            return x, i
        s += 7

served = [json.loads(l) for l in open(sys.argv[2])]
chunks = []
for f in sorted(glob.glob(sys.argv[1] + "/chunks_head/*")):
    b = open(f, "rb").read()
    assert b[:4] == bytes.fromhex("0130bc91"), f
    i = 8
    while i + 25 <= len(b):
        ref, mint, maxt = struct.unpack(">QQQ", b[i:i+24])
        enc = b[i+24]
        if enc == 0:
            break
        n, j = uvarint(b, i + 25)
        data = b[j:j+n]
        i = j + n + 4
        chunks.append({"encoding": enc, "mint": mint, "maxt": maxt, "bytes_hex": data.hex()})
print(len(chunks), "chunks", [(c["encoding"], int(c["bytes_hex"][:4], 16)) for c in chunks], file=sys.stderr)
json.dump({"served": served, "chunks": chunks}, open(sys.argv[3], "w"))
