"""Link-outs: Prometheus graphs, the Grafana dashboard, the HTML report."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from app import links
from app.models import AnalysisRequest
from app.settings import Settings

AT = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_prometheus_graph_links_carry_each_query_and_the_time() -> None:
    queries = {"canary_latency": 'sum(up{job="x"})', "stable_latency": 'sum(up{job="y & z"})'}
    urls = links.prometheus_graphs("http://prom:9090/prefix", queries, AT, "5m")
    assert urls.keys() == queries.keys()
    for key, url in urls.items():
        assert url.startswith("http://prom:9090/prefix/graph?")
        params = query_of(url)
        assert params["g0.expr"] == queries[key]
        assert params["g0.end_input"] == "2026-11-22 08:00:00"
        assert params["g0.range_input"] == f"{(5 + 2 * 15) * 60}s"  # the window and 15 minutes each side


def test_graph_links_never_carry_the_credentials_of_a_url() -> None:
    internal = "http://reader:pw-in-url@prom:9090/prefix"
    for settings, base in (
        (Settings(prometheus_url=internal), "http://prom:9090/prefix"),
        (
            Settings(prometheus_url=internal, prometheus_public_url="https://viewer:pw2@prom.example"),
            "https://prom.example",
        ),
    ):
        url = links.prometheus_graphs(settings.prometheus_browser_url, {"up": "up"}, AT, "5m")["up"]
        assert url.startswith(f"{base}/graph?")
        assert "pw" not in url and "@" not in url


def test_grafana_link_brackets_the_window() -> None:
    request = AnalysisRequest(service="checkout", canary="abc", stable="def", window="10m")
    url = links.grafana_dashboard("https://grafana.example", "canary-vs-stable", request, AT)
    assert url.startswith("https://grafana.example/d/canary-vs-stable/")
    params = query_of(url)
    assert (params["var-service"], params["var-canary"], params["var-stable"]) == ("checkout", "abc", "def")
    at_ms = int(AT.timestamp() * 1000)
    window_start_ms = at_ms - 10 * 60 * 1000
    assert int(params["from"]) < window_start_ms and int(params["to"]) > at_ms


def test_report_link_repeats_the_inputs() -> None:
    request = AnalysisRequest(service="checkout", window="15m", p95_max_seconds=0.5)
    relative = links.report(None, request)
    assert relative.startswith("/analyze?")
    assert query_of(relative) == {
        "service": "checkout",
        "canary": "canary",
        "stable": "stable",
        "window": "15m",
        "p95_max_seconds": "0.5",
        "format": "html",
    }
    assert links.report("https://canary.example", request).startswith("https://canary.example/analyze?")
