"""Anytime-valid tests: their false alarms are bounded over every look, however many there are.

Argo may ask about a canary any number of times (a background analysis has no `count`), and each
answer is a look at the canary's data since it started, which only grows. A test that fails a
canary within its limit with probability alpha *per look* would, over enough looks, fail every
one. The tests here keep the chance that *any* look fails such a canary under alpha.

- `share_e_value`: an e-process for "the share of canary requests that are bad is at most q".
  A mixture of likelihood ratios over shares above q (Robbins' method of mixtures; Howard,
  Ramdas, McAuliffe & Sekhon 2021, the conjugate beta-binomial mixture, one-sided), which is a
  nonnegative supermartingale while each request is bad with probability at most q, even if that
  probability changes over time, and also for per-request scores in [0, 1] rather than 0/1
  (the convexity argument of Waudby-Smith & Ramdas 2023). By Ville's inequality it ever reaches
  1/alpha with probability at most alpha. It depends on the data only through the counts, so
  counts read once a minute (or whenever Argo asks) give the same guarantee as request-by-request.
- `normal_boundary`: the critical value of an asymptotically normal statistic at any look: the
  one-sided normal-mixture boundary (Robbins 1970; Howard et al. 2021), which makes a fixed-n
  z or t test an asymptotic confidence sequence (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas
  2024). Used where no exact e-process is at hand (the rank test on bucketed latency).

The price of looking at any time: about 1.3 to 1.8 times the requests a single fixed test at the
same alpha needs, paid once instead of a Bonferroni share per look.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special
from scipy.optimize import brentq

# How the mixtures are tuned: tightest around a few hundred to a few thousand canary requests,
# where step analyses decide, and still growing only like sqrt(log n) for long background runs.
# A mixture over two concentrations is itself an e-process; it costs log(2) at the better one.
PRIOR_CONCENTRATIONS = (10.0, 100.0)
NORMAL_MIXTURE_SCALE = 40.0  # r: the boundary is tightest around 10-20 r requests


def share_log_e_value(k: float, n: float, q: float) -> float:
    """log of the e-process for "the share behind k of n is at most q" (k, n may be fractional:
    counts from increase(), or scores in [0, 1] summed). 0 when there is no evidence against it."""
    if n <= 0 or k <= q * n or q >= 1:
        return 0.0 if q < 1 else -math.inf
    if q <= 0:
        return math.inf  # a bad request where none may be: certain
    terms = [_log_mixture(k, n, q, concentration) for concentration in PRIOR_CONCENTRATIONS]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


def share_log_e_values(k: np.ndarray, n: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`share_log_e_value` for many (k, n, q) at once, broadcast: every recent span of an answer in one
    pass of scipy's ufuncs, where one call each would cost a span's share of a millisecond."""
    k, n, q = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (k, n, q)))
    values = np.where(q >= 1, -np.inf, 0.0)
    evidence = (n > 0) & (k > q * n) & (q < 1)
    values[evidence & (q <= 0)] = np.inf
    mixed = evidence & (q > 0)
    if not mixed.any():  # no look with evidence against its limit: the common case, spared the special functions
        return values
    k, n, q = k[mixed], n[mixed], q[mixed]
    terms = []
    for concentration in PRIOR_CONCENTRATIONS:
        a, b = q * concentration, (1 - q) * concentration
        with np.errstate(divide="ignore"):
            tail = np.log(special.betaincc(a + k, b + n - k, q))
            prior = special.betaln(a, b) + np.log(special.betaincc(a, b, q))
        terms.append(special.betaln(a + k, b + n - k) + tail - prior - k * np.log(q) - (n - k) * np.log1p(-q))
    values[mixed] = special.logsumexp(np.stack(terms), axis=0) - math.log(len(terms))
    return values


def _log_mixture(k: float, n: float, q: float, concentration: float) -> float:
    """The likelihood ratio of shares p > q against q, averaged over a Beta prior centred on q
    with the given concentration, truncated to (q, 1]:

        E = B(a+k, b+n-k) P(p > q | a+k, b+n-k) / (B(a, b) P(p > q | a, b)) / (q^k (1-q)^(n-k))
    """
    a, b = q * concentration, (1 - q) * concentration
    posterior_tail = special.betaincc(a + k, b + n - k, q)
    if posterior_tail <= 0:
        return -math.inf
    return (
        special.betaln(a + k, b + n - k)
        + math.log(posterior_tail)
        - _log_prior_mass(q, concentration)
        - k * math.log(q)
        - (n - k) * math.log1p(-q)
    )


