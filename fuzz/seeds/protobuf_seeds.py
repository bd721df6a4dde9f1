import struct, sys
out = sys.argv[1]
def varint(v):
    b = bytearray()
    while v >= 0x80:
        b.append((v & 0x7f) | 0x80); v >>= 7
    b.append(v); return bytes(b)
def key(f, w): return varint(f << 3 | w)
def vi(f, v): return key(f, 0) + varint(v)
def zz(v): return (v << 1) ^ (v >> 63)
def sv(f, v): return vi(f, zz(v) & (2**64-1))
def d(f, v): return key(f, 1) + struct.pack('<d', v)
def ln(f, b): return key(f, 2) + varint(len(b)) + b
def s(f, x): return ln(f, x.encode())
def lp(n, v): return ln(1, s(1, n) + s(2, v))
def ts(ms): return ln(3, vi(1, ms // 1000) + vi(2, (ms % 1000) * 10**6))
def ex(v): return lp("trace_id", "abc") + d(2, v) + ts(1700000000123)
def fam(name, typ, metrics, help="h", unit=None):
    b = s(1, name) + s(2, help) + vi(3, typ)
    for m in metrics: b += ln(4, m)
    if unit: b += s(5, unit)
    return varint(len(b)) + b
counter = fam("c_total", 0, [lp("a", "1") + ln(3, d(1, 5.0) + ln(2, ex(1.0)) + ts(1700000000000)[0:0]), lp("a", "2") + ln(3, d(1, 1.0)) + vi(6, 1700000000000)])
gauge = fam("g", 1, [ln(2, d(1, -2.5))])
summary = fam("s", 2, [ln(4, vi(1, 10) + d(2, 3.5) + ln(3, d(1, 0.5) + d(2, 0.1)) + ln(3, d(1, 0.99) + d(2, 0.3)))])
untyped = fam("u", 3, [ln(5, d(1, float('nan')))])
classic = fam("hc", 4, [ln(7, vi(1, 6) + d(2, 12.0) + ln(3, vi(1, 1) + d(2, 0.5) + ln(3, ex(0.3))) + ln(3, vi(1, 4) + d(2, 1.0)))])
native = fam("hn", 4, [ln(7, vi(1, 7) + d(2, 9.0) + sv(5, 3) + d(6, 0.001) + vi(7, 1)
    + ln(12, sv(1, -1) + vi(2, 2)) + ln(12, sv(1, 3) + vi(2, 1)) + key(13, 2) + varint(3) + varint(zz(2)) + varint(zz(-1)) + varint(zz(1))
    + ln(9, sv(1, 0) + vi(2, 1)) + sv(10, 1) + ln(16, ex(2.0)) + ln(15, vi(1, 1699999999)))])
float_native = fam("hf", 5, [ln(7, d(4, 3.0) + d(2, 1.0) + sv(5, 0) + d(8, 1.0) + ln(12, sv(1, 0) + vi(2, 2)) + key(14, 2) + varint(16) + struct.pack('<dd', 1.0, 1.0))])
nhcb = fam("hb", 4, [ln(7, vi(1, 3) + d(2, 2.0) + ln(3, vi(1, 1) + d(2, 1.0)) + ln(3, vi(1, 3) + d(2, 5.0)))])
seeds = {"counter_gauge": counter + gauge, "summary_untyped": summary + untyped, "classic": classic, "native": native + float_native, "nhcb": nhcb, "all": counter + gauge + summary + untyped + classic + native + float_native + nhcb}
for k, v in seeds.items():
    open(f"{out}/{k}.bin", "wb").write(v)
