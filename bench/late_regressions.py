"""How long a regression that starts late in a canary's life runs before it is aborted: the analyzer's
background analysis beside the rules people run today, on the same traffic (bench/README.md, "Late
regressions").

In process, without Prometheus: each minute the canary and the stable serve Poisson counts; from an
onset drawn evenly (to the second) in the quarter hour after `healthy` minutes, the canary's 5xx share
steps up `--extra` and a `--slower` share of its requests is served one bucket slower (the minute of
the onset is bad from the onset on). Every judge is asked at each minute boundary, and the first
failed answer that its rules turn into an abort is the abort:

- `analyzer`: the shipped background template (every minute, failureLimit 0) asking the judge as the
  server asks it (app/calibration/replay.py), with the default request and the canary's recent minutes
  (app/judge/recent.py);
- `argo-success-rate`: Argo Rollouts' Prometheus provider as its documentation shows it: the success
  rate over 5m, measured every 5 minutes, `successCondition: result[0] >= 0.95`, `failureLimit: 3`;
- `argo-p95`: the same provider and cadence holding the P95 of `histogram_quantile` over 5m to the
  analyzer's SLO (300 ms);
- `flagger`: Flagger's built-in checks at their documented defaults: request success rate >= 99 % and
  request duration (P99) <= 500 ms, each over 1m, every minute, rolled back at the 5th failed check;
  `flagger-98` the same with its success rate at the analyzer's error SLO (98 %), as a team whose stable
  errs 1 % would set it;
- `oracle`: a CUSUM that knows the canary's counts' distribution before and after the change (the
  floor of detection delay), its threshold set so that 1 % of healthy 4-hour runs alarm.

`--healthy-runs N` adds N healthy runs of 4 hours per rate: how many each judge aborts.

    .venv/bin/python bench/late_regressions.py [--runs N] [--seed S] [--extra 0.03] [--slower 0] [--healthy-runs N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.calibration.replay import Observation, judged_as_the_server_does
from app.judge.checks import Observed, Source
from app.judge.distributions import Histogram, Outcomes
from app.judge.recent import SPAN_MINUTES, Counts, Timeline
from app.models import AnalysisRequest
from bench.populations import BUCKETS

STABLE_RPS, ERROR_SHARE = 20.0, 0.01
CANARY_RPS = (3.0, 10.0)
HEALTHY_MINUTES = (0, 15, 30, 60, 120)
HORIZON_MINUTES = 120  # after the onset: how long a run lasts at most
HEALTHY_RUN_MINUTES = 240
BOUNDS = (*BUCKETS, math.inf)
# Each request's bucket, the same for both versions: most between 25 and 250 ms.
BUCKET_SHARES = np.array([0.0, 0.01, 0.05, 0.2, 0.5, 0.2, 0.04, 0.0, 0.0, 0.0, 0.0, 0.0])
ORACLE_FALSE_ALARMS = 0.01  # of healthy 4-hour runs: the oracle's threshold


def shares(slower: float) -> np.ndarray:
    """Each bucket's share of requests when a `slower` share of them is served one bucket up."""
    base = BUCKET_SHARES / BUCKET_SHARES.sum()
    return (1 - slower) * base + slower * np.concatenate(([0.0], base[:-1]))


@dataclass(frozen=True)
class Traffic:
    """One version's counts in each minute of a run: minute m (from 0) ends at (m + 1) * 60 s."""

    ok: np.ndarray
    errors: np.ndarray
    buckets: np.ndarray  # (minutes, buckets)

    def observed(self, first: int, last: int) -> Observed:
        """Minutes first..last-1 as the judge reads them."""
        cumulative = np.cumsum(self.buckets[first:last].sum(axis=0)).tolist()
        outcomes = Outcomes(ok=float(self.ok[first:last].sum()), errors=float(self.errors[first:last].sum()))
        return {Source.REQUESTS: outcomes, Source.LATENCY: Histogram(BOUNDS, tuple(cumulative))}

    def counts(self, first: int, last: int) -> Counts:
        return Counts(self.ok[first:last], self.errors[first:last], BOUNDS, self.buckets[first:last])


