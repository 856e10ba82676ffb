"""/analyze on a real uvicorn against a real Prometheus holding traffic with known properties."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_api_client import PrometheusConnect

from app import promql
from app.demo.local_prometheus import LocalPrometheus
from app.measurement import BETWEEN_MARK, START_MARK
from tests.support.scenarios import (
    CANARY_AGE_SECONDS,
    DOTTED_CANARY,
    DOTTED_SERVICE,
    DOTTED_STABLE,
    HISTORY_SECONDS,
    SCENARIOS,
)
from tests.support.servers import AnalyzerServer


def checks_by_name(body: dict) -> dict[str, dict]:
    return {check["name"]: check for check in body["checks"]}


@pytest.mark.parametrize("mode", ["statistical", "threshold"])
@pytest.mark.parametrize("service", [name for name, s in SCENARIOS.items() if not name.startswith("custom-")])
def test_verdict_matches_the_traffic(analyzer: AnalyzerServer, service: str, mode: str) -> None:
    response = analyzer.analyze(service=service, mode=mode)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == mode
    assert body["verdict"] == SCENARIOS[service].verdict(mode), body["reasons"]
    assert body["reasons"], "every verdict comes with a reason"


def test_statistical_mode_is_the_default_and_says_how_sure_it_is(
    analyzer: AnalyzerServer, backfilled_at: float
) -> None:
    body = analyzer.analyze(service="latency-regression").json()
    assert body["mode"] == "statistical"
    confidence = body["confidence"]
    since = datetime.fromisoformat(confidence.pop("since"))
    assert confidence == {
        "alpha": 0.01,
        "guarantee": "anytime",
        "data": "since_canary_start",
        "span": promql.duration_text(datetime.fromisoformat(body["evaluated_at"]).timestamp() - since.timestamp()),
        "polls": None,  # anytime: over every answer, however many
        "failure_limit": None,
        "pass_confidence": 0.6,
        "alpha_per_check": pytest.approx(0.01 / 4),  # over every answer, however many: no share per poll
        # Half of it on the data judged as a whole, half on the canary's recent spans.
        "split": {"whole": 0.00125, "recent": 0.00125, "span_minutes": 60, "spread": 60},
    }
    # The canary's series began with its first scrape; its start is found within the minute before that.
    started = datetime.fromtimestamp(backfilled_at - CANARY_AGE_SECONDS, UTC)
    assert since <= started <= since + timedelta(seconds=75)
    checks = checks_by_name(body)
    # The canary's requests sit between the 250 ms and 500 ms bounds: whether more than 5 % took
    # longer than the 300 ms SLO, the buckets cannot tell. The interpolated P95 (450 ms) would say so.
    assert checks["p95_latency"]["verdict"] == "inconclusive"
    assert "between bucket bounds 250 ms and 500 ms" in checks["p95_latency"]["reason"]
    assert checks["p95_latency"]["canary"] == pytest.approx(0.45, rel=0.03)  # the number Grafana shows
    versus = checks["p95_latency_vs_stable"]
    assert versus["verdict"] == "fail"
    statistics = versus["statistics"]
    assert statistics["method"] == "brunner-munzel, anytime" and statistics["unit"] == "factor"
    assert statistics["interval"]["low"] > 1.1  # the tolerated factor
    assert statistics["interval"]["low"] <= statistics["estimate"] <= statistics["interval"]["high"]
    assert statistics["p_value"] < statistics["alpha"] == pytest.approx(0.00125)  # the whole's half of 0.0025
    assert 0.5 < statistics["effect"] <= 1
    assert body["reasons"][0].startswith("canary latency is")
    assert checks["canary_traffic"]["statistics"] is None  # a count needs no test


@pytest.mark.parametrize("service", ["latency-regression", "healthy", "client-errors"])
def test_numbers_agree_with_an_independent_client(
    analyzer: AnalyzerServer, prometheus: LocalPrometheus, service: str
) -> None:
    """prometheus-api-client evaluates each check's per-version PromQL; the numbers the analyzer
    computed from the family queries' distributions must be Prometheus' own."""
    body = analyzer.analyze(service=service).json()
    oracle = PrometheusConnect(url=prometheus.url, disable_ssl=True)
    at = body["evaluated_at"]
    for check in body["checks"]:
        for role in ("canary", "stable"):
            [sample] = oracle.custom_query(check["queries"][role], params={"time": at})
            assert check[role] == pytest.approx(float(sample["value"][1]), rel=1e-9), (check["name"], role)


def test_a_canary_there_through_the_hour_is_found_over_the_day(analyzer: AnalyzerServer, backfilled_at: float) -> None:
    """The stable's series, asked about as a canary, began HISTORY_SECONDS before the suite: more than the
    hour a first look asks over, so the day's look-back finds them."""
    body = analyzer.analyze(service="healthy", canary="stable", stable="canary").json()
    confidence = body["confidence"]
    assert confidence["data"] == "since_canary_start"
    since = datetime.fromisoformat(confidence["since"])
    started = datetime.fromtimestamp(backfilled_at - HISTORY_SECONDS, UTC)
    assert since <= started <= since + timedelta(seconds=75)


