"""Query building: structure fixed, values validated and escaped, durations parsed the way Prometheus does."""

from __future__ import annotations

import pytest

from app import promql
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Source
from app.presets import PRESETS, Preset

BY_NAME = {check.name: check for check in CHECKS}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("1500ms", 1.5), ("2w", 14 * 86400)],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert promql.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "5m1h", "5M", "1.5m", "5m]", "5m) or vector(1"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        promql.duration_seconds(text)


def test_family_queries_ask_for_both_versions_at_once() -> None:
    c = Preset()
    assert promql.family_query(Source.LATENCY, c, "checkout", ["canary", "stable"], "5m") == (
        "sum by (le, version) "
        '(increase(http_request_duration_seconds_bucket{service="checkout",version=~"canary|stable"}[5m]))'
    )
    assert promql.family_query(Source.REQUESTS, c, "checkout", ["canary", "stable"], "5m") == (
        "sum by (version, outcome) (label_replace(label_replace("
        'increase(http_requests_total{service="checkout",version=~"canary|stable"}[5m]), '
        '"outcome", "ok", "", ""), "outcome", "error", "status", "5.."))'
    )


def test_version_values_match_literally() -> None:
    """`v1.2.3` as a regex would also match `v1x2y3`: every character that is not a letter, a digit
    or `_` is escaped for RE2, then the backslashes for the PromQL string."""
    assert promql.escape_regex("v1.2.3") == "v1\\.2\\.3"
    assert promql.escape_regex("a-b:c_d") == "a\\-b\\:c_d"
    query = promql.family_query(Source.LATENCY, Preset(), "checkout", ["v1.2.3", "v1.2.2"], "5m")
    assert 'version=~"v1\\\\.2\\\\.3|v1\\\\.2\\\\.2"' in query


def test_per_version_expressions_show_each_number() -> None:
    c = Preset()
    assert promql.expression(BY_NAME["canary_traffic"], c, "checkout", "canary", "5m") == (
        'sum(increase(http_requests_total{service="checkout",version="canary"}[5m]))'
    )
    assert promql.expression(BY_NAME["error_rate"], c, "checkout", "canary", "5m") == (
        '(sum(increase(http_requests_total{service="checkout",version="canary",status=~"5.."}[5m])) or vector(0))'
        ' / sum(increase(http_requests_total{service="checkout",version="canary"}[5m]))'
    )
    assert promql.expression(BY_NAME["p95_latency"], c, "checkout", "canary", "5m") == (
        "histogram_quantile(0.95, sum by (le) "
        '(increase(http_request_duration_seconds_bucket{service="checkout",version="canary"}[5m])))'
    )


def test_conventions_name_the_metrics_and_labels() -> None:
    c = Preset(
        requests_metric="shop_requests_total",
        duration_metric="shop_latency_seconds",
        service_label="app",
        version_label="track",
        error_label="code",
    )
    requests = promql.family_query(Source.REQUESTS, c, "shop", ["a", "b"], "1m")
    assert requests.startswith("sum by (track, outcome)")
    assert 'shop_requests_total{app="shop",track=~"a|b"}[1m]' in requests and '"code", "5.."' in requests
    assert "shop_latency_seconds_bucket{" in promql.family_query(Source.LATENCY, c, "shop", ["a", "b"], "1m")


