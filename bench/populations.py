"""Populations of canary/stable pairs whose truth is known, for benchmarking the judge's verdicts.

Pure and deterministic: a seed and a start time give the same cases, the same counters and
the same OpenMetrics text on every machine. No I/O: the runner (bench/judgment_quality.py)
backfills the text with promtool; `window_counts` answers, in process, what a window of those
counters holds, so statistics can be tuned without Prometheus.

What a case looks like follows /work/shared/docs/rollouts-in-practice.md: the stable has served
for an hour, the canary's pods became ready seconds to a minute (`fresh`: a step analysis at the
first step) or 10 to 40 minutes (`warm`: a run started at a later step) before the analysis run
started, each version's series begin at its first scrape with counters at zero, and latency is
skewed, sometimes bimodal or piled up at a timeout, and drifts with the stable. When Argo
measures is the template's business: a `Schedule` (initialDelay, interval, how many
measurements) gives each case its polls, and the counters cover every one of them.

`first_release_population` is the other question: a service's first release, no stable at all,
judged on its SLOs alone, its true P95 drawn around the SLO.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from app.calibration.argo import Schedule

# Prometheus' default histogram buckets (client libraries' too); the last one is +Inf.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LE_LABELS = (*(f"{bound}" for bound in BUCKETS), "+Inf")  # as app/demo/traffic.py writes them

REQUESTS_METRIC = "http_requests_total"
DURATION_METRIC = "http_request_duration_seconds"
SERVICE_LABEL, VERSION_LABEL, STATUS_LABEL = "service", "version", "status"
CANARY, STABLE = "canary", "stable"
VERSIONS = (CANARY, STABLE)
OK, CLIENT_ERROR, SERVER_ERROR = "200", "404", "500"
STATUSES = (OK, CLIENT_ERROR, SERVER_ERROR)

HEALTHY, SLOW, ERRORS, THIN = "healthy", "slow", "errors", "thin"
CLASSES = (HEALTHY, SLOW, ERRORS, THIN)
FIRST_RELEASE = "first-release"  # the class of every case of first_release_population()
SLOW_FACTOR = 1.25  # every canary request of a `slow` case takes this much longer
EXTRA_ERROR_SHARE = 0.03  # an `errors` canary's 5xx share is the stable's plus this

WINDOW_SECONDS = 300.0  # the shipped templates' `window` argument: window_counts()' default
STABLE_HISTORY_SECONDS = 3600.0
# Prometheus' instant-vector lookback: a series is present at a moment if it has a sample this
# long before it, or less.
LOOKBACK_SECONDS = 300.0
SCRAPE_INTERVALS = (15.0, 30.0, 60.0)

CANARY_RPS_RANGE = (0.1, 40.0)  # log-uniform
THIN_RPS_RANGE = (0.01, 0.1)  # log-uniform: at most ~30 requests in a 5m window
CANARY_WEIGHT_RANGE = (0.05, 0.25)  # the canary's share of the service's traffic
FRESH, WARM = "fresh", "warm"
AGES = (FRESH, WARM)
# How long before the analysis run starts the canary's pods became ready, by the canary's age:
# `fresh` at the first step's analysis, `warm` for a run that starts at a later step.
CANARY_READY_BEFORE_RUN = {FRESH: (5.0, 60.0), WARM: (600.0, 2400.0)}
MEDIAN_RANGE = (0.010, 0.300)  # seconds, log-uniform
ERROR_SHARE_RANGE = (0.001, 0.03)  # 5xx, log-uniform
CLIENT_ERROR_SHARE_RANGE = (0.002, 0.08)  # 4xx, log-uniform
DRIFT_SHARE = 0.5  # of the cases whose latency drifts during the hour
DRIFT_MAX = 0.15  # the drift multiplier stays within 1 ± this
DRIFT_PERIOD_RANGE = (2 * 3600.0, 8 * 3600.0)  # a slow, time-of-day-like wave

LOGNORMAL, BIMODAL, GAMMA, TIMEOUT = "lognormal", "bimodal", "gamma", "timeout"
SLOW_MODE = "slow-mode"  # a bulk and a few percent of requests several times slower (first releases)
MIXTURES = (BIMODAL, SLOW_MODE)  # two lognormal modes: the fast one's `median`, the slow one's `miss_*`
SHAPE_WEIGHTS = {LOGNORMAL: 0.4, BIMODAL: 0.25, GAMMA: 0.2, TIMEOUT: 0.15}
TIMEOUT_VALUES = (1.0, 2.0, 3.0, 5.0, 10.0)

# First releases: no stable, one latency SLO for every case, the canary's true P95 drawn around it.
FIRST_RELEASE_P95_SLO = 0.3  # seconds: inside the (0.25, 0.5] bucket, as SLOs often are
FIRST_RELEASE_P95_RATIO_RANGE = (0.5, 2.5)  # true P95 / SLO, log-uniform
FIRST_RELEASE_SHAPE_WEIGHTS = {LOGNORMAL: 0.25, BIMODAL: 0.2, GAMMA: 0.15, TIMEOUT: 0.15, SLOW_MODE: 0.25}
SLOW_MODE_SHARE_RANGE = (0.02, 0.08)
SLOW_MODE_FACTOR_RANGE = (3.0, 10.0)
# The error SLO: this many times the canary's 5xx share, at least the floor, so that only latency decides.
FIRST_RELEASE_ERROR_SLO_FACTOR = 10.0
FIRST_RELEASE_ERROR_SLO_FLOOR = 0.1
# True P95 / SLO bands the report gives (upper edges; the last is open).
P95_BANDS = (("<=0.8x", 0.8), ("0.8-1.0x", 1.0), ("1.0-1.25x", 1.25), ("1.25-1.5x", 1.5), (">=1.5x", math.inf))
# Far enough out that every shape's CDF is 1 there, finite so that no inf * 0 appears.
BEYOND_ANY_LATENCY = 1e9

_erf = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.asarray(_erf(z / math.sqrt(2.0)), dtype=float))


@dataclass(frozen=True)
class LatencyShape:
    """A skewed latency distribution, exact CDF and partial mean, before drift and slowdown.

    `lognormal`: median, sigma. `bimodal`: a cache hit/miss mixture, hits lognormal(median,
    sigma), a `miss_share` lognormal(median * miss_factor, miss_sigma); `slow-mode` is the same
    mixture with a slow mode of a few percent (retries, fallbacks). `gamma`: Erlang with an
    integer `gamma_shape` (closed-form CDF), scaled to the median. `timeout`: lognormal, with a
    `timeout_share` of requests and every request slower than `timeout_seconds` cut there.
    """

    kind: str
    median: float
    sigma: float = 0.5
    miss_share: float = 0.0
    miss_factor: float = 1.0
    miss_sigma: float = 0.3
    gamma_shape: int = 2
    timeout_seconds: float | None = None  # `timeout` only
    timeout_share: float = 0.0

    def cdf(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        """P(latency <= x) when every request takes `scale` times as long (timeouts excepted)."""
        x = np.asarray(x, dtype=float)
        below = self._base_cdf(x / scale)
        if self.timeout_seconds is None:
            return below
        return np.where(x >= self.timeout_seconds, 1.0, (1.0 - self.timeout_share) * below)

    def partial_mean(self, x: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
        """E[latency; latency <= x]: what requests at or under x add to the `_sum`."""
        x = np.asarray(x, dtype=float)
        below = scale * self._base_partial_mean(x / scale)
        if self.timeout_seconds is None:
            return below
        timeout, share = self.timeout_seconds, self.timeout_share
        cut = np.asarray(timeout / np.asarray(scale, dtype=float))
        # Past the timeout: the requests under it, the slower ones cut to it, and the pile at it.
        whole = (1.0 - share) * (
            scale * self._base_partial_mean(cut) + timeout * (1.0 - self._base_cdf(cut))
        ) + share * timeout
        return np.where(x >= timeout, whole, (1.0 - share) * below)

    def _base_cdf(self, x: np.ndarray) -> np.ndarray:
        if self.kind in MIXTURES:
            hits = _lognormal_cdf(x, self.median, self.sigma)
            misses = _lognormal_cdf(x, self.median * self.miss_factor, self.miss_sigma)
            return (1.0 - self.miss_share) * hits + self.miss_share * misses
        if self.kind == GAMMA:
            return _erlang_cdf(x, self.gamma_shape, self._gamma_scale())
        return _lognormal_cdf(x, self.median, self.sigma)

    def _base_partial_mean(self, x: np.ndarray) -> np.ndarray:
        if self.kind in MIXTURES:
            hits = _lognormal_partial_mean(x, self.median, self.sigma)
            misses = _lognormal_partial_mean(x, self.median * self.miss_factor, self.miss_sigma)
            return (1.0 - self.miss_share) * hits + self.miss_share * misses
        if self.kind == GAMMA:
            theta = self._gamma_scale()
            # x * f_k(x) integrates to k * theta * F_{k+1}(x).
            return self.gamma_shape * theta * _erlang_cdf(x, self.gamma_shape + 1, theta)
        return _lognormal_partial_mean(x, self.median, self.sigma)

    def _gamma_scale(self) -> float:
        # Wilson-Hilferty: the median of gamma(k, theta) is about k * theta * (1 - 1/(9k))^3.
        k = self.gamma_shape
        return self.median / (k * (1.0 - 1.0 / (9.0 * k)) ** 3)


def _lognormal_cdf(x: np.ndarray, median: float, sigma: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return _normal_cdf((np.log(x) - math.log(median)) / sigma)


def _lognormal_partial_mean(x: np.ndarray, median: float, sigma: float) -> np.ndarray:
    mu = math.log(median)
    with np.errstate(divide="ignore"):
        return math.exp(mu + sigma * sigma / 2.0) * _normal_cdf((np.log(x) - mu - sigma * sigma) / sigma)


def _erlang_cdf(x: np.ndarray, shape: int, theta: float) -> np.ndarray:
    y = np.asarray(x, dtype=float) / theta
    term = np.ones_like(y)
    series = np.ones_like(y)
    for n in range(1, shape):
        term = term * y / n
        series = series + term
    return np.clip(1.0 - np.exp(-y) * series, 0.0, 1.0)


@dataclass(frozen=True)
class Drift:
    """The service's latency multiplier over time, the same for canary and stable at each moment."""

    amplitude: float = 0.0  # the multiplier stays within 1 ± amplitude
    period_seconds: float = 86400.0
    phase: float = 0.0
    origin: float = 0.0  # unix seconds the phase is counted from, so a case does not depend on its start

    def factor(self, t: np.ndarray | float) -> np.ndarray:
        angle = 2.0 * math.pi * (np.asarray(t) - self.origin) / self.period_seconds + self.phase
        return 1.0 + self.amplitude * np.sin(angle)