def test_a_poll_checks_the_known_start_in_the_families_query(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus
) -> None:
    """Argo's next measurement, a minute on: the start found at the first look is checked over the minutes
    since inside the one families query, and the answer is what Prometheus says over the same span."""
    analyzer = start_analyzer(prometheus_url=prometheus.url)  # its own: no start remembered yet
    first_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    first = analyzer.analyze(service="error-regression", at=first_at.isoformat()).json()
    poll = analyzer.analyze(service="error-regression", at=(first_at + timedelta(minutes=1)).isoformat()).json()
    assert START_MARK not in first["queries"]["families"]
    [query] = poll["queries"].values()
    assert START_MARK in query and "[2m:1m]" in query
    assert poll["confidence"]["since"] == first["confidence"]["since"]  # the same start, no second round trip
    assert poll["verdict"] == first["verdict"] == "fail"
    oracle = PrometheusConnect(url=prometheus.url, disable_ssl=True)
    for check in poll["checks"]:
        for role in ("canary", "stable"):
            [sample] = oracle.custom_query(check["queries"][role], params={"time": poll["evaluated_at"]})
            assert check[role] == pytest.approx(float(sample["value"][1]), rel=1e-9), (check["name"], role)


def test_both_versions_and_every_family_come_from_one_query(analyzer: AnalyzerServer) -> None:
    body = analyzer.analyze(service="healthy").json()
    [query] = body["queries"].values()
    # The request counter's and the histogram's increase since the start, and, marked, each one's sums now (and
    # at the newest minute boundary when it was not read yet): one selector each.
    between = query.count(BETWEEN_MARK)
    assert between >= 1 and query.count('version=~"canary|stable"') == 2 + 2 * between


def test_versions_match_literally(analyzer: AnalyzerServer) -> None:
    """`v1.2.3` must not also match the decoy `v1x2x3`, whose traffic would fail the canary."""
    body = analyzer.analyze(service=DOTTED_SERVICE, canary=DOTTED_CANARY, stable=DOTTED_STABLE).json()
    assert body["verdict"] == "pass", body["reasons"]
    checks = checks_by_name(body)
    served = 2 * promql.duration_seconds(body["confidence"]["span"])  # 2 rps since it started, not the decoy's 50
    assert checks["canary_traffic"]["canary"] == pytest.approx(served, rel=0.05)
    assert r'version=~"v1\\.2\\.3|v1\\.2\\.2"' in body["queries"]["families"]


def test_healthy_canary_passes_every_check(analyzer: AnalyzerServer, backfilled_at: float) -> None:
    body = analyzer.analyze(service="healthy").json()
    age = datetime.fromisoformat(body["evaluated_at"]).timestamp() - (backfilled_at - CANARY_AGE_SECONDS)
    checks = checks_by_name(body)
    assert {c["verdict"] for c in checks.values()} == {"pass"}
    assert checks["p95_latency"]["canary"] == pytest.approx(0.13, rel=0.03)
    assert checks["p95_latency"]["stable"] == pytest.approx(0.12, rel=0.03)
    assert checks["error_rate"]["canary"] == pytest.approx(0.003, abs=0.002)
    assert checks["canary_traffic"]["canary"] == pytest.approx(2 * age, rel=0.05)  # 2 rps since it began
    assert body["reasons"][0] == "all 6 checks passed"


