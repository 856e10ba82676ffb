"""The documentation's generated tables match the code they come from."""

from __future__ import annotations

from app import readme
from app.judge.builtin_checks import CHECKS
from app.settings import Settings

CONFIGURATION = readme.DOCS / "configuration.md"


def test_limits_table_is_current() -> None:
    [path] = readme.holding_limits()  # one table, in the page that documents the request's fields
    assert path == readme.DOCS / "api.md"
    text = path.read_text()
    assert readme.render(text) == text, "the limits table is stale: run `.venv/bin/python -m app.readme`"


def test_limits_table_lists_every_check() -> None:
    table = readme.limits_table()
    for check in CHECKS:
        assert f"| `{check.limit.field}` | `{check.name}` |" in table


def test_every_setting_is_in_the_configuration_table() -> None:
    text = CONFIGURATION.read_text()
    table = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    # The OpenTelemetry SDK's own variables are named by the row that points at them.
    missing = [
        name.upper()
        for name in Settings.model_fields
        if f"`{name.upper()}`" not in table and name != "otel_service_name"
    ]
    assert not missing, f"settings the configuration table does not document: {missing}"
