"""Pushes metrics to an OTLP/HTTP endpoint with the OpenTelemetry Python SDK
(tests/it/otlp.rs runs it). Usage: otlp_push.py URL MODE

MODE:
  main     a counter, an observable gauge, an explicit-bucket histogram and
           two exponential histograms (test.size: 1, 2, 4, 1000 bytes;
           test.fine: 1.5 and 1.5001 seconds, at the SDK's finest scale)
  delta    a counter with delta temporality

Prints the SDK exporter's result (SUCCESS or FAILURE) on stdout. In `main`
mode, one line `scale NAME SCALE` follows per exponential histogram (the
scale the SDK chose). The SDK logs only the HTTP reason phrase of a refusal,
so for `delta` the same request (encoded by the SDK's own encoder) is posted
once more and the status code and answer text are printed on the following
lines.
"""

import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

url, mode = sys.argv[1], sys.argv[2]

resource = Resource.create(
    {
        "service.name": "checkout",
        "service.namespace": "shop",
        "service.instance.id": "pod-1",
        "deployment.environment": "test",
    }
)
temporality = {}
if mode == "delta":
    temporality = {Counter: AggregationTemporality.DELTA}
views = []
if mode == "main":
    views = [
        View(instrument_name=name, aggregation=ExponentialBucketHistogramAggregation())
        for name in ("test.size", "test.fine")
    ]
reader = InMemoryMetricReader(preferred_temporality=temporality)
provider = MeterProvider(resource=resource, metric_readers=[reader], views=views)
meter = provider.get_meter("klaxon.test", "0.1")

if mode in ("main", "delta"):
    requests = meter.create_counter("test.requests", unit="1", description="Requests served.")
    requests.add(5, {"http.method": "GET"})
    requests.add(2, {"http.method": "GET"})
    requests.add(1, {"http.method": "POST"})
if mode == "main":
    meter.create_observable_gauge(
        "test.temperature",
        callbacks=[lambda _options: [Observation(21.5, {"room": "a"})]],
        unit="Cel",
    )
    latency = meter.create_histogram("test.latency", unit="ms")
    for v in (3, 30, 300):
        latency.record(v, {"route": "/pay"})
    size = meter.create_histogram("test.size", unit="By")
    for v in (1, 2, 4, 1000):
        size.record(v)
    fine = meter.create_histogram("test.fine", unit="s")
    for v in (1.5, 1.5001):
        fine.record(v)

data = reader.get_metrics_data()
exporter = OTLPMetricExporter(endpoint=url, timeout=10)
result = exporter.export(data)
print(result.name)
if mode == "main":
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name in ("test.size", "test.fine"):
                    print("scale", m.name, m.data.data_points[0].scale)
else:
    import requests
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    body = encode_metrics(data).SerializeToString()
    resp = requests.post(
        url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=10
    )
    print(resp.status_code)
    print(resp.text.strip())
provider.shutdown()