def test_latency_regression_fails_on_the_slo(analyzer: AnalyzerServer) -> None:
    body = analyzer.analyze(service="latency-regression", mode="threshold").json()
    checks = checks_by_name(body)
    assert checks["p95_latency"]["verdict"] == "fail"
    assert checks["p95_latency"]["canary"] == pytest.approx(0.45, rel=0.03)
    assert checks["p95_latency"]["threshold"] == 0.3
    assert checks["error_rate"]["verdict"] == "pass"
    assert "P95 latency" in body["reasons"][0] and "exceeds" in body["reasons"][0]


def test_error_regression_fails_on_the_error_rate(analyzer: AnalyzerServer) -> None:
    checks = checks_by_name(analyzer.analyze(service="error-regression").json())
    assert checks["error_rate"]["verdict"] == "fail"
    assert checks["error_rate"]["canary"] == pytest.approx(0.08, abs=0.005)
    assert checks["error_rate_vs_stable"]["verdict"] == "fail"
    assert checks["p95_latency"]["verdict"] == "pass"


@pytest.mark.parametrize("mode", ["statistical", "threshold"])
def test_regression_only_against_the_stable(analyzer: AnalyzerServer, mode: str) -> None:
    body = analyzer.analyze(service="relative-regression", mode=mode).json()
    checks = checks_by_name(body)
    assert checks["p95_latency"]["verdict"] == "pass"
    assert checks["error_rate"]["verdict"] == "pass"
    assert checks["p95_latency_vs_stable"]["verdict"] == "fail"
    # `threshold` stays in the canary's unit: the stable's P95 times the mode's ratio.
    ratio = body["thresholds"]["p95_ratio_max"]
    assert ratio == (1.1 if mode == "statistical" else 1.2)
    assert checks["p95_latency_vs_stable"]["threshold"] == pytest.approx(0.1 * ratio, rel=0.03)
    assert checks["error_rate_vs_stable"]["verdict"] == "fail"


@pytest.mark.parametrize(
    ("service", "phrase"),
    [
        ("no-canary", "no canary requests found"),
        ("low-traffic", "served only"),
        ("stopped", "no canary requests found"),
        ("zero-traffic", "served only 0 requests"),
    ],
)
def test_missing_or_thin_traffic_is_inconclusive(analyzer: AnalyzerServer, service: str, phrase: str) -> None:
    body = analyzer.analyze(service=service).json()
    assert body["verdict"] == "inconclusive"
    assert phrase in body["reasons"][0]
    checks = checks_by_name(body)
    assert checks["canary_traffic"]["verdict"] == "inconclusive"
    # No check may pass or fail on numbers that were not judged.
    assert {c["verdict"] for n, c in checks.items() if n != "canary_traffic"} == {"inconclusive"}


def test_nan_from_prometheus_travels_as_null(analyzer: AnalyzerServer) -> None:
    checks = checks_by_name(analyzer.analyze(service="zero-traffic").json())
    assert checks["canary_traffic"]["canary"] == 0
    assert checks["p95_latency"]["canary"] is None
    assert checks["error_rate"]["canary"] is None


def test_first_release_is_judged_on_the_slo_alone(analyzer: AnalyzerServer) -> None:
    body = analyzer.analyze(service="first-release").json()
    checks = checks_by_name(body)
    assert body["verdict"] == "pass"
    for name in ("p95_latency_vs_stable", "error_rate_vs_stable"):
        assert checks[name]["verdict"] == "skipped"
        assert "no stable baseline" in checks[name]["reason"]
    assert any("no stable baseline" in reason for reason in body["reasons"])


def test_client_errors_are_not_errors(analyzer: AnalyzerServer) -> None:
    checks = checks_by_name(analyzer.analyze(service="client-errors").json())
    assert checks["error_rate"]["canary"] == 0
    assert checks["error_rate"]["verdict"] == "pass"


