"""Presets: the metric conventions of a mesh, an ingress or a library, as data files.

A preset names the series a service's traffic is read from, which labels carry the service and
the version, the unit of latency, what counts as an error, and any fixed filter. The built-in
ones are YAML files in app/presets/; `METRICS_PRESET` picks the default, a request may pick
another. A file that does not validate stops the service at start-up, naming the file, the line,
the field and why.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app import yaml_files

# Names end up inside PromQL, so they are held to the Prometheus grammar.
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SECONDS_PER = {"seconds": 1.0, "milliseconds": 0.001, "microseconds": 0.000001}


class Preset(BaseModel):
    """Where a service's request counts and latency histogram are, and how to read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "default"
    description: str = ""
    service_label: str = "service"
    version_label: str = "version"
    # Where a series says which Kubernetes namespace its workload runs in: every selector carries it
    # when a request names a namespace (always, with TENANCY on).
    namespace_label: str = "namespace"
    # Matchers every series must satisfy too, e.g. Istio's reporter: destination. A value may start
    # with a PromQL operator: "!=grpc.health.v1.Health", "=~5..", "!~..." (plain: equality).
    filters: dict[str, str] = Field(default_factory=dict)
    requests_metric: str = "http_requests_total"
    error_label: str = "status"
    error_regex: str = "5.."
    duration_metric: str = "http_request_duration_seconds"
    latency_unit: Literal["seconds", "milliseconds", "microseconds"] = "seconds"
    latency_histogram: Literal["classic", "native"] = "classic"
    # ingress-nginx: the stable's requests carry no version label at all.
    empty_stable: bool = False
    # `counters`: the metrics are the exporters' own counters, read with increase(). `recorded_increases`:
    # they are a recording rule's increase over each interval (app/recording_rules.py), summed over the
    # window: pods and routes already summed away, so an analysis reads a few series, not thousands.
    series: Literal["counters", "recorded_increases"] = "counters"
    # What tells a version's pods apart on its series, the first that does: `calibrate` splits the stable by it.
    split_labels: tuple[str, ...] = ("pod", "instance")

    @property
    def seconds_per_unit(self) -> float:
        return SECONDS_PER[self.latency_unit]

    @field_validator("requests_metric", "duration_metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not METRIC_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid Prometheus metric name")
        return value

    @field_validator("service_label", "version_label", "namespace_label", "error_label")
    @classmethod
    def _label_name(cls, value: str) -> str:
        if not LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid Prometheus label name")
        return value

    @field_validator("split_labels")
    @classmethod
    def _split_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if not labels:
            raise ValueError("name at least one label")
        return tuple(cls._label_name(label) for label in labels)

    @field_validator("filters")
    @classmethod
    def _filters(cls, filters: dict[str, str]) -> dict[str, str]:
        for label, value in filters.items():
            if not LABEL_NAME.fullmatch(label):
                raise ValueError(f"{label!r} is not a valid Prometheus label name")
            operator, operand = matcher(value)
            if operator in ("=~", "!~"):
                _compiles(operand)
        return filters

    @field_validator("error_regex")
    @classmethod
    def _regex(cls, value: str) -> str:
        return _compiles(value)

    @model_validator(mode="after")
    def _labels_apart(self) -> Preset:
        used = [self.service_label, self.version_label, *self.filters]
        if len(set(used)) != len(used):
            raise ValueError("the service label, the version label and the filters must be different labels")
        return self


def matcher(value: str) -> tuple[str, str]:
    """A filter's PromQL operator and operand: "!=x" is ("!=", "x"), plain "x" is ("=", "x")."""
    for operator in ("!=", "=~", "!~", "="):
        if value.startswith(operator):
            return operator, value[len(operator) :]
    return "=", value


def _compiles(regex: str) -> str:
    try:
        re.compile(regex)
    except re.error as exc:
        raise ValueError(f"{regex!r} is not a regular expression: {exc}") from None
    return regex


SHIPPED = resources.files("app").joinpath("presets")


def load(directory: Traversable = SHIPPED) -> dict[str, Preset]:
    """The presets in a directory, by name; raises yaml_files.FileError when one is invalid."""
    presets = {}
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            where = f"{directory.name}/{path.name}"
            preset = yaml_files.load(path.read_text(), where, Preset)
            if f"{preset.name}.yaml" != path.name:
                raise yaml_files.FileError(f"{where}:1: name: {preset.name!r} is not the file's name")
            presets[preset.name] = preset
    return presets


PRESETS = load()
NAMES = tuple(PRESETS)
