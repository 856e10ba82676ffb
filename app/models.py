"""The HTTP contract: what /analyze accepts and what it answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from app import promql
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Check, Limit, Mode
from app.judge.findings import Outcome
from app.judge.judgment import Confidence, Guarantee, Verdict
from app.judge.units import Unit
from app.presets import NAMES as PRESET_NAMES
from app.presets import PRESETS, Preset

LabelValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=promql.LABEL_VALUE.pattern,
        description="A label value: letters, digits and `_ . : -`, at most 253 characters.",
    ),
]
# Python's \d takes any Unicode digit, which Prometheus would not parse: the schema and the check say [0-9].
DURATION_PATTERN = promql.DURATION.pattern.replace(r"\d", "[0-9]")
# RFC 3339's date-time (JSON Schema's `date-time`): a zone, always. Anything else pydantic would read as a
# moment is refused: a number as seconds since 1970, a date alone, a time without seconds.
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
Moment = Annotated[AwareDatetime, WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339.pattern})]
MIN_WINDOW_SECONDS = 30
MAX_WINDOW_SECONDS = 86400
MAX_CLOCK_SKEW = timedelta(minutes=1)
MIN_LOOKBACK_SECONDS = 300
MAX_LOOKBACK_SECONDS = 7 * 86400


def _not_a_boolean(value: object) -> object:
    # pydantic would read JSON's true as 1: no field here is a yes/no, so true is a mistake.
    if isinstance(value, bool):
        raise ValueError("must not be a boolean")
    return value


def limit_field(limit: Limit) -> tuple[Any, FieldInfo]:
    """A request field for a check's limit: optional, its range and default from the check."""
    low = {"gt" if limit.exclusive_minimum else "ge": limit.minimum}
    return (
        (int if limit.integer else float) | None,
        Field(default=None, le=limit.maximum, allow_inf_nan=False, description=describe_limit(limit), **low),
    )


def describe_limit(limit: Limit) -> str:
    default = f"default {limit.default:g}"
    if limit.statistical_default is not None:
        default = f"default {limit.statistical_default:g} ({limit.default:g} with mode=threshold)"
    return f"{limit.description.rstrip('.')} ({default})."