def test_latency_beyond_the_top_bucket_fails(analyzer: AnalyzerServer) -> None:
    # histogram_quantile answers the top finite bucket bound (10 s) when the quantile is in +Inf.
    checks = checks_by_name(analyzer.analyze(service="off-the-chart").json())
    assert checks["p95_latency"]["verdict"] == "fail"
    assert checks["p95_latency"]["canary"] == 10


def test_post_gives_the_same_judgment_as_get(analyzer: AnalyzerServer) -> None:
    import httpx

    fields = {"service": "latency-regression", "window": "10m", "guarantee": "fixed_polls"}
    posted = httpx.post(f"{analyzer.url}/analyze", json=fields, timeout=15)
    got = analyzer.analyze(**fields)
    assert posted.status_code == got.status_code == 200
    assert posted.json()["verdict"] == got.json()["verdict"] == "fail"
    assert posted.json()["window"] == "10m"
    assert "[10m]" in posted.json()["checks"][0]["queries"]["canary"]


def test_threshold_overrides_change_the_verdict(analyzer: AnalyzerServer) -> None:
    body = analyzer.analyze(service="latency-regression", p95_max_seconds="0.5", p95_ratio_max="5").json()
    assert body["verdict"] == "pass"
    assert body["thresholds"]["p95_max_seconds"] == 0.5
    low = analyzer.analyze(service="healthy", min_requests="100000").json()
    assert low["verdict"] == "inconclusive"


def test_custom_label_and_metric_names(custom_analyzer: AnalyzerServer) -> None:
    healthy = custom_analyzer.analyze(service="custom-healthy").json()
    assert healthy["verdict"] == "pass"
    assert 'app="custom-healthy",track="canary"' in healthy["checks"][0]["queries"]["canary"]
    assert "shop_latency_seconds_bucket" in checks_by_name(healthy)["p95_latency"]["queries"]["canary"]
    regression = checks_by_name(custom_analyzer.analyze(service="custom-regression").json())
    assert regression["error_rate"]["verdict"] == "fail"
    assert 'code=~"5.."' in regression["error_rate"]["queries"]["canary"]


def test_path_prefixed_prometheus(start_analyzer, prefixed_prometheus: LocalPrometheus) -> None:
    assert prefixed_prometheus.url.endswith("/prometheus")
    server = start_analyzer(prometheus_url=prefixed_prometheus.url)
    body = server.analyze(service="latency-regression").json()
    assert body["verdict"] == "fail"
    assert checks_by_name(body)["p95_latency"]["canary"] == pytest.approx(0.45, rel=0.03)
    assert all(url.startswith(prefixed_prometheus.url + "/graph?") for url in body["links"]["prometheus"].values())


def test_prometheus_down_is_503_naming_the_cause(analyzer_without_prometheus: AnalyzerServer) -> None:
    response = analyzer_without_prometheus.analyze(service="healthy")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "prometheus_unavailable"
    assert body["cause"] == "connection"
    assert "verdict" not in body


def test_links_point_at_every_query(analyzer: AnalyzerServer) -> None:
    body = analyzer.analyze(service="healthy").json()
    queries = {check["queries"][role] for check in body["checks"] for role in ("canary", "stable")}
    assert len(body["links"]["prometheus"]) == len(queries) == 8
    assert body["links"]["grafana"] is None  # GRAFANA_URL is not set
    assert math.isfinite(checks_by_name(body)["p95_latency"]["canary"])


def test_judging_the_past_sees_the_traffic_of_then(analyzer: AnalyzerServer) -> None:
    """A person asking why a rollout was aborted judges as of that moment, not now."""
    from datetime import UTC, datetime, timedelta

    then = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    now_body = analyzer.analyze(service="stopped").json()
    then_body = analyzer.analyze(service="stopped", at=then.isoformat()).json()
    assert now_body["verdict"] == "inconclusive"  # the canary stopped 20 minutes ago
    assert then_body["verdict"] == "pass"
    assert datetime.fromisoformat(then_body["evaluated_at"]) == then
    report = parse_qs(urlsplit(then_body["links"]["report"]).query)
    assert datetime.fromisoformat(report["at"][0]) == then  # the report link judges the same moment
