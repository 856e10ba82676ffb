"""How long a regression that starts late in a canary's life runs before a background analysis aborts it
(bench/README.md, "Late regressions").

The anytime judge reads everything since the canary started, so a canary that serves well for an hour
and then errs is judged on the hour too. In process, without Prometheus: each minute the canary and the
stable serve Poisson counts, the canary's 5xx share steps up `--extra` (and a `--slower` share of its
requests moves one bucket up, from 0 by default) at a minute drawn evenly from the
quarter hour after `healthy` minutes (so that onsets fall anywhere in the prototype's blocks), and the
judge is called as the server calls it (bench/judgment_sim.py) with the default request, as the shipped
background template asks every minute (failureLimit 0: the first `fail` aborts). Unless `--slower`, latency
stays healthy: both versions draw from the same bucket shares.

Beside the judge as it is, the same traffic is judged by a prototype of one remedy, not in the analyzer:
recent blocks. The canary's life is cut into blocks of each length in BLOCK_MINUTES; at every answer the
current block of each length is judged too, on its own data (the counts since the block began), and a
fail in any block aborts. Each block's tests are anytime-valid within the block, since its data only
grow; the run's alpha is kept by spending it: half on the cumulative judge, half over the blocks, block
k of each length getting alpha / 2 / lengths / ((k + 1)(k + 2)), which sums to alpha / 2 over every
block a run of any length can have. `--healthy-runs` measures its false aborts over long healthy runs.

    .venv/bin/python bench/late_regressions.py [--runs N] [--seed S] [--extra 0.03] [--slower 0] [--healthy-runs N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass
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
HEALTHY_RUN_MINUTES = 240  # a healthy run, for the prototype's false aborts
BLOCK_MINUTES = (15, 30, 60)  # the prototype's block lengths
# Each request's bucket, the same for both versions: most between 25 and 250 ms.
BUCKET_SHARES = np.array([0.0, 0.01, 0.05, 0.2, 0.5, 0.2, 0.04, 0.0, 0.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class Counts:
    ok: float
    errors: float
    buckets: np.ndarray

    def __sub__(self, earlier: Counts) -> Counts:
        return Counts(self.ok - earlier.ok, self.errors - earlier.errors, self.buckets - earlier.buckets)

    def observed(self) -> Observed:
        cumulative = np.cumsum(self.buckets).tolist()
        histogram = Histogram.from_buckets(zip((*BUCKETS, math.inf), cumulative, strict=True))
        return {Source.REQUESTS: Outcomes(ok=self.ok, errors=self.errors), Source.LATENCY: histogram}


ZERO = Counts(0.0, 0.0, np.zeros(len(BUCKETS) + 1))


def serve(rng: np.random.Generator, counts: Counts, rps: float, error_share: float, slower: float = 0.0) -> Counts:
    """A version's counters since its series began, a minute later; `slower`: the share of its requests
    served one bucket up."""
    requests = rng.poisson(rps * 60)
    errors = rng.binomial(requests, error_share)
    shares = BUCKET_SHARES / BUCKET_SHARES.sum()
    shares = (1 - slower) * shares + slower * np.concatenate(([0.0], shares[:-1]))
    buckets = rng.multinomial(requests, shares)
    return Counts(counts.ok + requests - errors, counts.errors + errors, counts.buckets + buckets)


def fails(alpha: float, canary: Counts, stable: Counts, minutes: int) -> bool:
    request = AnalysisRequest(service="late", alpha=alpha)
    verdict, _ = judged_as_the_server_does(request, Observation(canary.observed(), stable.observed(), minutes * 60))
    return verdict == "fail"


def block_alpha(alpha: float, k: int) -> float:
    """Block k (from 0) of one length: the blocks' half of alpha, shared by the lengths, over k summably."""
    return alpha / 2 / len(BLOCK_MINUTES) / ((k + 1) * (k + 2))


@dataclass
class Run:
    """The first minute each judge fails, or None."""

    cumulative: int | None = None
    with_blocks: int | None = None


