"""The Dockerfile is linted (hadolint) and keeps its hardening; no engine here builds it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.servers import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hardening() -> None:
    stages = re.findall(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)
    assert len(stages) == 2  # build tools stay in the first stage
    final = DOCKERFILE.split("\nFROM ")[-1]
    assert re.search(r"^USER \d+:\d+$", final, flags=re.MULTILINE)
    assert "HEALTHCHECK" in final and "/health/live" in final
    assert re.search(r'^ENTRYPOINT \["', final, flags=re.MULTILINE)  # exec form
    assert "pip install" not in final and "apt-get" not in final
