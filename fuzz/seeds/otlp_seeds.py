import sys
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.common.v1 import common_pb2 as c
out = sys.argv[1]
T = 1_700_000_000_123_000_000
def kv(k, v):
    a = c.KeyValue(key=k)
    if isinstance(v, str): a.value.string_value = v
    elif isinstance(v, bool): a.value.bool_value = v
    elif isinstance(v, int): a.value.int_value = v
    elif isinstance(v, float): a.value.double_value = v
    elif isinstance(v, bytes): a.value.bytes_value = v
    elif isinstance(v, list): a.value.array_value.values.extend([c.AnyValue(string_value=x) for x in v])
    elif isinstance(v, dict):
        a.value.kvlist_value.values.extend([kv(x, y) for x, y in v.items()])
    return a
def req():
    r = ExportMetricsServiceRequest()
    rm = r.resource_metrics.add()
    rm.resource.attributes.extend([kv("service.name", "s"), kv("service.instance.id", "i"), kv("host.name", "h"), kv("n", 3), kv("f", 1.5), kv("b", b"\x01"), kv("arr", ["a", "b"]), kv("map", {"x": "y"})])
    sm = rm.scope_metrics.add(); sm.scope.name = "lib"; sm.scope.version = "1"
    return r, sm
def ex(v, int_=False):
    e = m.Exemplar(time_unix_nano=T, trace_id=b"\x01"*16, span_id=b"\x02"*8)
    e.filtered_attributes.extend([kv("user", "u")])
    if int_: e.as_int = v
    else: e.as_double = v
    return e
seeds = {}
r, sm = req()
g = sm.metrics.add(name="g.x", unit="1"); p = g.gauge.data_points.add(time_unix_nano=T, as_double=1.5); p.attributes.extend([kv("a.b", "x"), kv("a_b", "y")]); p.exemplars.append(ex(1.5))
s = sm.metrics.add(name="c", unit="By/s"); s.sum.aggregation_temporality = 2; s.sum.is_monotonic = True; s.sum.data_points.add(time_unix_nano=T, as_int=7, flags=1)
seeds["numbers"] = r
r, sm = req()
h = sm.metrics.add(name="h", unit="ms"); h.histogram.aggregation_temporality = 2
p = h.histogram.data_points.add(time_unix_nano=T, count=6, sum=12.0, bucket_counts=[1, 2, 3], explicit_bounds=[0.5, 10.0]); p.exemplars.extend([ex(0.2), ex(5.0), ex(100, True)])
q = sm.metrics.add(name="q"); pt = q.summary.data_points.add(time_unix_nano=T, count=2, sum=3.0); pt.quantile_values.add(quantile=0.99, value=2.5)
seeds["hist_summary"] = r
r, sm = req()
e = sm.metrics.add(name="e", unit="s"); e.exponential_histogram.aggregation_temporality = 2
p = e.exponential_histogram.data_points.add(time_unix_nano=T, count=9, sum=3.5, scale=12, zero_count=1, zero_threshold=0.001)
p.positive.offset = -3; p.positive.bucket_counts.extend([1, 0, 0, 0, 2, 1]); p.negative.offset = 5; p.negative.bucket_counts.extend([2, 0, 1]); p.exemplars.append(ex(0.7))
p2 = e.exponential_histogram.data_points.add(time_unix_nano=T + 10**9, count=1, scale=-3, zero_count=1, flags=1)
seeds["exponential"] = r
r, sm = req()
d = sm.metrics.add(name="d"); d.sum.aggregation_temporality = 1; d.sum.data_points.add(time_unix_nano=T, as_double=1)
seeds["delta"] = r
for k, v in seeds.items():
    open(f"{out}/{k}.bin", "wb").write(v.SerializeToString())
