"""All configuration, read once from the environment."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from app import user_checks, yaml_files
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Check
from app.presets import PRESETS, Preset
from app.tenancy import access, tenants

MIB = 1024 * 1024
# The first version's variables, by the field of the METRICS_PRESET preset each adjusts.
LEGACY_VARIABLES = {
    "service_label": "SERVICE_LABEL",
    "version_label": "VERSION_LABEL",
    "namespace_label": "NAMESPACE_LABEL",
    "error_label": "STATUS_LABEL",
    "requests_metric": "REQUESTS_METRIC",
    "duration_metric": "DURATION_METRIC",
}
UNDECODABLE_FIELD = re.compile(r'field "(\w+)"')


class SettingsProblem(ValueError):
    """Settings that cannot be used: a problem a line, each naming the variable at fault (and for a file, its
    line and field)."""


class Settings(BaseSettings):
    # A refused setting must not print the others' values: a token or a URL's password would land in the crash log.
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True)
    _resolved: dict[str, Preset] = PrivateAttr(default_factory=dict)
    _all_checks: tuple[Check, ...] = PrivateAttr(default=())
    _access: access.Access | None = PrivateAttr(default=None)
    _tenants: dict[str, str] = PrivateAttr(default_factory=dict)
    _proxies: list[Any] = PrivateAttr(default_factory=list)

    # May carry user:password@ (basic auth); it is never shown, links use the URL without it.
    prometheus_url: str = Field(default="http://localhost:9090", repr=False)
    # Where a browser reaches the same Prometheus (graph links); the in-cluster URL rarely works there.
    prometheus_public_url: str | None = None
    prometheus_headers: dict[str, str] = Field(
        default_factory=dict, description='Extra headers as JSON, e.g. {"X-Scope-OrgID": "team-a"}', repr=False
    )
    prometheus_bearer_token: SecretStr | None = None
    prometheus_username: str | None = None
    prometheus_password: SecretStr | None = None
    prometheus_ca_bundle: str | None = None
    prometheus_insecure_skip_verify: bool = False
    # Which server answers: Thanos and VictoriaMetrics are asked to fail rather than answer with partial data.
    prometheus_flavor: Literal["prometheus", "thanos", "victoriametrics", "mimir"] = "prometheus"

    # What one answer of Prometheus may cost. An analysis asks two queries answering at most buckets x versions
    # series (~100), the report's charts the same at up to 121 steps (~300 KB of JSON): the caps leave ten times that.
    prometheus_max_response_bytes: int = Field(default=4 * MIB, ge=64 * 1024, le=256 * MIB)
    prometheus_max_series: int = Field(default=2000, ge=1, le=1_000_000)
    prometheus_max_samples: int = Field(default=100_000, ge=1, le=10_000_000)
    # How long Prometheus may take to start answering (its evaluation included) or pause mid-answer; the whole
    # answer must arrive within ANALYSIS_TIMEOUT_SECONDS however it trickles.
    prometheus_first_byte_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Whose metric conventions a request reads unless it names a preset (app/presets/*.yaml).
    metrics_preset: str = "default"
    # Adjust the METRICS_PRESET preset (the first version's variables, kept working).
    service_label: str | None = None
    version_label: str | None = None
    namespace_label: str | None = None
    status_label: str | None = None
    requests_metric: str | None = None
    duration_metric: str | None = None
    # Adjust any preset, as JSON: {"linkerd": {"version_label": "app_version"}}.
    preset_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # A YAML file of the team's own checks (app/user_checks.py), judged beside the built-in ones.
    checks_file: Path | None = None

    # "Now" is rounded down to this: identical analyses asked within it share one set of queries.
    evaluation_resolution_seconds: float = Field(default=1.0, ge=0, le=10)

    # Argo's web provider gives up after 10 s; answering 503 before that lets it retry cleanly.
    analysis_timeout_seconds: float = Field(default=8.0, gt=0, le=60)

    grafana_url: str | None = None
    grafana_dashboard_uid: str = "canary-vs-stable"
    public_url: str | None = None

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # The standard OpenTelemetry variables; the SDK reads the rest of OTEL_* itself.
    otel_exporter_otlp_endpoint: str | None = None
    otel_traces_exporter: str | None = None
    otel_service_name: str = "canary-analyzer"

    # One analyzer for many teams (app/tenancy/): off unless TENANCY is on.
    tenancy: bool = False
    access_file: Path | None = None  # static tokens and proxy groups, with their scopes
    token_review_url: str | None = None  # the API server that reviews ServiceAccount tokens
    token_review_audience: str | None = None  # the audience a reviewed token must be valid for
    token_review_ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    token_review_token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    tenants_file: Path | None = None  # namespace -> the Mimir/Cortex tenant holding its data
    trusted_proxies: list[str] = Field(default_factory=list)  # CIDRs whose groups header is believed
    groups_header: str | None = None  # e.g. X-Forwarded-Groups, set by an authenticating proxy

    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)

    # What one client may cost the server (app/limits.py); every way of serving the app applies them.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # The request line and headers together; h11 answers 400 beyond it.
    max_header_bytes: int = Field(default=16 * 1024, ge=4 * 1024, le=1024 * 1024)
    max_query_bytes: int = Field(default=4 * 1024, ge=256, le=64 * 1024)
    max_query_parameters: int = Field(default=32, ge=1, le=1000)
    max_connections: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper() if isinstance(value, str) else value

    @field_validator("prometheus_url", "prometheus_public_url", "grafana_url", "public_url", "token_review_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_auth_method(self) -> Settings:
        methods = [
            name
            for name, configured in (
                ("PROMETHEUS_BEARER_TOKEN", self.prometheus_bearer_token),
                ("PROMETHEUS_USERNAME", self.prometheus_username),
                ("user:password@ in PROMETHEUS_URL", self._userinfo),
            )
            if configured
        ]
        if len(methods) > 1:
            raise ValueError(f"set one way to authenticate to Prometheus, not {' and '.join(methods)}")
        return self

    @model_validator(mode="after")
    def _presets(self) -> Settings:
        """Every preset resolved once, overrides applied and validated: a bad one stops start-up."""
        if self.metrics_preset not in PRESETS:
            raise ValueError(f"METRICS_PRESET {self.metrics_preset!r} is not one of {', '.join(PRESETS)}")
        unknown = set(self.preset_overrides) - set(PRESETS)
        if unknown:
            raise ValueError(f"PRESET_OVERRIDES names {sorted(unknown)}, not presets ({', '.join(PRESETS)})")
        # The first version's variables adjust the METRICS_PRESET preset, over its PRESET_OVERRIDES entry.
        legacy = {field: getattr(self, variable.lower()) for field, variable in LEGACY_VARIABLES.items()}
        legacy = {field: value for field, value in legacy.items() if value is not None}
        self._resolved = {}
        for name, preset in PRESETS.items():
            overridden = self.preset_overrides.get(name, {})
            adjusted = legacy if name == self.metrics_preset else {}
            try:
                self._resolved[name] = Preset.model_validate({**preset.model_dump(), **overridden, **adjusted})
            except ValidationError as exc:
                # The preset's own messages name its fields only: say which variable set them, for which preset.
                problems = (_preset_problem(name, error, set(overridden), set(adjusted)) for error in exc.errors())
                raise ValueError("\n".join(problems)) from None
        return self

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        """The built-in checks and the team's own, read once: a file that does not validate stops start-up."""
        with _naming_the_file_of("CHECKS_FILE"):
            self._all_checks = CHECKS + (user_checks.load(self.checks_file) if self.checks_file else ())
        return self

    @model_validator(mode="after")
    def _tenancy(self) -> Settings:
        """What many teams need, read once; a gap that would let one team read another's stops start-up."""
        with _naming_the_file_of("ACCESS_FILE"):
            self._access = access.load(self.access_file) if self.access_file else None
        with _naming_the_file_of("TENANTS_FILE"):
            self._tenants = tenants.load(self.tenants_file) if self.tenants_file else {}
        try:
            self._proxies = [ipaddress.ip_network(cidr) for cidr in self.trusted_proxies]
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from None
        if self.token_review_url and not self.token_review_audience:
            raise ValueError("TOKEN_REVIEW_URL needs TOKEN_REVIEW_AUDIENCE: a token for any audience is no proof")
        if not self.tenancy:
            return self
        if not (self._access and self._access.has_tokens) and not self.token_review_url and not self.groups_header:
            raise ValueError("TENANCY is on but no caller could prove who it is: set ACCESS_FILE or TOKEN_REVIEW_URL")
        if self.groups_header and not self._proxies:
            raise ValueError("GROUPS_HEADER is believed only from TRUSTED_PROXIES: set them")
        if any(name.lower() == "x-scope-orgid" for name in self.prometheus_headers):
            raise ValueError(
                "with TENANCY on, X-Scope-OrgID comes from TENANTS_FILE per namespace, not PROMETHEUS_HEADERS"
            )
        unplaced = [check.name for check in self._all_checks if check.queries and not check.queries.places_namespace]
        if unplaced:
            raise ValueError(
                "with TENANCY on, every query of a check must select the namespace "
                f'("$namespace"): {", ".join(unplaced)}'
            )
        return self

    @property
    def access(self) -> access.Access | None:
        return self._access

    @property
    def tenants(self) -> dict[str, str]:
        return self._tenants

    @property
    def proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return self._proxies

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every check an analysis judges: the built-in ones, then CHECKS_FILE's."""
        return self._all_checks

    def preset(self, name: str | None = None) -> Preset:
        """The named preset as configured here; METRICS_PRESET's when no name is given."""
        return self._resolved[name or self.metrics_preset]

    @property
    def prometheus_api_url(self) -> str:
        """PROMETHEUS_URL without its user:password@, which travels as basic auth instead."""
        return _without_userinfo(self.prometheus_url)

    @property
    def prometheus_basic_auth(self) -> tuple[str, str] | None:
        """(user, password) from PROMETHEUS_USERNAME/PASSWORD or from PROMETHEUS_URL's userinfo."""
        if self.prometheus_username:
            password = self.prometheus_password.get_secret_value() if self.prometheus_password else ""
            return self.prometheus_username, password
        return self._userinfo

    @property
    def secrets(self) -> list[str]:
        """Values that must never be shown: credentials (user names too) and the extra headers' values."""
        values = [self.prometheus_bearer_token.get_secret_value()] if self.prometheus_bearer_token else []
        values += self.prometheus_basic_auth or ()
        return [value for value in [*values, *self.prometheus_headers.values()] if value]

    @property
    def prometheus_browser_url(self) -> str:
        return _without_userinfo(self.prometheus_public_url or self.prometheus_url)

    @property
    def _userinfo(self) -> tuple[str, str] | None:
        url = urlsplit(self.prometheus_url)
        if url.username is None:
            return None
        return unquote(url.username), unquote(url.password or "")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return SplitResult(parts.scheme, host, parts.path, parts.query, parts.fragment).geturl()


