"""The HTML report: the analysis, its checks charted over a lookback, and the link-outs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from jinja2 import Environment, PackageLoader, select_autoescape

from app import charts, links, promql
from app.analysis import Analysis, minutes_read
from app.canary_lives import MINUTE, Minutes
from app.charts import ChartView, DistributionView, IntervalView, Labelled, Points, Series, StripView
from app.judge import recent, threshold_rules
from app.judge.checks import Bound, Check, Observed
from app.judge.distributions import Histogram, NativeHistogram, on_shared_buckets
from app.judge.judgment import Judgment, judge, span_rule
from app.judge.recent import SPAN_MINUTES, Timeline, with_current
from app.measurement import History, Role, gather_within, measure_range
from app.models import AnalysisResponse, CheckOut
from app.prometheus import PrometheusClient, PrometheusError
from app.responses import counts_requests, fail_side, too_few_requests, value_text

MAX_POINTS = 120
# Recent spans are drawn over lookbacks of up to this long: each step needs the hour of minutes before it.
MAX_RECENT_LOOKBACK_SECONDS = 12 * 3600
# The verdict strip shows what the analyzer would have answered each minute (coarser for long lookbacks).
MIN_STEP_SECONDS = 60

templates = Environment(loader=PackageLoader("app", "templates"), autoescape=select_autoescape(), trim_blocks=True)
templates.globals["query_key"] = links.query_key
templates.globals["fail_side"] = fail_side


@dataclass(frozen=True)
class CheckChart:
    check: Check
    out: CheckOut
    view: ChartView
    distribution: DistributionView | None  # latency checks: both versions' shares under each bound
    interval: IntervalView | None  # statistical checks: the estimate, its interval and the limit
    evidence: ChartView | None  # statistical checks: their bounds at each step, against the limit
    note: str | None = None  # where a version has no line over time: why
    distribution_note: str | None = None  # where a version has no distribution: too few requests


@dataclass(frozen=True)
class Lookback:
    """What the charts show: the same measurement at each step of the lookback, and, judged since the canary
    started, the recent minutes before each step."""

    history: History
    start: float
    end: float
    step: float
    error: str | None = None
    timelines: Mapping[float, Timeline] = field(default_factory=dict)


async def fetch_history(analysis: Analysis, client: PrometheusClient, lookback: str, budget_seconds: float) -> Lookback:
    """The analysis' own queries over a range; a failure leaves the charts empty, not the page."""
    end = analysis.evaluated_at.timestamp()
    start = end - promql.duration(lookback).total_seconds()
    step = max(MIN_STEP_SECONDS, (end - start) / MAX_POINTS)
    recent = analysis.timeline is not None and end - start <= MAX_RECENT_LOOKBACK_SECONDS
    first_minute = math.floor(start / MINUTE) * MINUTE - MINUTE * (SPAN_MINUTES - 1)
    calls = {"history": measure_range(analysis.plan, client, start, end, step, budget_seconds)}
    if recent:
        last_minute = math.floor(end / MINUTE) * MINUTE
        calls["minutes"] = minutes_read(analysis.plan, client, first_minute, last_minute, budget_seconds)
    try:
        found = await gather_within(budget_seconds, calls)
    except PrometheusError as exc:
        empty = History((), ())
        return Lookback(empty, start, end, step, error=f"charts unavailable: Prometheus {exc.cause}: {exc.detail}")
    history: History = found["history"]
    if not recent:
        return Lookback(history, start, end, step)
    assert analysis.timeline is not None
    minutes: Minutes = found["minutes"]
    window = promql.duration_seconds(analysis.request.window)
    timelines, steps = {}, []
    for t, observed in history.steps:
        last = math.floor(t / MINUTE) * MINUTE
        timeline = minutes.timeline(
            [last - MINUTE * i for i in reversed(range(SPAN_MINUTES))], analysis.timeline.canary_start
        )
        canary, stable = with_current(observed[Role.CANARY], observed[Role.STABLE], timeline, window)
        steps.append((t, {Role.CANARY: canary, Role.STABLE: stable}))
        timelines[t] = timeline
    return Lookback(History(tuple(steps), history.warnings), start, end, step, timelines=timelines)


def judged_history(analysis: Analysis, lookback: Lookback) -> tuple[tuple[float, Judgment], ...]:
    """The judgment the analyzer would have given at each step. Each step's data reach back the
    analysis' own span, so for a canary judged since it started, every step holds everything the
    canary had served by then: the evidence as it accumulated; and its recent spans, whole minutes of them."""
    request = analysis.request
    limits, confidence = request.limits(), request.confidence()
    return tuple(
        (t, judge(request.checks, limits, observed[Role.CANARY], observed[Role.STABLE], analysis.span.duration,
                  request.mode, confidence, lookback.timelines.get(t)))
        for t, observed in lookback.history.steps
    )  # fmt: skip


