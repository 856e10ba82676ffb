"""HTML only for clients that ask for it: Argo must never get a non-JSON 2xx."""

from __future__ import annotations

import pytest

from app.negotiation import wants_html

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "requested", "html"),
    [
        (None, None, False),  # Argo's web provider sends no Accept header
        ("", None, False),
        ("*/*", None, False),  # curl
        ("application/json", None, False),
        ("application/json, text/html", None, False),  # a tie goes to JSON
        ("text/html;q=0.5, */*", None, False),
        ("text/html;q=bogus", None, False),
        ("text/html;q=7", None, False),
        (BROWSER, None, True),
        ("text/html", None, True),
        ("TEXT/HTML", None, True),
        ("application/xhtml+xml", None, True),
        ("text/html, application/json;q=0.9", None, True),
        (BROWSER, "json", False),
        (None, "html", True),
        ("application/json", "html", True),
    ],
)
def test_wants_html(accept: str | None, requested: str | None, html: bool) -> None:
    assert wants_html(accept, requested) is html
