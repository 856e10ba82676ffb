"""`canary-analyzer`: the same judgment from a shell or CI job, and the server."""

from __future__ import annotations

import asyncio
import sys
import time
import types
from collections.abc import Callable
from enum import Enum, IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar, Union, get_args, get_origin

import click
import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.table import Table

from app.analysis import Analysis, run_analysis, settled_minute
from app.calibration.aa import calibrated, templates
from app.calibration.figures import figures
from app.calibration.history import (
    QUERY_TIMEOUT_SECONDS,
    Asking,
    History,
    Unusable,
    history_of,
    label_problem,
    unreadable,
)
from app.calibration.page import page
from app.calibration.power import power
from app.calibration.split import NotSplit
from app.calibration.terminal import print_figures, progress
from app.judge.findings import Outcome
from app.judge.judgment import Guarantee, Verdict
from app.models import (
    AnalysisRequest,
    AnalysisResponse,
    CalibrationRequest,
    ConfidenceOut,
    ErrorResponse,
    RequestModels,
    preset_problem,
)
from app.presets import Preset
from app.prometheus import PrometheusClient, PrometheusError, build_http_client
from app.responses import analysis_response
from app.settings import Settings, SettingsProblem, load_settings
from app.tenancy.admission import admit

Asked = TypeVar("Asked", bound=pydantic.BaseModel)


class Exit(IntEnum):
    PASS = 0
    FAIL = 1
    INCONCLUSIVE = 2
    NOT_MEASURED = 3
    USAGE = 4


LOG_WIDTH = 200
EXIT_BY_VERDICT = {Verdict.PASS: Exit.PASS, Verdict.FAIL: Exit.FAIL, Verdict.INCONCLUSIVE: Exit.INCONCLUSIVE}
# The data the numbers are of, by the answer's `confidence.data` (threshold mode judges the window).
JUDGED = {
    "since_canary_start": "since the canary started, {span}",
    "last_day": "over the canary's last day, {span} (it started before that)",
    "window": "over the {window} window",
}
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


class FieldOption(click.Option):
    """An option for a field of the request: named, typed, described and defaulted by the field itself."""


def request_options(request_model: type[pydantic.BaseModel]) -> list[click.Option]:
    """One option per field of the request model, in its order: whatever the API takes, the command takes."""
    return [_field_option(name, field) for name, field in request_model.model_fields.items()]


def use_request_options(command: click.Command, request_model: type[pydantic.BaseModel]) -> None:
    """Gives the command the request model's options, in place of those it had from another model."""
    own = [param for param in command.params if not isinstance(param, FieldOption)]
    command.params[:] = [*request_options(request_model), *own]


def _field_option(name: str, field: FieldInfo) -> FieldOption:
    # An option not given is None, and the model applies its own default: the help only shows it, as click would.
    default = None if field.default in (None, PydanticUndefined) else getattr(field.default, "value", field.default)
    shown = "" if default is None else f"  [default: {default}]"
    return FieldOption(
        [f"--{name.replace('_', '-')}", name],
        type=_click_type(field.annotation),
        required=field.is_required(),
        help=f"{field.description or ''}{shown}",
    )


def _click_type(annotation: Any) -> click.ParamType:
    """Choices for an enum or a Literal, a number for a number; anything else travels as text, for the
    model to read and validate as the API's query string does."""
    kind = _without_optional(annotation)
    if get_origin(kind) is Literal:
        return click.Choice([str(value) for value in get_args(kind)])
    if isinstance(kind, type) and issubclass(kind, Enum):
        return click.Choice([member.value for member in kind])
    return {int: click.INT, float: click.FLOAT}.get(kind, click.STRING)


