"""The HTTP contract: what /analyze accepts and what it answers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from app import promql
from app.judgment import Outcome, Thresholds, Verdict

_DEFAULTS = Thresholds()
LabelValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=promql.LABEL_VALUE.pattern,
        description="A label value: letters, digits and `_ . : -`, at most 253 characters.",
    ),
]
MIN_WINDOW_SECONDS = 30
MAX_WINDOW_SECONDS = 86400
MAX_CLOCK_SKEW = timedelta(minutes=1)
MIN_LOOKBACK_SECONDS = 300
MAX_LOOKBACK_SECONDS = 7 * 86400


class AnalysisRequest(BaseModel):
    """One analysis: which service, which two versions, over which window, held to which thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: LabelValue = Field(description="Value of the service label.")
    canary: LabelValue = Field(default="canary", description="Value of the version label for the canary.")
    stable: LabelValue = Field(default="stable", description="Value of the version label for the stable.")
    window: str = Field(
        default="5m",
        max_length=32,
        description="PromQL duration the rates are taken over, between 30s and 1d (e.g. `5m`, `1h30m`).",
    )
    p95_max_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description=f"Canary P95 SLO in seconds (default {_DEFAULTS.p95_max_seconds}).",
    )
    error_rate_max: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=f"Canary error-rate SLO, 0..1 (default {_DEFAULTS.error_rate_max}).",
    )
    p95_ratio_max: float | None = Field(
        default=None,
        ge=1,
        le=100,
        description=f"Canary P95 may be at most this times the stable's (default {_DEFAULTS.p95_ratio_max}).",
    )
    error_rate_delta_max: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=f"Canary error rate may top the stable's by this (default {_DEFAULTS.error_rate_delta_max}).",
    )
    min_requests: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description=f"Requests a version needs in the window to be judged (default {_DEFAULTS.min_requests}).",
    )

    at: AwareDatetime | None = Field(
        default=None,
        description="Judge as of this moment (RFC 3339, e.g. when a rollout was aborted); default: now.",
    )

    @field_validator("at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("must not be in the future")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        seconds = promql.duration_seconds(value)
        if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
            raise ValueError(f"window must be between 30s and 1d, got {value}")
        return value

    @field_validator("p95_max_seconds", "error_rate_max", "p95_ratio_max", "error_rate_delta_max")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _two_versions(self) -> AnalysisRequest:
        if self.canary == self.stable:
            raise ValueError("canary and stable must be different versions")
        return self

    def thresholds(self) -> Thresholds:
        overrides = {name: getattr(self, name) for name in Thresholds.names() if getattr(self, name) is not None}
        return Thresholds(**overrides)


BLANK_IS_DEFAULT = frozenset({"at", "lookback", "format", *Thresholds.names()})


class AnalysisQuery(AnalysisRequest):
    """GET /analyze: the analysis, plus how a person wants to see it."""

    format: Literal["json", "html"] | None = Field(
        default=None, description="Overrides the Accept header: `json` or `html` (the report)."
    )
    lookback: str = Field(default="30m", max_length=32, description="How far back the report's charts go (5m to 7d).")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, data: object) -> object:
        """A form field left empty means "not set" for the optional ones; an empty label value
        stays an error (an Argo arg that resolved to nothing must not become the default)."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k in BLANK_IS_DEFAULT and v == "")}
        return data

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: str) -> str:
        if not MIN_LOOKBACK_SECONDS <= promql.duration_seconds(value) <= MAX_LOOKBACK_SECONDS:
            raise ValueError(f"lookback must be between 5m and 7d, got {value}")
        return value

    def analysis_request(self) -> AnalysisRequest:
        return AnalysisRequest(**self.model_dump(exclude={"format", "lookback"}))


class Queries(BaseModel):
    canary: str
    stable: str


class CheckOut(BaseModel):
    name: str
    verdict: Outcome
    canary: float | None = Field(description="The canary's value; null when there is none or it is not finite.")
    stable: float | None
    threshold: float | None = Field(description="The limit the canary was held to (null when not judged).")
    rule: str
    reason: str
    queries: Queries


class Links(BaseModel):
    prometheus: dict[str, str] = Field(description="A Prometheus graph URL for each query, by query key.")
    grafana: str | None = None
    report: str | None = None


class AnalysisResponse(BaseModel):
    verdict: Verdict
    reasons: list[str]
    service: str
    canary: str
    stable: str
    window: str
    evaluated_at: datetime
    thresholds: dict[str, float | int]
    checks: list[CheckOut]
    links: Links
    warnings: list[str]
    trace_id: str | None = None


class ErrorResponse(BaseModel):
    error: str
    cause: str | None = None
    detail: str | list | None = None
    trace_id: str | None = None
