"""Many teams on one analyzer: two namespaces holding a service of the same name, their tokens, and
a stand-in for the Kubernetes TokenReview API that speaks its JSON."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import yaml

from app.demo.traffic import Traffic
from tests.support.hostile_prometheus import send_json

SERVICE = "shop"
TEAM_A, TEAM_B = "team-a", "team-b"
TEAM_WITHOUT_DATA = "team-c"  # a namespace with no series: its `shop` is always inconclusive
# Team A's canary is healthy; team B's, of the same name, errs 8 %: an answer leaking B's data to A shows.
CANARY_AGE_SECONDS = 15 * 60
TOKENS = {TEAM_A: "tok-team-a-7Qm2Lx9Vd4", TEAM_B: "tok-team-b-3Hc8Pz1Nw6"}
NARROW_TOKEN = "tok-narrow-Zx4Wq8Ls1ab"  # team A's, for its checkout service only
SERVICE_ACCOUNT_TOKENS = {TEAM_A: "sa-team-a-Jw5Rt2Ky8Ub", TEAM_B: "sa-team-b-Gd7Ne3Xq4Lc"}
AUDIENCE = "canary-analyzer"
ANALYZER_OWN_TOKEN = "sa-canary-analyzer-Pf6Vb9Mz2Ts"


def traffic(now: float) -> list[Traffic]:
    start, stop, canary = now - 3600, now + 3600, now - CANARY_AGE_SECONDS
    out = []
    for namespace, error_ratio in ((TEAM_A, 0.003), (TEAM_B, 0.08)):
        labels = {"namespace": namespace}
        out += [
            Traffic(SERVICE, "stable", 10, start, stop, error_ratio=0.003, p95_seconds=0.12, labels=labels, sigma=0.5),
            Traffic(SERVICE, "canary", 3, canary, stop, error_ratio=error_ratio, p95_seconds=0.12, labels=labels,
                    sigma=0.5),
        ]  # fmt: skip
    return out


def refused(response: httpx.Response, status: int) -> dict:
    """A refusal: the status, the JSON error body, and nothing of anyone's numbers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "cause", "detail", "trace_id"} and body["error"] in ("unauthorized", "forbidden")
    assert body["cause"] and body["detail"], body  # which refusal, and why
    assert "verdict" not in response.text and "checks" not in response.text
    return body


def access_file(path: Path) -> Path:
    """Team A's token by its digest, team B's as is (both forms work); a group per team for a proxy."""
    spec = {
        "tokens": [
            {
                "name": "team-a-ci",
                "sha256": hashlib.sha256(TOKENS[TEAM_A].encode()).hexdigest(),
                "namespaces": [TEAM_A],
            },
            {"name": "team-b-ci", "token": TOKENS[TEAM_B], "namespaces": [TEAM_B]},
            {
                "name": "checkout-only",
                "token": NARROW_TOKEN,
                "namespaces": [TEAM_A],
                "services": ["checkout"],
            },
        ],
        "groups": {"team-a-devs": {"namespaces": [TEAM_A]}, "team-b-devs": {"namespaces": [TEAM_B]}},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass
class TokenReviewAPI:
    """The Kubernetes API server's TokenReview endpoint: valid ServiceAccount tokens for AUDIENCE, each
    of its team's namespace; every review kept, to check what the analyzer sent."""

    reviews: list[dict] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)  # the Authorization the analyzer presented

    @contextmanager
    def serving(self) -> Iterator[str]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                api.reviews.append(body)
                api.callers.append(self.headers.get("Authorization", ""))
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                    send_json(self, 404, {"kind": "Status", "status": "Failure", "code": 404})
                    return
                if self.headers.get("Authorization") != f"Bearer {ANALYZER_OWN_TOKEN}":
                    send_json(self, 401, {"kind": "Status", "status": "Failure", "code": 401})
                    return
                send_json(self, 201, {**body, "status": api.status(body["spec"])})

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    @staticmethod
    def status(spec: dict) -> dict:
        """As the API server answers: authenticated, the user, and the audiences the token is good for."""
        team = next((t for t, token in SERVICE_ACCOUNT_TOKENS.items() if token == spec.get("token")), None)
        if team is None:
            return {"authenticated": False, "error": "invalid bearer token"}
        if AUDIENCE not in spec.get("audiences", []):
            return {"authenticated": False, "error": "token audiences do not match"}
        user = {"username": f"system:serviceaccount:{team}:rollouts", "groups": ["system:serviceaccounts"]}
        return {"authenticated": True, "user": user, "audiences": [AUDIENCE]}
