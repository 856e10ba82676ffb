"""What a caller may ask about: namespaces, optionally narrowed to services."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    namespaces: frozenset[str]
    services: frozenset[str] | None = None  # None: every service in those namespaces

    def covers(self, namespace: str, service: str) -> bool:
        return namespace in self.namespaces and (self.services is None or service in self.services)


@dataclass(frozen=True)
class Grants:
    """Everything a caller may ask about: the union of its scopes (a token's, or its groups')."""

    who: str  # for the audit line: "token team-a-ci", "serviceaccount team-a:rollouts", "groups a, b"
    scopes: tuple[Scope, ...]

    def covers(self, namespace: str, service: str) -> bool:
        return any(scope.covers(namespace, service) for scope in self.scopes)

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset(n for scope in self.scopes for n in scope.namespaces)

    @classmethod
    def of(cls, who: str, scopes: Iterable[Scope]) -> Grants:
        return cls(who, tuple(scopes))
