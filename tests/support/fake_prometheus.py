"""A stand-in for PrometheusClient in in-process tests: it answers a plan's family queries (and user
checks' own) from distributions given per version, shaped exactly as Prometheus shapes them, and the
counts of any minute (or part of one) since the last from distributions given per minute."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from app import promql
from app.judge.checks import Reading, Source
from app.judge.distributions import Histogram, Outcomes
from app.measurement import BETWEEN_MARK, FAMILIES, START_MARK, Plan, Role
from app.prometheus import Labels, Matrix, PrometheusError, Vector

Distribution = Histogram | Outcomes | None
START_QUERY = promql.CANARY_START_QUERY.split("{")[0]  # how the canary's start query begins
LOOKBACK = re.compile(r"\[(\w+):\w+\]\)$")  # the start query's look-back, before its resolution
# A query asked beside the families, its series marked (Plan.calls).
AT_MOMENT = re.compile(r" @ (\d+(?:\.\d+)?)")
MARKED = re.compile(r'label_replace\((?P<query>.*), "(?P<mark>canary_analyzer_\w+)", "(?P<value>[^"]*)", "", ""\)')


def samples(version_label: str, version: str, measured: Distribution) -> list[tuple[Labels, float]]:
    """The series Prometheus answers for one version of one family."""
    if measured is None:
        return []
    if isinstance(measured, Outcomes):
        return [
            ({version_label: version, promql.OUTCOME_LABEL: promql.OK}, measured.ok),
            ({version_label: version, promql.OUTCOME_LABEL: promql.ERROR}, measured.errors),
        ]
    bounds = ("+Inf" if b == float("inf") else f"{b:g}" for b in measured.bounds)
    return [({version_label: version, "le": le}, count) for le, count in zip(bounds, measured.cumulative, strict=True)]


def reading(measured: Distribution | Reading, part: str) -> tuple[tuple[Labels, float], ...]:
    """A user check's query answers one unlabelled number: the value, the events or the trials."""
    if measured is None:
        return ()
    if isinstance(measured, Reading):
        return (({}, measured.value),)
    assert isinstance(measured, Outcomes)
    return (({}, measured.errors if part == "events" else measured.total),)


class FakePrometheus:
    def __init__(
        self,
        plan: Plan,
        observed: Mapping[Role, Mapping[str, Distribution | Reading]],
        delay: float = 0.0,
        failures: Mapping[Source, PrometheusError] | None = None,
        warnings: tuple[str, ...] = (),
        canary_started: float | None = None,
        per_minute: Mapping[Role, Mapping[str, Distribution]] | None = None,
    ) -> None:
        """`canary_started`: what the canary's start query answers (unix time); None, no series then:
        the canary has been there through the whole look-back. `per_minute`: what each version serves each
        minute, its counters' sums growing by that much a minute from 0 at the epoch (default: nothing)."""
        calls = plan.calls()
        self.answers: dict[str, tuple[tuple[Labels, float], ...]] = {}

        def family_samples(measured: Mapping[Role, Mapping[str, Distribution | Reading]]) -> tuple:
            return tuple(
                sample
                for source in plan.queries
                for role, version in plan.versions.items()
                for sample in samples(plan.version_label, version, measured[role].get(source))  # type: ignore[arg-type]
            )

        if FAMILIES in calls:
            self.answers[calls[FAMILIES]] = family_samples(observed)
        self.minute = family_samples(per_minute or {role: {} for role in Role})
        self.minutely = plan.minutely().calls().get(FAMILIES)
        for (source, role, part), query in plan.readings.items():
            self.answers[query] = reading(observed[role].get(source), part)
        # The families are asked for in one query: one failing family fails it.
        self.failures = {calls[FAMILIES]: next(iter(failures.values()))} if failures else {}
        self.canary_started = canary_started
        self.delay = delay
        self.warnings = warnings
        self.sent: list[str] = []
        self.in_flight = self.peak_in_flight = 0

    async def query(self, query: str, at: float, timeout: float) -> Vector:
        await self._answer_time(query)
        if query.startswith(START_QUERY):
            return Vector(self._start(query, at), self.warnings)
        if query in self.answers:
            return Vector(self.answers[query], self.warnings)
        # The families with queries asked beside them, each marked: the families come first, unmarked.
        answered: tuple[tuple[Labels, float], ...] = ()
        terms = _terms(query)
        families = " or ".join(f"({term})" for term in terms if not MARKED.fullmatch(term))
        if families:
            answered += self.answers[families if families in self.answers else families[1:-1]]
        for term in terms:
            if match := MARKED.fullmatch(term):
                mark = {match.group("mark"): match.group("value")}
                found = self._start(match.group("query"), at) if mark.get(START_MARK) else self._sums(term, at)
                assert START_MARK in mark or BETWEEN_MARK in mark, term
                answered += tuple(({**labels, **mark}, value) for labels, value in found)
        return Vector(answered, self.warnings)

    def _start(self, query: str, at: float) -> tuple[tuple[Labels, float], ...]:
        """The last moment without the canary's series, when it lies within the look-back asked for."""
        lookback = promql.duration_seconds(LOOKBACK.search(query).group(1))
        started = self.canary_started
        return () if started is None or started < at - lookback else (({}, started),)

    async def query_range(self, query: str, start: float, end: float, step: float, timeout: float) -> Matrix:
        """The same answer at every step."""
        await self._answer_time(query)
        steps = []
        t = start
        while t <= end:
            steps.append(t)
            t += step
        if query == self.minutely:
            points = {}
            for t in steps:
                for labels, value in self._sums(query, t):
                    points.setdefault(tuple(sorted(labels.items())), []).append((t, value))
            return Matrix(tuple((dict(labels), tuple(series)) for labels, series in points.items()))
        return Matrix(tuple((labels, tuple((t, value) for t in steps)) for labels, value in self.answers[query]))

    def _sums(self, query: str, at: float) -> tuple[tuple[Labels, float], ...]:
        """The counters' sums at the query's `@` moment (else `at`): `per_minute` for every minute since the epoch."""
        moment = float(match.group(1)) if (match := AT_MOMENT.search(query)) else at
        return tuple((labels, value * moment / 60) for labels, value in self.minute)

    def failed(self, exc: PrometheusError) -> PrometheusError:
        """As the client shows an error; no credential here to redact."""
        return exc

    async def _answer_time(self, query: str) -> None:
        self.sent.append(query)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if query in self.failures:
            raise self.failures[query]


def _terms(union: str) -> list[str]:
    """The queries a union joins with `or` at its top level (promql.union), each without its parentheses."""
    terms, depth, begun = [], 0, 0
    for i, char in enumerate(union):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and union.startswith(" or ", i):
            terms.append(union[begun:i])
            begun = i + 4
    terms.append(union[begun:])
    return [term[1:-1] if term.startswith("(") and _wrapped(term) else term for term in terms]


def _wrapped(term: str) -> bool:
    """`(...)` as a whole, not `(a) + (b)`."""
    depth = 0
    for i, char in enumerate(term):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(term) - 1:
            return False
    return depth == 0
