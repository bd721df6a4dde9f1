#!/usr/bin/env python3
"""Drives klaxon's query API with the `prometheus-api-client` package (what
Python users script against Prometheus) and prints what the library parsed,
as JSON, for tests/it/query_api.rs to compare with klaxon's engine.

usage: prom_api_client.py URL EVAL_TIME_SECONDS
"""
import datetime
import json
import sys

from prometheus_api_client import PrometheusApiClientException, PrometheusConnect


def main():
    url, t = sys.argv[1], float(sys.argv[2])
    prom = PrometheusConnect(url=url, disable_ssl=True)
    out = {}

    inst = prom.custom_query("sum by (code) (rate(qa_requests_total[1m]))", params={"time": t})
    by_code = lambda x: x[0].get("code", "")
    out["instant"] = sorted(
        ([s["metric"], float(s["value"][0]), s["value"][1]] for s in inst), key=by_code
    )

    end = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
    start = end - datetime.timedelta(minutes=5)
    rng = prom.custom_query_range(
        "sum by (code) (rate(qa_requests_total[1m]))", start_time=start, end_time=end, step="60"
    )
    out["range"] = sorted(([s["metric"], [[float(p[0]), p[1]] for p in s["values"]]] for s in rng), key=by_code)
    out["range_start"] = round(start.timestamp())
    out["range_end"] = round(end.timestamp())

    out["codes"] = prom.get_label_values("code")
    out["metrics"] = prom.all_metrics()

    current = prom.get_current_metric_value("qa_temp", label_config={"room": "x"})
    assert len(current) == 1, current
    assert current[0]["metric"]["room"] == "x", current

    try:
        prom.custom_query("sum(")
        raise AssertionError("a parse error must be an HTTP error")
    except PrometheusApiClientException as e:
        assert "400" in str(e) and "bad_data" in str(e), str(e)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
