"""What the analyzer remembers of each canary's life between analyses: when its series began, and the
counts of its recent minutes.

Argo asks about the same canary every minute. Its start, once found over a day of look-back (or found
to lie beyond it), only changes if the canary's series go away and come back; so the next analysis asks
Prometheus only about the minutes since the last one, in the same query as the families it measures
from the start it knows. The counts of a whole minute of its life (both versions', each family's) never
change once the minute has settled: read once, at the minute's end (an `@` evaluation), they are kept,
so that a poll reads only the newest minute, in that same query.

Both are read from Prometheus at fixed moments, never taken from whichever answer came first: every
replica, restarted or not, holds the same. The memory is this process' own, bounded, and never more
than a cache of what Prometheus says.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from app.judge.recent import MINUTE, Counts, Timeline

V = TypeVar("V")


@dataclass(frozen=True)
class Known:
    start: float | None  # unix time the canary's series last began; None: before the whole look-back
    checked_at: float  # the evaluation time that found it so


@dataclass(frozen=True)
class Sums:
    """Both versions' counters summed at one moment: where the next minute's counts start from."""

    at: float
    canary: Counts
    stable: Counts

    def less(self, earlier: Sums) -> tuple[Counts, Counts]:
        """Both versions' counts since the `earlier` sums (Counts.less)."""
        return self.canary.less(earlier.canary), self.stable.less(earlier.stable)


@dataclass(frozen=True)
class Minutes:
    """Both versions' counts in whole minutes, each ending at one of `ends` (ascending), and the sums at the
    last of them when they were read as sums."""

    ends: tuple[float, ...]
    canary: Counts
    stable: Counts
    sums: Sums | None = None

    @classmethod
    def of(cls, minutes: Iterable[tuple[float, Counts, Counts]]) -> Minutes:
        """From (end, canary, stable) rows in any order; a minute given twice keeps its last."""
        by_end = {end: (canary, stable) for end, canary, stable in minutes}
        ends = tuple(sorted(by_end))
        return cls(ends, Counts.stack([by_end[e][0] for e in ends]), Counts.stack([by_end[e][1] for e in ends]))

    @classmethod
    def between(cls, sums: Sequence[Sums]) -> Minutes:
        """The minutes between consecutive sums a minute apart (ascending), and the last sums."""
        pairs = [(a, b) for a, b in itertools.pairwise(sums) if b.at - a.at == MINUTE]
        if not pairs:
            return Minutes((), EMPTY_COUNTS, EMPTY_COUNTS, sums[-1] if sums else None)
        early, late = pairs_of(pairs, 0), pairs_of(pairs, 1)
        canary, stable = late.canary.less(early.canary), late.stable.less(early.stable)
        return Minutes(tuple(b.at for _, b in pairs), canary, stable, sums[-1])

    def rows(self) -> Iterable[tuple[float, Counts, Counts]]:
        for i, end in enumerate(self.ends):
            row = np.array([i])
            yield end, self.canary.rows(row), self.stable.rows(row)

    def timeline(
        self, ends: Sequence[float], canary_start: float | None, tail: tuple[float, Counts, Counts] | None = None
    ) -> Timeline:
        """The minutes ending at `ends` (ascending; one not kept counted nothing) as a timeline, with the `tail`
        (its end, and both versions' counts since the last minute) after them when there is one."""
        index = {end: i for i, end in enumerate(self.ends)}
        nothing = len(self.ends)  # a row of zeros, stacked after the kept ones
        rows = np.array([index.get(end, nothing) for end in ends])
        zero = Counts.of({})
        canary = Counts.stack([self.canary, zero]).rows(rows)
        stable = Counts.stack([self.stable, zero]).rows(rows)
        starts, end = [end - MINUTE for end in ends], ends[-1]
        if tail is not None:
            end, tail_canary, tail_stable = tail
            canary, stable = Counts.stack([canary, tail_canary]), Counts.stack([stable, tail_stable])
            starts.append(ends[-1])
        return Timeline(canary_start=canary_start, starts=tuple(starts), end=end, canary=canary, stable=stable)

    def merged(self, newer: Minutes, oldest: float) -> Minutes:
        """These and `newer` (which wins where both have a minute), without the minutes ending before `oldest`;
        the later sums of the two."""
        if not newer.ends and newer.sums is None and (not self.ends or self.ends[0] >= oldest):
            return self  # nothing to add or drop: Argo's second look within a minute
        ends = np.array([*self.ends, *newer.ends])
        # The last row of each minute (the newer's), in order of the minutes.
        last = {end: i for i, end in enumerate(ends.tolist()) if end >= oldest}
        rows = np.array([last[end] for end in sorted(last)], dtype=int)
        canary = Counts.stack([self.canary, newer.canary]).rows(rows)
        stable = Counts.stack([self.stable, newer.stable]).rows(rows)
        sums = max((s for s in (self.sums, newer.sums) if s is not None), key=lambda s: s.at, default=None)
        return Minutes(tuple(sorted(last)), canary, stable, sums)

    def __len__(self) -> int:
        return len(self.ends)


EMPTY_COUNTS = Counts.stack([])
EMPTY = Minutes((), EMPTY_COUNTS, EMPTY_COUNTS)


def pairs_of(pairs: Sequence[tuple[Sums, Sums]], which: int) -> Sums:
    """One side of consecutive sums, stacked: row i is pair i's."""
    side = [pair[which] for pair in pairs]
    return Sums(side[-1].at, Counts.stack([s.canary for s in side]), Counts.stack([s.stable for s in side]))


class _Bounded(Generic[V]):
    """A map that keeps its `capacity` most recently used keys."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._values: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._values[key] = value
        self._values.move_to_end(key)
        while len(self._values) > self.capacity:
            self._values.popitem(last=False)

    def __len__(self) -> int:
        return len(self._values)


class CanaryLives:
    """Canaries' starts, by their start query; their settled minutes, by the query that counts them.

    A canary's minutes take a few kilobytes (an hour of both versions' buckets), its start a few bytes:
    fewer canaries' minutes are kept."""

    def __init__(self, capacity: int = 10_000, minutes_capacity: int = 500) -> None:
        self._starts: _Bounded[Known] = _Bounded(capacity)
        self._minutes: _Bounded[Minutes] = _Bounded(minutes_capacity)

    def recall(self, canary: str, at: float, within: float) -> Known | None:
        """What was found for `canary` (its start query) at or before `at`, at most `within` seconds
        before it; None otherwise: an analysis of an earlier moment looks afresh."""
        known = self._starts.get(canary)
        if known is None or not 0 <= at - known.checked_at <= within:
            return None
        return known

    def remember(self, canary: str, known: Known) -> None:
        current = self._starts.get(canary)
        if current is not None and current.checked_at > known.checked_at:
            return  # an analysis of an earlier moment does not overwrite a later one
        self._starts.put(canary, known)

    def minutes(self, counted: str) -> Minutes:
        """The settled minutes kept for the pair of versions `counted` (the query that counts them)."""
        return self._minutes.get(counted) or EMPTY

    def keep(self, counted: str, minutes: Minutes) -> None:
        """Keeps `minutes` for the pair of versions `counted`, in place of those kept before."""
        self._minutes.put(counted, minutes)

    def __len__(self) -> int:
        return len(self._starts)
