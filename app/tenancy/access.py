"""ACCESS_FILE: the static tokens and the proxy groups a shared analyzer admits, and their scopes.

    tokens:
      - name: team-a-ci                 # shown in the audit line, never the token
        sha256: 9f86d081884c7d65...      # of the token; or `token:` (kept in a Secret all the same)
        namespaces: [team-a]
        services: [checkout]             # optional: every service of those namespaces if left out
    groups:                              # what an authenticating proxy's groups header may name
      team-a-devs:
        namespaces: [team-a]

A token is compared by its SHA-256, in constant time; the file is read once, at start.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app import yaml_files
from app.tenancy.scope import Scope

LABEL_VALUE = r"^[A-Za-z0-9_.:-]{1,253}$"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ScopeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespaces: list[str] = Field(min_length=1)
    services: list[str] | None = None

    @model_validator(mode="after")
    def _label_values(self) -> ScopeSpec:
        for value in [*self.namespaces, *(self.services or [])]:
            if not re.fullmatch(LABEL_VALUE, value):
                raise ValueError(f"{value!r} is not a label value ([A-Za-z0-9_.:-], at most 253 characters)")
        if self.services is not None and not self.services:
            raise ValueError("services, when given, names at least one (leave it out for every service)")
        return self

    def scope(self) -> Scope:
        services = frozenset(self.services) if self.services is not None else None
        return Scope(frozenset(self.namespaces), services)


class TokenSpec(ScopeSpec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    sha256: str | None = None
    token: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _one_secret(self) -> TokenSpec:
        if (self.sha256 is None) == (self.token is None):
            raise ValueError("give the token's sha256, or the token, not both and not neither")
        if self.sha256 is not None and not SHA256.fullmatch(self.sha256):
            raise ValueError("sha256 is 64 lowercase hex digits")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("a token of fewer than 16 characters is too easy to guess")
        return self

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.sha256) if self.sha256 else hashlib.sha256(self.token.encode()).digest()


class AccessFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenSpec] = Field(default_factory=list)
    groups: dict[str, ScopeSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct(self) -> AccessFile:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        digests = [t.digest for t in self.tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("the same token is listed twice")
        return self


class Access:
    """The file, read: a token's scope by its digest, a group's scope by its name."""

    def __init__(self, spec: AccessFile) -> None:
        self._tokens = [(t.digest, t.name, t.scope()) for t in spec.tokens]
        self.groups = {name: scope.scope() for name, scope in spec.groups.items()}

    @property
    def has_tokens(self) -> bool:
        return bool(self._tokens)

    def token(self, presented: str) -> tuple[str, Scope] | None:
        """(name, scope) of a listed token; every entry compared in constant time."""
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for listed, name, scope in self._tokens:
            if hmac.compare_digest(listed, digest):
                found = (name, scope)
        return found


def load(path: Path) -> Access:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise yaml_files.FileError(f"{path}: cannot be read: {exc}") from None
    return Access(yaml_files.load(text, str(path), AccessFile))
