"""How long a regression that starts late in a canary's life runs before a background analysis aborts it
(bench/README.md, "Late regressions").

The anytime judge reads everything since the canary started, so a canary that serves well for an hour
and then errs is judged on the hour too. In process, without Prometheus: each minute the canary and the
stable serve Poisson counts, the canary's 5xx share steps up `--extra` after `healthy` minutes, and the
judge is called as the server calls it (bench/judgment_sim.py) with the default request, as the shipped
background template asks every minute (failureLimit 0: the first `fail` aborts). Latency stays healthy:
both versions draw from the same bucket shares.

    .venv/bin/python bench/late_regressions.py [--runs N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.judge.checks import Observed, Source
from app.judge.distributions import Histogram, Outcomes
from app.models import AnalysisRequest
from bench.judgment_sim import Observation, judged_as_the_server_does
from bench.populations import BUCKETS

STABLE_RPS, ERROR_SHARE = 20.0, 0.01
CANARY_RPS = (3.0, 10.0)
HEALTHY_MINUTES = (0, 15, 30, 60, 120)
HORIZON_MINUTES = 120  # after the onset: how long a run lasts at most
# Each request's bucket, the same for both versions: most between 25 and 250 ms.
BUCKET_SHARES = np.array([0.0, 0.01, 0.05, 0.2, 0.5, 0.2, 0.04, 0.0, 0.0, 0.0, 0.0, 0.0])


class Version:
    """A version's counters since its series began."""

    def __init__(self) -> None:
        self.ok = self.errors = 0.0
        self.buckets = np.zeros(len(BUCKETS) + 1)

    def serve(self, rng: np.random.Generator, rps: float, error_share: float) -> None:
        requests = rng.poisson(rps * 60)
        errors = rng.binomial(requests, error_share)
        self.ok += requests - errors
        self.errors += errors
        self.buckets += rng.multinomial(requests, BUCKET_SHARES / BUCKET_SHARES.sum())

    def observed(self) -> Observed:
        cumulative = np.cumsum(self.buckets).tolist()
        histogram = Histogram.from_buckets(zip((*BUCKETS, math.inf), cumulative, strict=True))
        return {Source.REQUESTS: Outcomes(ok=self.ok, errors=self.errors), Source.LATENCY: histogram}


def minutes_to_abort(rng: np.random.Generator, canary_rps: float, healthy: int, extra: float) -> int | None:
    """Minutes from the onset to the first `fail` (0 or less: a false abort before it); None: not within
    the horizon."""
    request = AnalysisRequest(service="late")
    canary, stable = Version(), Version()
    for minute in range(1, healthy + HORIZON_MINUTES + 1):
        canary.serve(rng, canary_rps, ERROR_SHARE + (extra if minute > healthy else 0.0))
        stable.serve(rng, STABLE_RPS, ERROR_SHARE)
        verdict, _ = judged_as_the_server_does(request, Observation(canary.observed(), stable.observed(), minute * 60))
        if verdict == "fail":
            return minute - healthy
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per case (default 30)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--extra", type=float, default=0.03, help="the 5xx share added at the onset (0.03)")
    args = parser.parse_args()
    print(f"stable {STABLE_RPS:g} rps at {ERROR_SHARE:.0%} 5xx; the canary +{args.extra:.0%} after `healthy` minutes")
    print("\n| canary rps | healthy minutes before | aborted | before the onset | minutes to abort: median | p90 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for rps in CANARY_RPS:
        for healthy in HEALTHY_MINUTES:
            rng = np.random.default_rng(args.seed)
            results = [minutes_to_abort(rng, rps, healthy, args.extra) for _ in range(args.runs)]
            after = sorted(m for m in results if m is not None and m > 0)
            early = sum(1 for m in results if m is not None and m <= 0)
            median = f"{statistics.median(after):g}" if after else "-"
            p90 = f"{after[int(0.9 * (len(after) - 1))]}" if after else "-"
            print(f"| {rps:g} | {healthy} | {len(after)}/{args.runs} | {early} | {median} | {p90} |")


if __name__ == "__main__":
    main()