# The shipped step template's schedule (initialDelay 2m, interval 1m, count 5): the default.
STEP_SCHEDULE = Schedule(initial_delay=120.0, interval=60.0, measurements=5)


@dataclass(frozen=True)
class Case:
    """One analysis run of a rollout: a service, its canary and stable, and the run's polls.

    `case_class` is the truth the judge should find: `healthy` (canary = stable), `slow`
    (every canary request SLOW_FACTOR slower), `errors` (canary 5xx share + EXTRA_ERROR_SHARE)
    or `thin` (too little canary traffic to tell; its canary is one of the other three, drawn
    at random, in `canary_latency_factor` and `canary_extra_error_share`); `first-release`
    cases have no stable (`stable_first_scrape` None, no series) and carry their own SLOs,
    so the truth is where the canary's true P95 lies against `slo_p95_seconds` (p95_band()).
    `age` says how long before the run started the canary's pods became ready (AGES).
    Times are unix seconds.
    """

    service: str
    case_class: str
    canary_rps: float
    stable_rps: float
    scrape_interval: float
    latency: LatencyShape
    error_share: float  # 5xx share of the stable (and of a canary without extra errors)
    client_error_share: float  # 4xx: not errors of the service
    drift: Drift
    stable_first_scrape: float | None  # None: there is no stable (a first release)
    canary_ready: float
    canary_first_scrape: float
    run_start: float  # when the AnalysisRun started: the first poll is the schedule's initial delay later
    polls: tuple[float, ...]
    seed: int
    canary_latency_factor: float = 1.0
    canary_extra_error_share: float = 0.0
    age: str = FRESH
    slo_p95_seconds: float | None = None  # SLOs fixed by the population; None: slos() derives them
    slo_error_rate: float | None = None

    @property
    def canary_truth(self) -> str:
        """What the canary really is: healthy, slow or errors (for `thin` too)."""
        if self.canary_latency_factor != 1.0:
            return SLOW
        return ERRORS if self.canary_extra_error_share > 0 else HEALTHY

    @property
    def has_stable(self) -> bool:
        return self.stable_first_scrape is not None

    @property
    def last_scrape_deadline(self) -> float:
        return self.polls[-1]