def serve(
    rng: np.random.Generator, rps: float, minutes: int, onset: float | None, extra: float, slower: float
) -> Traffic:
    """A version's minutes; from `onset` (minutes, None: never) it errs `extra` more, `slower` a bucket up."""
    requests = rng.poisson(rps * 60, minutes)
    # The part of each minute after the onset: 0 before it, 1 after, the rest in the minute it falls in.
    bad = np.zeros(minutes) if onset is None else np.clip(np.arange(1, minutes + 1) - onset, 0.0, 1.0)
    late = rng.binomial(requests, bad)
    early = requests - late
    errors = rng.binomial(early, ERROR_SHARE) + rng.binomial(late, ERROR_SHARE + extra)
    buckets = np.array([rng.multinomial(n, shares(0.0)) for n in early]) + np.array(
        [rng.multinomial(n, shares(slower)) for n in late]
    )
    return Traffic((requests - errors).astype(float), errors.astype(float), buckets.astype(float))


def pair(
    rng: np.random.Generator, rps: float, minutes: int, onset: float | None, extra: float, slower: float
) -> tuple[Traffic, Traffic]:
    """A canary and its stable, which serves STABLE_RPS healthily throughout."""
    return serve(rng, rps, minutes, onset, extra, slower), serve(rng, STABLE_RPS, minutes, None, 0.0, 0.0)


# --- the judges: at which minute boundary each aborts, or None -------------------------------------

Judge = Callable[[Traffic, Traffic], int | None]


def analyzer(canary: Traffic, stable: Traffic) -> int | None:
    """The background template: every minute, the first `fail` aborts."""
    request = AnalysisRequest(service="late")
    for minute in range(1, len(canary.ok) + 1):
        first = max(0, minute - SPAN_MINUTES)
        timeline = Timeline(
            canary_start=0.0,
            starts=tuple(60.0 * m for m in range(first, minute)),
            end=60.0 * minute,
            canary=canary.counts(first, minute),
            stable=stable.counts(first, minute),
        )
        seen = Observation(canary.observed(0, minute), stable.observed(0, minute), minute * 60, timeline)
        if judged_as_the_server_does(request, seen).verdict == "fail":
            return minute
    return None


def _success_rate(traffic: Traffic, first: int, last: int) -> float:
    ok, errors = traffic.ok[first:last].sum(), traffic.errors[first:last].sum()
    return ok / (ok + errors) if ok + errors > 0 else math.nan


def _quantile(traffic: Traffic, q: float, first: int, last: int) -> float:
    return Histogram(BOUNDS, tuple(np.cumsum(traffic.buckets[first:last].sum(axis=0)).tolist())).quantile(q)


def _counting(every: int, window: int, failed_checks: int, failed: Callable[[Traffic, int, int], bool]) -> Judge:
    """A rule measured every `every` minutes on the last `window`, aborting at the `failed_checks`-th failure."""

    def judge(canary: Traffic, _: Traffic) -> int | None:
        failures = 0
        for minute in range(every, len(canary.ok) + 1, every):
            failures += failed(canary, max(0, minute - window), minute)
            if failures >= failed_checks:
                return minute
        return None

    return judge


def _success_rate_below(minimum: float) -> Callable[[Traffic, int, int], bool]:
    # NaN (no requests) fails the condition too, as Argo and Flagger evaluate it.
    return lambda traffic, first, last: not _success_rate(traffic, first, last) >= minimum


def _quantile_over(q: float, maximum: float) -> Callable[[Traffic, int, int], bool]:
    return lambda traffic, first, last: not _quantile(traffic, q, first, last) <= maximum


ARGO_SUCCESS_RATE = _counting(5, 5, 4, _success_rate_below(0.95))
ARGO_P95 = _counting(5, 5, 4, _quantile_over(0.95, AnalysisRequest(service="x").limits()["p95_latency"]))


def _flagger(success_rate_min: float) -> Judge:
    return _counting(
        1, 1, 5, lambda traffic, first, last: _success_rate_below(success_rate_min)(traffic, first, last)
        or _quantile_over(0.99, 0.5)(traffic, first, last)
    )  # fmt: skip


FLAGGER = _flagger(0.99)
# Its success rate set to the analyzer's error SLO (2 %), as a team whose stable errs 1 % would set it.
FLAGGER_AT_THE_SLO = _flagger(1 - AnalysisRequest(service="x").limits()["error_rate"])


@dataclass(frozen=True)
class Oracle:
    """CUSUM of the canary's per-minute log likelihood ratio, after the change against before: it knows
    both distributions exactly, which no real judge does."""

    extra: float
    slower: float
    threshold: float

    def scores(self, canary: Traffic) -> np.ndarray:
        p0, p1 = ERROR_SHARE, ERROR_SHARE + self.extra
        errors = canary.errors * math.log(p1 / p0) + canary.ok * math.log((1 - p1) / (1 - p0))
        before, after = shares(0.0), shares(self.slower)
        used = before > 0
        latency = canary.buckets[:, used] @ np.log(after[used] / before[used])
        return errors + latency

    def __call__(self, canary: Traffic, _: Traffic) -> int | None:
        crossed = np.flatnonzero(_cusum(self.scores(canary)) > self.threshold)
        return int(crossed[0]) + 1 if len(crossed) else None


