"""A stand-in for PrometheusClient in in-process tests: it answers a plan's family queries (and user
checks' own) from distributions given per version, shaped exactly as Prometheus shapes them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from app import promql
from app.judge.checks import Reading, Source
from app.judge.distributions import Histogram, Outcomes
from app.measurement import FAMILIES, START_MARK, Plan, Role
from app.prometheus import Labels, Matrix, PrometheusError, Vector

Distribution = Histogram | Outcomes | None
START_QUERY = promql.CANARY_START_QUERY.split("{")[0]  # how the canary's start query begins
LOOKBACK = re.compile(r"\[(\w+):\w+\]\)$")  # the start query's look-back, before its resolution
# A plan's families union with its start check last (Plan.calls): `(families) or (marked start)`.
CHECKED_START = re.compile(
    rf"(?:(?P<families>.*) or \()?label_replace\((?P<start>{re.escape(START_QUERY)}.*),"
    rf' "{START_MARK}", "1", "", ""\)\)?'
)


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
    ) -> None:
        """`canary_started`: what the canary's start query answers (unix time); None, no series then:
        the canary has been there through the whole look-back."""
        calls = plan.calls()
        self.answers: dict[str, tuple[tuple[Labels, float], ...]] = {}
        if FAMILIES in calls:
            self.answers[calls[FAMILIES]] = tuple(
                sample
                for source in plan.queries
                for role, version in plan.versions.items()
                for sample in samples(plan.version_label, version, observed[role].get(source))
            )
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
        if match := CHECKED_START.fullmatch(query):
            # The families with the start check beside them: the start's series marked.
            families, start = match.group("families"), match.group("start")
            marked = tuple(({**labels, START_MARK: "1"}, value) for labels, value in self._start(start, at))
            if families is None:
                return Vector(marked, self.warnings)
            # One family is sent bare, several as a union: `(family)` alone is not a key.
            key = families if families in self.answers else families.removeprefix("(").removesuffix(")")
            return Vector(self.answers[key] + marked, self.warnings)
        return Vector(self.answers[query], self.warnings)

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
        return Matrix(tuple((labels, tuple((t, value) for t in steps)) for labels, value in self.answers[query]))

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
