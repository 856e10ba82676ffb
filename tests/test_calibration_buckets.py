"""Where a latency SLO lies against the bucket bounds, how often its check decides, and the bound to add
(app/calibration/buckets.py), on plain numbers and on histories read in process."""

from __future__ import annotations

import ast
import math
import re

import numpy as np
import pytest
from rich.console import Console
from scipy import stats

from app.calibration.aa import HalfMinutes, Replayed, calibrated, templates
from app.calibration.argo import Measurement, PhaseReached
from app.calibration.buckets import (
    Place,
    below_the_slo,
    buckets_out,
    decided,
    go_line,
    lines,
    number,
    outcome_of,
    python_line,
    quantile_in_bucket,
    slo_checks,
    split_at,
    where,
)
from app.calibration.history import History
from app.calibration.replay import Answer, Run
from app.calibration.terminal import _buckets
from app.judge.checks import Observed, Source
from app.judge.distributions import Histogram, Outcomes
from app.judge.findings import Outcome
from app.judge.recent import Counts
from app.models import CalibrationRequest
from tests.support.calibration import MINUTE_BOUNDS, START, minute_history

BOUNDS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf)
STEP, BACKGROUND = templates()


# --- where the SLO lies ------------------------------------------------------------------------------


def test_an_slo_on_a_bound_is_found_there_even_through_a_unit() -> None:
    assert where(0.25, BOUNDS) == where(0.25, BOUNDS[:-1])
    found = where(0.25, BOUNDS)
    assert (found.place, found.lower, found.upper, BOUNDS[found.bucket]) == (Place.ON, 0.25, 0.25, 0.25)
    # Istio's "9" milliseconds read as seconds is 0.009000000000000001, not 0.009.
    in_ms = (*(bound * 0.001 for bound in (5, 9, 25)), math.inf)
    assert in_ms[1] != 0.009 and where(0.009, in_ms).place is Place.ON


@pytest.mark.parametrize(
    ("slo", "lower", "upper"), [(0.3, 0.25, 0.5), (0.07, 0.05, 0.1), (0.01, 0.0, 0.025), (0.999, 0.5, 1.0)]
)
def test_an_slo_between_bounds_names_the_two_around_it(slo: float, lower: float, upper: float) -> None:
    found = where(slo, BOUNDS)
    assert (found.place, found.lower, found.upper) == (Place.BETWEEN, lower, upper)
    assert BOUNDS[found.bucket] == upper and (found.bucket == 0 or BOUNDS[found.bucket - 1] == lower)


def test_an_slo_beyond_the_last_finite_bound_has_only_the_inf_bucket_over_it() -> None:
    found = where(2.0, BOUNDS)
    assert (found.place, found.lower, found.upper) == (Place.BEYOND, 1.0, None)
    assert BOUNDS[found.bucket] == math.inf


# --- the straddling bucket split at the SLO ----------------------------------------------------------


def test_the_straddling_bucket_splits_as_requests_spread_evenly_inside_it() -> None:
    rng = np.random.default_rng(3)
    buckets = rng.integers(0, 500, (4, len(BOUNDS))).astype(float)
    slo = 0.3
    # Under the linear model a request in (0.25, 0.5] is uniform there: P(under 0.3) is its CDF at 0.3.
    under = stats.uniform(loc=0.25, scale=0.25).cdf(slo)
    bounds, split = split_at(BOUNDS, buckets, slo, under)
    assert bounds == (0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, math.inf)
    assert split[:, 4] == pytest.approx(buckets[:, 4] * under)
    assert split[:, 5] == pytest.approx(buckets[:, 4] * (1 - under))
    assert np.array_equal(split[:, [0, 1, 2, 3, 6, 7]], buckets[:, [0, 1, 2, 3, 5, 6]])
    assert split.sum(axis=1) == pytest.approx(buckets.sum(axis=1))


