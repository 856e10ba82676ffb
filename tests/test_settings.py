"""Settings that cannot be used stop start-up with a message naming the variable at fault: for a preset, the
preset and its field; for a file, the variable, the file, its line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsProblem, load_settings


def problems(monkeypatch: pytest.MonkeyPatch, **variables: str) -> list[str]:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsProblem) as refused:
        load_settings()
    return str(refused.value).splitlines()


def test_a_typo_in_preset_overrides_names_the_variable_the_preset_and_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    typo = "PRESET_OVERRIDES: preset 'default': service_lable: Extra inputs are not permitted"
    assert problems(monkeypatch, PRESET_OVERRIDES='{"default": {"service_lable": "x"}}') == [typo]
    assert problems(monkeypatch, SERVICE_LABEL="app") == [typo]  # a first version's variable beside it is not at fault


def test_every_field_refused_in_an_override_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(monkeypatch, PRESET_OVERRIDES='{"istio": {"version_label": "a b", "filters": {"c d": "x"}}}')
    assert sorted(found) == [
        "PRESET_OVERRIDES: preset 'istio': filters: 'c d' is not a valid Prometheus label name",
        "PRESET_OVERRIDES: preset 'istio': version_label: 'a b' is not a valid Prometheus label name",
    ]


def test_the_first_versions_variables_are_named_by_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(monkeypatch, STATUS_LABEL="bad label") == [
        "STATUS_LABEL: 'bad label' is not a valid Prometheus label name"
    ]
    monkeypatch.delenv("STATUS_LABEL")
    # About the preset's fields together: every variable that set them, and the preset.
    assert problems(monkeypatch, PRESET_OVERRIDES='{"default": {"filters": {"job": "x"}}}', VERSION_LABEL="job") == [
        "PRESET_OVERRIDES, VERSION_LABEL: preset 'default': the service label, the version label and the filters "
        "must be different labels"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("PRESET_OVERRIDES", "{not json", "PRESET_OVERRIDES: not valid JSON (Expecting property name"),
        ("PROMETHEUS_HEADERS", '{"X-Org": 1}', "PROMETHEUS_HEADERS.X-Org: Input should be a valid string"),
        ("PORT", "80000", "PORT: Input should be less than or equal to 65535"),
        ("PROMETHEUS_URL", "prometheus:9090", "PROMETHEUS_URL: 'prometheus:9090' must start with http:// or https://"),
        ("TRUSTED_PROXIES", '["10.0.0.0/33"]', "TRUSTED_PROXIES: '10.0.0.0/33' does not appear to be an IPv4 or IPv6"),
    ],
)
def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str) -> None:
    [found] = problems(monkeypatch, **{variable: value})
    assert found.startswith(problem), found


@pytest.mark.parametrize(
    ("variable", "text", "problem"),
    [
        ("CHECKS_FILE", "checks:\n  - name: x\n    worse: sideways\n", ":2: checks.0"),
        ("ACCESS_FILE", "tokens:\n  - name: a\n    namespaces: [x]\n", ":2: tokens.0: give the token's sha256"),
        ("TENANTS_FILE", "team-a: [not, a, tenant]\n", ":1: team-a: Input should be a valid string"),
    ],
)
def test_a_file_that_does_not_validate_is_named_by_its_variable_line_and_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, text: str, problem: str
) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(text)
    found = problems(monkeypatch, **{variable: str(path)})
    assert found and all(line.startswith(f"{variable}: {path}:") for line in found), found
    assert any(problem in line for line in found), found


@pytest.mark.parametrize("variable", ["CHECKS_FILE", "ACCESS_FILE", "TENANTS_FILE"])
def test_a_file_that_cannot_be_read_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    missing = tmp_path / "missing.yaml"
    [found] = problems(monkeypatch, **{variable: str(missing)})
    assert found.startswith(f"{variable}: {missing}: cannot be read"), found


def test_a_value_given_as_an_option_is_named_by_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    named = {"prometheus_url": "--prometheus-url"}
    with pytest.raises(SettingsProblem, match=r"^--prometheus-url: 'nope' must start with http"):
        load_settings(named, prometheus_url="nope")
    monkeypatch.setenv("PROMETHEUS_URL", "nope")  # from the environment: the variable, whatever `named` says
    with pytest.raises(SettingsProblem, match=r"^PROMETHEUS_URL: 'nope' must start with http"):
        load_settings(named)
