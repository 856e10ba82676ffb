"""What judging one check concludes: the outcome, the limit it was held to, and why."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.judge.units import Unit


class Outcome(StrEnum):
    """What one check concluded; `skipped` checks do not count towards the verdict."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Evidence:
    """How sure a statistical check is, in the terms of its test."""

    method: str
    estimate: float | None  # what the test estimates, in `unit`
    low: float | None  # its lower confidence bound, at 1 - alpha: above the limit means fail
    high: float | None  # its upper confidence bound, at pass_confidence: within the limit means pass
    limit: float  # what the bounds are held to, in `unit`
    unit: Unit
    effect: float | None  # the effect size, named by `effect_name`
    effect_name: str
    p_value: float | None  # of "the canary is worse than the limit allows"
    alpha: float
    pass_confidence: float
    anytime: bool = False  # `low` holds at every look at data that only grow, not at this one alone

    @property
    def confidence_text(self) -> str:
        """The fail side's confidence as a person reads it: 99.75%."""
        return f"{(1 - self.alpha) * 100:.6g}% confidence"


@dataclass(frozen=True)
class Finding:
    outcome: Outcome
    limit: float | None  # the effective limit the canary's number was held to; None when not judged
    reason: str
    evidence: Evidence | None = None