class _Analysis(BaseModel):
    """One analysis: which service, which two versions, over which window, held to which limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    checks: ClassVar[tuple[Check, ...]] = CHECKS

    service: LabelValue = Field(description="Value of the service label.")
    namespace: LabelValue | None = Field(
        default=None,
        description="The Kubernetes namespace the service runs in: every query selects it (the preset's "
        "namespace label). With TENANCY on it must be one the caller's credential covers; a credential "
        "covering one namespace implies it.",
    )
    canary: LabelValue = Field(default="canary", description="Value of the version label for the canary.")
    stable: Annotated[str, Field(max_length=253, pattern=r"^[A-Za-z0-9_.:-]{0,253}$")] = Field(
        default="stable",
        description="Value of the version label for the stable; empty only for a preset whose stable carries "
        "no version label (ingress-nginx).",
    )
    preset: Literal[PRESET_NAMES] | None = Field(  # type: ignore[valid-type]
        default=None, description="Whose metric conventions to read (default: the service's METRICS_PRESET)."
    )
    window: str = Field(
        default="5m",
        max_length=32,
        pattern=DURATION_PATTERN,
        description="PromQL duration the rates are taken over, between 30s and 1d (e.g. `5m`, `1h30m`).",
    )

    at: Moment | None = Field(
        default=None,
        description="Judge as of this moment (RFC 3339 with a zone, e.g. when a rollout was aborted); default: now.",
        examples=["2026-11-22T08:00:00Z"],
    )
    mode: Mode = Field(
        default=Mode.STATISTICAL,
        description="`statistical`: decide on the distributions with a stated confidence; "
        "`threshold`: hold point estimates to the limits (the first version's rules).",
    )
    alpha: float = Field(
        default=Confidence.alpha,
        gt=0,
        le=0.5,
        description="Statistical mode: the chance the whole AnalysisRun fails a canary that is within its "
        "limits, split over the checks (and, with `guarantee=fixed_polls`, over the polls).",
    )
    guarantee: Guarantee = Field(
        default=Confidence.guarantee,
        description="Statistical mode: `anytime` holds `alpha` over every answer a run may ask for, however "
        "many, judging the canary's data since it started; `fixed_polls` holds it over `polls` answers on "
        "the window, of which more than `failure_limit` must fail to abort.",
    )
    polls: int = Field(
        default=Confidence.polls,
        ge=1,
        le=1000,
        description="Statistical mode, `guarantee=fixed_polls`: the measurements the AnalysisRun takes (the "
        "metric's `count`).",
    )
    failure_limit: int = Field(
        default=Confidence.failure_limit,
        ge=0,
        le=1000,
        description="Statistical mode, `guarantee=fixed_polls`: the metric's `failureLimit` (failed "
        "measurements beyond it abort).",
    )
    pass_confidence: float = Field(
        default=Confidence.pass_confidence,
        ge=0.5,
        lt=1,
        description="Statistical mode: how sure a check must be that the canary is within its limit to pass.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        return _not_a_boolean(value)

    @field_validator("at", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        if value is None or isinstance(value, datetime) or (isinstance(value, str) and RFC3339.fullmatch(value)):
            return value
        raise ValueError("must be an RFC 3339 date-time with a zone, e.g. 2026-11-22T08:00:00Z")

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

    @model_validator(mode="after")
    def _two_versions(self) -> _Analysis:
        if self.canary == self.stable:
            raise ValueError("canary and stable must be different versions")
        return self

    @model_validator(mode="after")
    def _failures_within_polls(self) -> _Analysis:
        if self.failure_limit >= self.polls:
            raise ValueError("failure_limit must be below polls: a run that cannot fail needs no judge")
        return self

    def confidence(self) -> Confidence:
        return Confidence(self.alpha, self.polls, self.failure_limit, self.pass_confidence, self.guarantee)

    @property
    def selects_namespace(self) -> bool:
        """Some check's queries place `$namespace`: the request must name one (or imply it)."""
        return any(check.queries is not None and check.queries.uses_namespace for check in self.checks)

    def limits(self) -> dict[str, float]:
        """Each check's limit by check name: the one asked for, else the default."""
        asked = {check.name: getattr(self, check.limit.field) for check in self.checks}
        return {
            check.name: check.limit.default_for(self.mode) if asked[check.name] is None else asked[check.name]
            for check in self.checks
        }

    def thresholds(self) -> dict[str, float]:
        """The same limits by request field, as the answer shows them."""
        limits = self.limits()
        return {check.limit.field: limits[check.name] for check in self.checks}


def preset_problem(request: _Analysis, preset: Preset) -> str | None:
    """What keeps the request from being read with this preset, if anything."""
    if request.stable == "" and not preset.empty_stable:
        allowing = ", ".join(name for name, p in PRESETS.items() if p.empty_stable)
        return f"an empty stable is only for presets whose stable carries no version label ({allowing})"
    return None


class _Query(BaseModel):
    """GET /analyze: the analysis, plus how a person wants to see it."""

    request_model: ClassVar[type[_Analysis]]

    format: Literal["json", "html"] | None = Field(
        default=None, description="Overrides the Accept header: `json` or `html` (the report)."
    )
    lookback: str = Field(
        default="30m",
        max_length=32,
        pattern=DURATION_PATTERN,
        description="How far back the report's charts go (5m to 7d).",
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, data: object) -> object:
        """A form field left empty means "not set" for the optional ones; an empty label value
        stays an error (an Argo arg that resolved to nothing must not become the default)."""
        if isinstance(data, dict):
            optional = {
                "at",
                "namespace",
                "lookback",
                "format",
                "preset",
                *(check.limit.field for check in cls.request_model.checks),
            }
            return {k: v for k, v in data.items() if not (k in optional and v == "")}
        return data

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: str) -> str:
        if not MIN_LOOKBACK_SECONDS <= promql.duration_seconds(value) <= MAX_LOOKBACK_SECONDS:
            raise ValueError(f"lookback must be between 5m and 7d, got {value}")
        return value

    def analysis_request(self) -> _Analysis:
        return self.request_model(**self.model_dump(exclude={"format", "lookback"}))