def verdict_strip(judged: Sequence[tuple[float, Judgment]], lookback: Lookback) -> StripView:
    """When the canary started to go wrong."""
    verdicts = [(t, judgment.verdict.value) for t, judgment in judged]
    return charts.strip_view(verdicts, lookback.start, lookback.end, lookback.step)


def check_charts(
    analysis: Analysis, body: AnalysisResponse, lookback: Lookback, judged: Sequence[tuple[float, Judgment]]
) -> list[CheckChart]:
    span_start = analysis.span.since.timestamp()
    request = analysis.request
    limits = request.limits()
    outs = {out.name: out for out in body.checks}
    # A number from too few requests is not drawn, as it is not shown: each step's requests decide its own.
    enough = {
        (t, role): too_few_requests(request.checks, limits, observed[role], request.window) is None
        for t, observed in lookback.history.steps
        for role in Role
    }
    few_now = {
        role: too_few_requests(request.checks, limits, analysis.measurement.observed[role], request.window)
        for role in Role
    }
    views = []
    for result in analysis.judgment.checks:
        check = result.check
        canary, thin_canary = _series(check, lookback.history, Role.CANARY, enough)
        stable, thin_stable = _series(check, lookback.history, Role.STABLE, enough)
        limit = limits[check.name]
        if check.bound.relative:
            line: Points = [(t, threshold_rules.effective_limit(check.bound, limit, v)) for t, v in stable]
        elif check.limit_moves:  # as each step's judgment held it
            line = [
                (t, r.limit) for t, j in judged for r in j.checks if r.check.name == check.name and r.limit is not None
            ]
        else:
            line = [(lookback.start, limit), (lookback.end, limit)]
        series = [
            Series("canary", f"canary ({analysis.request.canary})", canary),
            Series("stable", f"stable ({analysis.request.stable})", stable),
            Series("threshold", "threshold: " + check.rule(limit).removeprefix("canary "), line),
        ]
        view = charts.chart(series, check.unit, lookback.start, lookback.end, span_start)
        out = outs[check.name]
        lately = _recent_evidence(analysis, check, lookback)
        evidence = _evidence(check, judged, lookback, span_start, lately)
        note = _note(view, {"canary": thin_canary, "stable": thin_stable})
        distribution = _distribution(analysis, check, limit, few_now)
        thin = [role.value for role in Role if few_now[role] is not None and counts_requests(check)]
        few_note = f"too few {' or '.join(thin)} requests to draw" if distribution and thin else None
        views.append(CheckChart(check, out, view, distribution, _interval(out), evidence, note, few_note))
    return views


def _note(view: ChartView, thin: Mapping[str, bool]) -> str | None:
    """Why a version has no line: no data, or too few requests at every step for its number to mean anything."""
    missing = [name for name in view.missing if name != "threshold"]
    if not missing:
        return None
    if not view.has_data and not any(thin.values()):
        return "no data"
    empty = [name for name in missing if not thin.get(name)]
    few = [name for name in missing if thin.get(name)]
    parts = ([f"no {' or '.join(empty)} data"] if empty else []) + (
        [f"too few {' or '.join(few)} requests to draw"] if few else []
    )
    return "; ".join(parts)


def _evidence(
    check: Check,
    judged: Sequence[tuple[float, Judgment]],
    lookback: Lookback,
    span_start: float,
    lately: Points = (),
) -> ChartView | None:
    """A check's interval at each step: a fail needs its fail side's end past the limit (the lower, unless
    lower is worse), a pass the other end within it. For a canary judged since it started, the fail side's
    end holds at every step at once; beside it, the fail side's end on the recent span closest to failing,
    at that span's own confidence: where the two part, the canary turned."""
    name = check.name
    wholes = (
        (t, r.evidence if r.span is None else r.whole) for t, j in judged for r in j.checks if r.check.name == name
    )
    found = [(t, evidence) for t, evidence in wholes if evidence is not None]
    if not found:
        return None
    last = found[-1][1]
    fail = f"with {last.confidence_text}{' at any look' if last.anytime else ''}"
    passing = f"with {last.pass_confidence:.0%} confidence"
    low_is_fail = fail_side(check) == "lower"
    lows = [(t, e.low) for t, e in found if e.low is not None]
    highs = [(t, e.high) for t, e in found if e.high is not None]
    value = value_text(check, last.unit)
    series = [
        Series("low", f"at least, {fail if low_is_fail else passing}", lows),
        Series("high", f"at most, {passing if low_is_fail else fail}", highs),
        Series(
            "threshold", f"the limit, {value(last.limit)}", [(lookback.start, last.limit), (lookback.end, last.limit)]
        ),
    ]
    if lately:
        side = "at least" if low_is_fail else "at most"
        series.append(Series("recent", f"{side}, on the recent span closest to failing, at its own confidence", lately))

    # The axis in the same terms (a difference of shares in points), unsigned as axes are: 0.50 pp, -0.50 pp.
    def tick(v: float) -> str:
        return value(v).removeprefix("+")

    return charts.chart(series, last.unit, lookback.start, lookback.end, span_start, tick_text=tick)


