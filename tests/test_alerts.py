"""The shipped alerts, evaluated by a real Prometheus on the analyzer's real /metrics."""

from __future__ import annotations

import re

import pytest

from app.demo.local_prometheus import LocalPrometheus
from tests.support import tenancy
from tests.support.promql_text import label_presence, selectors
from tests.support.scraping import ScrapedAnalyzers, alert_rules, query
from tests.support.servers import ROOT

RULES = {rule["alert"]: rule for rule in alert_rules()}
THRESHOLD = re.compile(r"(?s)(.*\S)\s*(>=|<=|==|!=|>|<)\s*([0-9.]+)\s*")


def as_value(expr: str) -> str:
    """The alert's condition as a value: its final comparison with `bool`, 1 where it would fire, 0 where not."""
    match = THRESHOLD.fullmatch(expr)
    assert match, f"{expr} does not end in a comparison with a number"
    return f"{match[1]} {match[2]} bool {match[3]}"


@pytest.mark.parametrize("alert", sorted(RULES))
def test_every_selector_matches_scraped_series(scraped_analyzers: ScrapedAnalyzers, alert: str) -> None:
    """A renamed metric or label leaves a selector empty, and this fails."""
    found = selectors(RULES[alert]["expr"])
    assert found
    for selector in map(label_presence, found):
        assert scraped_analyzers.query(f"count({selector})"), f"{alert}: {selector} matches no series"


@pytest.mark.parametrize("alert", sorted(RULES))
def test_every_alert_has_a_series_at_zero_on_a_healthy_analyzer(healthy_scraped: LocalPrometheus, alert: str) -> None:
    """An alert over series that do not exist yet says nothing, not "all well": it could never fire either."""
    values = query(healthy_scraped, as_value(RULES[alert]["expr"]))
    assert values, f"{alert} has no series on a healthy analyzer"
    assert {series["value"][1] for series in values} == {"0"}, values


def test_high_error_rate_fires_when_answers_are_5xx(scraped_analyzers: ScrapedAnalyzers) -> None:
    assert scraped_analyzers.query(RULES["CanaryAnalyzerHighErrorRate"]["expr"])


def test_prometheus_unreachable_fires_for_the_pod_that_cannot_reach_it(scraped_analyzers: ScrapedAnalyzers) -> None:
    firing = scraped_analyzers.query(RULES["CanaryAnalyzerPrometheusUnreachable"]["expr"])
    assert [series["metric"]["instance"] for series in firing] == [f"127.0.0.1:{scraped_analyzers.broken.port}"]


def test_stuck_inconclusive_fires_for_the_service_in_its_namespace(scraped_analyzers: ScrapedAnalyzers) -> None:
    """Team A's `shop` passing does not hide the stuck `shop` of another namespace."""
    firing = scraped_analyzers.query(RULES["CanaryAnalysesStuckInconclusive"]["expr"])
    stuck = sorted((series["metric"].get("namespace", ""), series["metric"]["service"]) for series in firing)
    assert stuck == [("", "checkout"), (tenancy.TEAM_WITHOUT_DATA, tenancy.SERVICE)]


def test_high_latency_is_quiet_on_a_fast_analyzer(scraped_analyzers: ScrapedAnalyzers) -> None:
    assert scraped_analyzers.query(RULES["CanaryAnalyzerHighLatency"]["expr"]) == []


def test_rules_evaluate_without_errors(scraped_analyzers: ScrapedAnalyzers) -> None:
    import httpx

    groups = httpx.get(f"{scraped_analyzers.prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == set(RULES)
    assert all(rule["health"] == "ok" for rule in rules), rules


def _anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+\s+(.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("alert", sorted(RULES))
def test_alerts_explain_themselves_and_link_a_runbook_that_exists(alert: str) -> None:
    annotations = RULES[alert]["annotations"]
    assert annotations["summary"] and annotations["description"]
    url = annotations["runbook_url"]
    assert url.split("#")[0].endswith("docs/runbooks.md")
    assert url.split("#")[1] in _anchors((ROOT / "docs/runbooks.md").read_text())
