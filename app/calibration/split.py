"""Two halves of a version's pods, told apart by a label (`pod`, `instance`...): the same every time.

The values are ordered by the SHA-256 of each (never Python's hash(), which changes from process to process);
the first half of that order is one half, the rest the other. The same values make the same halves on any
machine, in any order they come; the halves hold as many values as each other, one more at most; and a value
that comes or goes moves at most one other from its half (the one at the middle of the order), where taking
halves by each hash's parity alone would leave a half empty one time in two with two pods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

HALVES = ("A", "B")


class NotSplit(ValueError):
    """The label does not tell the version's pods apart: fewer than two values."""


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


@dataclass(frozen=True)
class Halves:
    """The values of `label` in two halves, A and B, each ascending."""

    label: str
    a: tuple[str, ...]
    b: tuple[str, ...]

    def of(self, value: str) -> str:
        """The half a value is in: A or B."""
        if value in self.a:
            return HALVES[0]
        if value in self.b:
            return HALVES[1]
        raise KeyError(value)

    def members(self, half: str) -> tuple[str, ...]:
        return self.a if half == HALVES[0] else self.b


def split(label: str, values: Iterable[str]) -> Halves:
    """The values in two halves by the order of their hashes; NotSplit with fewer than two."""
    distinct = sorted(set(values))
    if len(distinct) < 2:
        held = f"one value ({shown(distinct[0])})" if distinct else "no value"
        raise NotSplit(f"the label {label!r} has {held} on the stable's series: it does not tell its pods apart")
    ordered = sorted(distinct, key=digest)
    middle = (len(ordered) + 1) // 2
    return Halves(label, tuple(sorted(ordered[:middle])), tuple(sorted(ordered[middle:])))


def shown(value: str) -> str:
    """A value as people read it: a series without the label has the empty value."""
    return value if value else "(none: series without the label)"
