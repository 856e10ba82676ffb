"""No credential ever leaves: not when Prometheus or a proxy echoes the request in an error page, not in a
link, not in a span, a log line, a response or a page. Raw, URL-encoded and base64 forms are searched for."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.prometheus import Redaction
from app.settings import Settings
from tests.support.hostile_prometheus import (
    EMPTY_MATRIX,
    EMPTY_VECTOR,
    HostilePrometheus,
    Reply,
    echo_reply,
    empty_answers,
)
from tests.support.servers import AnalyzerServer
from tests.support.spans import SessionSpans

TOKEN = "tok-Zq8XvP3mW2"
USER = "reader-7Hk2"
PASSWORD = "pw-Lm4Nb9Vc1"
URL_USER = "urluser-3Jd8"
URL_PASSWORD = "p@ss:w/rd-Qe5"  # characters a URL must percent-encode
TENANT = "tenant-Rt6Yu1"
API_KEY = "key-Gh7Jk2Lp0"
HEADERS = {"X-Scope-OrgID": TENANT, "X-Api-Key": API_KEY}


@dataclass(frozen=True)
class Auth:
    env: Callable[[str], dict[str, str]]  # settings for a Prometheus at this URL
    secrets: tuple[str, ...]
    basic: tuple[str, str] | None = None

    def forbidden(self) -> set[str]:
        """Every form the secrets could take in text."""
        values = [*self.secrets, *HEADERS.values()] + ([":".join(self.basic)] if self.basic else [])
        return {form for value in values for form in _forms(value)}


def _forms(value: str) -> set[str]:
    encoded = base64.b64encode(value.encode()).decode()
    return {value, quote(value, safe=""), quote_plus(value), encoded, encoded.rstrip("=")}


AUTHS = {
    "bearer token": Auth(lambda url: {"prometheus_url": url, "prometheus_bearer_token": TOKEN}, (TOKEN,)),
    "basic auth": Auth(
        lambda url: {"prometheus_url": url, "prometheus_username": USER, "prometheus_password": PASSWORD},
        (USER, PASSWORD),
        (USER, PASSWORD),
    ),
    "userinfo in the URL": Auth(
        lambda url: {"prometheus_url": url.replace("//", f"//{URL_USER}:{quote(URL_PASSWORD, safe='')}@", 1)},
        (URL_USER, URL_PASSWORD),
        (URL_USER, URL_PASSWORD),
    ),
}

# What Prometheus, or a proxy before it, may answer, each repeating the request with its credentials.
ECHOES: dict[str, tuple[Reply, str]] = {
    "401 page": (
        echo_reply(401, lambda request: f"<html><h1>401 Unauthorized</h1><pre>{request}</pre></html>"),
        "http_status",
    ),
    "502 page": (
        echo_reply(502, lambda request: f"<html><title>502 Bad Gateway</title><body>{request}</body></html>"),
        "http_status",
    ),
    "401 API error": (
        echo_reply(401, lambda request: {"status": "error", "errorType": "auth", "error": f"refused {request}"}),
        "http_status",
    ),
    "200 with status error": (
        echo_reply(200, lambda request: {"status": "error", "errorType": "execution", "error": request}),
        "query_error",
    ),
    "200 with the request in a series' labels": (
        echo_reply(200, lambda request: _series_labelled(request[request.index("Authorization") :])),
        "bad_response",
    ),
    "200 with a partial-data warning": (
        echo_reply(200, lambda request: {**EMPTY_VECTOR, "warnings": [f"receive series from store: {request}"]}),
        "partial_data",
    ),
}


def _series_labelled(value: str) -> dict:
    """An answer whose one series is not what was asked for, with `value` in a label: its detail quotes it."""
    series = {"metric": {"echo": value}, "value": [0, "1"]}
    return {"status": "success", "data": {"resultType": "vector", "result": [series]}}


PROMQL_WARNING = echo_reply(
    # A range query (the canary's recent minutes) answers a matrix.
    200,
    lambda request: {
        **(EMPTY_MATRIX if "/query_range" in request else EMPTY_VECTOR),
        "warnings": [f"PromQL warning: {request}"],
    },
)


def env_of(settings: dict[str, str]) -> dict[str, str]:
    return {**settings, "prometheus_headers": json.dumps(HEADERS)}


def assert_clean(text: str, auth: Auth, where: str) -> None:
    leaked = sorted(form for form in auth.forbidden() if form in text)
    assert not leaked, f"{where} shows {leaked}"


@pytest.mark.parametrize("auth", AUTHS)
def test_echoed_credentials_never_reach_answers_pages_logs_or_spans(
    hostile: HostilePrometheus, spans: SessionSpans, auth: str
) -> None:
    case = AUTHS[auth]
    settings = Settings(**case.env(hostile.url), prometheus_headers=HEADERS)
    app = create_app(settings, span_processor=spans)
    logs = io.StringIO()
    logging.getLogger().handlers[0].setStream(logs)
    seen: list[tuple[str, str]] = []
    with TestClient(app) as client:
        for echo, (reply, cause) in ECHOES.items():
            hostile.reply = reply
            for name, response in _everything_shown(client).items():
                seen.append((f"{echo}: {name}", response.text))
            answer = client.get("/analyze", params={"service": "checkout"}).json()
            assert answer["cause"] == cause, answer
            # The excerpt is cut at 200 characters, after redacting: the marker may be cut too, never a secret.
            assert "[redacte" in answer["detail"] and len(answer["detail"]) <= 200, answer
        hostile.reply = PROMQL_WARNING  # not partial: judged, and the warning shown
        for name, response in _everything_shown(client).items():
            seen.append((f"PromQL warning: {name}", response.text))
        answer = client.get("/analyze", params={"service": "checkout"})
        assert answer.status_code == 200 and answer.json()["warnings"][0].startswith("PromQL warning:")
        assert "[redacted]" in answer.json()["warnings"][0]
    seen.append(("log", logs.getvalue()))
    seen += [(f"span {span.name}", span.to_json()) for span in spans.exporter.get_finished_spans()]

    assert "prometheus api/v1/query" in str(seen) and '"analysis"' in logs.getvalue()  # all of it was looked at
    for where, text in seen:
        assert_clean(text, case, where)


def _everything_shown(client: TestClient) -> dict[str, httpx2.Response]:  # TestClient's own
    query = {"service": "checkout"}
    return {
        "JSON": client.get("/analyze", params=query),
        "POST JSON": client.post("/analyze", json=query),
        "report": client.get("/analyze", params={**query, "format": "html"}),
        "ready": client.get("/health/ready"),
        "prometheus health": client.get("/health/prometheus"),
    }


@pytest.mark.parametrize("auth", AUTHS)
def test_a_real_server_shows_no_credential_either(
    start_analyzer: Callable[..., AnalyzerServer], hostile: HostilePrometheus, auth: str
) -> None:
    case = AUTHS[auth]
    server = start_analyzer(**env_of(case.env(hostile.url)), log_level="DEBUG")
    for reply, cause in ECHOES.values():
        hostile.reply = reply
        response = server.analyze(service="checkout")
        assert response.json()["cause"] == cause
        assert_clean(response.text, case, "503 body")
        assert_clean(httpx.get(f"{server.url}/health/prometheus", timeout=5).text, case, "/health/prometheus")
    hostile.reply = empty_answers
    report = server.analyze(service="checkout", format="html")
    assert report.status_code == 200 and "/graph?" in report.text  # the links are there, without credentials
    assert_clean(report.text, case, "report")
    assert "[redacted]" in server.logs()
    assert_clean(server.logs(), case, "log")


@pytest.mark.parametrize("auth", AUTHS)
def test_links_carry_no_credentials(hostile: HostilePrometheus, auth: str) -> None:
    case = AUTHS[auth]
    hostile.reply = empty_answers
    with TestClient(create_app(Settings(**case.env(hostile.url)))) as client:
        body = client.get("/analyze", params={"service": "checkout"}).json()
    graphs = [link for link in json.dumps(body["links"]).split('"') if "/graph?" in link]
    assert graphs and all(link.startswith(f"{hostile.url}/graph?") for link in graphs)
    assert_clean(json.dumps(body), case, "JSON")


def test_userinfo_is_one_way_to_authenticate_and_a_refusal_shows_no_secret() -> None:
    url = f"http://{URL_USER}:{quote(URL_PASSWORD, safe='')}@prometheus:9090"
    assert Settings(prometheus_url=url).prometheus_basic_auth == (URL_USER, URL_PASSWORD)
    for other in ({"prometheus_bearer_token": TOKEN}, {"prometheus_username": USER, "prometheus_password": PASSWORD}):
        with pytest.raises(ValueError, match="one way to authenticate") as refused:
            Settings(prometheus_url=url, **other)
        assert_clean(str(refused.value), AUTHS["userinfo in the URL"], "settings error")
        assert_clean(str(refused.value), AUTHS["basic auth"], "settings error")
        assert TOKEN not in str(refused.value)


def test_redaction_masks_every_form_and_unknown_scheme_credentials() -> None:
    redact = Redaction([TOKEN, TENANT], basic_auth=(USER, PASSWORD))
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    token = base64.b64encode(TOKEN.encode()).decode()
    text = redact(
        f"Authorization: Basic {basic}\nX-Scope-OrgID: {quote(TENANT)}\nnext: {token}"
        "\nproxy: Bearer eyJhbGciOiJIUzI1NiJ9.unknown"
    )
    for secret in (TOKEN, TENANT, USER, PASSWORD, basic):
        assert secret not in text
    assert "Bearer eyJ" not in text and text.count("[redacted]") == 4
    assert "Basic realm" in redact('WWW-Authenticate: Basic realm="Prometheus"')  # prose stays


def test_values_too_short_to_be_secret_do_not_mask_every_line() -> None:
    redact = Redaction(["1", "on"])  # e.g. PROMETHEUS_HEADERS={"X-Org-Id": "1", "X-Debug": "on"}
    assert redact("HTTP 401 at 2026-11-21T10:11:01Z, one more") == "HTTP 401 at 2026-11-21T10:11:01Z, one more"


def test_an_excerpt_is_short_single_line_and_redacted_before_it_is_cut() -> None:
    redact = Redaction([TOKEN])
    excerpt = redact.excerpt("<html>\n" + "x" * 195 + f" {TOKEN}" + "\n</html>" * 100)
    assert len(excerpt) <= 200 and "\n" not in excerpt and "<" not in excerpt
    assert TOKEN[:5] not in excerpt  # not even the half that fits
