"""calibrate on a terminal: a progress bar while it reads and replays, then its figures as tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.calibration.buckets import BucketsOut
from app.calibration.figures import CalibrationOut, InjectedOut, PowerOut, Share, TemplateOut
from app.calibration.split import shown
from app.judge.units import Unit, format_value


@dataclass
class Steps:
    """The progress bar's callbacks: queries answered of those planned, runs replayed of those planned."""

    read: Callable[[int, int], None]
    replay_planned: Callable[[int], None]
    replayed: Callable[[], None]


@contextmanager
def progress(console: Console) -> Iterator[Steps]:
    """A bar for reading and one for replaying, on `console` when it is a terminal (nothing otherwise)."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    reading = bar.add_task("reading Prometheus (queries)", total=None)
    replaying = bar.add_task("replaying runs", total=None, visible=False)

    def read(done: int, planned: int) -> None:
        bar.update(reading, completed=done, total=planned)

    def planned(runs: int) -> None:
        """More runs planned: the A/A's, then power's."""
        bar.update(reading, visible=False)
        total = bar.tasks[replaying].total or 0
        bar.update(replaying, total=total + runs, visible=True)

    with bar:
        yield Steps(read, planned, lambda: bar.advance(replaying))


def print_figures(out: CalibrationOut, console: Console) -> None:
    style = "bold green" if out.within_promise else "bold red"
    verdict, *rest = out.reasons
    head, tail = verdict.split(":", 1)
    console.print(f"[{style}]{head.upper()}[/]:{escape(tail)}")
    for reason in rest:
        console.print(f"  - {escape(reason)}")
    console.print(_runs(out))
    console.print(_halves(out))
    console.print(_values(out))
    if out.power is not None:
        console.print(_power(out.power))
    _buckets(out.buckets, console)
    cost = out.cost
    console.print(
        f"Prometheus: {cost.queries:,} queries ({cost.refused} refused as too large and asked again in halves), "
        f"{cost.samples:,} samples, in {cost.read_seconds:.1f} s, at most {cost.concurrency} at a time. "
        f"Replayed {cost.runs:,} runs ({cost.answers:,} answers) in {cost.replay_seconds:.1f} s."
    )


def _title(out: CalibrationOut) -> str:
    scope = f"{out.namespace}/{out.service}" if out.namespace else out.service
    since, until = (moment.strftime("%Y-%m-%d %H:%M UTC") for moment in (out.since, out.until))
    return escape(f"A/A on {scope}'s {out.stable!r} pods, split by {out.label}: {since} to {until} ({out.period})")


def _runs(out: CalibrationOut) -> Table:
    table = Table(title=_title(out))
    for column in ("template", "runs", "aborted", "paused", "promoted", "why", "as Argo runs it"):
        table.add_column(column)
    for template in out.templates:
        table.add_row(
            template.template,
            f"{template.runs:,} (every {template.every})",
            _share(template.aborted),
            _share(template.paused),
            f"{template.promoted:,}",
            _why(template),
            template.argo,
        )
    return table


def _share(share: Share) -> str:
    if share.share is None:
        return "-"
    style = "green" if share.within else "bold red"
    interval = f"{format_value(share.low, Unit.RATIO)}-{format_value(share.high, Unit.RATIO)}"
    return (
        f"[{style}]{share.count:,} ({format_value(share.share, Unit.RATIO)})[/] at most {share.at_most:.0%}; {interval}"
    )


def _why(template: TemplateOut) -> str:
    parts = []
    if template.failed_checks:
        parts.append("aborted: " + ", ".join(f"{name} {n}" for name, n in template.failed_checks.items()))
    if template.undecided_checks:
        parts.append("paused: " + ", ".join(f"{name} {n}" for name, n in template.undecided_checks.items()))
    return "; ".join(parts)


def _halves(out: CalibrationOut) -> Table:
    table = Table(title="The halves, each against the other over the period")
    for column in ("half", out.label, "requests", "against the other"):
        table.add_column(column)
    for half in out.halves:
        table.add_row(
            half.half,
            escape(", ".join(map(shown, half.values))),
            f"{half.requests:,.0f} ({half.share:.1%})",
            "\n".join(_styled(c.shown, c.beyond, c.differs) for c in half.against_the_other),
        )
    return table


def _values(out: CalibrationOut) -> Table | str:
    differing = [value for value in out.values if value.differs]
    if not differing:
        return f"No {out.label} differs from the rest beyond noise."
    table = Table(title=f"Each {out.label} that differs from the rest, in the minutes it served")
    for column in (out.label, "half", "requests", "against the rest", "what the relative checks do with it"):
        table.add_column(column)
    for value in sorted(differing, key=lambda v: (not v.beyond, -v.share)):
        table.add_row(
            escape(shown(value.value)),
            value.half,
            f"{value.requests:,.0f} ({value.share:.1%})",
            "\n".join(_styled(c.shown, c.beyond, c.differs) for c in value.against_the_rest),
            escape("\n".join(value.consequences)),
        )
    return table


def _styled(text: str, beyond: bool, differs: bool) -> str:
    text = escape(text)
    if beyond:
        return f"[bold red]{text}[/]"
    return f"[yellow]{text}[/]" if differs else text


def _buckets(buckets: BucketsOut, console: Console) -> None:
    """Each SLO against the bucket bounds, then the lines to paste, never wrapped: a wrapped line pastes broken."""
    console.print("[bold]SLO and buckets[/]")
    for slo in buckets.slos:
        head, *rest = slo.shown
        console.print(f"  {escape(head)}")
        for line in rest:
            console.print(f"    - {escape(line)}")
    if not buckets.lines:
        return
    added = ", ".join(f"{bound:g}" for bound in buckets.add)
    console.print(f"  The bounds with {added} added ({buckets.unit}, as the histogram counts them), to paste:")
    for client, line in buckets.lines.items():
        console.print(f"    {client}:")
        console.print(f"      {line}", markup=False, highlight=False, soft_wrap=True)


def _power(power: PowerOut) -> Table:
    rates = ", ".join(f"half {half} {rps:.1f} rps" for half, rps in power.rps.items())
    table = Table(
        title=f"Power: regressions injected into the canary half ({rates}), at most {power.most_runs} runs a template",
        caption=f"Replayed {power.runs:,} runs ({power.answers:,} answers) in {power.seconds:.1f} s. "
        "5xx: ok requests turned errors at random; latency: requests spread evenly in log latency inside a bucket "
        "(--json: power.models).",
    )
    for column in ("regression", "template", "aborted", "95 % interval", "minutes to abort (median, p90)", "why"):
        table.add_column(column)
    for found in power.injected:
        table.add_row(found.regression, found.template, *_power_cells(found))
    for search in power.smallest:
        caught = search.caught or f"none up to {search.tried[-1].regression if search.tried else '-'}"
        table.add_row(
            f"[bold]smallest {search.kind} caught[/]",
            "step",
            f"[bold]{escape(caught)}[/]",
            "",
            "",
            "tried: " + ", ".join(f"{t.regression} {format_value(t.aborted.share, Unit.RATIO)}" for t in search.tried),
        )
    return table


def _power_cells(found: InjectedOut) -> tuple[str, str, str, str]:
    aborted = found.aborted
    style = "green" if aborted.caught else "yellow"
    share = f"[{style}]{aborted.count:,} of {aborted.runs:,} ({format_value(aborted.share, Unit.RATIO)})[/]"
    interval = f"{format_value(aborted.low, Unit.RATIO)}-{format_value(aborted.high, Unit.RATIO)}"
    minutes = f"{found.median_minutes:g}, {found.p90_minutes:g}" if found.median_minutes is not None else "-"
    why = ", ".join(f"{name} {n}" for name, n in found.failed_checks.items())
    return share, interval, minutes, why
