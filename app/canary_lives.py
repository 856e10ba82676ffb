"""When each canary's series began, remembered between analyses.

Argo asks about the same canary every minute. Its start, once found over a day of look-back (or
found to lie beyond it), only changes if the canary's series go away and come back; so the next
analysis asks Prometheus only about the minutes since the last one, in the same query as the
families it measures from the start it knows.
The memory is this process' own, bounded, and never more than a guess that Prometheus checks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    start: float | None  # unix time the canary's series last began; None: before the whole look-back
    checked_at: float  # the evaluation time that found it so


class CanaryStarts:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._known: OrderedDict[str, Known] = OrderedDict()

    def recall(self, canary: str, at: float, within: float) -> Known | None:
        """What was found for `canary` (its start query) at or before `at`, at most `within` seconds
        before it; None otherwise: an analysis of an earlier moment looks afresh."""
        known = self._known.get(canary)
        if known is None or not 0 <= at - known.checked_at <= within:
            return None
        self._known.move_to_end(canary)
        return known

    def remember(self, canary: str, known: Known) -> None:
        current = self._known.get(canary)
        if current is not None and current.checked_at > known.checked_at:
            return  # an analysis of an earlier moment does not overwrite a later one
        self._known[canary] = known
        self._known.move_to_end(canary)
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known)
