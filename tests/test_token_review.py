"""Kubernetes ServiceAccount tokens checked with the TokenReview API, against a stand-in that speaks its
JSON (there is no cluster here): the token's namespace is the caller's scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.demo.local_prometheus import LocalPrometheus
from tests.support.servers import AnalyzerServer
from tests.support.tenancy import (
    ANALYZER_OWN_TOKEN,
    AUDIENCE,
    SERVICE,
    SERVICE_ACCOUNT_TOKENS,
    TEAM_A,
    TEAM_B,
    TokenReviewAPI,
    refused,
)

SA_A, SA_B = SERVICE_ACCOUNT_TOKENS[TEAM_A], SERVICE_ACCOUNT_TOKENS[TEAM_B]


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TokenReviewAPI, str]]:
    reviews = TokenReviewAPI()
    with reviews.serving() as url:
        yield reviews, url


@pytest.fixture(scope="module")
def own_token(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serviceaccount") / "token"
    path.write_text(ANALYZER_OWN_TOKEN + "\n")
    return path


def reviewed_by(start: Callable[..., AnalyzerServer], prometheus_url: str, url: str, token: Path, audience: str):
    return start(
        prometheus_url=prometheus_url,
        tenancy="true",
        token_review_url=url,
        token_review_audience=audience,
        token_review_token_file=str(token),
        token_review_ca_file="/nonexistent",
    )


@pytest.fixture(scope="module")
def server(start_analyzer, teams_prometheus: LocalPrometheus, api, own_token: Path) -> AnalyzerServer:
    return reviewed_by(start_analyzer, teams_prometheus.url, api[1], own_token, AUDIENCE)


def ask(server: AnalyzerServer, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/analyze", params={"service": SERVICE, **params}, headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )  # fmt: skip


def test_a_serviceaccount_token_scopes_its_namespace(server: AnalyzerServer, api) -> None:
    reviews, _ = api
    mine = ask(server, SA_A)
    assert mine.status_code == 200 and mine.json()["verdict"] == "pass", mine.text
    assert all('namespace="team-a"' in q for q in mine.json()["queries"].values())
    refused(ask(server, SA_A, namespace=TEAM_B), 403)
    assert ask(server, SA_B).json()["verdict"] == "fail"  # team B's own
    # What was asked: the caller's token in the review, the analyzer's own as its credential.
    review = next(r for r in reviews.reviews if r["spec"]["token"] == SA_A)
    assert review["kind"] == "TokenReview" and review["spec"]["audiences"] == [AUDIENCE]
    assert set(reviews.callers) == {f"Bearer {ANALYZER_OWN_TOKEN}"}


def test_a_token_the_api_server_does_not_know_is_401(server: AnalyzerServer) -> None:
    refused(ask(server, "sa-forged-Qw8Ez3Ry6Ui"), 401)


def test_reviews_are_remembered_briefly(server: AnalyzerServer, api) -> None:
    reviews, _ = api
    ask(server, SA_A)
    before = len(reviews.reviews)
    for _ in range(3):
        assert ask(server, SA_A).status_code == 200
    assert len(reviews.reviews) == before  # Argo's polls do not each cost the API server a review


def test_a_token_for_another_audience_is_401(start_analyzer, teams_prometheus, api, own_token) -> None:
    """The analyzer asks for its audience; a token valid only for the API server's is not proof here."""
    elsewhere = reviewed_by(start_analyzer, teams_prometheus.url, api[1], own_token, "some-other-service")
    refused(ask(elsewhere, SA_A), 401)


def test_an_api_server_that_cannot_answer_is_a_503_not_a_verdict(start_analyzer, teams_prometheus, own_token) -> None:
    down = reviewed_by(start_analyzer, teams_prometheus.url, "http://127.0.0.1:9", own_token, AUDIENCE)
    response = ask(down, SA_A)
    assert response.status_code == 503 and response.json()["error"] == "authentication_unavailable"
    assert SA_A not in response.text and SA_A not in down.logs()


def test_without_an_audience_the_analyzer_does_not_start(start_analyzer, api) -> None:
    with pytest.raises(RuntimeError, match="TOKEN_REVIEW_AUDIENCE"):
        start_analyzer(tenancy="true", token_review_url=api[1])
