"""TENANTS_FILE: one Mimir/Cortex tenant per namespace; federation refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import yaml_files
from app.tenancy import tenants


def test_namespaces_map_to_tenants(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("team-a: tenant-a\nteam-b: tenant_b.eu\n")
    assert tenants.load(path) == {"team-a": "tenant-a", "team-b": "tenant_b.eu"}


@pytest.mark.parametrize(
    ("text", "why"), [("team-a: tenant-a|tenant-b\n", "federates tenants"), ("team-a: 'a/b'\n", "not a tenant ID")]
)
def test_a_tenant_that_would_read_more_than_one_stops_the_analyzer(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(text)
    with pytest.raises(yaml_files.FileError, match=why):
        tenants.load(path)
