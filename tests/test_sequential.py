"""The anytime-valid tests against numerical integration and the published boundary, and their
false alarms over many looks on fixed seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from app.judge import sequential, statistics

# --- the beta-binomial mixture e-process --------------------------------------------------------


def mixture_by_quadrature(k: float, n: float, q: float, concentration: float) -> float:
    """The definition: the likelihood ratio of p against q, averaged over Beta(qc, (1-q)c) on (q, 1)."""
    prior = stats.beta(q * concentration, (1 - q) * concentration)

    def ratio(p: float) -> float:
        return math.exp(k * math.log(p / q) + (n - k) * math.log((1 - p) / (1 - q))) * prior.pdf(p) / prior.sf(q)

    return integrate.quad(ratio, q, 1, points=[min(k / n, 0.999)], limit=200)[0]


@pytest.mark.parametrize(("k", "n", "q"), [(10, 100, 0.05), (30, 400, 0.05), (3, 600, 0.01), (12.5, 300.7, 0.02)])
@pytest.mark.parametrize("concentration", sequential.PRIOR_CONCENTRATIONS)
def test_each_mixture_is_its_integral(k: float, n: float, q: float, concentration: float) -> None:
    assert sequential._log_mixture(k, n, q, concentration) == pytest.approx(
        math.log(mixture_by_quadrature(k, n, q, concentration)), abs=1e-8
    )


def test_the_e_value_averages_the_mixtures() -> None:
    k, n, q = 30, 400, 0.05
    mean = np.mean([mixture_by_quadrature(k, n, q, c) for c in sequential.PRIOR_CONCENTRATIONS])
    assert sequential.share_log_e_value(k, n, q) == pytest.approx(math.log(mean), abs=1e-8)
    assert sequential.share_p_value(k, n, q) == pytest.approx(min(1.0, 1 / mean), rel=1e-8)


def test_no_evidence_at_or_under_the_limit() -> None:
    assert sequential.share_log_e_value(5, 100, 0.05) == 0.0
    assert sequential.share_log_e_value(0, 100, 0.05) == 0.0
    assert sequential.share_p_value(2, 100, 0.05) == 1.0


def test_the_e_value_falls_as_the_limit_rises() -> None:
    """What makes the lower bound an interval: more share allowed, less evidence against it."""
    values = [sequential.share_log_e_value(40, 500, q) for q in np.linspace(0.001, 0.079, 60)]
    assert all(b <= a for a, b in itertools.pairwise(values))


def test_lower_bound_inverts_the_e_value() -> None:
    alpha = 0.0025
    low = sequential.share_lower_bound(60, 800, alpha)
    assert sequential.share_log_e_value(60, 800, low) == pytest.approx(math.log(1 / alpha), abs=1e-6)
    # Time-uniform is wider than Clopper-Pearson at the same level: the price of looking any time.
    assert low < statistics.share_lower_bound(60, 800, 1 - alpha) < 60 / 800
    assert sequential.share_upper_bound(60, 800, alpha) == pytest.approx(
        1 - sequential.share_lower_bound(740, 800, alpha)
    )


@pytest.mark.parametrize("q", [0.05, 0.01])
def test_false_alarms_over_many_looks_stay_under_alpha(q: float) -> None:
    """3,000 canaries exactly at the limit, looked at 60 times each from 20 to 20,000 requests:
    a Clopper-Pearson test at the same level fails a few percent of them, the e-process under alpha."""
    rng = np.random.default_rng(7)
    alpha, runs = 0.01, 3000
    looks = np.unique(np.geomspace(20, 20_000, 60).round().astype(int))
    # The bad requests between one look and the next, added up: the counts each look sees.
    counts = np.cumsum(rng.binomial(np.diff(looks, prepend=0), q, size=(runs, len(looks))), axis=1)
    threshold = math.log(1 / alpha)

    def ever(failed_at) -> float:
        return np.mean([any(failed_at(k, n) for k, n in zip(row, looks, strict=True)) for row in counts])

    anytime = ever(lambda k, n: k > q * n and sequential.share_log_e_value(k, n, q) >= threshold)
    fixed = ever(lambda k, n: statistics.share_lower_bound(k, n, 1 - alpha) > q)
    assert anytime <= alpha
    assert fixed > 3 * alpha, "the fixed test should show the problem the e-process solves"


def test_power_costs_a_bounded_factor() -> None:
    """The requests needed to see 8 % against a 5 % limit: at most twice a single fixed test's."""

    def needed(rejects) -> int:
        return next(n for n in range(20, 100_000, 5) if rejects(0.08 * n, n))

    alpha = 0.0025
    fixed = needed(lambda k, n: statistics.share_lower_bound(k, n, 1 - alpha) > 0.05)
    anytime = needed(lambda k, n: sequential.share_log_e_value(k, n, 0.05) >= math.log(1 / alpha))
    assert fixed < anytime <= 2 * fixed


