"""Domain metrics on /metrics, read back with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Callable

from app.demo.local_prometheus import LocalPrometheus
from app.judge.builtin_checks import CHECKS
from app.judge.findings import Outcome
from app.metrics import BoundedValues
from app.prometheus import Cause
from tests.support import tenancy
from tests.support.exposition import samples, value
from tests.support.servers import AnalyzerServer


def test_analyses_are_counted_by_verdict_and_service(analyzer: AnalyzerServer) -> None:
    services = ("error-regression", "low-traffic")
    for service in services:  # the canaries' starts found, whatever ran before
        analyzer.analyze(service=service)
    before = samples(analyzer)
    for service in services:
        analyzer.analyze(service=service)
    after = samples(analyzer)
    name = "canary_analyzer_analyses_total"
    for verdict, service in (("fail", "error-regression"), ("inconclusive", "low-traffic")):
        assert (
            value(after, name, verdict=verdict, service=service)
            == value(before, name, verdict=verdict, service=service) + 1
        )
    assert value(after, "canary_analyzer_analysis_duration_seconds_count") == (
        value(before, "canary_analyzer_analysis_duration_seconds_count") + 2
    )
    assert value(after, "canary_analyzer_prometheus_query_duration_seconds_count") == (
        # Polls: the families with the canary's known start checked in the same query.
        value(before, "canary_analyzer_prometheus_query_duration_seconds_count") + 2
    )
    # Every check's outcome is counted too, read from the same result view as the JSON.
    checks = "canary_analyzer_checks_total"
    assert value(after, checks, check="error_rate", outcome="fail") == (
        value(before, checks, check="error_rate", outcome="fail") + 1
    )
    assert value(after, checks, check="p95_latency", outcome="inconclusive") == (
        value(before, checks, check="p95_latency", outcome="inconclusive") + 1
    )
    assert "process_cpu_seconds_total" in after


def test_prometheus_errors_are_counted_by_cause(analyzer_without_prometheus: AnalyzerServer) -> None:
    before = value(samples(analyzer_without_prometheus), "canary_analyzer_prometheus_errors_total", cause="connection")
    response = analyzer_without_prometheus.analyze(service="healthy")
    assert response.status_code == 503
    found = samples(analyzer_without_prometheus)
    assert value(found, "canary_analyzer_prometheus_errors_total", cause="connection") >= before + 1
    assert value(found, "canary_analyzer_analyses_total", verdict="error", service="healthy") >= 1


def test_known_series_exist_at_zero_before_anything_happened(
    start_analyzer: Callable[..., AnalyzerServer], dead_prometheus_url: str
) -> None:
    server = start_analyzer(prometheus_url=dead_prometheus_url)
    found = samples(server)
    errors = {s.labels["cause"]: s.value for s in found["canary_analyzer_prometheus_errors_total"]}
    assert errors == dict.fromkeys(Cause, 0.0)
    checks = {
        (s.labels["check"], s.labels["outcome"], s.labels["scope"]): s.value
        for s in found["canary_analyzer_checks_total"]
    }
    # Every outcome on the data judged as a whole; a recent span of the canary's life only ever fails one.
    whole = {(check.name, outcome, "whole"): 0.0 for check in CHECKS for outcome in Outcome}
    assert checks == whole | {(check.name, "fail", "recent"): 0.0 for check in CHECKS}
    assert "canary_analyzer_analyses_total" not in found  # by service: none is known yet

    assert server.analyze(service="checkout").status_code == 503
    analyses = samples(server)["canary_analyzer_analyses_total"]
    # Once a service is known, each of its verdicts has a series, the one that happened counted; asked
    # with no namespace, its namespace label is empty (absent, once Prometheus stores it).
    assert {s.labels["namespace"] for s in analyses} == {""}
    assert {s.labels["verdict"]: s.value for s in analyses if s.labels["service"] == "checkout"} == {
        "pass": 0.0,
        "fail": 0.0,
        "inconclusive": 0.0,
        "error": 1.0,
    }


def test_service_label_values_are_bounded() -> None:
    bounded = BoundedValues(3, "<other>")
    assert [bounded(s) for s in ("a", "b", "a", "c", "d", "e", "b")] == ["a", "b", "a", "c", "<other>", "<other>", "b"]
    pairs = BoundedValues(2, ("<other>", "<other>"))
    assert [pairs(p) for p in (("a", "shop"), ("b", "shop"), ("c", "shop"), ("a", "shop"))] == [
        ("a", "shop"),
        ("b", "shop"),
        ("<other>", "<other>"),
        ("a", "shop"),
    ]


def test_the_same_service_in_two_namespaces_is_counted_apart(
    start_analyzer: Callable[..., AnalyzerServer], teams_prometheus: LocalPrometheus
) -> None:
    server = start_analyzer(prometheus_url=teams_prometheus.url)
    for namespace, verdict in ((tenancy.TEAM_A, "pass"), (tenancy.TEAM_B, "fail"), (tenancy.TEAM_B, "fail")):
        assert server.analyze(service=tenancy.SERVICE, namespace=namespace).json()["verdict"] == verdict
    analyses = {
        (s.labels["namespace"], s.labels["verdict"]): s.value
        for s in samples(server)["canary_analyzer_analyses_total"]
        if s.labels["service"] == tenancy.SERVICE
    }
    assert analyses == {
        (namespace, verdict): float(counted)
        for namespace, counts in ((tenancy.TEAM_A, {"pass": 1}), (tenancy.TEAM_B, {"fail": 2}))
        for verdict, counted in {"pass": 0, "fail": 0, "inconclusive": 0, "error": 0, **counts}.items()
    }
