"""Answers held to the shape that was asked for: a real analyzer against a stand-in Prometheus that answers as a
proxy or federation layer that merges answers without deduplicating them would. Summed, such series would be
counted twice; they are a 503 bad_response naming what was wrong, counted and redacted like every other."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import business
from tests.support.exposition import samples, value
from tests.support.fake_prometheus import START_QUERY
from tests.support.hostile_prometheus import HostilePrometheus, Reply, answer_by_query
from tests.support.servers import AnalyzerServer

TOKEN = "tok-Vq3Lm8Zr1"
AT = 1_700_000_000
VERSIONS = ("canary", "stable")
CHECK_NUMBERS = {"orders_total": 300, "checkout_visits_total": 1000, "queue_lag_seconds": 2}


def series(labels: dict[str, str], number: float) -> dict:
    return {"metric": labels, "value": [AT, f"{number:g}"]}


def healthy_families() -> list[dict]:
    """Both versions' buckets and request counts, each group once: what `sum by` answers."""
    buckets = [
        series({"le": le, "version": version}, count)
        for version in VERSIONS
        for le, count in (("0.1", 900), ("0.25", 990), ("+Inf", 1000))
    ]
    outcomes = [
        series({"outcome": outcome, "version": version}, count)
        for version in VERSIONS
        for outcome, count in (("ok", 995), ("error", 5))
    ]
    return buckets + outcomes


def one_number(query: str) -> list[dict]:
    """A user check's query answered as `sum(...)` answers it: one series without labels."""
    [number] = [number for metric, number in CHECK_NUMBERS.items() if metric in query]
    return [series({}, number)]


def answering(families: list[dict], checks: Callable[[str], list[dict]] = one_number) -> Reply:
    def answer(query: str) -> dict:
        return {"status": "success", "data": {"resultType": "vector", "result": result(query)}}

    def result(query: str) -> list[dict]:
        if query.startswith(START_QUERY):  # the canary's start: there all along
            return []
        return families if "http_requests_total" in query else checks(query)

    return answer_by_query(answer)


def lag_twice(query: str) -> list[dict]:
    return one_number(query) * 2 if "queue_lag_seconds" in query else one_number(query)


def lag_per_pod(query: str) -> list[dict]:
    if "queue_lag_seconds" not in query:
        return one_number(query)
    return [series({"pod": "shop-7f9c"}, CHECK_NUMBERS["queue_lag_seconds"])]


CASES: dict[str, tuple[Reply, str]] = {
    "doubled (le, version)": (
        answering([*healthy_families(), series({"le": "0.1", "version": "canary"}, 900)]),
        'latency series repeated: le="0.1", version="canary" answered more than once',
    ),
    "a label not grouped by": (
        answering([*healthy_families()[:-1], series({"outcome": "error", "version": "stable", "replica": "b"}, 5)]),
        "requests series carry labels the query does not group by (outcome, version): replica in",
    ),
    "repeated (outcome, version)": (
        answering([*healthy_families(), series({"outcome": "ok", "version": "stable"}, 995)]),
        'requests series repeated: outcome="ok", version="stable" answered more than once',
    ),
    "a user check answering two series": (
        answering(healthy_families(), lag_twice),
        "a check's query gave 2 series, not one: [{}, {}]",
    ),
    "a user check's label its query does not fix": (
        answering(healthy_families(), lag_per_pod),
        "a check's series carries labels its query does not fix with =: pod in {'pod': 'shop-7f9c'}",
    ),
}


@pytest.fixture(scope="module")
def shop_analyzer(
    start_analyzer: Callable[..., AnalyzerServer], hostile: HostilePrometheus, tmp_path_factory: pytest.TempPathFactory
) -> AnalyzerServer:
    checks = tmp_path_factory.mktemp("strict") / "checks.yaml"
    checks.write_text(business.CHECKS_FILE)
    return start_analyzer(prometheus_url=hostile.url, prometheus_bearer_token=TOKEN, checks_file=str(checks))


def bad_responses_counted(server: AnalyzerServer) -> float:
    return value(samples(server), "canary_analyzer_prometheus_errors_total", cause="bad_response")


def test_answers_in_the_shape_asked_for_are_judged(shop_analyzer: AnalyzerServer, hostile: HostilePrometheus) -> None:
    """The control: the stand-in's answers, each group once, are judged, user checks included."""
    hostile.reply = answering(healthy_families())
    response = shop_analyzer.analyze(service="checkout")
    assert response.status_code == 200, response.text
    checks = {check["name"]: check for check in response.json()["checks"]}
    assert checks["canary_traffic"]["canary"] == 1000  # counted once
    assert checks["queue_lag"]["canary"] == CHECK_NUMBERS["queue_lag_seconds"]


@pytest.mark.parametrize("case", CASES)
def test_answers_not_in_the_shape_asked_for_are_503_bad_response(
    shop_analyzer: AnalyzerServer, hostile: HostilePrometheus, case: str
) -> None:
    reply, phrase = CASES[case]
    hostile.reply = reply
    counted = bad_responses_counted(shop_analyzer)
    response = shop_analyzer.analyze(service="checkout")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["cause"] == "bad_response"
    assert phrase in body["detail"]
    assert bad_responses_counted(shop_analyzer) == counted + 1


def test_a_label_no_query_asked_for_is_redacted_where_it_is_named(
    shop_analyzer: AnalyzerServer, hostile: HostilePrometheus
) -> None:
    """A hostile proxy may put a credential it saw into a label: the detail that names the label masks it."""
    echoed = series({"le": "+Inf", "version": "canary", "forwarded_auth": f"Bearer {TOKEN}"}, 1000)
    hostile.reply = answering([*healthy_families(), echoed])
    response = shop_analyzer.analyze(service="checkout")
    assert response.status_code == 503 and response.json()["cause"] == "bad_response"
    assert "forwarded_auth" in response.json()["detail"] and "[redacted]" in response.json()["detail"]
    assert TOKEN not in response.text and TOKEN not in shop_analyzer.logs()