@dataclass(frozen=True)
class VersionCounters:
    """One version's cumulative counters at each of its scrapes (all series begin at 0)."""

    times: np.ndarray  # scrape timestamps, unix seconds (millisecond precision)
    requests: dict[str, np.ndarray]  # by status
    buckets: np.ndarray  # (scrapes, len(LE_LABELS)): requests at or under each bound, +Inf last
    latency_sum: np.ndarray

    @property
    def count(self) -> np.ndarray:
        return self.buckets[:, -1]


@dataclass(frozen=True)
class CaseTraffic:
    """A case and the counters synthesised for it: no STABLE entry when the case has no stable."""

    case: Case
    versions: dict[str, VersionCounters] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowCounts:
    """What a window of the counters holds: the in-process stand-in for Prometheus' `increase()`."""

    buckets: np.ndarray  # requests at or under each bound of LE_LABELS (cumulative by le)
    requests_by_status: dict[str, int]
    latency_sum: float

    @property
    def requests(self) -> int:
        return sum(self.requests_by_status.values())

    @property
    def errors(self) -> int:
        """5xx: the errors of the service (4xx are the clients')."""
        return self.requests_by_status[SERVER_ERROR]

    @property
    def ok(self) -> int:
        return self.requests - self.errors


def population(
    cases_per_class: int,
    seed: int,
    start: float,
    spread_seconds: float = 3600.0,
    schedule: Schedule = STEP_SCHEDULE,
    ages: Sequence[str] = (FRESH,),
) -> list[Case]:
    """`cases_per_class` cases of each class, in class order, the first polls spread over
    `spread_seconds` after `start` + an hour of stable history (so no time is before `start`),
    each polled on `schedule`. Ages take turns within each class (`ages[index % len(ages)]`)
    and take no draw of their own: every other draw is the same whatever the ages, so with
    the default schedule and ages a seed gives the cases it always gave."""
    rng = np.random.default_rng(seed)
    return [
        _case(rng, case_class, index, start, spread_seconds, schedule, ages[index % len(ages)])
        for case_class in CLASSES
        for index in range(cases_per_class)
    ]


