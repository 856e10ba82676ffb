"""PromQL, built from validated values only. Nothing else in the code base writes a query.

Label values are checked against a narrow charset at the edge and escaped again here,
so no input can change a query's structure.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Iterable, Sequence
from datetime import timedelta

from app.judge.checks import Check, Source, Statistic
from app.presets import LABEL_NAME, Preset, matcher

LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
# A PromQL duration: one or more number+unit pairs, largest unit first (Prometheus' own rule).
DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
# A matcher that fixes a label to one value: name="value" (`!=`, `=~` and `!~` do not match it).
EQUALITY_MATCHER = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def duration_seconds(text: str) -> float:
    """Seconds in a PromQL duration such as `5m` or `1h30m`; ValueError when it is not one."""
    match = DURATION.fullmatch(text)
    if not text or not match:
        raise ValueError(f"{text!r} is not a PromQL duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n)


def duration(text: str) -> timedelta:
    return timedelta(seconds=duration_seconds(text))


def duration_text(seconds: float) -> str:
    """A PromQL duration of whole seconds, largest units first: 1380 -> `23m`, 86399 -> `23h59m59s`."""
    seconds = max(1, math.ceil(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# Query templates: data, filled only with names validated by the settings and label values
# validated at the edge and escaped here. `{selector}` picks the service and the versions;
# `{requests}` and `{latency}` are what each series counts (COUNTED below).
OUTCOME_LABEL = "outcome"
OK, ERROR = "ok", "error"
# `{by}`: a label grouped by too, before the version (`pod, `: calibrate's counts per pod); empty otherwise.
FAMILY_QUERIES: dict[Source, str] = {
    # Every series is first marked ok, then error where its status matches: counts by outcome.
    Source.REQUESTS: (
        "sum by ({version_label}, {outcome}) (label_replace(label_replace("
        '{requests}, "{outcome}", "{ok}", "", ""), '
        '"{outcome}", "{error}", "{error_label}", "{error_regex}"))'
    ),
    Source.LATENCY: "sum by ({le}{by}{version_label}) ({latency})",
}
# calibrate's request counts by a label, at every step of a range: all requests and the errors, each summed first and
# the sums marked. Marking every series before summing, as the families query does at one moment, would cost
# Prometheus a label_replace per series and step: at 3,000 series, more than a minute for a day of steps.
ALL = "all"
OUTCOME_SUMS = (
    'label_replace(sum by ({by}{version_label}) ({requests}), "{outcome}", "{all}", "", "") or '
    'label_replace(sum by ({by}{version_label}) ({errors}), "{outcome}", "{error}", "", "")'
)
# What one series counted: over a range ending at the evaluation, a counter's increase (or a rule's
# recorded increases summed), extrapolated to the range's edges as increase() does.
OVER_RANGE = "{count}{over_window}({metric}{selector}[{window}]){count_end}"
# What the canary served minute by minute (app/analysis.py) is read from the counters' sums (`sum by` the
# family's groups) at minute boundaries and at the evaluation: a minute's counts are the sums at its end less
# those at its start, whole requests and none extrapolated (a minute's increase() would stretch what its own
# samples saw to the whole minute). Per group, not per series: a series that restarted or went away in
# between makes its group's count fall (that version's minute is then left out), but a subtraction series by
# series costs Prometheus three times the sums at thousands of series, and the sums at a boundary, read once,
# serve both the minute before and the minute after. Recorded increases are summed between two moments as
# they are. A native histogram is not read so: Prometheus 2.4x subtracts two into a float 0.
AT_A_MOMENT = "{count}{metric}{selector}{at}{count_end}"
RECORDED_BETWEEN = "{count}sum_over_time({metric}{selector}[{length}]{at}){count_end}"
# Latency in the preset's unit, shown in seconds.
IN_SECONDS = {"seconds": "", "milliseconds": " / 1000", "microseconds": " / 1000000"}
# Per version, the expression that gives a check's number in Prometheus or Grafana.
EXPRESSIONS: dict[Statistic, str] = {
    Statistic.REQUESTS: "sum({count}{over_window}({requests_metric}{selector}[{window}]){count_end})",
    # The requests between the last window's first minute boundary and the evaluation (family_between_query).
    Statistic.CURRENT_REQUESTS: "{counted}",
    # `or vector(0)`: a version with no 5xx has no 5xx series, and that is a 0% error rate.
    Statistic.ERROR_RATE: (
        "(sum({count}{over_window}({requests_metric}{error_selector}[{window}]){count_end}) or vector(0))"
        " / sum({count}{over_window}({requests_metric}{selector}[{window}]){count_end})"
    ),
    Statistic.QUANTILE: (
        "histogram_quantile({quantile:g}, sum{by_le} ({over_window}({duration_metric}{bucket}{selector}[{window}])))"
        "{in_seconds}"
    ),
}
# When the canary's series last began: the latest step of the look-back at which it had none
# (`unless on()` keeps the step's own timestamp only where no canary series is present). No answer:
# present at every step, older than the look-back.
CANARY_START_QUERY = (
    "max_over_time((timestamp(vector(0)) unless on() group({count}{requests_metric}{selector}{count_end}))"
    "[{lookback}:{resolution}])"
)
# Which values of some labels a version's series carry (calibrate: which pods it has, which bucket bounds), at
# each step of a range: one series per combination present.
LABELS_QUERY = "group by ({labels}) ({count}{metric}{selector}{count_end})"
# Labels a grouping of the families already uses, or that no exporter sets: not a label to group by besides.
RESERVED_LABELS = frozenset({"le", OUTCOME_LABEL, "__name__"})
# How a count over a window is read: a counter's increase, or the sum of a rule's recorded increases.
OVER_WINDOW = {"counters": "increase", "recorded_increases": "sum_over_time"}
# A classic histogram is a series per bucket; a native one is one series whose value holds the buckets.
HISTOGRAM_SHAPES = {
    "classic": {"bucket": "_bucket", "le": "le, ", "by_le": " by (le)"},
    "native": {"bucket": "", "le": "", "by_le": ""},  # histogram_quantile(q, sum (...)) reads as sum(...)
}


def family_query(
    source: Source, preset: Preset, service: str, versions: Sequence[str], window: str, namespace: str | None = None
) -> str:
    """One query measuring both versions over the window that ends at the evaluation: grouped by the
    version label."""
    return _family(source, preset, service, versions, namespace, OVER_RANGE, window=_window(window))


def family_sums_query(
    source: Source,
    preset: Preset,
    service: str,
    versions: Sequence[str],
    end: float | None = None,
    namespace: str | None = None,
) -> str:
    """Both versions' counters summed by the family's groups at `end` (unix seconds; None: the evaluation)."""
    if not read_by_minute(source, preset) or preset.series == "recorded_increases":
        raise ValueError(f"the preset's {source} family has no counters to sum at a moment")
    at = "" if end is None else f" @ {_moment(end)}"
    return _family(source, preset, service, versions, namespace, AT_A_MOMENT, at=at)


def labelled_sums_query(
    source: Source, preset: Preset, service: str, version: str, by: str, namespace: str | None = None
) -> str:
    """One version's counters summed by the values of the label `by` too, at the evaluation: the latency's by
    bucket bound, the requests' all and errors (OUTCOME_SUMS)."""
    if not read_by_minute(source, preset) or preset.series == "recorded_increases":
        raise ValueError(f"the preset's {source} family has no counters to sum at a moment")
    grouped = f"{grouping_label(by, preset)}, "
    if source is Source.LATENCY:
        return _family(source, preset, service, [version], namespace, AT_A_MOMENT, at="", by=grouped)
    version_matcher = f'{preset.version_label}="{escape_label_value(_version(version, preset))}"'
    names = _names(preset)

    def counted(*matchers: str) -> str:
        selector = _selector(preset, service, namespace, version_matcher, *matchers)
        return AT_A_MOMENT.format(metric=names["requests_metric"], selector=selector, at="", **names)

    return OUTCOME_SUMS.format(
        by=grouped,
        requests=counted(),
        errors=counted(_error_matcher(preset)),
        outcome=OUTCOME_LABEL,
        all=ALL,
        error=ERROR,
        **names,
    )