def test_a_split_on_the_linear_model_leaves_every_histogram_quantile_where_it_was() -> None:
    """histogram_quantile interpolates linearly inside a bucket: the bound added by the same model moves none."""
    buckets = np.array([120.0, 300.0, 410.0, 90.0, 40.0, 11.0, 3.0])
    bounds, split = split_at(BOUNDS, buckets, 0.4, (0.4 - 0.25) / (0.5 - 0.25))
    before = Histogram(BOUNDS, tuple(np.cumsum(buckets).tolist()))
    after = Histogram(bounds, tuple(np.cumsum(split).tolist()))
    for q in (0.5, 0.9, 0.95, 0.97, 0.99):
        assert after.quantile(q) == pytest.approx(before.quantile(q))


def test_an_slo_on_a_bound_or_beyond_the_last_is_not_split() -> None:
    for slo in (0.25, 2.0):
        with pytest.raises(ValueError, match="no bucket of the history to split"):
            split_at(BOUNDS, np.ones(len(BOUNDS)), slo, 0.5)


@pytest.mark.parametrize("slo", [0.15, 0.2, 0.3])
def test_the_bucket_is_split_by_the_judges_model_of_its_shape_not_linearly(slo: float) -> None:
    """Lognormal latencies (median 60 ms, sigma 0.6), counted at the bounds: the share the split puts over the SLO
    is the truth's within a point, where splitting the bucket linearly puts half as many again over it, or more."""
    latency = stats.lognorm(s=0.6, scale=0.06)
    cumulative = np.array([latency.cdf(bound) if math.isfinite(bound) else 1.0 for bound in BOUNDS]) * 1e6
    buckets = np.diff(cumulative, prepend=0.0)
    below, model = below_the_slo(BOUNDS, buckets, slo)
    bounds, split = split_at(BOUNDS, buckets, slo, below)
    over = split[bounds.index(slo) + 1 :].sum() / 1e6
    truth = latency.sf(slo)
    assert over == pytest.approx(truth, abs=0.01)
    found = where(slo, BOUNDS)
    assert found.lower is not None and found.upper is not None
    linear = (slo - found.lower) / (found.upper - found.lower)
    linearly = (buckets[found.bucket] * (1 - linear) + buckets[found.bucket + 1 :].sum()) / 1e6
    assert linearly > 1.5 * truth and abs(over - truth) < abs(linearly - truth) / 3
    assert "the judge's model of the shape" in model


def test_without_a_bucket_on_each_side_the_split_is_linear_and_says_so() -> None:
    buckets = np.array([120.0, 300.0, 410.0, 90.0, 40.0, 11.0, 3.0])
    below, model = below_the_slo(BOUNDS, buckets, 0.03)  # in the second bucket: none under its neighbour below
    assert below == pytest.approx((0.03 - 0.025) / (0.05 - 0.025)) and "linear inside the bucket" in model


# --- the lines to paste ------------------------------------------------------------------------------


def test_numbers_are_written_without_float_noise() -> None:
    assert number(0.1 + 0.2) == "0.3" and number(300 * 0.001 / 0.001) == "300.0" and number(2.5e-05) == "2.5e-05"


def test_the_python_line_is_a_tuple_with_the_new_bound_in_order() -> None:
    bounds = [0.025, 0.05, 0.1, 0.25, 0.1 + 0.2, 0.5, 1.0]
    call = ast.parse(python_line(bounds), mode="eval").body
    assert isinstance(call, ast.Call)
    [keyword] = call.keywords
    assert keyword.arg == "buckets"
    assert ast.literal_eval(keyword.value) == (0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0)
    one = ast.parse(python_line([0.3]), mode="eval").body
    assert isinstance(one, ast.Call) and ast.literal_eval(one.keywords[0].value) == (0.3,)


def test_the_go_line_is_a_float64_slice_with_the_new_bound_in_order() -> None:
    line = go_line([25.0, 50.0, 100.0, 250.0, 300.0, 500.0])
    match = re.fullmatch(r"Buckets: \[\]float64\{(.*)\},", line)
    assert match is not None
    assert [float(text) for text in match[1].split(", ")] == [25, 50, 100, 250, 300, 500]


