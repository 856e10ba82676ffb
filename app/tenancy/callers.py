"""Who is asking: the caller's grants, from a bearer token or a trusted proxy's groups header.

`Authentication` is an ASGI middleware in front of /analyze (the JSON and the report alike):
no credential, or one that is not valid, is a 401 in the service's JSON error body before the
request is even parsed; the grants of a valid one travel in the request's state, and what the
request asks about is checked against them once it is parsed (a 403). /health, /metrics and the
docs stay open: probes and Prometheus call them, and they hold nobody's data.

A token is never logged, shown or kept: it is compared by digest (static tokens), sent only to
the API server (TokenReview), and remembered only by digest.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.limits import replay
from app.middleware import send_error
from app.tenancy.access import Access
from app.tenancy.scope import Grants
from app.tenancy.token_review import ReviewUnavailable, TokenReviews

log = structlog.get_logger("canary_analyzer.access")
PROTECTED = "/analyze"
LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
BEARER = "bearer "
CHALLENGE = [(b"www-authenticate", b'Bearer realm="canary-analyzer"')]


class Refused(Exception):
    """A caller turned away: `error` is the status' kind (unauthorized, forbidden), `cause` which of its reasons."""

    def __init__(self, status: int, error: str, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.cause, self.detail = status, error, cause, detail


@dataclass
class Callers:
    """The ways a caller may prove who it is, as configured."""

    access: Access | None = None
    reviews: TokenReviews | None = None
    trusted_proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
    groups_header: str | None = None

    async def grants(self, headers: Headers, peer: str | None) -> Grants:
        """Raises Refused: 401 without a valid credential, 403 for groups that grant nothing, 503 when
        the API server cannot review a token."""
        authorization = headers.get("authorization", "")
        if authorization:
            if not authorization.lower().startswith(BEARER) or not authorization[len(BEARER) :].strip():
                raise Refused(
                    401, "unauthorized", "malformed_authorization", "the Authorization header must be `Bearer <token>`"
                )
            return await self._token(authorization[len(BEARER) :].strip())
        if self.groups_header and self._trusted(peer) and headers.get(self.groups_header):
            return self._groups(headers[self.groups_header])
        raise Refused(
            401, "unauthorized", "no_credential", "a bearer token is required (Authorization: Bearer <token>)"
        )

    async def _token(self, token: str) -> Grants:
        if self.access is not None and (listed := self.access.token(token)) is not None:
            name, scope = listed
            return Grants.of(f"token {name}", [scope])
        if self.reviews is not None:
            try:
                reviewed = await self.reviews.grants(token)
            except ReviewUnavailable as exc:
                detail = f"the token could not be reviewed: {exc}"
                raise Refused(503, "authentication_unavailable", "token_review", detail) from None
            if reviewed is not None:
                return reviewed
        raise Refused(401, "unauthorized", "invalid_token", "the token is not valid here")

    def _trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    def _groups(self, value: str) -> Grants:
        names = sorted({group.strip() for group in value.split(",") if group.strip()})
        groups = self.access.groups if self.access else {}
        scopes = [groups[name] for name in names if name in groups]
        if not scopes:
            raise Refused(
                403, "forbidden", "no_granted_group", "none of the caller's groups is granted a namespace here"
            )
        return Grants.of(f"groups {', '.join(n for n in names if n in groups)}", scopes)


class Authentication:
    """The ASGI middleware: /analyze only for a caller with grants, and only about what they cover.

    The door looks at the request as it came, before any parsing: every value given for a label
    (namespace, service, the versions), however it is written, must be a plain label value, and the
    namespace and service the grants' own. A trick in any of them is a 403, not a parsing problem:
    nothing in a field, parameter or header can widen the scope. The admission after parsing
    (app/tenancy/admission.py) checks the same on the values the analysis will use."""

    def __init__(self, app: ASGIApp, callers: Callers) -> None:
        self.app = app
        self.callers = callers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        trace_id = state.get("trace_id") or uuid.uuid4().hex
        peer = scope["client"][0] if scope.get("client") else None
        try:
            headers = Headers(scope=scope)
            grants = await self.callers.grants(headers, peer)
            fields, receive = await _fields_as_sent(scope, receive)
            _at_the_door(grants, fields, headers)
        except Refused as refused:
            log.info("caller refused", status=refused.status, reason=refused.error, cause=refused.cause)
            challenge = CHALLENGE if refused.status == 401 else []
            await send_error(
                send,
                refused.status,
                refused.error,
                trace_id,
                refused.detail,
                cause=refused.cause,
                extra_headers=challenge,
            )
            return
        state["grants"] = grants
        await self.app(scope, receive, send)


LABEL_FIELDS = ("namespace", "service", "canary", "stable")
# The backend tenant is the analyzer's to set, from the namespace: a caller naming one is refused.
TENANT_NAMES = {"tenant", "tenantid", "xscopeorgid", "scopeorgid", "orgid"}


def _names_a_tenant(name: str) -> bool:
    return re.sub(r"[^a-z]", "", name.lower()) in TENANT_NAMES


def _at_the_door(grants: Grants, fields: dict[str, list[object]], headers: Headers) -> None:
    if any(_names_a_tenant(name) for name in [*fields, *headers.keys()]):
        detail = "the backend tenant follows from the namespace: it cannot be asked for"
        raise Refused(403, "forbidden", "tenant_asked", detail)
    for name in LABEL_FIELDS:
        for value in fields.get(name, []):
            if not (isinstance(value, str) and (LABEL_VALUE.fullmatch(value) or (name == "stable" and value == ""))):
                raise Refused(
                    403, "forbidden", "not_a_label_value", f"{name} must be a plain label value the credential covers"
                )
    namespaces = fields.get("namespace") or [None]
    for namespace in namespaces:
        for service in fields.get("service", []):
            if namespace is None:
                covered = any(grants.covers(n, str(service)) for n in grants.namespaces)
            else:
                covered = grants.covers(str(namespace), str(service))
            if not covered:
                detail = "the credential does not cover that service in that namespace"
                raise Refused(403, "forbidden", "not_covered", detail)


async def _fields_as_sent(scope: Scope, receive: Receive) -> tuple[dict[str, list[object]], Receive]:
    """The label fields of the query string and of a JSON body, every value given; and a receive that
    hands the app the body again (RequestLimits has already bounded its size and time)."""
    fields: dict[str, list[object]] = {}
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        fields.setdefault(key, []).append(value)
    if scope["method"] != "POST":
        return fields, receive
    message = await receive()
    body = message.get("body", b"")
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}  # not JSON: the app refuses it as it would anyway
    if isinstance(data, dict):
        for name, value in data.items():
            fields.setdefault(str(name), []).append(value)
    return fields, replay(body, receive)
