"""What a request may be run as: its namespace, checked against the caller's grants, and its tenant.

The scope is held in the queries, not only at the door: the namespace admitted here is what every
selector the analyzer writes carries (app/promql.py), and the tenant header is set from it, never
from anything the caller sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.tenancy.callers import Refused
from app.tenancy.scope import Grants


@dataclass(frozen=True)
class Admitted:
    namespace: str | None
    tenant: str | None  # X-Scope-OrgID for every query; None: no tenants configured
    who: str | None  # for the audit line


def admit(
    namespace: str | None,
    service: str,
    grants: Grants | None,
    tenants: dict[str, str],
    needs_namespace: bool,
) -> Admitted:
    """`grants`: None when tenancy is off. Raises Refused (403), or ValueError for a request that
    must name its namespace and does not."""
    if grants is None:
        if namespace is None and needs_namespace:
            raise ValueError("a check's queries select the namespace: name it (`namespace`)")
        return Admitted(namespace, tenants.get(namespace) if namespace else None, None)
    if namespace is None:
        if len(grants.namespaces) != 1:
            raise ValueError("the credential covers several namespaces: name the one asked about (`namespace`)")
        [namespace] = grants.namespaces
    if not grants.covers(namespace, service):
        # The same answer whether or not the namespace or the service exists: nothing to learn from it.
        detail = f"the credential does not cover service {service!r} in namespace {namespace!r}"
        raise Refused(403, "forbidden", "not_covered", detail)
    if tenants and namespace not in tenants:
        raise Refused(403, "forbidden", "no_tenant", f"no backend tenant holds namespace {namespace!r} here")
    return Admitted(namespace, tenants.get(namespace), grants.who)