def first_release_population(
    cases: int,
    seed: int,
    start: float,
    spread_seconds: float = 3600.0,
    schedule: Schedule = STEP_SCHEDULE,
    ages: Sequence[str] = (FRESH,),
) -> list[Case]:
    """`cases` first releases: no stable at all, judged on their SLOs alone. Every case has the
    same latency SLO (FIRST_RELEASE_P95_SLO) and an error SLO well above its 5xx share, so that
    only latency decides; its canary's true P95 is drawn log-uniform over
    FIRST_RELEASE_P95_RATIO_RANGE times the SLO and its latency scaled to land there exactly
    (no drift: the truth holds at every poll). Timing, traffic and ages as in population()."""
    rng = np.random.default_rng([seed, 1])
    return [
        _first_release_case(rng, index, start, spread_seconds, schedule, ages[index % len(ages)])
        for index in range(cases)
    ]


def traffic_band(case: Case) -> str:
    """The canary-traffic band a case is reported in."""
    if case.case_class == THIN:
        return THIN
    if case.canary_rps < 1.0:
        return "<1 rps"
    return "1-3 rps" if case.canary_rps < 3.0 else ">=3 rps"


TRAFFIC_BANDS = ("<1 rps", "1-3 rps", ">=3 rps", THIN)


def p95_band(case: Case) -> str:
    """A first release's band of true P95 / SLO (P95_BANDS), from the exact CDF at its first poll."""
    if case.slo_p95_seconds is None:
        raise ValueError(f"{case.service} carries no P95 SLO of its own")
    ratio = true_quantile(case, CANARY, case.polls[0]) / case.slo_p95_seconds
    return next(name for name, upper in P95_BANDS if ratio < upper or (upper == 1.0 and ratio == 1.0))


def synthesise(case: Case) -> CaseTraffic:
    """The counters each version exposes at each scrape (the canary only, when the case has no
    stable); the same case gives the same counters."""
    versions = {}
    if case.has_stable:
        versions[STABLE] = _version_counters(case, STABLE, np.random.default_rng([case.seed, 0]))
    versions[CANARY] = _version_counters(case, CANARY, np.random.default_rng([case.seed, 1]))
    return CaseTraffic(case, versions)


def window_counts(
    traffic: CaseTraffic, version: str, at: float, window_seconds: float = WINDOW_SECONDS
) -> WindowCounts:
    """Counts over (at - window, at]: see counts_since()."""
    return counts_since(traffic, version, at - window_seconds, at)


def counts_since(traffic: CaseTraffic, version: str, start: float, at: float) -> WindowCounts:
    """What the counters hold over (start, at]: the last sample at or before `at` minus the last
    one at or before `start`, 0 where the series had not begun. Prometheus' increase() differs by
    its extrapolation to the range's edges; this is what the samples themselves hold."""
    counters = traffic.versions[version]
    last = _value_index(counters.times, at)
    before = _value_index(counters.times, start)

    def delta(values: np.ndarray) -> np.ndarray:
        now = values[last] if last >= 0 else np.zeros_like(values[0])
        then = values[before] if before >= 0 else np.zeros_like(values[0])
        return now - then

    return WindowCounts(
        buckets=delta(counters.buckets),
        requests_by_status={status: int(delta(values)) for status, values in counters.requests.items()},
        latency_sum=float(delta(counters.latency_sum)),
    )


