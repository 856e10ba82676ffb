"""TENANTS_FILE: which Mimir/Cortex tenant holds each namespace's data, for `X-Scope-OrgID`.

    team-a: tenant-a
    team-b: tenant-b

The analyzer sets the header itself, per query, from the request's namespace; a caller's own
`X-Scope-OrgID` is never forwarded. One tenant per namespace: `|` (Mimir's tenant federation,
reading several at once) is refused at start.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import RootModel, field_validator

from app import yaml_files

TENANT_ID = re.compile(r"^[A-Za-z0-9!_.*'()-]{1,150}$")  # Mimir's tenant ID characters, no `|`


class TenantsFile(RootModel[dict[str, str]]):
    @field_validator("root")
    @classmethod
    def _tenants(cls, mapping: dict[str, str]) -> dict[str, str]:
        for namespace, tenant in mapping.items():
            if "|" in tenant:
                raise ValueError(f"{namespace}: {tenant!r} federates tenants (|): one tenant per namespace")
            if not TENANT_ID.fullmatch(tenant) or tenant in (".", ".."):
                raise ValueError(f"{namespace}: {tenant!r} is not a tenant ID")
        return mapping


def load(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise yaml_files.FileError(f"{path}: cannot be read: {exc}") from None
    return yaml_files.load(text, str(path), TenantsFile).root