# What `calibrate` replays the analysis with, besides the checks' limits: the analysis request's own fields.
CALIBRATED_FIELDS = ("service", "namespace", "stable", "preset", "window", "alpha", "pass_confidence")
MIN_PERIOD_SECONDS = 2 * 3600
MAX_PERIOD_SECONDS = 31 * 86400


class _Calibration(BaseModel):
    """`canary-analyzer calibrate`: the analysis replayed on a service's own history, half its stable's pods
    judged as the canary against the other half (A/A on real traffic)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    request_model: ClassVar[type[_Analysis]]

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        return _not_a_boolean(value)

    @field_validator("period", check_fields=False)
    @classmethod
    def _period(cls, value: str) -> str:
        if not MIN_PERIOD_SECONDS <= promql.duration_seconds(value) <= MAX_PERIOD_SECONDS:
            raise ValueError(f"period must be between 2h and 31d, got {value}")
        return value

    @property
    def period_seconds(self) -> float:
        return promql.duration_seconds(self.period)  # type: ignore[attr-defined]

    def analysis_request(self) -> _Analysis:
        """The request each replayed analysis judges with: these fields, the rest the API's defaults (statistical
        mode, `anytime`, as the shipped templates ask). Its canary is half the stable: no version of its own."""
        shared = self.model_dump(exclude=set(CALIBRATION_FIELDS))
        return self.request_model.model_construct(**shared)


# calibrate's own fields, after those of the analysis request it shares.
CALIBRATION_FIELDS: dict[str, Any] = {
    "period": (
        str,
        Field(
            default="7d",
            max_length=32,
            pattern=DURATION_PATTERN,
            description="How far back to replay, between 2h and 31d, within what Prometheus holds (e.g. `7d`, `36h`).",
        ),
    ),
    "split_label": (
        str | None,
        Field(
            default=None,
            max_length=128,
            pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
            description="The label that tells the stable's pods apart, to split them in halves (default: the "
            "preset's `split_labels`, the first that does: `pod`, then `instance` for most presets).",
        ),
    ),
}


# The request's own fields: a check's limit cannot take one of these names.
OWN_FIELDS = frozenset(_Analysis.model_fields) | frozenset(_Query.model_fields) | frozenset(CALIBRATION_FIELDS)


@dataclass(frozen=True)
class RequestModels:
    """The request bodies for a set of checks: a field for each check's limit."""

    request: type[_Analysis]
    query: type[_Query]
    calibration: type[_Calibration]

    @classmethod
    def of(cls, checks: tuple[Check, ...]) -> RequestModels:
        request = create_model(
            "AnalysisRequest",
            __base__=_Analysis,
            __doc__=_Analysis.__doc__,
            **{check.limit.field: limit_field(check.limit) for check in checks},
        )
        request.checks = checks
        query = create_model("AnalysisQuery", __base__=(request, _Query), __doc__=_Query.__doc__)
        query.request_model = request
        limits = [check.limit.field for check in checks]
        calibration = create_model(
            "CalibrationRequest",
            __base__=_Calibration,
            __doc__=_Calibration.__doc__,
            **{
                name: (request.model_fields[name].annotation, request.model_fields[name])
                for name in [*CALIBRATED_FIELDS, *limits]
            },
            **CALIBRATION_FIELDS,
        )
        calibration.request_model = request
        return cls(request, query, calibration)


BUILTIN = RequestModels.of(CHECKS)
AnalysisRequest = BUILTIN.request
AnalysisQuery = BUILTIN.query
CalibrationRequest = BUILTIN.calibration