BAD_VALUES = ['x"} or vector(1) #', "a\\", "a\nb", "a,b", "", "é", "a" * 254, "a}", "a b", "a|b", ".*"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_label_values_outside_the_charset_never_reach_a_query(value: str) -> None:
    for source in Source:
        with pytest.raises(ValueError):
            promql.family_query(source, Preset(), value, ["canary", "stable"], "5m")
        with pytest.raises(ValueError):
            promql.family_query(source, Preset(), "checkout", [value, "stable"], "5m")
    for check in CHECKS:
        with pytest.raises(ValueError):
            promql.expression(check, Preset(), "checkout", value, "5m")


def test_windows_are_checked_where_queries_are_built() -> None:
    with pytest.raises(ValueError):
        promql.family_query(Source.REQUESTS, Preset(), "checkout", ["a", "b"], "5m]) or vector(1")


def test_escaping_is_defence_in_depth() -> None:
    assert promql.escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_longest_allowed_value_is_accepted() -> None:
    value = "a." + "b" * 251
    assert f'service="{value}"' in promql.expression(BY_NAME["canary_traffic"], Preset(), value, "canary", "5m")


def test_a_preset_adds_its_filters_and_reads_its_unit() -> None:
    istio = PRESETS["istio"]
    query = promql.family_query(Source.LATENCY, istio, "reviews", ["v2", "v1"], "5m")
    assert query == (
        "sum by (le, destination_version) (increase(istio_request_duration_milliseconds_bucket"
        '{destination_workload="reviews",reporter="destination",destination_version=~"v2|v1"}[5m]))'
    )
    p95 = promql.expression(BY_NAME["p95_latency"], istio, "reviews", "v2", "5m")
    assert p95.endswith(" / 1000")  # shown in seconds, as the check is
    errors = promql.family_query(Source.REQUESTS, PRESETS["linkerd"], "web", ["a1b2", "c3d4"], "5m")
    assert '"outcome", "error", "classification", "failure"' in errors and 'direction="inbound"' in errors


def test_an_empty_stable_only_where_the_preset_allows_it() -> None:
    nginx = PRESETS["ingress-nginx"]
    query = promql.family_query(Source.REQUESTS, nginx, "shop", ["shop-canary", ""], "5m")
    assert 'canary=~"shop\\\\-canary|"' in query  # the empty alternative: series with no canary label
    assert 'canary=""' in promql.expression(BY_NAME["error_rate"], nginx, "shop", "", "5m")
    with pytest.raises(ValueError):
        promql.family_query(Source.REQUESTS, PRESETS["default"], "shop", ["canary", ""], "5m")
    with pytest.raises(ValueError):
        promql.expression(BY_NAME["error_rate"], nginx, "", "canary", "5m")  # never an empty service


@pytest.mark.parametrize(
    ("query", "fixed"),
    [
        ('sum(increase(orders_total{service="checkout",version="v2.0.1"}[5m]))', {"service", "version"}),
        ('sum by (version) (x{version = "v2", pod!="a", zone=~"eu.*", host!~"b"})', {"version"}),  # = only
        ('sum(a{version="v2"}) / sum(b{reporter="destination", version="v2"})', {"version", "reporter"}),
        ('sum(x{path="/a\\"b"})', {"path"}),
        ('sum(x{path="\\x41"})', set()),  # an escape JSON does not share: not taken to be fixed
        ('label_replace(x, "dst", "$1", "src", "(.*)") == 1', set()),
    ],
)
def test_the_labels_a_query_fixes_are_read_from_its_equality_matchers(query: str, fixed: set[str]) -> None:
    assert set(promql.fixed_labels(query)) == fixed


def test_fixed_labels_keep_every_value_they_are_fixed_to() -> None:
    query = 'sum(a{version="v2",path="/a\\"b"}) or sum(b{version="v3"})'
    assert promql.fixed_labels(query) == {"version": {"v2", "v3"}, "path": {'/a"b'}}


def test_calibrate_sums_a_versions_counters_by_a_label_too() -> None:
    """`sum by (pod, ...)` as well as the version: each pod's counters, read at minute boundaries; its requests all
    of them and the errors, each summed before it is marked (a label_replace per series and step costs)."""
    latency = promql.labelled_sums_query(Source.LATENCY, Preset(), "shop", "stable", "pod")
    assert (
        latency == 'sum by (le, pod, version) (http_request_duration_seconds_bucket{service="shop",version=~"stable"})'
    )
    requests = promql.labelled_sums_query(Source.REQUESTS, Preset(), "shop", "stable", "pod", namespace="web")
    selector = 'service="shop",namespace="web",version="stable"'
    assert requests == (
        f'label_replace(sum by (pod, version) (http_requests_total{{{selector}}}), "outcome", "all", "", "") or '
        f'label_replace(sum by (pod, version) (http_requests_total{{{selector},status=~"5.."}}), "outcome", "error", '
        '"", "")'
    )
    # The analyzer's own query, as it was.
    assert promql.family_sums_query(Source.LATENCY, Preset(), "shop", ["stable"]).startswith("sum by (le, version) (")


def test_which_values_of_labels_a_versions_series_carry() -> None:
    pods = promql.labels_query(Source.REQUESTS, Preset(), "shop", "stable", ["pod", "instance"])
    assert pods == 'group by (pod, instance) (http_requests_total{service="shop",version="stable"})'
    bounds = promql.labels_query(Source.LATENCY, PRESETS["istio"], "reviews", "v1", ["le"])
    assert bounds.startswith("group by (le) (istio_request_duration_milliseconds_bucket{")


@pytest.mark.parametrize(
    "label", ["version", "service", "le", "outcome", "__name__", "a-b", "1pod", "pod) or vector(1) #", ""]
)
def test_a_label_to_group_by_is_a_label_name_the_queries_do_not_use(label: str) -> None:
    with pytest.raises(ValueError):
        promql.labelled_sums_query(Source.REQUESTS, Preset(), "shop", "stable", label)
    with pytest.raises(ValueError):
        promql.labels_query(Source.REQUESTS, Preset(), "shop", "stable", [label])