def _recent_evidence(analysis: Analysis, check: Check, lookback: Lookback) -> Points:
    """At each step, the fail side's end on the recent span closest to failing the check."""
    low_is_fail = fail_side(check) == "lower"
    request = analysis.request
    confidence = request.confidence()
    alpha = confidence.recent_alpha(request.checks)
    if alpha is None:
        return []
    rule = span_rule(confidence.pass_confidence)
    limit = request.limits()[check.name]
    points = []
    for t, timeline in lookback.timelines.items():
        found = recent.strongest(check, limit, timeline, alpha, rule)
        evidence = found.finding.evidence if found else None
        bound = None if evidence is None else (evidence.low if low_is_fail else evidence.high)
        if bound is not None:
            points.append((t, bound))
    return points


def _distribution(
    analysis: Analysis, check: Check, limit: float, too_few: Mapping[Role, float | None]
) -> DistributionView | None:
    """Both versions' shares under each bucket bound; not a version's from too few requests to mean anything."""
    if check.quantile is None:
        return None
    request, observed = analysis.request, analysis.measurement.observed

    def shares(role: Role) -> Points:
        return [] if too_few[role] is not None else _shares(observed[role], check)

    series = [
        Series("canary", f"canary ({request.canary})", shares(Role.CANARY)),
        Series("stable", f"stable ({request.stable})", shares(Role.STABLE)),
    ]
    slo = limit if check.bound is Bound.AT_MOST else None
    return charts.distribution(series, slo=slo, quantile=check.quantile)


def _shares(observed: Observed, check: Check) -> Points:
    """The share of requests at or under each bucket bound."""
    measured = observed.get(check.source)
    if not isinstance(measured, Histogram | NativeHistogram) or measured.total <= 0:
        return []
    [histogram] = on_shared_buckets(measured)
    counts = zip(histogram.bounds, histogram.cumulative, strict=True)
    return [(bound, count / histogram.total) for bound, count in counts]


def _interval(out: CheckOut) -> IntervalView | None:
    """The estimate, its two bounds and the limit, each bound labelled as the answer shows it."""
    statistics = out.statistics
    if statistics is None or statistics.interval.low is None or statistics.interval.high is None:
        return None
    fail, passing = statistics.fail_bound, statistics.pass_bound
    bounds = [Labelled("fail", fail.value, fail.shown), Labelled("pass", passing.value, passing.shown)]
    return charts.interval(
        statistics.interval.low,
        statistics.interval.high,
        statistics.estimate,
        statistics.limit,
        statistics.unit,
        limit_text=statistics.limit_shown,
        labelled=bounds,
    )


def _series(
    check: Check, history: History, role: Role, enough: Mapping[tuple[float, Role], bool]
) -> tuple[Points, bool]:
    """A version's number at each step, but where it came from too few requests; and whether any did."""
    measured = [(t, v) for t, v in ((t, check.value(observed[role])) for t, observed in history.steps) if v is not None]
    if not counts_requests(check):
        return measured, False
    drawn = [(t, v) for t, v in measured if enough[t, role]]
    return drawn, len(drawn) < len(measured)


def render_report(
    body: AnalysisResponse,
    charts: list[CheckChart],
    lookback: Lookback,
    strip: StripView,
    lookback_text: str,
    form: dict[str, str],
) -> str:
    return templates.get_template("report.html").render(
        body=body,
        charts=charts,
        history=lookback,
        strip=strip,
        lookback=lookback_text,
        form=form,
        judged_on=JUDGED_ON[body.confidence.data if body.confidence else "window"].format(window=body.window),
        guarantee=GUARANTEE[body.confidence.guarantee].format(alpha=body.confidence.alpha) if body.confidence else "",
    )


JUDGED_ON = {
    "since_canary_start": "the canary's data since it started",
    "last_day": "the canary's last day (it is older than the look-back)",
    "window": "the {window} window",
}
GUARANTEE = {
    "anytime": "a canary within its limits is failed by any answer of a run, however many, with probability "
    "at most {alpha:.2%}",
    "fixed_polls": "a canary within its limits is aborted by a run of `polls` answers with probability at most "
    "{alpha:.2%}",
}


def render_problem(status: int, title: str, problems: list[str], form: dict[str, str], trace_id: str | None) -> str:
    return templates.get_template("problem.html").render(
        status=status, title=title, problems=problems, form=form, trace_id=trace_id
    )