class Queries(BaseModel):
    canary: str
    stable: str


class Shown(BaseModel):
    """The numbers as a person reads them, in the check's unit. A version's number from fewer requests than the
    traffic gate's `min_requests` reads as the count, "6 requests: not yet meaningful" (the numbers beside stay
    as measured)."""

    canary: str
    stable: str
    threshold: str


class Interval(BaseModel):
    low: float | None
    high: float | None = Field(description="null: unbounded (the +Inf bucket).")


class OneSidedBound(BaseModel):
    """One end of `interval` as what it is: a one-sided bound at its own confidence, which decides one outcome.
    The two ends are not one confidence interval: the fail side's is at 1 - alpha, the pass side's at
    pass_confidence."""

    side: Literal["lower", "upper"]
    value: float | None
    confidence: float = Field(description="How sure the bound is: 1 - alpha on the fail side, else pass_confidence.")
    anytime: bool = Field(
        description="It holds at every look at the canary's data since it started, not at this answer alone."
    )
    shown: str = Field(description='As a person reads it, e.g. "≥ 3.72% with 99.75% confidence at any look".')


class Statistics(BaseModel):
    """What a statistical check's test found, and how sure it is."""

    method: str = Field(description="The test: clopper-pearson, miettinen-nurminen or brunner-munzel.")
    estimate: float | None = Field(description="What the test estimates, in `unit`.")
    interval: Interval = Field(
        description="`low` and `high`: the two one-sided bounds, `fail_bound` and `pass_bound` in the order of "
        "their values (for a check where higher is worse, `low` is the fail side's)."
    )
    limit: float = Field(description="What the interval is held to, in `unit` (e.g. the 5 % a P95 SLO allows).")
    unit: Unit
    shown: str = Field(
        description="What the estimate is, and each bound with what it decides, as a person reads them (the CLI's "
        'column), e.g. "0.08% slower than 300 ms (5.00% allowed); a fail needs the lower bound above the limit: '
        '0.00% (99.75% confidence at any look); a pass needs the upper bound within it: 0.17% (60% confidence)".'
    )
    estimate_shown: str = Field(
        description='What the estimate is, with its limit: "0.08% slower than 300 ms (5.00% allowed)".'
    )
    limit_shown: str = Field(description='The limit as the estimate is held to it: "5.00% allowed", "1.1x tolerated".')
    fail_bound: OneSidedBound = Field(description="The bound a fail needs past the limit.")
    pass_bound: OneSidedBound = Field(description="The bound a pass needs within the limit.")
    effect: float | None
    effect_name: str
    p_value: float | None = Field(description='Of "the canary is worse than its limit allows".')
    alpha: float = Field(description="This check's share of the AnalysisRun's alpha, for this answer.")
    pass_confidence: float
    scope: Literal["whole", "recent"] = Field(
        description="`whole`: the data judged as a whole (`confidence.since` to `evaluated_at`); `recent`: a "
        "recent span of the canary's life alone, on which the check failed (`since` to `evaluated_at`)."
    )
    since: datetime = Field(description="Where the data this finding is on begin; they end at `evaluated_at`.")
    span: str = Field(description="How long they are, as a PromQL duration.")


class CheckOut(BaseModel):
    name: str
    title: str = Field(description='What the number is, e.g. "P95 latency".')
    verdict: Outcome
    unit: Unit
    canary: float | None = Field(description="The canary's value; null when there is none or it is not finite.")
    stable: float | None
    threshold: float | None = Field(description="The limit the canary was held to (null when not judged).")
    rule: str
    reason: str
    queries: Queries = Field(description="Per version, the PromQL that gives the number in Prometheus or Grafana.")
    shown: Shown
    canary_bucket: Interval | None = Field(
        default=None,
        description="For a quantile: the histogram bucket the canary's quantile lies in. The number shown "
        "interpolates inside it, as histogram_quantile does; the true quantile is somewhere in it.",
    )
    stable_bucket: Interval | None = None
    statistics: Statistics | None = Field(default=None, description="mode=statistical: the test's findings.")


