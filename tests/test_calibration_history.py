"""A version's history for calibrate (app/calibration/history.py): which label splits it, whether Prometheus holds
the period, each pod's minutes from its counters' sums, read in chunks within the caps, on a stand-in."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from app.calibration.history import Asking, Unusable, _chunks, _minutes, label_problem, read_history, unreadable
from app.measurement import Labelled, LabelledSums
from app.presets import Preset
from app.prometheus import Cause, Matrix, PrometheusError

START = 1_800_000_000.0  # a minute boundary
READING = Labelled(Preset(), "shop", "stable", "pod")


def sums(values: dict[str, list[list[float] | None]], columns: tuple) -> LabelledSums:
    """Each value's sums at each step (None: no series then), a minute apart from START."""
    steps = len(next(iter(values.values())))
    counts = np.array([[row or [0.0] * len(columns) for row in rows] for rows in values.values()], dtype=float)
    present = np.array([[row is not None for row in rows] for rows in values.values()])
    return LabelledSums(START + 60.0 * np.arange(steps), tuple(values), columns, counts, present)


def test_a_minute_counts_where_the_sums_grew_and_the_pod_was_there_at_both_ends() -> None:
    requests = sums(
        {
            "web-0": [[10, 0], [70, 1], [5, 0], [65, 1]],  # restarted in the second minute: its counters fell
            "web-1": [None, [30, 0], [90, 0], None],  # came in the first minute, went in the third
        },
        ("ok", "error"),
    )
    latency = sums(
        {
            "web-0": [[8, 10], [60, 71], [4, 5], [60, 66]],
            "web-1": [None, [25, 30], [80, 90], None],
        },
        (0.1, math.inf),
    )
    history = _minutes("pod", requests, latency)
    assert history.values == ("web-0", "web-1") and history.bounds == (0.1, math.inf)
    assert history.ends.tolist() == [START + 60, START + 120, START + 180]
    assert history.kept.tolist() == [[True, False, True], [False, True, False]]
    assert history.left_out.tolist() == [[False, True, False], [True, False, True]]
    assert history.ok.tolist() == [[60, 0, 60], [0, 60, 0]]
    assert history.errors.tolist() == [[1, 0, 1], [0, 0, 0]]
    assert history.buckets[0].tolist() == [[52, 9], [0, 0], [56, 5]]  # per bucket, not at or under
    both = history.counts(["web-0", "web-1"])
    assert both.ok.tolist() == [60, 60, 60] and history.requests.tolist() == [122, 60]


def test_chunks_cover_every_minute_boundary_once() -> None:
    chunks = _chunks(START, START + 60 * 10, 4)
    assert chunks == [(START, START + 180), (START + 240, START + 420), (START + 480, START + 600)]


class Counters:
    """Prometheus for two pods whose counters grow by 60 ok requests, one error and their buckets a minute; a
    sums query over more than `most` steps is refused as too large, as the caps refuse one."""

    def __init__(
        self, pods: tuple[str, ...] = ("web-0", "web-1"), since: float = 0.0, most: int = 10**6, broken: bool = False
    ) -> None:
        self.pods, self.since, self.most, self.broken = pods, since, most, broken
        self.asked: list[tuple[str, float, float]] = []

    async def query_range(self, query: str, start: float, end: float, step: float, timeout: float) -> Matrix:
        self.asked.append((query, start, end))
        moments = [t for t in np.arange(start, end + step / 2, step).tolist() if t >= self.since]
        if query.startswith("group by (le)"):
            return Matrix(tuple(({"le": le}, tuple((t, 1.0) for t in moments)) for le in ("0.1", "+Inf")))
        if query.startswith("group by"):
            asked = query.removeprefix("group by (").split(")")[0].split(", ")
            groups = {tuple((k, v) for k, v in {"pod": pod, "zone": "a"}.items() if k in asked) for pod in self.pods}
            return Matrix(tuple((dict(group), tuple((t, 1.0) for t in moments)) for group in sorted(groups)))
        if len(moments) > self.most:
            raise PrometheusError(Cause.TOO_LARGE, "the answer has too many samples")
        if self.broken and query.startswith("sum by (le"):
            raise PrometheusError(Cause.HTTP_STATUS, "HTTP 503: overloaded")
        minutes = [(t - START) / 60 + 60 for t in moments]  # counters began an hour before
        if query.startswith("sum by (le"):
            columns = {"0.1": 50.0, "+Inf": 61.0}
            label = "le"
        else:
            columns, label = {"all": 61.0, "error": 1.0}, "outcome"
        return Matrix(
            tuple(
                (
                    {"pod": pod, "version": "stable", label: column},
                    tuple((t, rate * m) for t, m in zip(moments, minutes, strict=True)),
                )
                for pod in self.pods
                for column, rate in columns.items()
            )
        )

    def failed(self, exc: PrometheusError) -> PrometheusError:
        return exc