# --- the normal mixture boundary ---------------------------------------------------------------------


def test_boundary_is_where_the_mixture_reaches_one_over_alpha() -> None:
    """Howard et al. (2021), one-sided normal mixture: 2 sqrt(r/(t+r)) exp(s^2/(2(t+r))) Phi(s/sqrt(t+r))."""
    t, alpha, r = 1000.0, 0.0025, sequential.NORMAL_MIXTURE_SCALE
    s = sequential.normal_boundary(t, alpha) * math.sqrt(t)
    e = 2 * math.sqrt(r / (t + r)) * math.exp(s * s / (2 * (t + r))) * stats.norm.cdf(s / math.sqrt(t + r))
    assert e == pytest.approx(1 / alpha, rel=1e-8)
    assert sequential.normal_p_value(s / math.sqrt(t), t) == pytest.approx(alpha, rel=1e-6)


def test_boundary_is_above_the_fixed_quantile_and_grows_slowly() -> None:
    alpha = 0.0025
    fixed = stats.norm.isf(alpha)
    boundaries = [sequential.normal_boundary(t, alpha) for t in (100, 1_000, 10_000, 1_000_000)]
    assert all(b > fixed for b in boundaries)
    assert boundaries[-1] < 1.7 * fixed  # about sqrt(log t): a day of traffic still decides


def test_brownian_motion_crosses_the_boundary_under_alpha() -> None:
    """Random walks with no drift (a statistic at its null), standardised and looked at 200 times."""
    rng = np.random.default_rng(3)
    alpha, runs = 0.02, 4000
    looks = np.unique(np.geomspace(10, 20_000, 200).round().astype(int))
    walks = np.cumsum(rng.normal(0, np.sqrt(np.diff(looks, prepend=0)), size=(runs, len(looks))), axis=1)
    boundary = np.array([sequential.normal_boundary(float(t), alpha) for t in looks]) * np.sqrt(looks)
    assert np.mean((walks >= boundary).any(axis=1)) <= alpha


# --- many at once: the recent spans' screens ------------------------------------------------------------


def test_many_e_values_at_once_are_each_one() -> None:
    rng = np.random.default_rng(5)
    n = rng.uniform(0, 5000, 400).round(1)
    k = n * rng.uniform(0, 0.2, 400)
    q = rng.choice([0.0, 0.001, 0.01, 0.05, 0.3, 1.0], 400)
    many = sequential.share_log_e_values(k, n, q)
    one = [sequential.share_log_e_value(float(a), float(b), float(c)) for a, b, c in zip(k, n, q, strict=True)]
    assert many == pytest.approx(np.array(one), rel=1e-9, abs=1e-9)
    assert np.isinf(many[(q == 0) & (k > 0)]).all()


def test_the_closed_form_boundary_is_never_above_the_boundary() -> None:
    """A screen that skips statistics under it skips none the test would have failed."""
    t = np.geomspace(1, 1e7, 50)
    for alpha in (0.05, 0.0025, 1e-7):
        at_least = sequential.normal_boundary_at_least(t, alpha)
        exact = np.array([sequential.normal_boundary(float(x), alpha) for x in t])
        assert (at_least <= exact + 1e-9).all()
        assert (at_least >= 0.9 * exact).all(), "and close enough to skip most of what it should"
    assert np.isinf(sequential.normal_boundary_at_least(np.array([0.0]), 0.01)).all()