def test_micrometer_names_the_slo_as_a_duration() -> None:
    said = lines([0.1, 0.3], [0.3])
    assert said["Java Micrometer"] == ".serviceLevelObjectives(Duration.ofMillis(300))"
    assert lines([0.0125], [0.0125])["Java Micrometer"] == ".serviceLevelObjectives(Duration.ofNanos(12500000))"
    assert set(said) == {"Python prometheus_client", "Go client_golang", "Java Micrometer"}


# --- how often the check decides ---------------------------------------------------------------------


def _halves(minutes: int) -> HalfMinutes:
    ends = START + 60.0 * np.arange(1, minutes + 1)
    rows = np.ones(minutes)
    counts = Counts(rows * 100, rows, MINUTE_BOUNDS, np.tile([25.0, 50.0, 22.0, 3.0, 0.0], (minutes, 1)))
    return HalfMinutes(ends, {"A": counts, "B": counts})


def _run(start: float, moments: list[float]) -> Run:
    measurements = tuple(Measurement(at, "Successful", "pass") for at in moments)
    return Run(start, measurements, tuple(Answer("pass") for _ in moments), PhaseReached("Successful", 3, moments[-1]))


def test_answers_are_counted_decided_as_the_check_decides_each() -> None:
    """Each answer judged on what the judge had then: the canary half since the run's start, the stable's over the
    same span (never less than the window); decided when it passed or failed."""
    halves = _halves(120)
    runs = (_run(START + 600, [START + 1200, START + 1800, START + 2400]), _run(START + 3600, [START + 3900]))
    replayed = Replayed(STEP, runs, ("A", "B"))
    seen: list[tuple[float, float, float]] = []
    verdicts = iter([Outcome.PASS, Outcome.INCONCLUSIVE, Outcome.FAIL, Outcome.SKIPPED])

    def outcome(canary: Observed, stable: Observed, seconds: float) -> Outcome:
        requests = [version[Source.REQUESTS] for version in (canary, stable)]
        assert all(isinstance(r, Outcomes) for r in requests)
        seen.append((seconds, *(r.total for r in requests)))  # type: ignore[union-attr]
        return next(verdicts)

    found = decided(replayed, halves, 300.0, outcome)
    assert (found.template, found.answers, found.decided, found.failed) == ("step", 4, 2, 1)
    # 101 requests a minute each half: the canary's since its run started, the stable's over the span.
    assert seen == [(600, 1010, 1010), (1200, 2020, 2020), (1800, 3030, 3030), (300, 505, 505)]


def test_a_gate_that_does_not_pass_leaves_the_check_open() -> None:
    request = CalibrationRequest(service="web", period="4h", min_requests=1000).analysis_request()
    [check] = slo_checks(request)
    assert check.name == "p95_latency"
    judged = outcome_of(request, check)
    fast = Histogram(MINUTE_BOUNDS, (500.0, 900.0, 999.0, 1000.0, 1000.0))
    served = {Source.REQUESTS: Outcomes(ok=1000, errors=0), Source.LATENCY: fast}
    few = {Source.REQUESTS: Outcomes(ok=999, errors=0), Source.LATENCY: fast}
    assert judged(served, served, 600) is Outcome.PASS
    assert judged(few, served, 600) is Outcome.INCONCLUSIVE


def test_the_windows_whose_quantile_lies_in_the_slos_bucket_are_counted() -> None:
    minutes = 20
    buckets = np.zeros((1, minutes, len(MINUTE_BOUNDS)))
    buckets[0, :, 1] = 100  # every request in (0.05, 0.1]...
    buckets[0, 5:10, :] = [0, 80, 20, 0, 0]  # ...but a window's 20 % slower, in (0.1, 0.25]
    buckets[0, 15:20, :] = 0  # and a window without requests
    ok = buckets.sum(axis=2)
    kept = np.ones((1, minutes), dtype=bool)
    ends = START + 60.0 * np.arange(1, minutes + 1)
    history = History("pod", ("web-0",), ends, ok, ok * 0, MINUTE_BOUNDS, buckets, kept, ~kept)
    assert quantile_in_bucket(history, 0.95, 300.0, MINUTE_BOUNDS.index(0.25)) == (3, 1)
    assert quantile_in_bucket(history, 0.95, 300.0, MINUTE_BOUNDS.index(0.1)) == (3, 2)
    assert quantile_in_bucket(history, 0.5, 300.0, MINUTE_BOUNDS.index(0.25)) == (3, 0)