def run(
    rng: np.random.Generator, canary_rps: float, onset: int | None, extra: float, minutes: int, slower: float = 0.0
) -> Run:
    """One canary judged each minute by both; it regresses after `onset` minutes (None: never)."""
    alpha = AnalysisRequest(service="late").alpha
    canary, stable = ZERO, ZERO
    began: dict[int, tuple[Counts, Counts]] = {}  # each length's current block: the counts when it began
    result = Run()
    for minute in range(1, minutes + 1):
        for length in BLOCK_MINUTES:
            if (minute - 1) % length == 0:
                began[length] = (canary, stable)
        late = onset is not None and minute > onset
        canary = serve(rng, canary, canary_rps, ERROR_SHARE + (extra if late else 0.0), slower if late else 0.0)
        stable = serve(rng, stable, STABLE_RPS, ERROR_SHARE)
        if result.cumulative is None and fails(alpha, canary, stable, minute):
            result.cumulative = minute
        if result.with_blocks is None and (
            fails(alpha / 2, canary, stable, minute)
            or any(
                fails(block_alpha(alpha, (minute - 1) // length), canary - began[length][0],
                      stable - began[length][1], (minute - 1) % length + 1)
                for length in BLOCK_MINUTES
            )
        ):  # fmt: skip
            result.with_blocks = minute
        if result.cumulative is not None and result.with_blocks is not None:
            break
    return result


def summary(first_fails: list[int | None], onsets: list[int], runs: int) -> str:
    pairs = list(zip(first_fails, onsets, strict=True))
    after = sorted(m - onset for m, onset in pairs if m is not None and m > onset)
    early = sum(1 for m, onset in pairs if m is not None and m <= onset)
    median = f"{statistics.median(after):g}" if after else "-"
    p90 = f"{after[int(0.9 * (len(after) - 1))]}" if after else "-"
    return f"{len(after)}/{runs} | {early} | {median} | {p90}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per case (default 30)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--extra", type=float, default=0.03, help="the 5xx share added at the onset (0.03)")
    parser.add_argument("--slower", type=float, default=0.0, help="the share of requests one bucket slower (0)")
    parser.add_argument("--healthy-runs", type=int, default=0, help="healthy runs of 4 hours per rate (default 0)")
    args = parser.parse_args()
    print(
        f"stable {STABLE_RPS:g} rps at {ERROR_SHARE:.0%} 5xx; from the onset the canary +{args.extra:.0%} 5xx, "
        f"{args.slower:.0%} of its requests a bucket slower"
    )
    print(f"the prototype's blocks: {', '.join(map(str, BLOCK_MINUTES))} minutes")
    print("\n| canary rps | healthy minutes | judge | aborted | before the onset | minutes to abort: median | p90 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for rps in CANARY_RPS:
        for healthy in HEALTHY_MINUTES:
            rng = np.random.default_rng(args.seed)
            onsets = [healthy + int(rng.integers(15)) for _ in range(args.runs)]
            runs = [run(rng, rps, onset, args.extra, onset + HORIZON_MINUTES, args.slower) for onset in onsets]
            for name, first in (("as it is", [r.cumulative for r in runs]), ("blocks", [r.with_blocks for r in runs])):
                print(f"| {rps:g} | {healthy}-{healthy + 14} | {name} | {summary(first, onsets, args.runs)} |")
    if args.healthy_runs:
        print(f"\nhealthy runs of {HEALTHY_RUN_MINUTES} minutes, aborted at all:")
        for rps in CANARY_RPS:
            rng = np.random.default_rng(args.seed)
            runs = [run(rng, rps, None, 0.0, HEALTHY_RUN_MINUTES) for _ in range(args.healthy_runs)]
            as_is = sum(r.cumulative is not None for r in runs)
            blocks = sum(r.with_blocks is not None for r in runs)
            print(f"  {rps:g} rps: as it is {as_is}/{args.healthy_runs}, with blocks {blocks}/{args.healthy_runs}")


if __name__ == "__main__":
    main()
