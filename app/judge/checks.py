"""What a check is, as data: what it measures, how the canary is compared, what it is held to.

The engine (`judgment.py`) names no particular check. The built-in checks are declared in
`builtin_checks.py`; adding one is adding a declaration there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from app.judge.distributions import Histogram, NativeHistogram, Outcomes, RecentTraffic
from app.judge.units import Unit, format_value


class Mode(StrEnum):
    """`statistical` decides on the distributions with a confidence level; `threshold` holds
    point estimates to fixed numbers (the rules of the first version)."""

    STATISTICAL = "statistical"
    THRESHOLD = "threshold"


class Source(StrEnum):
    """A metric family. One query per analysis measures it for both versions."""

    REQUESTS = "requests"  # request counts by outcome (ok / error)
    LATENCY = "latency"  # a latency histogram: counts by bucket bound
    CURRENT = "current"  # the requests of the last window, whatever the data judged (app/judge/recent.py)


class Statistic(StrEnum):
    """The number a check reads from what was measured."""

    REQUESTS = "requests"
    ERROR_RATE = "error_rate"
    QUANTILE = "quantile"
    RATIO = "ratio"  # a user check: events over trials, both counted by its own queries
    VALUE = "value"  # a user check: the one number its own query gives
    CURRENT_REQUESTS = "current_requests"  # the requests of the last window

    @property
    def unit(self) -> Unit:
        counts = {Statistic.REQUESTS: Unit.COUNT, Statistic.CURRENT_REQUESTS: Unit.COUNT}
        return {**counts, Statistic.QUANTILE: Unit.SECONDS}.get(self, Unit.RATIO)


class Bound(StrEnum):
    """How the canary's number is held to the limit (and to the stable's number)."""

    AT_LEAST = "at_least"  # canary >= limit
    AT_MOST = "at_most"  # canary <= limit
    RATIO_OF_STABLE = "ratio_of_stable"  # canary <= stable * limit
    STABLE_PLUS = "stable_plus"  # canary <= stable + limit
    FRACTION_OF_STABLE = "fraction_of_stable"  # canary >= stable * limit
    STABLE_MINUS = "stable_minus"  # canary >= stable - limit

    @property
    def relative(self) -> bool:
        return self not in (Bound.AT_LEAST, Bound.AT_MOST)

    @property
    def lower_is_worse(self) -> bool:
        return self in (Bound.AT_LEAST, Bound.FRACTION_OF_STABLE, Bound.STABLE_MINUS)

    def describe(self, limit: float, unit: Unit) -> str:
        sign = ">=" if self.lower_is_worse else "<="
        if self in (Bound.RATIO_OF_STABLE, Bound.FRACTION_OF_STABLE):
            return f"canary {sign} stable x {limit:g}"
        if self in (Bound.STABLE_PLUS, Bound.STABLE_MINUS):
            return f"canary {sign} stable {'-' if self.lower_is_worse else '+'} {format_value(limit, unit)}"
        return f"canary {sign} {format_value(limit, unit)}"


class Method(StrEnum):
    """How a check decides in statistical mode."""

    POINT = "point"  # no test: exact request counts, or a user check's plain number, held to the limit
    BINOMIAL = "binomial"  # a share of canary requests (errors, or slower than the SLO) vs a fixed limit
    RANK_SHIFT = "brunner-munzel"  # canary latency distribution vs the stable's scaled by the limit
    TWO_PROPORTIONS = "miettinen-nurminen"  # canary error rate vs the stable's plus the limit (a score test)


@dataclass(frozen=True)
class Limit:
    """The number a check holds the canary to: one request field, its defaults and its range."""

    field: str
    description: str
    default: float
    minimum: float
    maximum: float
    # Statistical mode may want another default (e.g. a tolerance, where threshold mode has a margin).
    statistical_default: float | None = None
    exclusive_minimum: bool = False
    integer: bool = False

    def default_for(self, mode: Mode) -> float:
        if mode is Mode.STATISTICAL and self.statistical_default is not None:
            return self.statistical_default
        return self.default


@dataclass(frozen=True)
class Reading:
    """The one number a user check's query gave for a version."""

    value: float


@dataclass(frozen=True)
class Queries:
    """A user check's own PromQL, per version: `$service`, `$version`, `$namespace` and `$window` are
    filled in with validated values. `value` alone, or `events` over `trials`."""

    value: str | None = None
    events: str | None = None
    trials: str | None = None

    def parts(self) -> list[tuple[str, str]]:
        """(which, template) for the queries this check gives."""
        named = (("value", self.value), ("events", self.events), ("trials", self.trials))
        return [(part, template) for part, template in named if template is not None]

    @property
    def places_namespace(self) -> bool:
        """Every query selects the namespace: what a shared analyzer needs to hold it to the caller's."""
        return all('"$namespace"' in template for _, template in self.parts())

    @property
    def uses_namespace(self) -> bool:
        return any('"$namespace"' in template for _, template in self.parts())


Measured = Histogram | NativeHistogram | Outcomes | Reading | RecentTraffic
Observed = Mapping[str, Measured | None]  # by source: a family (Source) or a user check's own


@dataclass(frozen=True)
class Check:
    name: str
    title: str  # what reasons call the number: "P95 latency"
    statistic: Statistic
    bound: Bound
    method: Method
    limit: Limit
    quantile: float | None = None  # for Statistic.QUANTILE
    # A gate that does not hold leaves the verdict inconclusive and nothing else judged.
    gate: bool = False
    queries: Queries | None = None  # a user check's own; built-in checks read the families
    declared_unit: Unit | None = None  # a user value's unit
    # An SLO check: the check that holds the canary to the stable on the same number. When the
    # stable breaks the SLO too and that check does not find the canary worse, the breach is not
    # the canary's doing (app/judge/judgment.py).
    compared_in: str | None = None
    # How the rule reads, `{limit}` filled in, where the bound's own words do not say it.
    rule_text: str | None = None

    def rule(self, limit: float) -> str:
        return self.rule_text.format(limit=limit) if self.rule_text else self.bound.describe(limit, self.unit)

    @property
    def limit_moves(self) -> bool:
        """The number the canary is held to moves with the data: the stable's number, or the traffic's share."""
        return self.bound.relative or self.statistic is Statistic.CURRENT_REQUESTS

    @property
    def source(self) -> str:
        if self.queries is not None:
            return f"check:{self.name}"
        return {Statistic.QUANTILE: Source.LATENCY, Statistic.CURRENT_REQUESTS: Source.CURRENT}.get(
            self.statistic, Source.REQUESTS
        )

    @property
    def unit(self) -> Unit:
        return self.declared_unit or self.statistic.unit

    @property
    def measure_key(self) -> str:
        """Names the number measured: checks that read the same number share it."""
        if self.statistic is Statistic.QUANTILE:
            assert self.quantile is not None
            return f"p{self.quantile * 100:g}_seconds"
        return self.name if self.queries is not None else self.statistic.value

    def value(self, observed: Observed) -> float | None:
        """The check's number for one version; None when there is no data (NaN included)."""
        measured = observed.get(self.source)
        if measured is None:
            return None
        if isinstance(measured, Histogram | NativeHistogram):
            assert self.quantile is not None
            value = measured.quantile(self.quantile)
        elif isinstance(measured, Reading):
            value = measured.value
        elif isinstance(measured, RecentTraffic) or self.statistic is Statistic.REQUESTS:
            value = measured.total
        else:
            value = measured.error_rate  # errors, or a user check's events, over all
        return None if math.isnan(value) else value
