"""ACCESS_FILE: tokens compared by digest, scopes read once, a file that does not validate names its line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app import yaml_files
from app.tenancy import access
from app.tenancy.scope import Grants, Scope


def loaded(tmp_path: Path, text: str) -> access.Access:
    path = tmp_path / "access.yaml"
    path.write_text(text)
    return access.load(path)


def test_a_token_by_its_digest_or_as_is(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"token-of-team-a-0123").hexdigest()
    listed = loaded(
        tmp_path,
        f"tokens:\n"
        f"  - {{name: a, sha256: {digest}, namespaces: [team-a]}}\n"
        f"  - {{name: b, token: token-of-team-b-4567, namespaces: [team-b], services: [shop]}}\n",
    )
    assert listed.token("token-of-team-a-0123") == ("a", Scope(frozenset({"team-a"})))
    assert listed.token("token-of-team-b-4567") == ("b", Scope(frozenset({"team-b"}), frozenset({"shop"})))
    assert listed.token("token-of-team-a-012") is None and listed.token("") is None


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("tokens:\n  - name: a\n    namespaces: [x]\n", 2, "give the token's sha256, or the token"),
        ("tokens:\n  - name: a\n    sha256: abc\n    namespaces: [x]\n", 2, "64 lowercase hex digits"),
        ("tokens:\n  - name: a\n    token: short\n    namespaces: [x]\n", 2, "too easy to guess"),
        ('tokens:\n  - name: a\n    token: long-enough-token-1\n    namespaces: ["x|y"]\n', 2, "not a label value"),
        ("groups:\n  devs:\n    namespaces: []\n", 3, "at least 1 item"),
        ("tokens:\n  - name: a\n    token: long-enough-token-1\n    namespaces: [x]\n    tenant: t\n", 5, "Extra"),
    ],
)
def test_a_file_that_does_not_validate_names_its_line(tmp_path: Path, text: str, line: int, why: str) -> None:
    with pytest.raises(yaml_files.FileError, match=rf"access.yaml:{line}: .*{why}"):
        loaded(tmp_path, text)


def test_grants_cover_what_any_of_their_scopes_covers() -> None:
    grants = Grants.of("groups", [Scope(frozenset({"a"})), Scope(frozenset({"b"}), frozenset({"shop"}))])
    assert grants.covers("a", "anything") and grants.covers("b", "shop")
    assert not grants.covers("b", "checkout") and not grants.covers("c", "shop")
    assert grants.namespaces == {"a", "b"}