def last_moment_without_series(
    traffic: CaseTraffic, version: str, at: float, step_seconds: float = 60.0, look_back_seconds: float = 86400.0
) -> float | None:
    """The last step (a multiple of `step_seconds` of unix time, within (at - look_back, at]) at
    which `version` had no series, as a Prometheus subquery `[1d:1m]` sees it: present at a step
    when it has a sample in the LOOKBACK_SECONDS before it, (step - 5m, step]. None when it was
    present at every step. For a canary this is where its data begin: its pods' counters start
    at zero at their first scrape, so what they hold since then is all they ever served."""
    counters = traffic.versions.get(version)
    steps = np.arange(math.floor(at / step_seconds), math.floor((at - look_back_seconds) / step_seconds), -1)
    steps = steps * step_seconds
    if counters is None:
        return float(steps[0])
    newest = np.searchsorted(counters.times, steps, side="right")
    oldest = np.searchsorted(counters.times, steps - LOOKBACK_SECONDS, side="right")
    absent = np.flatnonzero(newest == oldest)
    return float(steps[absent[0]]) if len(absent) else None


def true_bucket_probabilities(case: Case, version: str, at: float) -> np.ndarray:
    """P(latency <= each bound of LE_LABELS) of one request of `version` at moment `at`: the truth."""
    scale = _latency_scale(case, version, np.asarray([at]))
    return _cumulative_probabilities(case.latency, scale)[0]


def true_quantile(case: Case, version: str, at: float, q: float = 0.95) -> float:
    """The q-quantile of one request's latency for `version` at moment `at` (bisection on the
    exact CDF): the truth, not what histogram_quantile reads off the buckets."""
    return shape_quantile(case.latency, q, _latency_scale(case, version, np.asarray([at])))


def shape_quantile(shape: LatencyShape, q: float, scale: np.ndarray | float = 1.0) -> float:
    """The q-quantile of `shape` with every request `scale` times as long (bisection on the CDF)."""
    low, high = 1e-6, 1e4
    while high / low > 1.0 + 1e-9:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if shape.cdf(np.asarray([[middle]]), scale)[0, 0] >= q else (middle, high)
    return high


def true_error_share(case: Case, version: str) -> float:
    """The share of the version's requests that are 5xx."""
    return _error_share(case, version)


def slos(case: Case) -> dict[str, float]:
    """The SLOs a team would set for the service, sent with every request of the case: the
    case's own when the population fixed them (first releases), else above what its stable
    does at its slowest moment (the first bucket bound at or above 1.5 times its true P95: an
    SLO between two bounds is one the buckets cannot always judge, as the README says), and 2
    to 4 times its usual 5xx share."""
    if case.slo_p95_seconds is not None and case.slo_error_rate is not None:
        return {"p95_max_seconds": case.slo_p95_seconds, "error_rate_max": case.slo_error_rate}
    rng = np.random.default_rng([case.seed, 2])
    slowest = max(true_quantile(case, STABLE, poll) for poll in case.polls) * (1.0 + case.drift.amplitude)
    p95 = next((bound for bound in BUCKETS if bound >= 1.5 * slowest), 1.5 * slowest)
    error = max(0.01, case.error_share * rng.uniform(2.0, 4.0))
    return {"p95_max_seconds": round(p95, 4), "error_rate_max": round(error, 4)}


def openmetrics(traffic: Iterable[CaseTraffic]) -> str:
    """The OpenMetrics text promtool backfills: one `# TYPE` per family, every series' samples
    together and in time order, `# EOF` last."""
    traffic = list(traffic)
    lines = [
        f"# TYPE {REQUESTS_METRIC.removesuffix('_total')} counter",
        *(line for t in traffic for line in _requests_lines(t)),
        f"# TYPE {DURATION_METRIC} histogram",
        *(line for t in traffic for line in _duration_lines(t)),
        "# EOF",
    ]
    return "\n".join(lines) + "\n"


def sample_count(traffic: Iterable[CaseTraffic]) -> int:
    """How many samples openmetrics() writes for these cases."""
    series_per_version = len(STATUSES) + len(LE_LABELS) + 2  # + _count and _sum
    return sum(len(c.times) * series_per_version for t in traffic for c in t.versions.values())