def labels_query(
    source: Source, preset: Preset, service: str, version: str, labels: Sequence[str], namespace: str | None = None
) -> str:
    """Which values of `labels` one version's series of a family carry: one series per combination present."""
    version_matcher = f'{preset.version_label}="{escape_label_value(_version(version, preset))}"'
    names = _names(preset)
    metric = names["requests_metric"]
    if source is Source.LATENCY:
        metric, names = names["duration_metric"] + names["bucket"], {**names, **_NOT_COUNTED}
    grouped = [
        label if label == "le" and source is Source.LATENCY else grouping_label(label, preset) for label in labels
    ]
    return LABELS_QUERY.format(
        labels=", ".join(grouped),
        metric=metric,
        selector=_selector(preset, service, namespace, version_matcher),
        **names,
    )


def grouping_label(label: str, preset: Preset) -> str:
    """A label to group a version's series by besides the families' own groups; ValueError when it is not a label
    name, or one the families' queries use already (the version, the service, `le`...)."""
    if not LABEL_NAME.fullmatch(label) or label.startswith("__"):
        raise ValueError(f"{label!r} is not a label name (letters, digits and _, not starting with __)")
    taken = {preset.service_label, preset.version_label, *RESERVED_LABELS}
    if label in taken:
        raise ValueError(f"{label!r} is a label the queries group or select by already")
    return label


