"""One analyzer for many teams, end to end: a real Prometheus holding two namespaces with a service of
the same name, the analyzer with TENANCY on. Team B learns nothing of team A's service through it, and
team A's rollouts are judged as they are with tenancy off."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.demo.local_prometheus import LocalPrometheus
from tests.support import tenancy
from tests.support.recorder import RecordingPrometheus
from tests.support.servers import AnalyzerServer
from tests.support.tenancy import SERVICE, TEAM_A, TEAM_B, TOKENS, refused
from tests.test_argo_conformance import TEAMS_TEMPLATES, measure

A, B = TOKENS[TEAM_A], TOKENS[TEAM_B]


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tenancy.access_file(tmp_path_factory.mktemp("access") / "access.yaml")


@pytest.fixture(scope="module")
def shared(start_analyzer: Callable[..., AnalyzerServer], teams_prometheus: LocalPrometheus, access: Path):
    return start_analyzer(prometheus_url=teams_prometheus.url, tenancy="true", access_file=str(access))


@pytest.fixture(scope="module")
def single_team(start_analyzer: Callable[..., AnalyzerServer], teams_prometheus: LocalPrometheus):
    return start_analyzer(prometheus_url=teams_prometheus.url)


def ask(server: AnalyzerServer, token: str | None = None, method: str = "GET", headers=None, **fields):
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    if method == "POST":
        return httpx.post(f"{server.url}/analyze", json=fields, headers=headers, timeout=20)
    return httpx.get(f"{server.url}/analyze", params=fields, headers=headers, timeout=20)


# --- the door ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dGVhbS1hOnRvaw==", "Bearer not-a-token-we-know"])
def test_no_credential_or_a_bad_one_is_401(shared: AnalyzerServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{shared.url}/analyze", params={"service": SERVICE}, headers=headers, timeout=10)
    refused(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_probes_metrics_and_docs_stay_open(shared: AnalyzerServer) -> None:
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
        assert httpx.get(f"{shared.url}{path}", timeout=10).status_code == 200, path


# --- one team, its own service --------------------------------------------------------------------------


def test_a_team_is_judged_as_without_tenancy(shared: AnalyzerServer, single_team: AnalyzerServer) -> None:
    """The namespace is implied by a token covering one; every query selects it; the verdict and the
    numbers are those of the same analysis of that namespace with tenancy off."""
    mine = ask(shared, A, service=SERVICE)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    checks = {check["name"]: check for check in body["checks"]}
    assert body["verdict"] == "pass" and checks["error_rate"]["canary"] < 0.01  # team A's canary: healthy
    assert all('namespace="team-a"' in query for query in body["queries"].values())
    alone = single_team.analyze(service=SERVICE, namespace=TEAM_A, at=body["evaluated_at"]).json()
    assert [c["verdict"] for c in alone["checks"]] == [c["verdict"] for c in body["checks"]]
    assert [c["canary"] for c in alone["checks"]] == [c["canary"] for c in body["checks"]]


def test_the_other_team_gets_its_own(shared: AnalyzerServer) -> None:
    theirs = ask(shared, B, method="POST", service=SERVICE).json()
    assert theirs["verdict"] == "fail"  # team B's canary errs 8 %
    assert all('namespace="team-b"' in query for query in theirs["queries"].values())


# --- every way to reach across ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"namespace": TEAM_A},  # another namespace's service
        {"namespace": "team-a|team-b"},  # a regex
        {"namespace": 'team-b",namespace="team-a'},  # a label trick
        {"namespace": ".*"},
        {"service": 'shop",namespace="team-a'},
        {"canary": 'canary"} or http_requests_total{namespace="team-a'},
        {"tenant": TEAM_A},  # a field naming a tenant
        {"x_scope_orgid": TEAM_A},
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_team_b_cannot_reach_team_a(shared: AnalyzerServer, fields: dict, method: str) -> None:
    refused(ask(shared, B, method=method, **{"service": SERVICE, **fields}), 403)


def test_a_tenant_header_is_refused(shared: AnalyzerServer) -> None:
    refused(ask(shared, B, headers={"X-Scope-OrgID": TEAM_A}, service=SERVICE), 403)


def test_a_repeated_parameter_cannot_smuggle_a_namespace(shared: AnalyzerServer) -> None:
    response = httpx.get(
        f"{shared.url}/analyze?service={SERVICE}&namespace={TEAM_B}&namespace={TEAM_A}",
        headers={"Authorization": f"Bearer {B}"},
        timeout=10,
    )
    refused(response, 403)


def test_the_report_is_behind_the_same_rule(shared: AnalyzerServer) -> None:
    page = {"Accept": "text/html"}
    refused(ask(shared, None, headers=page, service=SERVICE, format="html"), 401)
    refused(ask(shared, B, headers=page, service=SERVICE, namespace=TEAM_A, format="html"), 403)
    mine = ask(shared, A, headers=page, service=SERVICE, format="html")
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/html")


def test_a_scope_narrowed_to_services(shared: AnalyzerServer) -> None:
    narrow = tenancy.NARROW_TOKEN  # team-a, checkout only
    refused(ask(shared, narrow, service=SERVICE), 403)
    assert ask(shared, narrow, service="checkout").status_code == 200


# --- the backend tenant: the analyzer's own, per namespace --------------------------------------------------


@pytest.fixture(scope="module")
def mimir() -> Iterator[RecordingPrometheus]:
    with RecordingPrometheus() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def on_mimir(start_analyzer, mimir: RecordingPrometheus, access: Path, tmp_path_factory) -> AnalyzerServer:
    tenants = tmp_path_factory.mktemp("tenants") / "tenants.yaml"
    tenants.write_text(f"{TEAM_A}: tenant-a\n{TEAM_B}: tenant-b\n")
    return start_analyzer(prometheus_url=mimir.url, tenancy="true", access_file=str(access), tenants_file=str(tenants))


def test_each_query_carries_the_namespaces_tenant_and_never_the_callers(
    on_mimir: AnalyzerServer, mimir: RecordingPrometheus
) -> None:
    before = len(mimir.tenants)
    assert ask(on_mimir, A, service=SERVICE).status_code == 200
    assert ask(on_mimir, B, method="POST", service=SERVICE).status_code == 200
    sent = mimir.tenants[before:]
    assert sent and set(sent) == {"tenant-a", "tenant-b"}
    assert sent[: len(sent) // 2] == ["tenant-a"] * (len(sent) // 2)
    before = len(mimir.tenants)
    refused(ask(on_mimir, A, headers={"X-Scope-OrgID": "tenant-b"}, service=SERVICE), 403)
    assert len(mimir.tenants) == before  # refused before anything was asked


def test_the_reports_history_is_read_in_the_namespaces_tenant_too(
    on_mimir: AnalyzerServer, mimir: RecordingPrometheus
) -> None:
    before = len(mimir.tenants)
    page = ask(on_mimir, B, headers={"Accept": "text/html"}, service=SERVICE, format="html")
    assert page.status_code == 200 and "charts unavailable" not in page.text
    paths, sent = mimir.paths[before:], mimir.tenants[before:]
    assert any(path.endswith("/query_range") for path in paths)  # the lookback's charts
    assert set(sent) == {"tenant-b"}


def test_prometheus_health_is_asked_as_a_tenant_mimir_answers(
    on_mimir: AnalyzerServer, mimir: RecordingPrometheus
) -> None:
    before = len(mimir.tenants)
    assert httpx.get(f"{on_mimir.url}/health/prometheus", timeout=5).json() == {"status": "ok"}  # open, no token
    assert mimir.tenants[before:] == ["tenant-a"]


def test_a_federated_tenant_stops_the_analyzer(start_analyzer, access: Path, tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(f"{TEAM_A}: tenant-a|tenant-b\n")
    with pytest.raises(RuntimeError, match=r"federates tenants"):
        start_analyzer(tenancy="true", access_file=str(access), tenants_file=str(tenants))


# --- tokens are never echoed ------------------------------------------------------------------------------


def test_no_token_in_answers_or_logs(shared: AnalyzerServer) -> None:
    answers = [
        ask(shared, A, service=SERVICE).text,
        ask(shared, B, service=SERVICE, namespace=TEAM_A).text,
        ask(shared, A + "x", service=SERVICE).text,
        ask(shared, A, headers={"Accept": "text/html"}, service=SERVICE, format="html").text,
    ]
    for text in [*answers, shared.logs()]:
        for token in (A, B, A + "x"):
            assert token not in text and json.dumps(token)[1:-1] not in text


# --- through Argo's eyes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEAMS_TEMPLATES, ids=lambda p: p.name)
def test_a_teams_template_gets_its_phase_with_the_right_token_and_error_with_a_wrong_one(
    argo_probe: Path, shared: AnalyzerServer, template: Path
) -> None:
    kind = "background" if "background" in template.name else "step"
    assert measure(argo_probe, template, shared, SERVICE, token=A)["phase"] == "Successful"  # team A: healthy
    assert measure(argo_probe, template, shared, SERVICE, token=B)["phase"] == "Failed"  # team B's own: erring
    wrong = measure(argo_probe, template, shared, SERVICE, token=A + "-not")
    assert wrong["phase"] == "Error" and wrong["http_status"] == 401, (kind, wrong)


# --- people, behind an authenticating proxy ------------------------------------------------------------


@pytest.fixture(scope="module")
def behind_proxy(start_analyzer, teams_prometheus: LocalPrometheus, access: Path) -> AnalyzerServer:
    """The tests' own address is the proxy's: its groups header is believed from there only."""
    return start_analyzer(
        prometheus_url=teams_prometheus.url,
        tenancy="true",
        access_file=str(access),
        trusted_proxies='["127.0.0.1/32"]',
        groups_header="X-Forwarded-Groups",
    )


def test_a_proxys_groups_grant_their_namespaces(behind_proxy: AnalyzerServer) -> None:
    page = {"Accept": "text/html", "X-Forwarded-Groups": "team-a-devs, readers"}
    assert ask(behind_proxy, None, headers=page, service=SERVICE, format="html").status_code == 200
    # As oauth2-proxy sends it: the user's own address in X-Forwarded-For; the proxy is still the peer.
    forwarded = {**page, "X-Forwarded-For": "203.0.113.7"}
    assert ask(behind_proxy, None, headers=forwarded, service=SERVICE, format="html").status_code == 200
    refused(ask(behind_proxy, None, headers=page, service=SERVICE, namespace=TEAM_B, format="html"), 403)
    refused(ask(behind_proxy, None, headers={"X-Forwarded-Groups": "readers"}, service=SERVICE), 403)


def test_groups_from_anywhere_else_are_not_believed(
    start_analyzer, teams_prometheus: LocalPrometheus, access: Path
) -> None:
    elsewhere = start_analyzer(
        prometheus_url=teams_prometheus.url,
        tenancy="true",
        access_file=str(access),
        trusted_proxies='["10.0.0.0/8"]',
        groups_header="X-Forwarded-Groups",
    )
    refused(ask(elsewhere, None, headers={"X-Forwarded-Groups": "team-a-devs"}, service=SERVICE), 401)


# --- a team's own checks -----------------------------------------------------------------------------------


def test_a_check_that_does_not_select_the_namespace_stops_a_shared_analyzer(
    start_analyzer, access: Path, tmp_path: Path
) -> None:
    checks = tmp_path / "checks.yaml"
    checks.write_text(
        "checks:\n"
        "  - name: conversion\n    title: conversion\n    compare: slo\n    worse: lower\n"
        '    events: sum(increase(orders_total{service="$service",version="$version"}[$window]))\n'
        '    trials: sum(increase(visits_total{service="$service",version="$version",namespace="$namespace"}'
        "[$window]))\n"
        "    limit: {field: conversion_min, description: least conversion, default: 0.1, minimum: 0, maximum: 1}\n"
    )
    with pytest.raises(RuntimeError, match=r'must select the namespace \("\$namespace"\): conversion'):
        start_analyzer(tenancy="true", access_file=str(access), checks_file=str(checks))


def test_a_check_that_does_is_held_to_the_callers_namespace(
    start_analyzer, teams_prometheus: LocalPrometheus, access: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    checks = tmp_path_factory.mktemp("checks") / "checks.yaml"
    checks.write_text(
        "checks:\n"
        "  - name: served\n    title: requests served\n    compare: slo\n    worse: lower\n    method: threshold\n"
        '    value: sum(increase(http_requests_total{service="$service",version="$version",namespace="$namespace"}'
        "[$window]))\n"
        "    limit: {field: served_min, description: least served, default: 1, minimum: 0, maximum: 1000000}\n"
    )
    server = start_analyzer(
        prometheus_url=teams_prometheus.url, tenancy="true", access_file=str(access), checks_file=str(checks)
    )
    body = ask(server, B, service=SERVICE).json()
    sent = body["queries"]["check:served:canary:value"]
    assert 'namespace="team-b"' in sent and "team-a" not in json.dumps(body)
