"""GET /analyze as a page, on a real server against the real test Prometheus."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app import promql, report
from app.demo.local_prometheus import LocalPrometheus
from app.judge.findings import Evidence, Outcome
from app.judge.judgment import CheckResult, Judgment, Verdict
from app.judge.units import Unit
from app.measurement import History
from tests.support.business import CONVERSION_FLOOR
from tests.support.servers import AnalyzerServer

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def just_now() -> str:
    return (datetime.now(UTC) - timedelta(seconds=5)).isoformat()


def get(server: AnalyzerServer, accept: str | None = None, **params: str) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(f"{server.url}/analyze", params=params, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("accept", "params", "html"),
    [
        (None, {}, False),
        ("application/json", {}, False),
        ("*/*", {}, False),
        (BROWSER, {}, True),
        ("text/html", {}, True),
        (BROWSER, {"format": "json"}, False),
        (None, {"format": "html"}, True),
    ],
)
def test_content_negotiation(analyzer: AnalyzerServer, accept: str | None, params: dict, html: bool) -> None:
    response = get(analyzer, accept, service="latency-regression", **params)
    assert response.status_code == 200
    assert response.headers["vary"] == "Accept"
    if html:
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["content-security-policy"]
    else:
        assert response.headers["content-type"] == "application/json"
        assert response.json()["verdict"] == "fail"


def test_post_is_always_json(analyzer: AnalyzerServer) -> None:
    response = httpx.post(
        f"{analyzer.url}/analyze", json={"service": "healthy"}, headers={"Accept": "text/html"}, timeout=15
    )
    assert response.headers["content-type"] == "application/json"


def test_report_of_a_failing_canary(analyzer: AnalyzerServer) -> None:
    page = get(analyzer, BROWSER, service="latency-regression").text
    assert 'class="verdict-badge verdict-fail"' in page
    assert "canary latency is 2.87x the stable&#39;s" in page
    assert page.count('<figure class="chart"') == 6
    # Each check over time, each latency check's distribution of both versions, and each statistical
    # check's evidence as it accumulated, against its limit.
    assert page.count('<svg class="distribution"') == 2
    assert page.count('<svg class="evidence"') == 4
    assert page.count('data-series="threshold"') == 6 + 4
    assert page.count('data-series="canary"') == page.count('data-series="stable"') == 6 + 2
    assert page.count('data-series="low"') == page.count('data-series="high"') == 4
    assert "at least, with 99.875% confidence at any look" in page
    assert page.count('data-mark="slo"') == 1  # the latency SLO, on p95_latency's distribution
    # Every statistical check draws its estimate and interval against its limit.
    assert page.count('<svg class="interval"') == 4
    assert "estimate and its bounds" in page
    assert "the canary&#39;s data since it started" in page.split('id="judged-on"')[1].split("</dd>")[0]
    # The verdict strip: a minute per cell over the 30m lookback; inconclusive before the canary
    # started, failing since.
    cells = re.findall(r'data-verdict="(\w+)"', page.split('id="verdict-strip"')[1].split("</section>")[0])
    changes = [verdict for i, verdict in enumerate(cells) if i == 0 or cells[i - 1] != verdict]
    assert changes == ["inconclusive", "fail"], cells
    confidence = analyzer.analyze(service="latency-regression").json()["confidence"]
    age_minutes = promql.duration_seconds(confidence["span"]) / 60
    assert abs(cells.count("fail") - age_minutes) <= 2, (cells, confidence)
    assert 'id="trace-id"' in page
    assert "/graph?g0.expr=" in page
    # Everything the page loads comes from the analyzer itself.
    assert "http" not in page.split("<body>")[0].replace('href="/static/', "")


def test_report_shows_each_bound_as_what_it_is(analyzer: AnalyzerServer) -> None:
    """Each statistical check says what its estimate is, and labels its two ends as the one-sided bounds they
    are, each at its own confidence: not as one confidence interval."""
    moment = {"service": "latency-regression", "at": just_now()}  # the page and the JSON on the same data
    page = get(analyzer, BROWSER, **moment).text
    checks = {check["name"]: check for check in analyzer.analyze(**moment).json()["checks"]}
    for name in ("p95_latency", "error_rate", "p95_latency_vs_stable", "error_rate_vs_stable"):
        statistics = checks[name]["statistics"]
        picture = page.split(f'<svg class="interval" data-check="{name}"')[1].split("</svg>")[0]
        labels = {n: unescape(text) for n, text in re.findall(r'data-label="(\w+)"[^>]*>([^<]*)</text>', picture)}
        assert labels == {
            "limit": statistics["limit_shown"],
            "fail": statistics["fail_bound"]["shown"],
            "pass": statistics["pass_bound"]["shown"],
        }, name
        assert labels["fail"].startswith("≥ ") and labels["fail"].endswith(" with 99.875% confidence at any look")
        assert labels["pass"].startswith("≤ ") and labels["pass"].endswith(" with 60% confidence")
        assert f'<p class="estimate-text">{statistics["estimate_shown"]}</p>' in unescape(page)
    assert "slower than 300 ms (5.00% allowed)" in checks["p95_latency"]["statistics"]["estimate_shown"]
    assert 'id="bounds-note"' in page and "not one confidence interval" in page
    # A difference between two shares, over time too, is in points.
    difference = page.split('<svg class="evidence" data-check="error_rate_vs_stable"')[1].split("</figure>")[0]
    assert "the limit, +0.50 pp" in difference and re.search(r'text-anchor="end">-?\d\.\d\d pp</text>', difference)


def test_the_evidence_over_time_names_the_side_a_fail_needs() -> None:
    """Where lower is worse (a share held above its SLO), the upper bound is the one at 1 - alpha."""
    floor = CONVERSION_FLOOR
    found = Evidence("e-process", 0.06, 0.05, 0.07, 0.1, Unit.RATIO, None, "", None, 0.0025, 0.6, anytime=True)
    result = CheckResult(floor, Outcome.FAIL, 0.06, 0.06, 0.1, "", "", found)
    judged = [(60.0, Judgment(Verdict.FAIL, ("r",), (result,)))]
    view = report._evidence(floor, judged, report.Lookback(History((), ()), 0.0, 120.0, 60.0), 0.0)
    legend = {path.name: path.label for path in view.legend}
    assert legend["high"] == "at most, with 99.75% confidence at any look"
    assert legend["low"] == "at least, with 60% confidence"


def test_a_number_from_too_few_requests_is_not_shown_as_one(analyzer: AnalyzerServer) -> None:
    """The `low-traffic` canary's few requests give a P95 and an error rate that mean nothing yet: the table
    says how many requests there were, the charts draw no line from them, the JSON keeps the numbers."""
    moment = {"service": "low-traffic", "at": just_now()}
    page = get(analyzer, BROWSER, **moment).text
    checks = {check["name"]: check for check in analyzer.analyze(**moment).json()["checks"]}
    count = checks["canary_traffic"]["shown"]["canary"]
    for name in ("p95_latency", "error_rate", "p95_latency_vs_stable", "error_rate_vs_stable"):
        assert checks[name]["shown"]["canary"] == f"{count} requests: not yet meaningful", name
        assert f'<td class="value">{count} requests: not yet meaningful</td>' in page
    assert isinstance(checks["p95_latency"]["canary"], float)
    # Only the request counts (since it started, and in the last window), exact however few, are drawn for the
    # canary; every other chart says why not.
    assert page.count('data-series="canary"') == 2
    assert page.count("too few canary requests to draw") == 4 + 2  # each number over time, each distribution


def test_verdict_strip_shows_when_the_canary_went_wrong(analyzer: AnalyzerServer) -> None:
    """The `stopped` canary served until 20 minutes ago: the strip passes, then turns inconclusive."""
    page = get(analyzer, BROWSER, service="stopped").text
    cells = re.findall(r'data-verdict="(\w+)"', page.split('id="verdict-strip"')[1].split("</section>")[0])
    changes = [verdict for i, verdict in enumerate(cells) if i == 0 or cells[i - 1] != verdict]
    assert changes == ["pass", "inconclusive"], cells
    assert cells.count("pass") >= 5 and cells.count("inconclusive") >= 5


def test_report_without_data_says_so(analyzer: AnalyzerServer) -> None:
    page = get(analyzer, BROWSER, service="no-canary").text
    assert "verdict-inconclusive" in page
    assert 'data-series="canary"' not in page
    assert 'data-series="stable"' in page  # the stable still has its line
    assert "no canary data" in page


def test_report_of_a_first_release(analyzer: AnalyzerServer) -> None:
    page = get(analyzer, BROWSER, service="first-release").text
    assert "verdict-pass" in page and "no stable baseline" in page
    assert page.count('data-series="stable"') == 0


def test_form_reruns_with_other_inputs(analyzer: AnalyzerServer) -> None:
    page = get(analyzer, BROWSER, service="healthy", window="10m", lookback="1h").text
    assert '<form class="rerun" method="get" action="/analyze">' in page
    assert 'name="window" value="10m"' in page and 'name="lookback" value="1h"' in page
    assert "Over the last 1h" in page


def test_invalid_input_in_a_browser_is_an_html_422(analyzer: AnalyzerServer) -> None:
    response = get(analyzer, BROWSER, service="<script>alert(1)</script>")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in response.text  # escaped, not executed
    assert "&lt;script&gt;" in response.text
    assert get(analyzer, None, service="bad value").headers["content-type"] == "application/json"


def test_prometheus_down_in_a_browser_is_an_html_503(analyzer_without_prometheus: AnalyzerServer) -> None:
    response = get(analyzer_without_prometheus, BROWSER, service="healthy")
    assert response.status_code == 503
    assert "Prometheus could not be queried" in response.text


def test_stylesheet_is_served_by_the_analyzer(analyzer: AnalyzerServer) -> None:
    response = httpx.get(f"{analyzer.url}/static/report.css", timeout=5)
    assert response.status_code == 200 and ".verdict-fail" in response.text


def test_json_links_to_grafana_and_the_report(
    start_analyzer: Callable[..., AnalyzerServer], prometheus: LocalPrometheus
) -> None:
    server = start_analyzer(
        prometheus_url=prometheus.url, grafana_url="https://grafana.example", public_url="https://canary.example"
    )
    links = get(server, None, service="healthy", window="10m").json()["links"]
    grafana = urlsplit(links["grafana"])
    assert grafana.path == "/d/canary-vs-stable/canary-vs-stable"
    assert parse_qs(grafana.query)["var-service"] == ["healthy"]
    assert links["report"].startswith("https://canary.example/analyze?")
    assert "format=html" in links["report"] and "window=10m" in links["report"]
    page = get(server, BROWSER, service="healthy").text
    assert '<a href="https://grafana.example/d/canary-vs-stable/canary-vs-stable?var-service=healthy' in page
    assert 'id="grafana-link"' in page