# --- on a history read in process --------------------------------------------------------------------


@pytest.fixture(scope="module")
def close_to_the_slo() -> tuple:
    """The SLO 220 ms in the bucket (100 ms, 250 ms] where the stable's P95 lies: an Istio-like histogram in ms."""
    request = CalibrationRequest(service="web", period="3h", p95_max_seconds=0.22)
    calibration = calibrated(minute_history(hours=3), request, "istio", (STEP, BACKGROUND), seconds_per_unit=0.001)
    return calibration, buckets_out(calibration)


def test_the_rejudged_check_decides_as_the_judge_did_in_the_replay(close_to_the_slo: tuple) -> None:
    calibration, out = close_to_the_slo
    [slo] = out.slos
    for replayed, answers in zip(calibration.replayed, slo.answers, strict=True):
        judged = [answer for run in replayed.runs for answer in run.answers]
        assert answers.answers == len(judged)
        assert answers.decided == sum("p95_latency" not in answer.undecided for answer in judged)
        assert answers.failed == sum("p95_latency" in answer.failed for answer in judged)


def test_an_slo_between_bounds_gets_its_bound_in_the_clients_unit(close_to_the_slo: tuple) -> None:
    _, out = close_to_the_slo
    [slo] = out.slos
    assert (slo.where, slo.lower, slo.upper, slo.add) == ("between bounds", 0.1, 0.25, 220.0)
    assert (out.unit, out.bounds, out.add) == ("milliseconds", [50.0, 100.0, 250.0, 500.0], [220.0])
    call = ast.parse(out.lines["Python prometheus_client"], mode="eval").body
    assert isinstance(call, ast.Call)
    assert ast.literal_eval(call.keywords[0].value) == (50.0, 100.0, 220.0, 250.0, 500.0)
    assert out.lines["Java Micrometer"] == ".serviceLevelObjectives(Duration.ofMillis(220))"
    # The stable's P95 lies in the SLO's bucket: near the SLO, where the bounds alone cannot decide.
    assert slo.windows == 36 and slo.in_slo_bucket == 36
    assert slo.model is not None and "the judge's model of the shape" in slo.model
    assert any(line.startswith("with a bound at 220 ms: estimated") for line in slo.shown)


def test_a_bound_at_the_slo_would_decide_answers_the_bucket_left_open(close_to_the_slo: tuple) -> None:
    _, out = close_to_the_slo
    step = out.slos[0].answers[0]
    assert step.template == "step" and step.with_bound is not None
    assert step.decided < step.with_bound <= step.answers
    assert step.share == step.decided / step.answers and step.with_bound_share == step.with_bound / step.answers


def test_an_slo_on_a_bound_suggests_nothing() -> None:
    request = CalibrationRequest(service="web", period="2h", p95_max_seconds=0.25)
    out = buckets_out(calibrated(minute_history(hours=2), request, "default", (STEP,)))
    [slo] = out.slos
    assert (slo.where, slo.add, slo.in_slo_bucket, slo.model) == ("on a bound", None, None, None)
    assert (out.add, out.lines) == ([], {})
    assert slo.answers[0].with_bound is None and slo.answers[0].decided > 0
    assert slo.shown[0] == "p95_latency: the SLO of 250 ms is a bucket bound: counted exactly, nothing to add"


def test_the_terminal_shows_the_lines_to_paste_unwrapped_and_unmarked(close_to_the_slo: tuple) -> None:
    _, out = close_to_the_slo
    console = Console(width=40, record=True)
    _buckets(out, console)
    shown = console.export_text()
    words = " ".join(shown.split())  # the prose may wrap
    assert words.startswith("SLO and buckets p95_latency: the SLO of 220 ms is between the bounds 100 ms and 250 ms")
    assert "The bounds with 220 added (milliseconds, as the histogram counts them), to paste:" in words
    # Not wrapped at 40 columns, and the Go slice's brackets not taken for rich markup.
    for line in out.lines.values():
        assert f"\n      {line}\n" in shown