def _without_optional(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            kinds = [kind for kind in get_args(annotation) if kind is not type(None)]
            if len(kinds) != 1:
                return annotation
            annotation = kinds[0]
        else:
            return annotation


@cli.command(epilog=EPILOG)
@click.option("--prometheus-url", help="Prometheus base URL (default: $PROMETHEUS_URL or http://localhost:9090).")
@click.option("--json", "as_json", is_flag=True, help="Print the same JSON the HTTP API answers.")
def analyze(prometheus_url: str | None, as_json: bool, **fields: object) -> None:
    """Run one analysis now and print the verdict, its reasons and every check."""
    settings = _settings(**({"prometheus_url": prometheus_url} if prometheus_url else {}))
    request = _asked(RequestModels.of(settings.checks).request, fields)
    preset = _preset_of(settings, request)
    try:
        # Whoever runs the command asks with the analyzer's credentials directly: nobody's deputy, so
        # no grants apply; a namespace is still read from its own backend tenant.
        tenant = admit(request.namespace, request.service, None, settings.tenants, request.selects_namespace).tenant
    except ValueError as exc:
        _fail_usage(f"--namespace: {exc}")
    try:
        analysis = asyncio.run(_analyze(request, settings, preset, tenant))
    except PrometheusError as exc:
        _not_read(exc, as_json, "could not measure")
    body = analysis_response(analysis, settings)
    if as_json:
        click.echo(body.model_dump_json(indent=2))
    else:
        _print(body)
    sys.exit(EXIT_BY_VERDICT[body.verdict])


# The built-in checks' request until main() knows the configured checks (CHECKS_FILE's limits too).
use_request_options(analyze, AnalysisRequest)


CALIBRATE_EPILOG = """\b
Exit codes:
  0  the A/A figures are within the analyzer's promise: runs aborted <= alpha, paused <= 5 %
  1  they are not: the halves of the stable differ more than the checks tolerate, or too little traffic
  (power, the regressions injected, never changes the exit code: the reasons say what it found)
  3  could not read Prometheus (unreachable, slow or answering errors)
  4  invalid usage or input: a label that does not split the stable, a period beyond what Prometheus
     holds, no such stable, a preset whose pods are summed away

Every option not given falls back to the environment (PROMETHEUS_URL, SERVICE_LABEL, ...),
exactly as the server reads it.
"""


@cli.command(epilog=CALIBRATE_EPILOG)
@click.option("--prometheus-url", help="Prometheus base URL (default: $PROMETHEUS_URL or http://localhost:9090).")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Queries in flight at most: what a shared Prometheus is asked to bear.",
)
@click.option(
    "--step-template",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The step AnalysisTemplate to replay (default: analysis_templates/analysis-template.yaml).",
)
@click.option(
    "--background-template",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The background AnalysisTemplate, stopped after 60 answers "
    "(default: analysis_templates/background-analysis-template.yaml).",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the figures as a page to this file: the report's style, charts, no script, works offline.",
)
def calibrate(
    prometheus_url: str | None,
    as_json: bool,
    html_file: Path | None,
    concurrency: int,
    step_template: Path | None,
    background_template: Path | None,
    **fields: object,
) -> None:
    """Replay the analysis on a service's own history: half its stable's pods judged as the canary against the
    other half (A/A on real traffic), as Argo runs the templates; how many runs would have been aborted or
    paused, and which pods differ from the rest. Then known regressions injected into the canary half (power):
    how often and how soon each is caught, and the smallest a step analysis catches in 95 % of runs."""
    settings = _settings(**({"prometheus_url": prometheus_url} if prometheus_url else {}))
    request = _asked(RequestModels.of(settings.checks).calibration, fields)
    preset = _preset_of(settings, request)
    problem = unreadable(preset)
    if problem:
        _fail_usage(f"--preset: {problem}")
    problem = label_problem(preset, request.split_label) if request.split_label else None
    if problem:
        _fail_usage(f"--split-label: {problem}")
    if html_file is not None and not html_file.resolve().parent.is_dir():
        _fail_usage(f"--html: {html_file.parent} is not a directory")
    try:
        needs_namespace = request.analysis_request().selects_namespace
        tenant = admit(request.namespace, request.service, None, settings.tenants, needs_namespace).tenant
        replayed = templates(step_template, background_template)
    except Unusable as exc:
        _fail_usage(str(exc))
    except ValueError as exc:
        _fail_usage(f"--namespace: {exc}")
    try:
        with progress(Console(stderr=True)) as steps:
            history = asyncio.run(_history(request, settings, preset, tenant, concurrency, steps.read))
            calibration = calibrated(
                history, request, preset.name, replayed, steps.replayed, steps.replay_planned, preset.seconds_per_unit
            )
            powered = power(calibration, steps.replayed, steps.replay_planned)
    except PrometheusError as exc:
        _not_read(exc, as_json)
    except (Unusable, NotSplit) as exc:
        _fail_usage(str(exc))
    out = figures(calibration, powered)
    if html_file is not None:
        try:
            html_file.write_text(page(out))
        except OSError as exc:
            _fail_usage(f"--html: cannot write {html_file}: {exc.strerror}")
    if as_json:
        click.echo(out.model_dump_json(indent=2))
    else:
        print_figures(out, _stdout())
    sys.exit(Exit.PASS if out.within_promise else Exit.FAIL)


# The built-in checks' limits until main() knows the configured checks (CHECKS_FILE's limits too).
use_request_options(calibrate, CalibrationRequest)


async def _history(
    request: CalibrationRequest,
    settings: Settings,
    preset: Preset,
    tenant: str | None,
    concurrency: int,
    read: Callable[[int, int], None],
) -> History:
    # A read of days is a batch: Prometheus evaluates a range before it sends a byte, so the server's first-byte
    # cut-off (PROMETHEUS_FIRST_BYTE_TIMEOUT_SECONDS, for polls) would end it; each query keeps its own deadline.
    batch = settings.model_copy(
        update={
            "prometheus_first_byte_timeout_seconds": max(
                settings.prometheus_first_byte_timeout_seconds, QUERY_TIMEOUT_SECONDS
            )
        }
    )
    async with build_http_client(batch) as http:
        asking = Asking(PrometheusClient(http, tenant), concurrency, read)
        end = settled_minute(time.time())
        max_samples, max_series = settings.prometheus_max_samples, settings.prometheus_max_series
        return await history_of(asking, preset, request, end, max_samples, max_series)


