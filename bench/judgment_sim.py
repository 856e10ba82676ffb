"""Verdict quality in process, without Prometheus: the same population and Argo rules as
judgment_quality.py, each window's counts handed straight to the judge. For tuning in seconds.

It differs from the real run where Prometheus does: `increase()` extrapolates a window's counts
to its edges (by up to 2x for a canary series with two samples), these are the raw differences.

    .venv/bin/python bench/judgment_sim.py [--cases N] [--seed S] [--set field=value ...]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.judge.checks import Source
from app.judge.distributions import Histogram, Outcomes
from app.judge.judgment import Verdict, judge
from app.models import AnalysisRequest
from bench.judgment_quality import (
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    CaseRun,
    Measurement,
    check_policy_matches_population,
    load_policy,
    report,
)
from bench.populations import BUCKETS, CANARY, STABLE, Case, CaseTraffic, population, slos, synthesise, window_counts

PHASE = {Verdict.PASS: SUCCESSFUL, Verdict.FAIL: FAILED, Verdict.INCONCLUSIVE: INCONCLUSIVE}


def observed(traffic: CaseTraffic, version: str, at: float) -> dict:
    counts = window_counts(traffic, version, at)
    if counts.requests == 0 and counts.buckets[-1] == 0:
        return {Source.REQUESTS: None, Source.LATENCY: None}
    histogram = Histogram.from_buckets(zip((*BUCKETS, math.inf), counts.buckets.tolist(), strict=True))
    return {Source.REQUESTS: Outcomes(ok=counts.ok, errors=counts.errors), Source.LATENCY: histogram}


def run_case(case: Case, mode: str, overrides: dict[str, str]) -> CaseRun:
    traffic = synthesise(case)
    request = AnalysisRequest(service=case.service, mode=mode, **slos(case), **overrides)
    measurements = []
    for at in case.polls:
        judgment = judge(
            request.checks,
            request.limits(),
            observed(traffic, CANARY, at),
            observed(traffic, STABLE, at),
            request.window,
            request.mode,
            request.confidence(),
        )
        failed = tuple(r.check.name for r in judgment.checks if r.outcome == "fail")
        measurements.append(Measurement(at, PHASE[judgment.verdict], judgment.verdict.value, failed_checks=failed))
    return CaseRun(case, mode, tuple(measurements))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=250, help="cases per class")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["statistical", "threshold"])
    parser.add_argument("--set", nargs="*", default=[], help="request fields, e.g. pass_confidence=0.9")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    policy = load_policy()
    check_policy_matches_population(policy)
    started = time.perf_counter()
    cases = population(args.cases, args.seed, start=math.floor(time.time() / 60) * 60 - 3 * 3600)
    runs = [run_case(case, mode, overrides) for mode in args.modes for case in cases]
    print(report(runs, args.modes, policy, args.markdown))
    print(f"seed {args.seed}, {args.cases} cases per class, in process: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
