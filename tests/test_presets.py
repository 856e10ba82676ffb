"""Presets as data files: the shipped ones, a broken one, and how settings adjust them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app import presets
from app.settings import Settings
from app.yaml_files import FileError


def test_the_shipped_presets() -> None:
    assert set(presets.NAMES) == {"default", "istio", "linkerd", "ingress-nginx", "otel", "grpc"}
    istio = presets.PRESETS["istio"]
    assert (istio.service_label, istio.version_label, istio.filters) == (
        "destination_workload",
        "destination_version",
        {"reporter": "destination"},
    )
    assert istio.seconds_per_unit == 0.001 and presets.PRESETS["linkerd"].seconds_per_unit == 0.001
    assert [name for name, preset in presets.PRESETS.items() if preset.empty_stable] == ["ingress-nginx"]


def test_a_broken_preset_file_names_the_file_the_line_the_field_and_why(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("name: good\n")
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nservice_label: app\nversion_label: track\nduration_metric: latency-ms\nlatency_unit: hours\n"
    )
    with pytest.raises(FileError) as caught:
        presets.load(tmp_path)
    problems = str(caught.value).splitlines()
    assert problems[0].startswith(f"{tmp_path.name}/bad.yaml:4: duration_metric: 'latency-ms' is not")
    assert problems[1].startswith(f"{tmp_path.name}/bad.yaml:5: latency_unit: Input should be 'seconds'")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: [unclosed\n", "x.yaml:2: not valid YAML"),
        ("name: x\nsurprise: 1\n", "x.yaml:2: surprise: Extra inputs are not permitted"),
        ("name: x\nfilters:\n  bad-label: v\n", "x.yaml:2: filters: 'bad-label'"),
        ("name: x\nerror_regex: '(5'\n", "x.yaml:2: error_regex: '(5' is not a regular expression"),
        ("name: x\nversion_label: service\n", "x.yaml:1: (the file): the service label, the version"),
    ],
)
def test_invalid_preset_texts(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(FileError) as caught:
        presets.load(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path.name}/{problem}"), caught.value


def test_the_file_name_is_the_preset_name(tmp_path: Path) -> None:
    (tmp_path / "istio.yaml").write_text("name: linkerd\n")
    with pytest.raises(FileError, match="not the file's name"):
        presets.load(tmp_path)


def test_settings_pick_and_adjust_presets() -> None:
    settings = Settings(metrics_preset="istio", version_label="rollouts_pod_template_hash")
    assert settings.preset().name == "istio"
    assert settings.preset().version_label == "rollouts_pod_template_hash"  # the old variables adjust it
    assert settings.preset("linkerd").version_label == "rollouts_pod_template_hash"  # Linkerd's own default
    assert settings.preset("istio") == settings.preset()
    adjusted = Settings(preset_overrides={"linkerd": {"service_label": "app"}}).preset("linkerd")
    assert adjusted.service_label == "app" and adjusted.filters == {"direction": "inbound"}
    assert Settings(status_label="code").preset().error_label == "code"
    assert Settings(namespace_label="kubernetes_namespace").preset().namespace_label == "kubernetes_namespace"
    assert Settings(metrics_preset="istio").preset().namespace_label == "destination_workload_namespace"


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        ({"metrics_preset": "envoy"}, "METRICS_PRESET 'envoy' is not one of default, grpc, ingress-nginx"),
        ({"preset_overrides": {"envoy": {}}}, "PRESET_OVERRIDES names ['envoy']"),
        ({"preset_overrides": {"istio": {"version_label": "not a label"}}}, "'not a label' is not a valid"),
        ({"requests_metric": "bad-name"}, "'bad-name' is not a valid Prometheus metric name"),
    ],
)
def test_bad_preset_settings_stop_start_up(settings: dict, phrase: str) -> None:
    with pytest.raises(ValidationError, match=phrase.replace("[", r"\[").replace("]", r"\]")):
        Settings(**settings)