def family_between_query(
    source: Source,
    preset: Preset,
    service: str,
    versions: Sequence[str],
    seconds: float,
    end: float | None = None,
    namespace: str | None = None,
) -> str:
    """Both versions' recorded increases summed between `seconds` before `end` (None: the evaluation) and `end`."""
    if not read_by_minute(source, preset) or preset.series != "recorded_increases":
        raise ValueError(f"the preset's {source} family has no recorded increases")
    at, length = ("" if end is None else f" @ {_moment(end)}"), duration_text(seconds)
    return _family(source, preset, service, versions, namespace, RECORDED_BETWEEN, at=at, length=length)


def read_by_minute(source: Source, preset: Preset) -> bool:
    """Whether a family is read minute by minute (AT_A_MOMENT, RECORDED_BETWEEN): not a native histogram's."""
    return not (source is Source.LATENCY and preset.latency_histogram == "native" and preset.series == "counters")


def _between(ending: str, starting: str) -> str:
    """The sums at the end less those at the start, and a group that began in between as it ends."""
    return f"({ending} - {starting}) or {ending}"


def _family(
    source: Source,
    preset: Preset,
    service: str,
    versions: Sequence[str],
    namespace: str | None,
    counted: str,
    **values: str,
) -> str:
    versions_regex = "|".join(escape_regex(_version(v, preset)) for v in versions)
    version_matcher = f'{preset.version_label}=~"{escape_label_value(versions_regex)}"'
    names = _names(preset)
    selector = _selector(preset, service, namespace, version_matcher)
    requests = counted.format(metric=names["requests_metric"], selector=selector, **values, **names)
    latency = counted.format(
        metric=names["duration_metric"] + names["bucket"], selector=selector, **values, **{**names, **_NOT_COUNTED}
    )
    return FAMILY_QUERIES[source].format(
        requests=requests,
        latency=latency,
        error_regex=escape_label_value(preset.error_regex),
        outcome=OUTCOME_LABEL,
        ok=OK,
        error=ERROR,
        by=values.get("by", ""),
        **names,
    )


# Latency series are counted as they are: histogram_count() is for requests read off a native histogram.
_NOT_COUNTED = {"count": "", "count_end": ""}


def _moment(unix: float) -> str:
    if not math.isfinite(unix) or unix < 0:
        raise ValueError(f"not a moment: {unix!r}")
    return f"{unix:.3f}".rstrip("0").rstrip(".")


def canary_start_query(
    preset: Preset, service: str, version: str, lookback: str, resolution: str, namespace: str | None = None
) -> str:
    version_matcher = f'{preset.version_label}="{escape_label_value(_version(version, preset))}"'
    return CANARY_START_QUERY.format(
        selector=_selector(preset, service, namespace, version_matcher),
        lookback=_window(lookback),
        resolution=_window(resolution),
        **_names(preset),
    )


def union(queries: Iterable[str]) -> str:
    """Several family queries as one: their series have different label sets (bucket bounds, or
    outcomes), so `or` keeps every one of them."""
    queries = list(queries)
    return queries[0] if len(queries) == 1 else " or ".join(f"({query})" for query in queries)


def marked(query: str, label: str, value: str = "1") -> str:
    """A query's series with a label of their own, to be told apart from others in a union."""
    if not LABEL_VALUE.fullmatch(value):
        raise ValueError(f"a mark's value {value!r} is outside [A-Za-z0-9_.:-]")
    return f'label_replace({query}, "{label}", "{value}", "", "")'


