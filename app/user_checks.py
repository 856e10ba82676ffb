"""A team's own checks, from a YAML file (`CHECKS_FILE`), judged like the built-in ones.

    checks:
      - name: checkout_conversion
        title: checkout conversion
        events: sum(increase(orders_total{app="$service",version="$version"}[$window]))
        trials: sum(increase(checkout_visits_total{app="$service",version="$version"}[$window]))
        worse: lower            # a canary converting less is worse
        compare: stable         # or slo
        limit: {field: conversion_drop_max, default: 0.02, minimum: 0, maximum: 1,
                description: "Canary conversion may fall this far below the stable's."}

A check gives either `events` over `trials` (counts, judged statistically like the error rate:
a binomial test against an SLO, a score test against the stable) or one `value` (any number,
held to its limit as it is: `method: threshold`). `$service`, `$version` and `$window` are filled
in with validated, escaped values, and only where they cannot change the query's structure:
inside a quoted label value, and inside a range's brackets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app import yaml_files
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Bound, Check, Limit, Method, Queries, Statistic
from app.judge.units import Unit
from app.models import OWN_FIELDS

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PLACEHOLDER = re.compile(r"\$(\w+)")
# Where a placeholder may stand: a whole quoted label value, or a whole range.
QUOTED = re.compile(r'"\$(service|version|namespace)"')
RANGE = re.compile(r"\[\$window\]")
BUILTIN_FIELDS = {check.limit.field for check in CHECKS}


class LimitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=NAME.pattern)
    description: str = Field(min_length=1)
    default: float
    minimum: float
    maximum: float

    @model_validator(mode="after")
    def _in_range(self) -> LimitSpec:
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"default {self.default:g} is outside [{self.minimum:g}, {self.maximum:g}]")
        return self


class CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME.pattern)
    title: str = Field(min_length=1)
    value: str | None = None
    events: str | None = None
    trials: str | None = None
    unit: Literal["seconds", "ratio", "count"] = "count"
    worse: Literal["higher", "lower"]
    compare: Literal["slo", "stable"]
    method: Literal["statistical", "threshold"] = "statistical"
    limit: LimitSpec

    @field_validator("value", "events", "trials")
    @classmethod
    def _placeholders(cls, template: str | None) -> str | None:
        if template is None:
            return None
        unknown = set(PLACEHOLDER.findall(template)) - {"service", "version", "namespace", "window"}
        if unknown:
            raise ValueError(f"unknown placeholders {sorted(unknown)}: only $service, $version, $namespace and $window")
        loose = PLACEHOLDER.findall(RANGE.sub("", QUOTED.sub("", template)))
        if loose:
            raise ValueError(
                f'${loose[0]} must stand alone in a quoted label value ("$service") or a range ([$window])'
            )
        if '"$version"' not in template:
            raise ValueError('a query must select the version: a matcher such as version="$version"')
        return template

    @model_validator(mode="after")
    def _kind(self) -> CheckSpec:
        counts = self.events is not None or self.trials is not None
        if counts and (self.events is None or self.trials is None):
            raise ValueError("events and trials go together")
        if counts == (self.value is not None):
            raise ValueError("give either value, or events and trials")
        if self.value is not None and self.method == "statistical":
            raise ValueError("a value is held to its limit as it is: method: threshold (statistics need events/trials)")
        if self.name in {check.name for check in CHECKS}:
            raise ValueError(f"{self.name!r} is a built-in check")
        if self.limit.field in BUILTIN_FIELDS:
            raise ValueError(f"limit.field {self.limit.field!r} is a built-in check's")
        if self.limit.field in OWN_FIELDS:
            raise ValueError(f"limit.field {self.limit.field!r} is a request field's name")
        return self


class ChecksFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[CheckSpec]  # none is fine: the Kubernetes base ships an empty file

    @model_validator(mode="after")
    def _unique(self) -> ChecksFile:
        for attribute in ("name", "limit.field"):
            values = [spec.name if attribute == "name" else spec.limit.field for spec in self.checks]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{attribute} must be unique: {', '.join(repeated)} given twice")
        return self


def load(path: Path) -> tuple[Check, ...]:
    """The file's checks; raises yaml_files.FileError naming the line, the field and why."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise yaml_files.FileError(f"{path}: cannot be read: {exc}") from None
    return parse(text, str(path))


def parse(text: str, name: str) -> tuple[Check, ...]:
    """Checks from a file's text; `name` is what problems are reported against."""
    return tuple(check(spec) for spec in yaml_files.load(text, name, ChecksFile).checks)


def check(spec: CheckSpec) -> Check:
    ratio = spec.events is not None
    lower = spec.worse == "lower"
    if spec.compare == "slo":
        bound = Bound.AT_LEAST if lower else Bound.AT_MOST
    elif ratio:
        bound = Bound.STABLE_MINUS if lower else Bound.STABLE_PLUS
    else:
        bound = Bound.FRACTION_OF_STABLE if lower else Bound.RATIO_OF_STABLE
    if spec.method == "threshold":
        method = Method.POINT
    else:
        method = Method.BINOMIAL if spec.compare == "slo" else Method.TWO_PROPORTIONS
    return Check(
        name=spec.name,
        title=spec.title,
        statistic=Statistic.RATIO if ratio else Statistic.VALUE,
        bound=bound,
        method=method,
        limit=Limit(
            field=spec.limit.field,
            description=spec.limit.description,
            default=spec.limit.default,
            minimum=spec.limit.minimum,
            maximum=spec.limit.maximum,
        ),
        queries=Queries(value=spec.value, events=spec.events, trials=spec.trials),
        declared_unit=Unit.RATIO if ratio else Unit(spec.unit),
    )
