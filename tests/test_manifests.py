"""Every manifest passes the strict schemas in ../shared/schemas (and promtool for PrometheusRules)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import ROOT, SHARED

MANIFEST_DIRS = [p for p in ("k8s", "analysis_templates") if (ROOT / p).is_dir()]


def test_manifests_validate() -> None:
    result = subprocess.run(
        [sys.executable, str(SHARED / "tools/validate-manifests"), "--strict", *MANIFEST_DIRS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
    assert "WARN" not in result.stdout, result.stdout
