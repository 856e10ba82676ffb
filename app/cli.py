"""`canary-analyzer`: the same judgment from a shell or CI job, and the server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from enum import IntEnum
from typing import NoReturn

import click
import pydantic
from rich.console import Console
from rich.table import Table

from app.analysis import Analysis, run_analysis
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Check, Mode
from app.judge.findings import Outcome
from app.judge.judgment import Verdict
from app.models import AnalysisRequest, AnalysisResponse, RequestModels, describe_limit, preset_problem
from app.presets import NAMES as PRESET_NAMES
from app.presets import Preset
from app.prometheus import PrometheusClient, PrometheusError, build_http_client
from app.responses import analysis_response
from app.settings import Settings
from app.tenancy.admission import admit


class Exit(IntEnum):
    PASS = 0
    FAIL = 1
    INCONCLUSIVE = 2
    NOT_MEASURED = 3
    USAGE = 4


LOG_WIDTH = 200
EXIT_BY_VERDICT = {Verdict.PASS: Exit.PASS, Verdict.FAIL: Exit.FAIL, Verdict.INCONCLUSIVE: Exit.INCONCLUSIVE}
STYLE = {Outcome.PASS: "green", Outcome.FAIL: "bold red", Outcome.INCONCLUSIVE: "yellow", Outcome.SKIPPED: "dim"}

EPILOG = """\b
Exit codes:
  0  pass
  1  fail
  2  inconclusive (too little traffic, no data)
  3  could not measure (Prometheus unreachable, slow or answering errors)
  4  invalid usage or input

Every option not given falls back to the environment (PROMETHEUS_URL, SERVICE_LABEL, ...),
exactly as the server reads it.
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="canary-analyzer")
def cli() -> None:
    """Judge a canary against its stable on Prometheus data: pass, fail or inconclusive."""


def add_limit_options(command: click.Command, checks: Iterable[Check]) -> None:
    """One option per check limit, named, typed and described by the check itself (before --json)."""
    at = next(i for i, param in enumerate(command.params) if param.name == "as_json")
    command.params[at:at] = [
        click.Option(
            [f"--{check.limit.field.replace('_', '-')}", check.limit.field],
            type=int if check.limit.integer else float,
            help=describe_limit(check.limit),
        )
        for check in checks
    ]


