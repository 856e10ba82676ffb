"""Kubernetes ServiceAccount tokens, checked with the TokenReview API.

A team's AnalysisTemplate sends a token from a Secret in its own namespace; the API server says
whether it is valid, for which audience, and whose it is: `system:serviceaccount:<ns>:<name>`.
The scope is that namespace. Answers are remembered briefly (by the token's digest, never the
token), as kube-rbac-proxy does, so Argo's every-minute polls do not each cost the API server a
review.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.tenancy.scope import Grants, Scope

SERVICE_ACCOUNT = "system:serviceaccount:"
REMEMBER_VALID_SECONDS = 60.0
REMEMBER_INVALID_SECONDS = 5.0
REMEMBERED = 10_000


class ReviewUnavailable(Exception):
    """The API server could not say: neither a yes nor a no about the caller."""


@dataclass(frozen=True)
class TokenReviewer:
    url: str  # the API server, e.g. https://kubernetes.default.svc
    audience: str
    own_token_file: Path  # the analyzer's own ServiceAccount token, read at each review (it rotates)
    ca_file: Path | None
    timeout_seconds: float = 3.0

    def client(self) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True
        return httpx.AsyncClient(base_url=self.url.rstrip("/"), verify=verify, timeout=self.timeout_seconds)


class TokenReviews:
    """Reviews tokens through one connection pool, remembering the answers a short while."""

    def __init__(self, reviewer: TokenReviewer, http: httpx.AsyncClient) -> None:
        self.reviewer = reviewer
        self._http = http
        self._known: OrderedDict[bytes, tuple[Grants | None, float]] = OrderedDict()

    async def grants(self, token: str) -> Grants | None:
        """The namespace the token's ServiceAccount belongs to; None: not a valid token for our audience.
        Raises ReviewUnavailable when the API server cannot be asked."""
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        grants = await self._review(token)
        ttl = REMEMBER_VALID_SECONDS if grants else REMEMBER_INVALID_SECONDS
        self._known[digest] = (grants, now + ttl)
        self._known.move_to_end(digest)
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        return grants

    async def _review(self, token: str) -> Grants | None:
        reviewer = self.reviewer
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [reviewer.audience]},
        }
        try:
            own = reviewer.own_token_file.read_text().strip()
            answer = await self._http.post(
                "/apis/authentication.k8s.io/v1/tokenreviews", json=body, headers={"Authorization": f"Bearer {own}"}
            )
        except (OSError, httpx.HTTPError) as exc:
            # The exception's text may quote the request: only its kind goes on.
            raise ReviewUnavailable(type(exc).__name__) from None
        if answer.status_code != 201 and answer.status_code != 200:
            raise ReviewUnavailable(f"the API server answered HTTP {answer.status_code}")
        try:
            status = answer.json().get("status") or {}
        except ValueError:
            raise ReviewUnavailable("the API server's answer is not JSON") from None
        username = str((status.get("user") or {}).get("username", ""))
        if status.get("authenticated") is not True or reviewer.audience not in (status.get("audiences") or []):
            return None
        namespace, _, name = username.removeprefix(SERVICE_ACCOUNT).partition(":")
        if not username.startswith(SERVICE_ACCOUNT) or not namespace or not name:
            return None  # a person's or a node's token: not one a team's template sends
        return Grants.of(f"serviceaccount {namespace}:{name}", [Scope(frozenset([namespace]))])