def _case(
    rng: np.random.Generator, case_class: str, index: int, start: float, spread: float, schedule: Schedule, age: str
) -> Case:
    # The order of the draws is the population's identity: a new draw goes last, or in a new stream.
    interval = float(rng.choice(SCRAPE_INTERVALS))
    first_poll = _first_poll(rng, start, spread, interval)
    run_start = first_poll - schedule.initial_delay
    canary_ready = _canary_ready(rng, run_start, age)
    canary_rps = _log_uniform(rng, *(THIN_RPS_RANGE if case_class == THIN else CANARY_RPS_RANGE))
    weight = rng.uniform(*CANARY_WEIGHT_RANGE)
    truth = str(rng.choice((HEALTHY, SLOW, ERRORS))) if case_class == THIN else case_class
    return Case(
        service=f"{case_class}-{index:04d}",
        case_class=case_class,
        canary_rps=canary_rps,
        stable_rps=canary_rps * (1.0 - weight) / weight,
        scrape_interval=interval,
        latency=_latency_shape(rng),
        error_share=_log_uniform(rng, *ERROR_SHARE_RANGE),
        client_error_share=_log_uniform(rng, *CLIENT_ERROR_SHARE_RANGE),
        drift=_drift(rng, origin=first_poll),
        # Scrape phases are the targets' own: anywhere within an interval of the version's start.
        stable_first_scrape=_ms(first_poll - STABLE_HISTORY_SECONDS + rng.uniform(0.0, interval)),
        canary_ready=canary_ready,
        canary_first_scrape=_ms(canary_ready + rng.uniform(0.0, interval)),
        run_start=run_start,
        polls=schedule.polls(first_poll),
        seed=int(rng.integers(2**62)),
        canary_latency_factor=SLOW_FACTOR if truth == SLOW else 1.0,
        canary_extra_error_share=EXTRA_ERROR_SHARE if truth == ERRORS else 0.0,
        age=age,
    )


def _first_release_case(
    rng: np.random.Generator, index: int, start: float, spread: float, schedule: Schedule, age: str
) -> Case:
    interval = float(rng.choice(SCRAPE_INTERVALS))
    first_poll = _first_poll(rng, start, spread, interval)
    run_start = first_poll - schedule.initial_delay
    canary_ready = _canary_ready(rng, run_start, age)
    canary_rps = _log_uniform(rng, *CANARY_RPS_RANGE)
    true_p95 = FIRST_RELEASE_P95_SLO * _log_uniform(rng, *FIRST_RELEASE_P95_RATIO_RANGE)
    error_share = _log_uniform(rng, *ERROR_SHARE_RANGE)
    return Case(
        service=f"{FIRST_RELEASE}-{index:04d}",
        case_class=FIRST_RELEASE,
        canary_rps=canary_rps,
        stable_rps=0.0,
        scrape_interval=interval,
        latency=_first_release_shape(rng, true_p95),
        error_share=error_share,
        client_error_share=_log_uniform(rng, *CLIENT_ERROR_SHARE_RANGE),
        drift=Drift(),
        stable_first_scrape=None,
        canary_ready=canary_ready,
        canary_first_scrape=_ms(canary_ready + rng.uniform(0.0, interval)),
        run_start=run_start,
        polls=schedule.polls(first_poll),
        seed=int(rng.integers(2**62)),
        age=age,
        slo_p95_seconds=FIRST_RELEASE_P95_SLO,
        slo_error_rate=round(max(FIRST_RELEASE_ERROR_SLO_FLOOR, FIRST_RELEASE_ERROR_SLO_FACTOR * error_share), 4),
    )


def _first_poll(rng: np.random.Generator, start: float, spread: float, scrape_interval: float) -> float:
    return _ms(start + STABLE_HISTORY_SECONDS + scrape_interval + rng.uniform(0.0, spread))


def _canary_ready(rng: np.random.Generator, run_start: float, age: str) -> float:
    """When the canary's pods became ready: CANARY_READY_BEFORE_RUN[age] before the run started.
    One draw whatever the age, so that the ages do not shift the draws that follow."""
    return _ms(run_start - rng.uniform(*CANARY_READY_BEFORE_RUN[age]))


def _latency_shape(rng: np.random.Generator) -> LatencyShape:
    kind = str(rng.choice(list(SHAPE_WEIGHTS), p=list(SHAPE_WEIGHTS.values())))
    median = _log_uniform(rng, *MEDIAN_RANGE)
    return _shape_of_kind(rng, kind, median)


