"""bench/forwarder.py: the stack's floor in bench/speed.py forwards the query it is given, as served."""

from __future__ import annotations

import httpx

from app.demo.local_prometheus import LocalPrometheus
from bench.served import forwarding

BY_VERSION = "sum by (service, version) (http_requests_total)"


def test_the_floor_forwards_each_query_to_prometheus_and_counts_its_series(prometheus: LocalPrometheus) -> None:
    direct = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": BY_VERSION}, timeout=10)
    with forwarding(prometheus.url) as url:
        one = httpx.get(f"{url}/forward", params={"query": "vector(1)"}, timeout=10)
        by_version = httpx.get(f"{url}/forward", params={"query": BY_VERSION}, timeout=10)
        refused = httpx.get(f"{url}/forward", params={"query": "sum("}, timeout=10)
    assert one.json() == {"series": 1}
    assert by_version.json() == {"series": len(direct.json()["data"]["result"])} != {"series": 0}
    assert refused.status_code == 500  # Prometheus' 400 is not an answer to count
