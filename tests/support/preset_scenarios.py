"""Each preset's exporter with a healthy, a slower, an erring and a thin canary, for the tests
that judge presets end to end (a real Prometheus: the `preset_prometheus` session fixture)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.support.presets import Workload, grpc, ingress_nginx, istio, linkerd, otel

HISTORY_SECONDS = 25 * 60
FUTURE_SECONDS = 15 * 60  # the tests evaluate at "now", a few minutes after the backfill
CANARY_AGE_SECONDS = 10 * 60  # the canary's pods started this long before "now"; the stable serves the history


@dataclass(frozen=True)
class Exporter:
    preset: str
    openmetrics: Callable[[list[Workload], float], str]
    canary: str  # the version label's values
    stable: str


EXPORTERS = [
    Exporter("istio", istio.openmetrics, canary="v2", stable="v1"),
    Exporter("linkerd", linkerd.openmetrics, canary="7d9f8b6c5", stable="5c4b3a2f1"),  # pod-template hashes
    # The canary label names the canary's backend; the stable's requests carry none.
    Exporter(
        "ingress-nginx", ingress_nginx.openmetrics, canary=ingress_nginx.upstream("shop", "web-canary", 80), stable=""
    ),
    Exporter("otel", otel.openmetrics, canary="1.5.0", stable="1.4.2"),
    Exporter("grpc", grpc.openmetrics, canary="canary", stable="stable"),
]
# What each service's canary is, against a stable of 30 rps, P95 about 115 ms, 0.5 % errors.
KINDS = {
    "healthy": ("pass", {"rps": 10}),
    "slower": ("fail", {"rps": 10, "median_seconds": 0.075}),  # every request 1.5 times as long
    "erring": ("fail", {"rps": 10, "error_ratio": 0.06}),
    "thin": ("inconclusive", {"rps": 0.02}),  # 12 requests since it started, 50 only half an hour later
}


def workloads(exporter: Exporter, now: float) -> list[Workload]:
    span = {"start": now - HISTORY_SECONDS, "stop": now + FUTURE_SECONDS, "median_seconds": 0.05, "sigma": 0.5}
    out = []
    for kind, (_, canary) in KINDS.items():
        service = f"{exporter.preset}-{kind}"
        out.append(Workload(service, exporter.stable, rps=30, error_ratio=0.005, client_error_ratio=0.02, **span))
        since = {"start": now - CANARY_AGE_SECONDS}
        out.append(Workload(service, exporter.canary, **{**span, **since, "error_ratio": 0.005, **canary}))
    return out