def _shape_of_kind(rng: np.random.Generator, kind: str, median: float) -> LatencyShape:
    if kind == BIMODAL:
        return LatencyShape(
            BIMODAL,
            median,
            sigma=rng.uniform(0.2, 0.5),
            miss_share=rng.uniform(0.05, 0.4),
            miss_factor=rng.uniform(3.0, 10.0),
            miss_sigma=rng.uniform(0.2, 0.5),
        )
    if kind == SLOW_MODE:
        return LatencyShape(
            SLOW_MODE,
            median,
            sigma=rng.uniform(0.2, 0.6),
            miss_share=rng.uniform(*SLOW_MODE_SHARE_RANGE),
            miss_factor=rng.uniform(*SLOW_MODE_FACTOR_RANGE),
            miss_sigma=rng.uniform(0.2, 0.5),
        )
    if kind == GAMMA:
        return LatencyShape(GAMMA, median, gamma_shape=int(rng.integers(2, 7)))
    sigma = rng.uniform(0.3, 1.0)
    if kind == TIMEOUT:
        return LatencyShape(
            TIMEOUT,
            median,
            sigma=sigma,
            timeout_seconds=_timeout_above(rng, 8 * median),
            timeout_share=_log_uniform(rng, 0.001, 0.02),
        )
    return LatencyShape(LOGNORMAL, median, sigma=sigma)


def _timeout_above(rng: np.random.Generator, least: float) -> float:
    """A timeout well above the bulk of the requests, as configured timeouts are."""
    timeouts = [t for t in TIMEOUT_VALUES if t >= least] or [TIMEOUT_VALUES[-1]]
    return float(rng.choice(timeouts))


def _first_release_shape(rng: np.random.Generator, true_p95: float) -> LatencyShape:
    """A shape of FIRST_RELEASE_SHAPE_WEIGHTS' kinds whose exact P95 is `true_p95`."""
    kind = str(rng.choice(list(FIRST_RELEASE_SHAPE_WEIGHTS), p=list(FIRST_RELEASE_SHAPE_WEIGHTS.values())))
    shape = _scaled_to_p95(_shape_of_kind(rng, kind, median=1.0), true_p95)
    if kind == TIMEOUT:
        # Chosen for the scaled shape: above its bulk, and above the P95, which the scaling put in the body.
        shape = replace(shape, timeout_seconds=_timeout_above(rng, max(8 * shape.median, 2 * true_p95)))
    found = shape_quantile(shape, 0.95)
    if not math.isclose(found, true_p95, rel_tol=1e-6):
        raise AssertionError(f"a {kind} shape scaled to P95 {true_p95:.6f} s has P95 {found:.6f} s")
    return shape


def _scaled_to_p95(shape: LatencyShape, true_p95: float) -> LatencyShape:
    """The shape with its median scaled so that its exact P95 is `true_p95`. Every kind is a scale
    family in its median (the mixtures' modes, the Erlang's scale follow it), so one quantile
    gives the factor; a timeout is left out of that quantile (put beyond any latency) because
    the caller places it above the P95, where it does not move the P95."""
    unplaced = replace(shape, timeout_seconds=BEYOND_ANY_LATENCY) if shape.kind == TIMEOUT else shape
    return replace(shape, median=shape.median * true_p95 / shape_quantile(unplaced, 0.95))


def _drift(rng: np.random.Generator, origin: float) -> Drift:
    if rng.uniform() >= DRIFT_SHARE:
        return Drift()
    return Drift(
        amplitude=rng.uniform(0.03, DRIFT_MAX),
        period_seconds=rng.uniform(*DRIFT_PERIOD_RANGE),
        phase=rng.uniform(0.0, 2.0 * math.pi),
        origin=origin,
    )


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _ms(t: float) -> float:
    # Times travel as text with millisecond precision; rounding here keeps the in-process
    # windows and Prometheus' on the same side of every boundary.
    return round(t, 3)


