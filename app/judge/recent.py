"""Recent evidence: the canary's latest minutes judged on their own data, beside its whole life.

Judged on everything since it started, a canary that served well for two hours and then turned bad
is judged on the two hours too: its harm is diluted and seen most of an hour late. So every minute
boundary of the canary's life also starts a *span* that runs to the answer's moment, and each span's
own data are judged by the same tests as the whole life:

- A span keeps its start, so its data only grow from answer to answer, and each check's tests are
  anytime-valid within it, as on the whole life.
- Half of a check's alpha goes to the whole life, the other half is spread over the spans: the span
  that starts k minutes after the canary gets c / ((k + c - 1)(k + c)) of that half (c = SPREAD),
  which sums to one over the minutes of a life of any length (it telescopes), most of it on the first
  hours. So a run of any length, with any number of answers, keeps its bound.
- A span is judged while it is at most SPAN_MINUTES long; a longer one adds little the whole life
  does not see.
- A span only ever fails a check; passes are judged on the whole life.

Spans start at minute boundaries in time, not at answers, so that every replica, restarted or not,
runs the same test of the same span. Judging every span of the last hour through a check's own rule
would cost a millisecond each; a screen per rule first finds, for all spans at once, those whose data
could fail it (a necessary condition, in numpy), and only those go through the rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from app.judge import sequential, statistics
from app.judge.checks import Check, Method, Observed, Source, Statistic
from app.judge.distributions import Histogram, NativeHistogram, Outcomes, RecentTraffic, on_shared_buckets
from app.judge.findings import Finding, Outcome
from app.promql import duration_text

SPAN_MINUTES = 60
SPREAD = 60  # c: the spans of the first c minutes share about half of the recent alpha
MINUTE = 60.0
# The most spans whose screens passed that go through a check's rule on one answer: each costs about a
# millisecond, and the strongest come first.
MAX_CONFIRMED = 4


def span_share(k: int | np.ndarray) -> float | np.ndarray:
    """The share of the recent alpha given to the span that starts k >= 1 minutes after the canary."""
    return SPREAD / ((k + SPREAD - 1) * (k + SPREAD))


@dataclass(frozen=True)
class Counts:
    """One version's counts in each row of a timeline: requests by outcome and latency per bucket."""

    ok: np.ndarray  # (rows,)
    errors: np.ndarray  # (rows,)
    bounds: tuple[float, ...]  # the latency buckets' upper bounds in seconds, +Inf last; () when not measured
    buckets: np.ndarray  # (rows, len(bounds)): requests per bucket, not cumulative

    @classmethod
    def of(cls, observed: Observed) -> Counts:
        """One row: a version's counts over one stretch of time, as measured (nothing: zeros)."""
        outcomes = observed.get(Source.REQUESTS)
        ok, errors = (outcomes.ok, outcomes.errors) if isinstance(outcomes, Outcomes) else (0.0, 0.0)
        latency = observed.get(Source.LATENCY)
        if isinstance(latency, NativeHistogram):
            [latency] = on_shared_buckets(latency)
        bounds = latency.bounds if isinstance(latency, Histogram) else ()
        buckets = np.array([latency.per_bucket()]) if isinstance(latency, Histogram) else np.zeros((1, 0))
        return cls(np.array([ok]), np.array([errors]), bounds, buckets)

    @classmethod
    def stack(cls, parts: Sequence[Counts]) -> Counts:
        """Rows one after the other, latency on the union of their bounds (a row without a bound counts a
        bucket's requests at the next bound up, as the bound it lacks would have split them)."""
        bounds = tuple(sorted({bound for part in parts for bound in part.bounds}))
        if bounds and bounds[-1] != math.inf:
            bounds = (*bounds, math.inf)
        sizes = [len(part.ok) for part in parts]
        buckets = np.zeros((sum(sizes), len(bounds)))
        first = 0
        for part, size in zip(parts, sizes, strict=True):
            if part.bounds:
                buckets[first : first + size, np.searchsorted(bounds, part.bounds)] = part.buckets
            first += size
        ok = np.concatenate([part.ok for part in parts]) if parts else np.zeros(0)
        errors = np.concatenate([part.errors for part in parts]) if parts else np.zeros(0)
        return cls(ok, errors, bounds, buckets)

    def rows(self, rows: np.ndarray) -> Counts:
        return Counts(self.ok[rows], self.errors[rows], self.bounds, self.buckets[rows])

    def less(self, earlier: Counts) -> Counts:
        """Row by row, what these sums counted since the `earlier` ones: a row where any count fell (a series
        restarted or went away in between, and took its past with it) counts nothing, whatever else grew."""
        return self.counted_since(earlier)[0]

    def counted_since(self, earlier: Counts) -> tuple[Counts, np.ndarray]:
        """`less`, and which rows counted: those where no count fell."""
        both = Counts.stack([self, earlier])
        rows = len(self.ok)
        late, early = both.rows(np.arange(rows)), both.rows(np.arange(rows, 2 * rows))
        ok, errors, buckets = late.ok - early.ok, late.errors - early.errors, late.buckets - early.buckets
        # A counter is the count at or under a bucket bound (cumulative), not in a bucket: what may not fall.
        fell = (ok < 0) | (errors < 0) | (np.cumsum(buckets, axis=1) < 0).any(axis=1)
        keep = ~fell
        # A bucket alone may dip, as histogram_quantile's inputs may (Histogram.from_buckets): none is counted.
        return Counts(ok * keep, errors * keep, both.bounds, buckets.clip(min=0) * keep[:, None]), keep

    def since(self) -> Counts:
        """Row r's counts become those of rows r to the last: each span's data."""
        return Counts(_suffix(self.ok), _suffix(self.errors), self.bounds, _suffix(self.buckets))

    def observed(self, row: int) -> Observed:
        """Row r as the rules read it."""
        observed: dict[str, Outcomes | Histogram | None] = {
            Source.REQUESTS: Outcomes(ok=float(self.ok[row]), errors=float(self.errors[row]))
        }
        if self.bounds:
            cumulative = np.cumsum(self.buckets[row]).tolist()
            observed[Source.LATENCY] = Histogram(self.bounds, tuple(cumulative))
        return observed


