"""The shipped templates, measured the way Argo's controller measures them, against the live service."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.preset_scenarios import EXPORTERS
from tests.support.servers import ROOT, AnalyzerServer

TEMPLATES = sorted(p for p in (ROOT / "analysis_templates").glob("*.yaml") if p.name != "kustomization.yaml")
STEP_TEMPLATES = [t for t in TEMPLATES if "background" not in t.name]
BACKGROUND_TEMPLATES = [t for t in TEMPLATES if "background" in t.name]
TEAMS_TEMPLATES = [t for t in TEMPLATES if t.name.endswith("-teams.yaml")]
TOKEN_ARG = "analyzer-token"


def arg_names(template: Path) -> list[str]:
    return [a["name"] for a in yaml.safe_load(template.read_text())["spec"]["args"]]


def measure(
    probe: Path,
    template: Path,
    server: AnalyzerServer,
    service: str,
    canary: str = "canary",
    stable: str = "stable",
    token: str = "a-token-a-single-team-analyzer-ignores",
) -> dict:
    """One measurement, as Argo's controller takes it. A template for a shared analyzer reads its
    token from a Secret (secretKeyRef): here it is given, as Argo would fill it in."""
    args = {"analyzer-url": server.url, "service": service, "canary": canary, "stable": stable}
    if TOKEN_ARG in arg_names(template):
        args[TOKEN_ARG] = token
    result = subprocess.run(
        [str(probe), "-template", str(template), *(part for k, v in args.items() for part in ("-arg", f"{k}={v}"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    [line] = result.stdout.strip().splitlines()
    return json.loads(line)


VERDICTS = [
    ("healthy", "pass"),
    ("first-release", "pass"),
    ("latency-regression", "fail"),
    ("relative-regression", "fail"),
    ("low-traffic", "inconclusive"),
    ("no-canary", "inconclusive"),
]
# A step analysis gates the next step on evidence of health; a background one only aborts on harm,
# and an inconclusive answer there counts as no harm seen (it would only ever pause the rollout).
PHASES = {
    "step": {"pass": "Successful", "fail": "Failed", "inconclusive": "Inconclusive"},
    "background": {"pass": "Successful", "fail": "Failed", "inconclusive": "Successful"},
}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
@pytest.mark.parametrize(("service", "verdict"), VERDICTS)
def test_verdicts_become_argo_phases(
    argo_probe: Path, analyzer: AnalyzerServer, template: Path, service: str, verdict: str
) -> None:
    measurement = measure(argo_probe, template, analyzer, service)
    assert json.loads(measurement["value"])["verdict"] == verdict, measurement
    kind = "background" if template in BACKGROUND_TEMPLATES else "step"
    assert measurement["phase"] == PHASES[kind][verdict], measurement


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_prometheus_down_is_an_argo_error_not_a_verdict(
    argo_probe: Path, analyzer_without_prometheus: AnalyzerServer, template: Path
) -> None:
    measurement = measure(argo_probe, template, analyzer_without_prometheus, "healthy")
    assert measurement["phase"] == "Error"
    assert measurement["http_status"] == 503


def test_every_template_takes_the_same_arguments() -> None:
    args = [[name for name in arg_names(t) if name != TOKEN_ARG] for t in TEMPLATES]
    # Each as a namespaced and a cluster template, and the cluster one again for a shared analyzer.
    assert len(STEP_TEMPLATES) == len(BACKGROUND_TEMPLATES) == 3 and len(TEAMS_TEMPLATES) == 2
    assert all(names == args[0] for names in args)
    assert {"service", "canary", "stable", "analyzer-url"} <= set(args[0])
    for template in TEMPLATES:
        spec = yaml.safe_load(template.read_text())["spec"]
        required = {"service", "canary", "stable"}
        given = [a for a in spec["args"] if a["name"] not in required]
        assert all("value" in a or "valueFrom" in a for a in given), template.name
        web = spec["metrics"][0]["provider"]["web"]
        assert web["method"] == "POST" and web["jsonBody"]["guarantee"] == "anytime"


@pytest.mark.parametrize("template", TEAMS_TEMPLATES, ids=lambda p: p.name)
def test_a_template_for_a_shared_analyzer_sends_the_teams_token_from_its_secret(template: Path) -> None:
    spec = yaml.safe_load(template.read_text())["spec"]
    [token] = [a for a in spec["args"] if a["name"] == TOKEN_ARG]
    assert token["valueFrom"] == {"secretKeyRef": {"name": "canary-analyzer-token", "key": "token"}}
    headers = {h["key"]: h["value"] for h in spec["metrics"][0]["provider"]["web"]["headers"]}
    assert headers["Authorization"] == "Bearer {{args.analyzer-token}}"


@pytest.mark.parametrize("template", BACKGROUND_TEMPLATES, ids=lambda p: p.name)
def test_a_background_template_runs_until_the_rollout_ends_and_aborts_on_one_fail(template: Path) -> None:
    [metric] = yaml.safe_load(template.read_text())["spec"]["metrics"]
    assert "count" not in metric and metric["failureLimit"] == 0
    assert metric["consecutiveErrorLimit"] >= 10  # a Prometheus restart does not abort a long rollout


@pytest.fixture(scope="module")
def get_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped template rewritten to GET the same /analyze URL, with no Accept header."""
    template = yaml.safe_load(STEP_TEMPLATES[0].read_text())
    web = template["spec"]["metrics"][0]["provider"]["web"]
    for key in ("jsonBody", "headers"):
        web.pop(key)
    web["method"] = "GET"
    web["url"] = (
        "{{args.analyzer-url}}/analyze?service={{args.service}}&canary={{args.canary}}"
        "&stable={{args.stable}}&window={{args.window}}"
    )
    path = tmp_path_factory.mktemp("templates") / "get-template.yaml"
    path.write_text(yaml.safe_dump(template))
    return path


@pytest.mark.parametrize(
    ("service", "phase"),
    [("healthy", "Successful"), ("latency-regression", "Failed"), ("low-traffic", "Inconclusive")],
)
def test_get_on_the_report_url_still_gives_argo_json(
    argo_probe: Path, analyzer: AnalyzerServer, get_template: Path, service: str, phase: str
) -> None:
    measurement = measure(argo_probe, get_template, analyzer, service)
    assert measurement["phase"] == phase, measurement
    assert json.loads(measurement["value"])["verdict"]


@pytest.fixture(scope="module")
def istio_analyzer(start_analyzer, preset_prometheus) -> AnalyzerServer:
    """The analyzer as a platform team on Istio runs it: METRICS_PRESET=istio, nothing else."""
    return start_analyzer(prometheus_url=preset_prometheus.url, metrics_preset="istio")


@pytest.mark.parametrize(
    ("kind", "phase"),
    [("healthy", "Successful"), ("slower", "Failed"), ("erring", "Failed"), ("thin", "Inconclusive")],
)
def test_the_shipped_template_on_istios_metrics(
    argo_probe: Path, istio_analyzer: AnalyzerServer, kind: str, phase: str
) -> None:
    [istio] = [e for e in EXPORTERS if e.preset == "istio"]
    measurement = measure(
        argo_probe, STEP_TEMPLATES[0], istio_analyzer, f"istio-{kind}", canary=istio.canary, stable=istio.stable
    )
    assert measurement["phase"] == phase, measurement