def _version_counters(case: Case, version: str, rng: np.random.Generator) -> VersionCounters:
    first = case.canary_first_scrape if version == CANARY else case.stable_first_scrape
    if first is None:
        raise ValueError(f"{case.service} has no {version}")
    scrapes = math.floor((case.last_scrape_deadline - first) / case.scrape_interval) + 1
    times = np.round(first + case.scrape_interval * np.arange(scrapes), 3)
    # Requests between two scrapes: Poisson; the latency distribution taken at the middle.
    middles = (times[1:] + times[:-1]) / 2.0
    rps = case.canary_rps if version == CANARY else case.stable_rps
    served = rng.poisson(rps * np.diff(times))
    server_errors = rng.binomial(served, _error_share(case, version))
    client_errors = rng.binomial(served - server_errors, case.client_error_share / (1.0 - _error_share(case, version)))
    scale = _latency_scale(case, version, middles)
    probabilities = _bucket_probabilities(case.latency, scale)
    per_bucket = rng.multinomial(served, probabilities) if len(served) else np.zeros((0, len(LE_LABELS)), int)
    sums = (per_bucket * _bucket_means(case.latency, scale, probabilities)).sum(axis=1)
    return VersionCounters(
        times=times,
        requests={
            OK: _cumulative(served - server_errors - client_errors),
            CLIENT_ERROR: _cumulative(client_errors),
            SERVER_ERROR: _cumulative(server_errors),
        },
        buckets=_cumulative(np.cumsum(per_bucket, axis=1)),
        latency_sum=_cumulative(sums),
    )


def _error_share(case: Case, version: str) -> float:
    return case.error_share + (case.canary_extra_error_share if version == CANARY else 0.0)


def _latency_scale(case: Case, version: str, t: np.ndarray) -> np.ndarray:
    slowdown = case.canary_latency_factor if version == CANARY else 1.0
    return case.drift.factor(t)[:, None] * slowdown


def _cumulative(per_interval: np.ndarray) -> np.ndarray:
    """Counter values at each scrape: 0 at the first, then the running total."""
    zero = np.zeros((1, *per_interval.shape[1:]), dtype=per_interval.dtype)
    return np.cumsum(np.concatenate([zero, per_interval]), axis=0)


def _cumulative_probabilities(shape: LatencyShape, scale: np.ndarray) -> np.ndarray:
    below = shape.cdf(np.asarray(BUCKETS)[None, :], scale)
    return np.concatenate([below, np.ones((below.shape[0], 1))], axis=1)


def _bucket_probabilities(shape: LatencyShape, scale: np.ndarray) -> np.ndarray:
    """P(latency in each bucket (previous bound, bound]), one row per moment."""
    probabilities = np.clip(np.diff(_cumulative_probabilities(shape, scale), axis=1, prepend=0.0), 0.0, None)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _bucket_means(shape: LatencyShape, scale: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """E[latency | latency in the bucket], one row per moment: what each request there adds to `_sum`."""
    bounds = np.asarray([*BUCKETS, BEYOND_ANY_LATENCY])[None, :]
    partial = np.diff(shape.partial_mean(bounds, scale), axis=1, prepend=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(probabilities > 0, partial / probabilities, 0.0)


def _value_index(times: np.ndarray, t: float) -> int:
    """Index of the last scrape at or before t; -1 when the series had not begun."""
    return int(np.searchsorted(times, t, side="right")) - 1


def _labels(service: str, version: str, **extra: str) -> str:
    pairs = {SERVICE_LABEL: service, VERSION_LABEL: version, **extra}
    return "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


def _series_lines(name: str, labels: str, timestamps: list[str], values: Iterable[str]) -> Iterator[str]:
    prefix = f"{name}{labels} "
    for value, timestamp in zip(values, timestamps, strict=True):
        yield f"{prefix}{value} {timestamp}"


def _timestamps(counters: VersionCounters) -> list[str]:
    return [f"{t:.3f}" for t in counters.times.tolist()]


def _requests_lines(traffic: CaseTraffic) -> Iterator[str]:
    for version, counters in traffic.versions.items():
        timestamps = _timestamps(counters)
        for status, values in counters.requests.items():
            labels = _labels(traffic.case.service, version, **{STATUS_LABEL: status})
            yield from _series_lines(REQUESTS_METRIC, labels, timestamps, map(str, values.tolist()))


def _duration_lines(traffic: CaseTraffic) -> Iterator[str]:
    service = traffic.case.service
    for version, counters in traffic.versions.items():
        timestamps = _timestamps(counters)
        for column, le in enumerate(LE_LABELS):
            values = map(str, counters.buckets[:, column].tolist())
            yield from _series_lines(f"{DURATION_METRIC}_bucket", _labels(service, version, le=le), timestamps, values)
        labels = _labels(service, version)
        yield from _series_lines(f"{DURATION_METRIC}_count", labels, timestamps, map(str, counters.count.tolist()))
        sums = (f"{value:.6f}" for value in counters.latency_sum.tolist())
        yield from _series_lines(f"{DURATION_METRIC}_sum", labels, timestamps, sums)
