"""Measuring a shipped AnalysisTemplate the way Argo's controller measures it (../shared/tools/argo-web-probe)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.support.servers import ROOT, AnalyzerServer

TEMPLATES = sorted((ROOT / "analysis_templates").glob("*template*.yaml"))
STEP_TEMPLATES = [t for t in TEMPLATES if "background" not in t.name]
BACKGROUND_TEMPLATES = [t for t in TEMPLATES if "background" in t.name]
TEAMS_TEMPLATES = [t for t in TEMPLATES if t.name.endswith("-teams.yaml")]
STEP_TEMPLATE = ROOT / "analysis_templates" / "analysis-template.yaml"
BACKGROUND_TEMPLATE = ROOT / "analysis_templates" / "background-analysis-template.yaml"
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