def _cusum(scores: np.ndarray) -> np.ndarray:
    statistic, path = 0.0, np.empty(len(scores))
    for i, score in enumerate(scores):
        statistic = max(0.0, statistic + score)
        path[i] = statistic
    return path


def oracle_for(rng: np.random.Generator, rps: float, extra: float, slower: float, runs: int = 2000) -> Oracle:
    """The threshold that 1 % of healthy 4-hour runs pass (it may be 0: a latency shift that healthy minutes
    all but never look like)."""
    probe = Oracle(extra, slower, math.inf)
    highest = [_cusum(probe.scores(serve(rng, rps, HEALTHY_RUN_MINUTES, None, 0.0, 0.0))).max() for _ in range(runs)]
    return Oracle(extra, slower, float(np.quantile(highest, 1 - ORACLE_FALSE_ALARMS)))


# --- the study --------------------------------------------------------------------------------------


def judges_for(oracle: Oracle) -> dict[str, Judge]:
    return {
        "analyzer": analyzer,
        "argo-success-rate": ARGO_SUCCESS_RATE,
        "argo-p95": ARGO_P95,
        "flagger": FLAGGER,
        "flagger-98": FLAGGER_AT_THE_SLO,
        "oracle": oracle,
    }


def summary(aborts: list[int | None], onsets: list[float]) -> str:
    pairs = list(zip(aborts, onsets, strict=True))
    after = sorted(m - onset for m, onset in pairs if m is not None and m > onset)
    early = sum(1 for m, onset in pairs if m is not None and m <= onset)
    median = f"{statistics.median(after):.1f}" if after else "-"
    p90 = f"{after[int(0.9 * (len(after) - 1))]:.1f}" if after else "-"
    return f"{len(after)}/{len(pairs)} | {early} | {median} | {p90}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="runs per case (default 30)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--extra", type=float, default=0.03, help="the 5xx share added at the onset (0.03)")
    parser.add_argument("--slower", type=float, default=0.0, help="the share of requests one bucket slower (0)")
    parser.add_argument("--healthy-runs", type=int, default=0, help="healthy runs of 4 hours per rate (default 0)")
    parser.add_argument("--judges", nargs="+", help="only these judges")
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"stable {STABLE_RPS:g} rps at {ERROR_SHARE:.0%} 5xx; from the onset the canary +{args.extra:.0%} 5xx, "
        f"{args.slower:.0%} of its requests a bucket slower; {args.runs} runs per case, seed {args.seed}"
    )
    print("\n| canary rps | healthy minutes | judge | aborted | before the onset | minutes to abort: median | p90 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    oracles = {rps: oracle_for(np.random.default_rng(args.seed), rps, args.extra, args.slower) for rps in CANARY_RPS}
    for rps in CANARY_RPS:
        judges = {k: v for k, v in judges_for(oracles[rps]).items() if not args.judges or k in args.judges}
        for healthy in HEALTHY_MINUTES:
            rng = np.random.default_rng(args.seed)
            onsets = [healthy + float(rng.uniform(0, 15)) for _ in range(args.runs)]
            runs = [
                pair(rng, rps, math.ceil(onset) + HORIZON_MINUTES, onset, args.extra, args.slower) for onset in onsets
            ]
            for name, judge in judges.items():
                aborts = [judge(canary, stable) for canary, stable in runs]
                print(f"| {rps:g} | {healthy}-{healthy + 15} | {name} | {summary(aborts, onsets)} |")
    print(f"\noracle thresholds (nats): {', '.join(f'{rps:g} rps {o.threshold:.2f}' for rps, o in oracles.items())}")
    if args.healthy_runs:
        print(f"\nhealthy runs of {HEALTHY_RUN_MINUTES} minutes, aborted:")
        for rps in CANARY_RPS:
            rng = np.random.default_rng(args.seed + 1)
            runs = [pair(rng, rps, HEALTHY_RUN_MINUTES, None, 0.0, 0.0) for _ in range(args.healthy_runs)]
            judges = {k: v for k, v in judges_for(oracles[rps]).items() if not args.judges or k in args.judges}
            counts = {name: sum(judge(c, s) is not None for c, s in runs) for name, judge in judges.items()}
            print(f"  {rps:g} rps: " + ", ".join(f"{name} {n}/{len(runs)}" for name, n in counts.items()))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
