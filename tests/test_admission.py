"""What a request may be run as, with and without tenancy: the namespace and the backend tenant."""

from __future__ import annotations

import pytest

from app.tenancy.admission import admit
from app.tenancy.callers import Refused
from app.tenancy.scope import Grants, Scope

TEAM_A = Grants.of("token a", [Scope(frozenset({"team-a"}))])
TENANTS = {"team-a": "tenant-a", "team-b": "tenant-b"}


def test_without_tenancy_the_request_names_its_namespace_or_none() -> None:
    assert admit(None, "shop", None, {}, needs_namespace=False).namespace is None
    assert admit("team-b", "shop", None, TENANTS, needs_namespace=False).tenant == "tenant-b"
    with pytest.raises(ValueError, match="name it"):
        admit(None, "shop", None, {}, needs_namespace=True)


def test_a_credential_covering_one_namespace_implies_it() -> None:
    admitted = admit(None, "shop", TEAM_A, TENANTS, needs_namespace=False)
    assert (admitted.namespace, admitted.tenant, admitted.who) == ("team-a", "tenant-a", "token a")


def test_one_covering_several_must_be_told() -> None:
    both = Grants.of("groups", [Scope(frozenset({"team-a", "team-b"}))])
    with pytest.raises(ValueError, match="several namespaces"):
        admit(None, "shop", both, TENANTS, needs_namespace=False)
    assert admit("team-b", "shop", both, TENANTS, needs_namespace=False).tenant == "tenant-b"


@pytest.mark.parametrize(("namespace", "tenants"), [("team-b", TENANTS), ("team-a", {"team-b": "tenant-b"})])
def test_beyond_the_grants_or_the_tenants_is_403(namespace: str, tenants: dict) -> None:
    with pytest.raises(Refused) as refused:
        admit(namespace, "shop", TEAM_A, tenants, needs_namespace=False)
    assert refused.value.status == 403