def _not_read(exc: PrometheusError, as_json: bool, said: str = "could not read") -> NoReturn:
    """Prometheus did not answer: the API's error body with --json, else a line; exit 3 either way."""
    if as_json:
        problem = ErrorResponse(error="prometheus_unavailable", cause=exc.cause, detail=exc.detail, trace_id=None)
        click.echo(problem.model_dump_json())
    else:
        Console(stderr=True, width=LOG_WIDTH).print(f"[bold]{said}[/bold]: Prometheus {exc.cause}: {exc.detail}")
    sys.exit(Exit.NOT_MEASURED)


@cli.command()
@click.option("--host", help="Listen address (default: $HOST or 0.0.0.0).")
@click.option("--port", type=click.IntRange(1, 65535), help="Listen port (default: $PORT or 8080).")
def serve(host: str | None, port: int | None) -> None:
    """Start the HTTP server (the Argo web metric provider and the report)."""
    import uvicorn

    from app.limits import server_options

    settings = _settings()  # as the app will read them: a bad one is reported here, not as its traceback
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


def _stdout() -> Console:
    # Rich draws 80 columns when not on a terminal: too narrow for the tables in a CI log.
    return Console(width=None if sys.stdout.isatty() else LOG_WIDTH)


def _print(body: AnalysisResponse) -> None:
    console = _stdout()
    verdict_style = {Verdict.PASS: "bold green", Verdict.FAIL: "bold red", Verdict.INCONCLUSIVE: "bold yellow"}
    console.print(f"[{verdict_style[body.verdict]}]{body.verdict.value.upper()}[/] {body.reasons[0]}")
    for reason in body.reasons[1:]:
        console.print(f"  - {reason}")
    table = Table(title=_title(body))
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
        console.print(_levels(body.confidence))


def _title(body: AnalysisResponse) -> str:
    """Whose numbers, and of what data: the canary's since it started is not the window's."""
    judged, span = (body.confidence.data, body.confidence.span) if body.confidence else ("window", body.window)
    return f"{body.service}: {body.canary} vs {body.stable} {JUDGED[judged].format(span=span, window=body.window)}"


def _levels(confidence: ConfidenceOut) -> str:
    """How sure the verdict is, in the terms of the guarantee that applied."""
    if confidence.guarantee == Guarantee.FIXED_POLLS:
        spent = (
            f"alpha {confidence.alpha:g} per AnalysisRun of {confidence.polls} polls (failureLimit "
            f"{confidence.failure_limit}), {confidence.alpha_per_check:.2g} per check and answer"
        )
    else:  # anytime: the run's length does not enter
        spent = (
            f"alpha {confidence.alpha:g} over every answer of the run, however many: "
            f"{confidence.alpha_per_check:.2g} per check"
        )
    bounds = (
        f"each estimate's two bounds are one-sided, not one interval: a fail's at 1 - alpha, "
        f"a pass's at {confidence.pass_confidence:g}"
    )
    return f"statistical: {spent}; {bounds}"


def _use_configured_checks() -> None:
    """The request of the configured checks: CHECKS_FILE's limits become options too. Settings that do not
    validate are reported by the command that reads them."""
    try:
        settings = load_settings()
    except SettingsProblem:
        return
    models = RequestModels.of(settings.checks)
    use_request_options(analyze, models.request)
    use_request_options(calibrate, models.calibration)


def _settings(**overrides: str) -> Settings:
    """The settings, or a usage error naming each variable at fault (a CHECKS_FILE's line and field, a bad URL...),
    or the option for a setting given as one."""
    try:
        return load_settings(named={"prometheus_url": "--prometheus-url"}, **overrides)
    except SettingsProblem as exc:
        _fail_usage(str(exc))


def _asked(model: Callable[..., Asked], fields: dict[str, object]) -> Asked:
    """The request the options given make; a usage error naming each option at fault otherwise."""
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        _fail_usage(_request_problems(exc))


def _preset_of(settings: Settings, request: AnalysisRequest | CalibrationRequest) -> Preset:
    preset = settings.preset(request.preset)
    problem = preset_problem(request, preset)
    if problem:
        _fail_usage(f"--stable: {problem}")
    return preset


def _request_problems(exc: pydantic.ValidationError) -> str:
    """Each problem named by the option at fault (`--window: ...`); `input` for the options together."""
    return "; ".join(
        f"{_option_at(error['loc']) or 'input'}: {error['msg'].removeprefix('Value error, ')}" for error in exc.errors()
    )


def _option_at(loc: tuple[int | str, ...]) -> str:
    return ".".join([f"--{str(loc[0]).replace('_', '-')}", *map(str, loc[1:])]) if loc else ""


def _fail_usage(message: str) -> NoReturn:
    for problem in message.splitlines():
        click.echo(f"Error: {problem}", err=True)
    sys.exit(Exit.USAGE)


def main() -> None:
    _use_configured_checks()
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