async def read(
    client: Counters, split_label: str | None = None, max_samples: int = 100_000, reading: Labelled = READING
) -> object:
    asking = Asking(client, concurrency=2)  # type: ignore[arg-type]
    return await read_history(asking, reading, split_label, START, START + 3 * 3600, max_samples, 2000)


@pytest.mark.anyio
async def test_the_history_is_read_by_minute_in_chunks_within_the_caps() -> None:
    whole = await read(Counters())
    assert whole.label == "pod" and whole.values == ("web-0", "web-1")
    assert len(whole.ends) == 180 and whole.kept.all()
    assert (whole.ok == 60).all() and (whole.errors == 1).all() and whole.buckets[0, 0].tolist() == [50, 11]
    assert whole.spent.queries == 4  # the survey's two, a sums query a family
    # A smaller cap: more, smaller chunks; one Prometheus refuses is asked again in halves. The same minutes.
    client = Counters(most=30)
    chunked = await read(client, max_samples=300)
    assert chunked.spent.queries > 10 and chunked.spent.refused > 0
    assert (chunked.ok == whole.ok).all() and (chunked.buckets == whole.buckets).all()
    for family in ("sum by (le", "label_replace(sum"):  # the answers kept read every minute boundary once
        kept = sorted((a, b) for q, a, b in client.asked if q.startswith(family) and (b - a) / 60 + 1 <= 30)
        moments = [m for a, b in kept for m in range(int(a), int(b) + 1, 60)]
        assert moments == list(range(int(START), int(START) + 3 * 3600 + 1, 60))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("client", "label", "phrase"),
    [
        (Counters(pods=("web-0",)), None, "neither 'pod' nor 'instance' does not tell"),
        (Counters(), "zone", "one value of 'zone' (a)"),
        (Counters(pods=()), None, "no series of the 'stable' version of 'shop' in the last 3h"),
        (Counters(since=START + 3600), None, "for the last 2h only, not the 3h asked for: give --period 2h or less"),
    ],
)
async def test_a_history_that_cannot_answer_says_what_to_change(
    client: Counters, label: str | None, phrase: str
) -> None:
    with pytest.raises(Unusable) as caught:
        await read(client, label)
    assert phrase in str(caught.value)


@pytest.mark.anyio
async def test_the_preset_names_the_labels_that_tell_its_pods_apart_the_first_that_does_splits() -> None:
    client = Counters()
    otel_like = dataclasses.replace(READING, preset=Preset(split_labels=("k8s_pod_name", "pod")))
    found = await read(client, reading=otel_like)
    assert found.label == "pod" and found.values == ("web-0", "web-1")  # no k8s_pod_name on these series
    assert client.asked[0][0].startswith("group by (k8s_pod_name, pod)")
    with pytest.raises(Unusable, match="one value of 'zone' \\(a\\)"):
        await read(Counters(), reading=dataclasses.replace(READING, preset=Preset(split_labels=("zone",))))


@pytest.mark.anyio
async def test_a_query_that_fails_otherwise_fails_the_read() -> None:
    with pytest.raises(PrometheusError) as caught:
        await read(Counters(broken=True), max_samples=300)
    assert caught.value.cause is Cause.HTTP_STATUS


def test_a_preset_whose_pods_are_summed_away_is_not_read() -> None:
    assert unreadable(Preset()) is None
    assert "recorded increases" in (unreadable(Preset(series="recorded_increases")) or "")
    assert "native histogram" in (unreadable(Preset(latency_histogram="native")) or "")
    assert label_problem(Preset(), "pod") is None
    assert "already" in (label_problem(Preset(), "version") or "")
    assert unreadable(Preset(name="mine", split_labels=("pod", "le"))) == (
        "the 'mine' preset's split_labels: 'le' is a label the queries group or select by already"
    )