@cli.command(epilog=EPILOG)
@click.option("--service", required=True, help="Value of the service label.")
@click.option("--namespace", help="The service's Kubernetes namespace: every query selects it.")
@click.option("--canary", default="canary", show_default=True, help="Version label value of the canary.")
@click.option("--stable", default="stable", show_default=True, help="Version label value of the stable.")
@click.option("--window", default="5m", show_default=True, help="PromQL duration the rates are taken over.")
@click.option("--at", help="Judge as of this moment (RFC 3339), e.g. when a rollout was aborted; default now.")
@click.option("--prometheus-url", help="Prometheus base URL (default: $PROMETHEUS_URL or http://localhost:9090).")
@click.option("--preset", type=click.Choice(PRESET_NAMES), help="Whose metric conventions (default: $METRICS_PRESET).")
@click.option("--mode", type=click.Choice([m.value for m in Mode]), help="statistical (default) or threshold.")
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON the HTTP API answers.")
def analyze(prometheus_url: str | None, as_json: bool, **fields: object) -> None:
    """Run one analysis now and print the verdict, its reasons and every check."""
    settings = _settings(**({"prometheus_url": prometheus_url} if prometheus_url else {}))
    try:
        request = RequestModels.of(settings.checks).request(**{k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        _fail_usage(_problems(exc, "input"))
    preset = settings.preset(request.preset)
    problem = preset_problem(request, preset)
    if problem:
        _fail_usage(f"stable: {problem}")
    try:
        # Whoever runs the command asks with the analyzer's credentials directly: nobody's deputy, so
        # no grants apply; a namespace is still read from its own backend tenant.
        tenant = admit(request.namespace, request.service, None, settings.tenants, request.selects_namespace).tenant
    except ValueError as exc:
        _fail_usage(f"namespace: {exc}")
    try:
        analysis = asyncio.run(_analyze(request, settings, preset, tenant))
    except PrometheusError as exc:
        if as_json:
            click.echo(json.dumps({"error": "prometheus_unavailable", "cause": exc.cause, "detail": exc.detail}))
        else:
            Console(stderr=True, width=LOG_WIDTH).print(
                f"[bold]could not measure[/bold]: Prometheus {exc.cause}: {exc.detail}"
            )
        sys.exit(Exit.NOT_MEASURED)
    body = analysis_response(analysis, settings)
    if as_json:
        click.echo(body.model_dump_json(indent=2))
    else:
        _print(body)
    sys.exit(EXIT_BY_VERDICT[body.verdict])


add_limit_options(analyze, CHECKS)


@cli.command()
@click.option("--host", help="Listen address (default: $HOST or 0.0.0.0).")
@click.option("--port", type=int, help="Listen port (default: $PORT or 8080).")
def serve(host: str | None, port: int | None) -> None:
    """Start the HTTP server (the Argo web metric provider and the report)."""
    import uvicorn

    from app.limits import server_options

    settings = _settings()
    uvicorn.run(
        "app.main:app",
        host=host or settings.host,
        port=port or settings.port,
        access_log=False,
        **server_options(settings),
    )


async def _analyze(request: AnalysisRequest, settings: Settings, preset: Preset, tenant: str | None) -> Analysis:
    async with build_http_client(settings) as http:
        client = PrometheusClient(http, tenant)
        return await run_analysis(request, client, preset, settings.analysis_timeout_seconds)


def _print(body: AnalysisResponse) -> None:
    # Rich draws 80 columns when not on a terminal: too narrow for the table in a CI log.
    console = Console(width=None if sys.stdout.isatty() else LOG_WIDTH)
    verdict_style = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.INCONCLUSIVE: "bold yellow"}
    console.print(f"[{verdict_style[body.verdict]}]{body.verdict.value.upper()}[/] {body.reasons[0]}")
    for reason in body.reasons[1:]:
        console.print(f"  - {reason}")
    table = Table(title=f"{body.service}: {body.canary} vs {body.stable} over {body.window}")
    for column in ("check", "verdict", "canary", "stable", "threshold", "estimate and its bounds", "rule"):
        table.add_column(column)
    for check in body.checks:
        table.add_row(
            check.name,
            f"[{STYLE[check.verdict]}]{check.verdict.value}[/]",
            check.shown.canary,
            check.shown.stable,
            check.shown.threshold,
            check.statistics.shown if check.statistics else "",
            check.rule,
        )
    console.print(table)
    if body.confidence:
        confidence = body.confidence
        console.print(
            f"statistical: alpha {confidence.alpha:g} per AnalysisRun of {confidence.polls} polls "
            f"(failureLimit {confidence.failure_limit}), {confidence.alpha_per_check:.2g} per check and answer; "
            f"each estimate's two bounds are one-sided, not one interval: a fail's at 1 - alpha, "
            f"a pass's at {confidence.pass_confidence:g}"
        )


def _add_user_check_options() -> None:
    """CHECKS_FILE's limits become options too; settings that do not validate are reported by the command."""
    try:
        settings = Settings()
    except (pydantic.ValidationError, ValueError):
        return
    add_limit_options(analyze, (check for check in settings.checks if check not in CHECKS))


def _settings(**overrides: str) -> Settings:
    """The settings, or a usage error naming what is wrong (a CHECKS_FILE's line, a bad URL...)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        _fail_usage(_problems(exc, "settings"))


def _problems(exc: pydantic.ValidationError, whole: str) -> str:
    # pydantic prefixes a validator's own message with "Value error, ": the message says it all.
    messages = ((".".join(map(str, e["loc"])) or whole, e["msg"].removeprefix("Value error, ")) for e in exc.errors())
    return "; ".join(f"{where}: {message}" for where, message in messages)


def _fail_usage(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(Exit.USAGE)


def main() -> None:
    _add_user_check_options()
    # Click exits 2 on a usage error, which here means "inconclusive": usage errors exit 4.
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(Exit.USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(Exit.USAGE)


if __name__ == "__main__":
    main()