def with_current(canary: Observed, stable: Observed, timeline: Timeline, seconds: float) -> tuple[Observed, Observed]:
    """Both versions' data with their requests of the last `seconds` beside (Source.CURRENT), from the timeline;
    not for a version without requests in the data judged (no series: nothing is known of it, not even 0)."""
    now = timeline.current(seconds)
    return tuple(  # type: ignore[return-value]
        {**observed, Source.CURRENT: current} if observed.get(Source.REQUESTS) is not None else dict(observed)
        for observed, current in zip((canary, stable), now, strict=True)
    )


def _last_served(requests: np.ndarray, ends: np.ndarray) -> float | None:
    served = np.flatnonzero(requests > 0)
    return float(ends[served[-1]]) if len(served) else None


def _suffix(values: np.ndarray) -> np.ndarray:
    return np.flip(np.cumsum(np.flip(values, axis=0), axis=0), axis=0)


@dataclass(frozen=True)
class Timeline:
    """Both versions' counts in consecutive rows: whole minutes, the last one up to the answer's moment.

    Row r covers (starts[r], starts[r + 1]], the last (starts[-1], end]; every start is a minute
    boundary. `canary_start` is the moment the whole life is judged from; None when it is not known (a
    canary older than the look-back): no span is judged then, its share of alpha unknown."""

    canary_start: float | None
    starts: tuple[float, ...]
    end: float
    canary: Counts
    stable: Counts

    def __post_init__(self) -> None:
        rows = len(self.starts)
        for counts in (self.canary, self.stable):
            if counts.ok.shape != (rows,) or counts.buckets.shape[0] != rows:
                raise ValueError(f"a timeline of {rows} rows with counts of another length")

    @functools.cached_property
    def span_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows recent spans start at (after the canary's start, at most SPAN_MINUTES long), and the minute
        of the canary's life each starts at."""
        if self.canary_start is None:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        starts = np.asarray(self.starts)
        minutes = np.round((starts - self.canary_start) / MINUTE).astype(int)
        seconds = self.end - starts
        rows = np.flatnonzero((minutes >= 1) & (seconds > 0) & (seconds <= SPAN_MINUTES * MINUTE))
        return rows, minutes[rows]

    @functools.cached_property
    def since(self) -> tuple[Counts, Counts]:
        """Each version's counts from each row to the last: every span's data."""
        return self.canary.since(), self.stable.since()

    def current(self, seconds: float) -> tuple[RecentTraffic, RecentTraffic]:
        """Each version's requests in the rows that lie within the last `seconds` (at least the last row),
        and when it last served a request (the end of the last row it served in)."""
        starts, ends = np.array(self.starts), np.array([*self.starts[1:], self.end])
        recent = starts >= min(self.end - seconds, starts[-1])
        covered = self.end - float(starts[recent][0])
        canary, stable = self.canary.ok + self.canary.errors, self.stable.ok + self.stable.errors
        canary_last, stable_last = _last_served(canary, ends), _last_served(stable, ends)

        def traffic(requests: np.ndarray, last: float | None, others_last: float | None) -> RecentTraffic:
            meanwhile = float(requests[ends > others_last].sum()) if others_last is not None else None
            return RecentTraffic(float(requests[recent].sum()), covered, last, meanwhile)

        return traffic(canary, canary_last, stable_last), traffic(stable, stable_last, canary_last)


@dataclass(frozen=True)
class Span:
    """A recent span: (since, end], the k-th minute after the canary started, and its share of alpha."""

    since: float
    seconds: float
    minute: int
    alpha: float


@dataclass(frozen=True)
class RecentFinding:
    """A check failed on a recent span alone."""

    finding: Finding
    span: Span
    canary: Observed  # the span's data, as the rule read them
    stable: Observed


def spans(timeline: Timeline, alpha: float) -> list[tuple[int, Span]]:
    """The spans judged at this answer, by the row they start at: those starting after the canary,
    at most SPAN_MINUTES long; `alpha` is the check's recent half, spread over them."""
    rows, minutes = timeline.span_rows
    starts = np.asarray(timeline.starts)
    return [
        (int(row), Span(float(starts[row]), timeline.end - float(starts[row]), int(minute), alpha * span_share(minute)))
        for row, minute in zip(rows, minutes, strict=True)
    ]


Rule = Callable[[Check, float, Observed, Observed, str, float], Finding]


def judged(check: Check, limit: float, timeline: Timeline, alpha: float, rule: Rule) -> RecentFinding | None:
    """The recent span on which `check` fails, if any: the one whose screen was strongest among those its
    rule confirms. `rule(check, limit, canary, stable, window, alpha)` is the check's own statistical rule at
    a span's alpha, the same as on the whole life."""
    for found in _findings(check, limit, timeline, alpha, rule, MAX_CONFIRMED, only_possible=True):
        if found.finding.outcome is Outcome.FAIL:
            return found
    return None


def strongest(check: Check, limit: float, timeline: Timeline, alpha: float, rule: Rule) -> RecentFinding | None:
    """The recent span closest to failing `check`, as its rule finds it, failed or not: what a person looks at
    to see when the canary turned."""
    return next(_findings(check, limit, timeline, alpha, rule, 1, only_possible=False), None)


def _findings(
    check: Check, limit: float, timeline: Timeline, alpha: float, rule: Rule, most: int, only_possible: bool
) -> Iterator[RecentFinding]:
    """The rule's findings on the spans, strongest screen first: at most `most`, and only those whose screen
    passed when `only_possible`."""
    screen = SCREENS.get((check.method, check.statistic))
    if screen is None or check.queries is not None:
        return  # a user check's own queries are not kept minute by minute
    rows, minutes = timeline.span_rows
    if not len(rows):
        return
    alphas = alpha * span_share(minutes)
    canary, stable = timeline.since
    margins = screen(check, limit, canary.rows(rows), stable.rows(rows), alphas)
    for index in np.argsort(-margins)[:most]:
        if only_possible and not margins[index] > 0:
            return
        row, minute = int(rows[index]), int(minutes[index])
        since = timeline.starts[row]
        span = Span(since, timeline.end - since, minute, float(alphas[index]))
        canary_seen, stable_seen = canary.observed(row), stable.observed(row)
        finding = rule(check, limit, canary_seen, stable_seen, duration_text(span.seconds), span.alpha)
        yield RecentFinding(finding, span, canary_seen, stable_seen)


# --- screens: for every span at once, could the rule fail the check on it? --------------------------
# Each returns, per span, a margin that is positive only where the rule may fail: the log e-value over
# log(1 / alpha), or the statistic over its critical value. Necessary, never sufficient: the rule decides.

Screen = Callable[[Check, float, Counts, Counts, np.ndarray], np.ndarray]


def _bad(check: Check, counts: Counts) -> np.ndarray:
    """The requests that count against a version: errors, or the good ones where lower is worse."""
    return counts.ok if check.bound.lower_is_worse else counts.errors


def _share_margin(k: np.ndarray, n: np.ndarray, q: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    return sequential.share_log_e_values(k, n, q) + np.log(alphas)


def _share_slo(check: Check, limit: float, canary: Counts, _: Counts, alphas: np.ndarray) -> np.ndarray:
    """The share's own e-process against the limit: the rule's whole test."""
    q = 1 - limit if check.bound.lower_is_worse else limit
    return _share_margin(_bad(check, canary), canary.ok + canary.errors, np.full(len(alphas), q), alphas)


def _share_vs_stable(check: Check, limit: float, canary: Counts, stable: Counts, alphas: np.ndarray) -> np.ndarray:
    """The rule's exact half: the canary's e-process against the stable's share plus the margin."""
    n_stable = stable.ok + stable.errors
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.minimum(np.where(n_stable > 0, _bad(check, stable) / n_stable, np.nan) + limit, 1.0)
    margins = _share_margin(_bad(check, canary), canary.ok + canary.errors, np.nan_to_num(q, nan=1.0), alphas)
    return np.where(n_stable > 0, margins, -np.inf)


def _latency_slo(check: Check, limit: float, canary: Counts, _: Counts, alphas: np.ndarray) -> np.ndarray:
    """The requests over the bucket bound at or under the SLO are at least those over the SLO."""
    assert check.quantile is not None
    finite = [b for b in canary.bounds if math.isfinite(b)]
    at_or_under = [i for i, b in enumerate(finite) if b <= limit or math.isclose(b, limit, rel_tol=1e-9)]
    first_over = at_or_under[-1] + 1 if at_or_under else 0
    over = canary.buckets[:, first_over:].sum(axis=1)
    n = canary.buckets.sum(axis=1)
    return _share_margin(over, n, np.full(len(alphas), 1 - check.quantile), alphas)


def _latency_vs_stable(check: Check, limit: float, canary: Counts, stable: Counts, alphas: np.ndarray) -> np.ndarray:
    """Brunner-Munzel of the canary against the stable scaled by the limit, against a critical value no
    higher than the rule's (the mixture boundary taken in closed form)."""
    if canary.bounds != stable.bounds or len(canary.bounds) < 2:
        return np.full(len(alphas), np.inf)  # histograms the screen cannot line up: the rule decides
    moves = statistics._moves(canary.bounds, (math.log(limit),))[0]
    scaled = stable.buckets @ moves
    with np.errstate(divide="ignore", invalid="ignore"):  # a span without requests of one version: left out below
        _, statistic, df = statistics._brunner_munzel(scaled, canary.buckets)
    n_canary, n_stable = canary.buckets.sum(axis=1), stable.buckets.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        looked = n_canary * n_stable / (n_canary + n_stable)
    at_least = sequential.normal_boundary_at_least(np.nan_to_num(looked), alphas)
    with np.errstate(invalid="ignore"):
        critical = special.stdtrit(df, special.ndtr(at_least))
        return np.where((n_canary > 1) & (n_stable > 1), statistic - critical, -np.inf)


SCREENS: dict[tuple[Method, Statistic], Screen] = {
    (Method.BINOMIAL, Statistic.ERROR_RATE): _share_slo,
    (Method.BINOMIAL, Statistic.QUANTILE): _latency_slo,
    (Method.TWO_PROPORTIONS, Statistic.ERROR_RATE): _share_vs_stable,
    (Method.RANK_SHIFT, Statistic.QUANTILE): _latency_vs_stable,
}