class Links(BaseModel):
    prometheus: dict[str, str] = Field(description="A Prometheus graph URL for each query, by query key.")
    grafana: str | None = None
    report: str | None = None


class AlphaSplit(BaseModel):
    """How each check's alpha is spent under `anytime`: on the data judged as a whole, and on the canary's
    recent spans (each minute boundary of its life starts one, judged on its own data)."""

    whole: float = Field(description="What each check's test on the data judged as a whole may spend.")
    recent: float = Field(description="What each check's tests on recent spans may spend together.")
    span_minutes: int = Field(description="A span is judged while it is at most this long.")
    spread: int = Field(
        description="c: the span starting k minutes after the canary may spend recent x c / ((k + c - 1)(k + c)), "
        "which sums to `recent` over a life of any length."
    )


class ConfidenceOut(BaseModel):
    alpha: float = Field(description="The chance the whole AnalysisRun fails a canary within its limits.")
    guarantee: Guarantee = Field(
        description="`anytime`: over every answer a run may ask for, however many; `fixed_polls`: over `polls` "
        "answers of which more than `failure_limit` fail."
    )
    data: Literal["since_canary_start", "last_day", "window"] = Field(
        description="What was judged: everything since the canary's series began (data that only grows, what "
        "`anytime` needs); its last day, for a canary older than that; or the request's sliding window."
    )
    since: datetime = Field(description="The judged data's start; it ends at `evaluated_at`.")
    span: str = Field(description="The judged data's length as a PromQL duration (never less than `window`).")
    polls: int | None = Field(
        description="`fixed_polls`: the answers of a run `alpha` is held over (the request's `polls`); null under "
        "`anytime`, which holds it over every answer, however many."
    )
    failure_limit: int | None = Field(
        description="`fixed_polls`: the failed answers beyond which a run aborts (the request's `failure_limit`); "
        "null under `anytime`, where polls are not counted."
    )
    pass_confidence: float
    alpha_per_check: float = Field(
        description="Of alpha, what each check that can fail may spend: alpha / checks (anytime), or "
        "alpha x (failure_limit + 1) / polls / checks, per answer (fixed_polls)."
    )
    split: AlphaSplit | None = Field(
        default=None, description="`anytime`: how each check's alpha is shared by the whole and the recent spans."
    )


class AnalysisResponse(BaseModel):
    verdict: Verdict
    mode: Mode
    reasons: list[str]
    service: str
    canary: str
    stable: str
    window: str
    evaluated_at: datetime
    thresholds: dict[str, float | int]
    confidence: ConfidenceOut | None = Field(default=None, description="mode=statistical: how sure it must be.")
    checks: list[CheckOut]
    queries: dict[str, str] = Field(
        description="The PromQL sent to Prometheus: one query per metric family (both versions at once), "
        "and a user check's own per version (`check:<name>:<canary|stable>:<value|events|trials>`)."
    )
    links: Links
    warnings: list[str]
    trace_id: str | None = None


class ErrorResponse(BaseModel):
    """Every error answer, whoever gives it: the four keys always, null where there is nothing to say."""

    error: str = Field(description="What kind of error: `invalid_request`, `unauthorized`, `prometheus_unavailable`...")
    cause: str | None = Field(
        description="Which of its reasons, where it has several: Prometheus' `connection`, `timeout`...; a refused "
        "caller's `no_credential`, `invalid_token`, `not_covered`..."
    )
    detail: str | list | None = Field(description="What exactly: a sentence, or the invalid fields one by one.")
    trace_id: str | None = Field(description="The request's X-Trace-ID, as in its log lines; null from the CLI.")


class ProbeStatus(BaseModel):
    """A health probe's answer; 503 with the cause when it fails."""

    status: str
    cause: str | None = None
    detail: str | None = None