@functools.lru_cache(maxsize=4096)
def _log_prior_mass(q: float, concentration: float) -> float:
    """log of B(a, b) P(p > q | a, b): the truncated prior's normaliser, the same for every count."""
    a, b = q * concentration, (1 - q) * concentration
    return float(special.betaln(a, b) + math.log(special.betaincc(a, b, q)))


def share_p_value(k: float, n: float, q: float) -> float:
    """The anytime-valid p-value of "the share is at most q": 1/E, at most 1."""
    return min(1.0, math.exp(-share_log_e_value(k, n, q)))


@functools.lru_cache(maxsize=4096)
def share_lower_bound(k: float, n: float, alpha: float) -> float:
    """The smallest share not ruled out at level alpha by this look: a time-uniform lower
    confidence bound (the share exceeds it at every look with probability at least 1 - alpha).
    Cached: an analysis asks for the canary's error bound twice, against the SLO and against the
    stable, and each costs a root search of some fifteen e-values."""
    if n <= 0 or k <= 0:
        return 0.0
    threshold = math.log(1 / alpha)
    observed = min(k / n, 1.0)

    def excess(q: float) -> float:
        return share_log_e_value(k, n, q) - threshold

    low = 1e-12
    if observed <= low or excess(low) < 0:
        return 0.0
    # A bound to a part in a hundred million: finer would only cost evaluations.
    return brentq(excess, low, observed, xtol=1e-12, rtol=1e-8)


def share_upper_bound(k: float, n: float, alpha: float) -> float:
    """The time-uniform upper bound: the lower bound of the complementary share."""
    return 1.0 - share_lower_bound(n - k, n, alpha)


@functools.lru_cache(maxsize=4096)
def normal_boundary(t: float, alpha: float, scale: float = NORMAL_MIXTURE_SCALE) -> float:
    """The z a statistic must reach at intrinsic time t (requests) for a one-sided test at level
    alpha over all t: where the half-normal mixture's e-value (`_normal_log_e`) reaches 1/alpha.
    Cached: t is a count, and looks repeat."""
    if t <= 0:
        return math.inf
    total = t + scale

    def excess(s: float) -> float:
        return _normal_log_e(s, t, scale) + math.log(alpha)

    if excess(0.0) >= 0:
        return 0.0
    # With Phi = 1 the boundary has a closed form; Phi < 1 only raises it a little.
    guess = math.sqrt(total * (2 * math.log(1 / (2 * alpha)) + math.log(total / scale)))
    return brentq(excess, 0.0, 2 * max(guess, 1.0), xtol=1e-10) / math.sqrt(t)


def normal_boundary_at_least(t: np.ndarray, alpha: np.ndarray, scale: float = NORMAL_MIXTURE_SCALE) -> np.ndarray:
    """A lower bound of `normal_boundary` for many (t, alpha) at once, in closed form: the mixture
    with its Phi taken as 1 is the larger e-value, so it reaches 1/alpha first. A statistic under it
    cannot cross the boundary: what a screen may skip without running the test."""
    t, alpha = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(alpha, dtype=float))
    total = t + scale
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(np.maximum(total * (2 * np.log(1 / (2 * alpha)) + np.log(total / scale)), 0.0))
        return np.where(t > 0, s / np.sqrt(t), np.inf)


def normal_p_value(z: float, t: float, scale: float = NORMAL_MIXTURE_SCALE) -> float:
    """The anytime-valid p-value of an asymptotically normal statistic z at intrinsic time t."""
    if t <= 0 or not z > 0:
        return 1.0
    return min(1.0, math.exp(-_normal_log_e(z * math.sqrt(t), t, scale)))


def _normal_log_e(s: float, t: float, scale: float) -> float:
    """log of the half-normal mixture of exp(lambda s - lambda^2 t / 2), for a sum s with variance t
    (Howard et al. 2021, one-sided normal mixture, prior precision `scale`):

        2 sqrt(r / (t + r)) exp(s^2 / (2 (t + r))) Phi(s / sqrt(t + r))
    """
    total = t + scale
    return (
        math.log(2.0)
        + 0.5 * math.log(scale / total)
        + s * s / (2 * total)
        + float(special.log_ndtr(s / math.sqrt(total)))
    )