def load_settings(named: Mapping[str, str] | None = None, **values: Any) -> Settings:
    """The settings from the environment, `values` (by field) taking precedence; SettingsProblem says what is
    wrong, naming each variable at fault, or what `named` calls a field given as a value (a command's option)."""
    try:
        return Settings(**values)
    except SettingsError as exc:  # a value that could not even be decoded (not JSON)
        raise SettingsProblem(_undecodable(exc)) from None
    except ValidationError as exc:
        given = {field: name for field, name in (named or {}).items() if field in values}
        raise SettingsProblem("\n".join(_problem(error, given) for error in exc.errors())) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()


def _problem(error: ErrorDetails, named: Mapping[str, str]) -> str:
    # pydantic prefixes a validator's own message with "Value error, ": the message says it all, the variable
    # included when it is about the settings together (a loc of none).
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field, *inside = map(str, error["loc"])
    return f"{'.'.join([named.get(field, field.upper()), *inside])}: {message}"


def _undecodable(exc: SettingsError) -> str:
    field = UNDECODABLE_FIELD.search(str(exc))
    if field is None:
        return str(exc)
    reason = f"not valid JSON ({exc.__cause__})" if exc.__cause__ else "cannot be decoded"
    return f"{field[1].upper()}: {reason}"


def _preset_problem(preset: str, error: ErrorDetails, overridden: set[str], legacy: set[str]) -> str:
    """A preset's field refused, named by the variable that set it: one of the first version's, or
    PRESET_OVERRIDES with the preset and the field. About its fields together: every variable that set some."""
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        variables = ["PRESET_OVERRIDES"] * bool(overridden) + sorted(LEGACY_VARIABLES[field] for field in legacy)
        return f"{', '.join(variables) or 'PRESET_OVERRIDES'}: preset {preset!r}: {message}"
    field, *inside = map(str, error["loc"])
    if field in legacy:
        return f"{LEGACY_VARIABLES[field]}: {message}"
    return f"PRESET_OVERRIDES: preset {preset!r}: {'.'.join([field, *inside])}: {message}"


@contextmanager
def _naming_the_file_of(variable: str) -> Iterator[None]:
    """A file's problems (`file:line: field: why`, a line each) headed by the variable that names the file."""
    try:
        yield
    except yaml_files.FileError as exc:
        raise yaml_files.FileError("\n".join(f"{variable}: {line}" for line in str(exc).splitlines())) from None