def expression(
    check: Check, preset: Preset, service: str, version: str, window: str, namespace: str | None = None
) -> str:
    if check.queries is not None:
        queries = check.queries
        if queries.value is not None:
            return user_query(queries.value, preset, service, version, window, namespace)
        assert queries.events is not None and queries.trials is not None
        events, trials = (
            user_query(q, preset, service, version, window, namespace) for q in (queries.events, queries.trials)
        )
        return f"({events}) / ({trials})"
    version_matcher = f'{preset.version_label}="{escape_label_value(_version(version, preset))}"'
    selector = _selector(preset, service, namespace, version_matcher)
    names = _names(preset)
    requests = {"metric": names["requests_metric"], "selector": selector, **names}
    if preset.series == "recorded_increases":
        counted = "sum(" + RECORDED_BETWEEN.format(at="", length=_window(window), **requests) + ")"
    else:
        ending = "sum(" + AT_A_MOMENT.format(at="", **requests) + ")"
        counted = _between(ending, "sum(" + AT_A_MOMENT.format(at=f" offset {_window(window)}", **requests) + ")")
    return EXPRESSIONS[check.statistic].format(
        counted=counted,
        selector=selector,
        error_selector=_selector(preset, service, namespace, version_matcher, _error_matcher(preset)),
        window=_window(window),
        quantile=check.quantile,
        in_seconds=IN_SECONDS[preset.latency_unit],
        **names,
    )


def user_query(
    template: str, preset: Preset, service: str, version: str, window: str, namespace: str | None = None
) -> str:
    """A user check's template for one version: the placeholders stand alone in quoted label values and
    in a range (app/user_checks.py refuses them anywhere else), and take validated, escaped values."""
    values = {
        "service": escape_label_value(_label_value(service)),
        "version": escape_label_value(_version(version, preset)),
        "window": _window(window),
    }
    if namespace is not None:
        values["namespace"] = escape_label_value(_label_value(namespace))
    elif '"$namespace"' in template:
        raise ValueError("this check's queries select the namespace: the request must name one")
    return string.Template(template).substitute(values)


def fixed_labels(query: str) -> dict[str, set[str]]:
    """The labels a query's equality matchers fix, each with the values it is fixed to: all the labels an
    aggregation of it can leave on a series without splitting the number it asks for (`sum by (version)` over
    `version="v2"`). A value in an escape JSON does not share (`\\x41`) is left out: such a label is not taken
    to be fixed."""
    fixed: dict[str, set[str]] = {}
    for name, quoted in EQUALITY_MATCHER.findall(query):
        try:
            value = json.loads(f'"{quoted}"')
        except ValueError:
            continue
        fixed.setdefault(name, set()).add(value)
    return fixed


def escape_regex(value: str) -> str:
    """A regular expression (RE2, as Prometheus uses) matching exactly `value`."""
    return "".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in value)


def _selector(preset: Preset, service: str, namespace: str | None, *matchers: str) -> str:
    """The service (in its namespace, when one is given: with tenancy on, always), the preset's filters, more."""
    scope = [f'{preset.service_label}="{escape_label_value(_label_value(service))}"']
    if namespace is not None:
        scope.append(f'{preset.namespace_label}="{escape_label_value(_label_value(namespace))}"')
    filters = [f'{label}{op}"{escape_label_value(operand)}"' for label, (op, operand) in _filters(preset)]
    return "{" + ",".join([*scope, *filters, *matchers]) + "}"


def _filters(preset: Preset) -> list[tuple[str, tuple[str, str]]]:
    return [(label, matcher(value)) for label, value in preset.filters.items()]


def _error_matcher(preset: Preset) -> str:
    return f'{preset.error_label}=~"{escape_label_value(preset.error_regex)}"'


def _names(preset: Preset) -> dict[str, str]:
    # A native preset may count its requests from the latency histogram itself: histogram_count.
    counts_native = preset.latency_histogram == "native" and preset.requests_metric == preset.duration_metric
    return {
        "requests_metric": preset.requests_metric,
        "duration_metric": preset.duration_metric,
        "version_label": preset.version_label,
        "error_label": preset.error_label,
        "count": "histogram_count(" if counts_native else "",
        "count_end": ")" if counts_native else "",
        "over_window": OVER_WINDOW[preset.series],
        **HISTOGRAM_SHAPES[preset.latency_histogram],
    }


def _version(value: str, preset: Preset) -> str:
    """A version's label value; empty only where the preset's stable carries no version label."""
    return value if value == "" and preset.empty_stable else _label_value(value)


def _label_value(value: str) -> str:
    if not LABEL_VALUE.fullmatch(value):
        raise ValueError(f"label value {value!r} is outside [A-Za-z0-9_.:-]{{1,253}}")
    return value


def _window(window: str) -> str:
    duration_seconds(window)
    return window
