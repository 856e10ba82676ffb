"""Verdict quality in process, without Prometheus: the same populations, templates and Argo rules
as judgment_quality.py, each measurement's counts handed straight to the judge. For tuning in seconds.

Two ways of measuring, `--measure` (both by default, side by side in every table):
- `window`: both versions over the request's window, (at - window, at], as the analyzer does today;
- `since-start`: both versions over everything since the canary's series began (at least the
  window), as the analyzer is about to: observed_since_start().

It differs from the real run where Prometheus does: `increase()` extrapolates a range's counts
to its edges (by up to 2x for a canary series with two samples), these are the raw differences.

    .venv/bin/python bench/judgment_sim.py [--template step|background] [--measurements N ...]
        [--population rollouts|first-release] [--measure window since-start] [--cases N] [--seed S]
        [--set field=value ...] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.calibration.argo import Measurement, _duration_seconds, keep_measuring, measurement_of, next_poll
from app.calibration.replay import Observation, judged_as_the_server_does, since_start
from app.judge.checks import Observed, Source
from app.judge.distributions import Histogram, Outcomes
from app.judge.recent import Counts
from app.measurement import Role
from app.models import AnalysisRequest
from bench.judgment_quality import (
    CaseRun,
    Study,
    add_study_arguments,
    cases_per_class,
    history_start,
    report,
    request_body,
    study_from_args,
)
from bench.populations import (
    BUCKETS,
    CANARY,
    STABLE,
    Case,
    CaseTraffic,
    WindowCounts,
    counts_since,
    last_moment_without_series,
    synthesise,
)

WINDOW, SINCE_START = "window", "since-start"
# How far back the analyzer looks for the moment the canary had no series, and at what resolution.
SINCE_START_LOOK_BACK_SECONDS = 86400.0
SINCE_START_STEP_SECONDS = 60.0
VERSION_OF = {Role.CANARY: CANARY, Role.STABLE: STABLE}


@dataclasses.dataclass(frozen=True)
class Synthetic:
    """A case's counters as the judge reads them (app/calibration/replay.py, Served)."""

    traffic: CaseTraffic

    def observed(self, role: Role, begin: float, end: float) -> Observed:
        version = VERSION_OF[role]
        if version not in self.traffic.versions:
            return {Source.REQUESTS: None, Source.LATENCY: None}  # no series at all: a first release's stable
        return _distributions(counts_since(self.traffic, version, begin, end))

    def minutes(self, role: Role, starts: Sequence[float], end: float) -> Counts:
        version = VERSION_OF[role]
        ends = [*starts[1:], end]
        return Counts.stack(
            [
                Counts.of(self.observed(role, begin, until) if version in self.traffic.versions else {})
                for begin, until in zip(starts, ends, strict=True)
            ]
        )


def observed_in_window(traffic: CaseTraffic, at: float, window_seconds: float) -> Observation:
    """Today's measurement: both versions over the request's window, (at - window, at]."""
    served = Synthetic(traffic)
    canary, stable = (served.observed(role, at - window_seconds, at) for role in (Role.CANARY, Role.STABLE))
    return Observation(canary, stable, window_seconds)


def observed_since_start(traffic: CaseTraffic, at: float, window_seconds: float) -> Observation:
    """What the analyzer judges under `anytime`: the canary on everything since its series began. Its start is
    the last whole minute of unix time, within a day before `at`, at which the canary had no series (a series
    is present at a step when it has a sample in the 5 minutes before it: Prometheus' lookback, as a `[1d:1m]`
    subquery sees it); with no such minute, the day's beginning. Both versions are measured over
    (at - span, at], the span being at - start, and never shorter than the window; and beside it, their
    recent minutes as app/analysis.py reads them (the last hour of settled minutes, the tail since)."""
    start = last_moment_without_series(traffic, CANARY, at, SINCE_START_STEP_SECONDS, SINCE_START_LOOK_BACK_SECONDS)
    return since_start(Synthetic(traffic), at, start, window_seconds, SINCE_START_LOOK_BACK_SECONDS)


MEASURES: dict[str, Callable[[CaseTraffic, float, float], Observation]] = {
    WINDOW: observed_in_window,
    SINCE_START: observed_since_start,
}


def _distributions(counts: WindowCounts) -> Observed:
    """The counts as app/measurement.py hands them to the judge; a version that served nothing
    in the span is treated as having no data."""
    if counts.requests == 0 and counts.buckets[-1] == 0:
        return {Source.REQUESTS: None, Source.LATENCY: None}
    histogram = Histogram.from_buckets(zip((*BUCKETS, math.inf), counts.buckets.tolist(), strict=True))
    return {Source.REQUESTS: Outcomes(ok=counts.ok, errors=counts.errors), Source.LATENCY: histogram}


def run_case(case: Case, mode: str, measure: str, study: Study, overrides: dict[str, str]) -> CaseRun:
    """A case's measurements on Argo's schedule, as the runner takes them (keep_measuring())."""
    traffic = synthesise(case)
    # The server judges the window only under fixed polls (or mode=threshold), and since the start otherwise.
    guarantee = {"guarantee": "fixed_polls"} if measure == WINDOW else {}
    request = AnalysisRequest(**{**request_body(case, study.policy, mode), **guarantee, **overrides})
    window_seconds = _duration_seconds(request.window)
    measurements: list[Measurement] = []
    at = case.polls[0]
    while keep_measuring(measurements, study.policy, study.longest):
        judgment = judged_as_the_server_does(request, MEASURES[measure](traffic, at, window_seconds))
        failed = tuple(result.check.name for result in judgment.checks if result.outcome == "fail")
        measurements.append(measurement_of(at, judgment.verdict.value, study.policy, failed))
        at = next_poll(measurements[-1], study.policy)
    return CaseRun(case, f"{mode}/{measure}", tuple(measurements))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_study_arguments(parser)
    parser.add_argument("--modes", nargs="+", default=["statistical", "threshold"])
    parser.add_argument("--measure", nargs="+", choices=list(MEASURES), default=list(MEASURES))
    parser.add_argument("--set", nargs="*", default=[], help="request fields, e.g. pass_confidence=0.9")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    study = study_from_args(args)
    per_class = cases_per_class(args, study)
    started = time.perf_counter()
    cases = study.cases(per_class, args.seed, history_start(study, time.time()))
    labels = [f"{mode}/{measure}" for mode in args.modes for measure in args.measure]
    runs = [
        run_case(case, mode, measure, study, overrides)
        for mode in args.modes
        for measure in args.measure
        for case in cases
    ]
    print(report(runs, labels, study, args.markdown))
    print(f"seed {args.seed}, {per_class} cases per class, in process: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
