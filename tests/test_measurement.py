"""Measuring: family queries answered as distributions per version, strict about shapes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from app import promql, user_checks
from app.judge.builtin_checks import CHECKS
from app.judge.checks import Reading, Source
from app.judge.distributions import Histogram, Outcomes
from app.measurement import (
    FAMILIES,
    START_MARK,
    Labelled,
    LabelledSums,
    Plan,
    Role,
    distributions,
    labelled_sums,
    labels_present,
    measure,
    measure_range,
)
from app.presets import PRESETS, Preset
from app.prometheus import Cause, Matrix, PrometheusError, Vector
from tests.support import business
from tests.support.fake_prometheus import FakePrometheus

pytestmark = pytest.mark.anyio

VERSIONS = {Role.CANARY: "v2.0.1", Role.STABLE: "v2.0.0"}
PLAN = Plan.build(CHECKS, Preset(), "checkout", VERSIONS, "5m")
LATENCY = Histogram.from_buckets([(0.1, 80), (0.25, 95), (math.inf, 100)])
REQUESTS = Outcomes(ok=97, errors=3)
CONVERSION, LAG = user_checks.parse(business.CHECKS_FILE, "checks.yaml")
SHOP_PLAN = Plan.build([CONVERSION, LAG], Preset(), "checkout", VERSIONS, "5m")


def test_one_query_per_family_for_both_versions() -> None:
    assert set(PLAN.queries) == {Source.REQUESTS, Source.LATENCY}  # the current traffic is read from requests
    assert all('version=~"v2\\\\.0\\\\.1|v2\\\\.0\\\\.0"' in query for query in PLAN.queries.values())
    # A family read by two checks (P95 against the SLO and against the stable) is still one query.
    latency_checks = [check for check in CHECKS if check.source == Source.LATENCY]
    assert len(latency_checks) == 2
    assert len(Plan.build(latency_checks, Preset(), "x", VERSIONS, "5m").queries) == 1


def test_samples_become_distributions_per_version() -> None:
    samples = [
        ({"version": "v2.0.1", "le": "0.1"}, 80.0),
        ({"version": "v2.0.1", "le": "+Inf"}, 100.0),
        ({"version": "v2.0.1", "le": "0.25"}, 95.0),
    ]
    by_role = distributions(PLAN, Source.LATENCY, samples)
    assert by_role[Role.CANARY] == LATENCY
    assert by_role[Role.STABLE] is None  # no series: no data, not zero
    outcomes = [
        ({"version": "v2.0.0", "outcome": "ok"}, 990.0),
        ({"version": "v2.0.0", "outcome": "error"}, 10.0),
    ]
    assert distributions(PLAN, Source.REQUESTS, outcomes)[Role.STABLE] == Outcomes(ok=990, errors=10)


@pytest.mark.parametrize(
    ("source", "samples", "phrase"),
    [
        (Source.LATENCY, [({"version": "v3", "le": "+Inf"}, 1.0)], "not asked for"),
        (Source.LATENCY, [({"le": "+Inf"}, 1.0)], "not asked for"),
        (Source.LATENCY, [({"version": "v2.0.1"}, 1.0)], "not a histogram"),
        (Source.LATENCY, [({"version": "v2.0.1", "le": "fast"}, 1.0)], "not a histogram"),
        (Source.LATENCY, [({"version": "v2.0.1", "le": "0.1"}, 1.0)], "+Inf"),
        (Source.REQUESTS, [({"version": "v2.0.1"}, 1.0)], "outcome"),
        (Source.REQUESTS, [({"version": "v2.0.1", "outcome": "maybe"}, 1.0)], "outcome"),
        (Source.REQUESTS, [({"version": "v2.0.1", "outcome": "ok"}, math.nan)], "finite"),
        (Source.REQUESTS, [({"version": "v2.0.1", "outcome": "ok"}, -1.0)], "non-negative"),
        (Source.REQUESTS, [({"version": "v2.0.1", "outcome": "ok"}, math.inf)], "finite"),
    ],
)
def test_unexpected_shapes_are_bad_responses(source: Source, samples: list, phrase: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        distributions(PLAN, source, samples)
    assert caught.value.cause is Cause.BAD_RESPONSE
    assert phrase in caught.value.detail


NATIVE_PLAN = Plan.build(CHECKS, Preset(latency_histogram="native"), "checkout", VERSIONS, "5m")
CANARY_BUCKETS = [({"version": "v2.0.1", "le": "0.1"}, 80.0), ({"version": "v2.0.1", "le": "+Inf"}, 100.0)]


@pytest.mark.parametrize(
    ("plan", "source", "samples", "phrase"),
    [
        (
            PLAN,
            Source.LATENCY,
            [*CANARY_BUCKETS, ({"version": "v2.0.1", "le": "0.1"}, 80.0)],
            'repeated: le="0.1", version="v2.0.1" answered more than once, where (le, version) is unique',
        ),
        (
            PLAN,
            Source.LATENCY,
            [({"version": "v2.0.1", "le": "+Inf", "instance": "eu-1"}, 100.0)],
            "labels the query does not group by (le, version): instance in",
        ),
        (
            PLAN,
            Source.REQUESTS,
            [({"version": "v2.0.0", "outcome": "ok"}, 990.0), ({"version": "v2.0.0", "outcome": "ok"}, 990.0)],
            'repeated: outcome="ok", version="v2.0.0" answered more than once, where (outcome, version) is unique',
        ),
        (
            PLAN,
            Source.REQUESTS,
            [({"version": "v2.0.0", "outcome": "ok", "le": "+Inf", "replica": "b"}, 990.0)],
            "labels the query does not group by (outcome, version): le, replica in",
        ),
        (
            NATIVE_PLAN,
            Source.LATENCY,
            [({"version": "v2.0.1", "le": "+Inf"}, 100.0)],
            "labels the query does not group by (version): le in",
        ),
    ],
    ids=["doubled-le-version", "extra-label", "repeated-outcome-version", "extra-labels-on-counts", "native-le"],
)
def test_series_not_shaped_as_the_query_groups_them_are_bad_responses(
    plan: Plan, source: Source, samples: list, phrase: str
) -> None:
    """What a proxy or federation layer that merges answers without deduplicating them would hand on: summed,
    it would be counted twice."""
    with pytest.raises(PrometheusError) as caught:
        distributions(plan, source, samples)
    assert caught.value.cause is Cause.BAD_RESPONSE
    assert phrase in caught.value.detail


def test_each_group_once_per_version_is_judged() -> None:
    """The control: the same bound or outcome for both versions is no repeat."""
    stable_buckets = [({**labels, "version": "v2.0.0"}, count) for labels, count in CANARY_BUCKETS]
    by_role = distributions(PLAN, Source.LATENCY, [*CANARY_BUCKETS, *stable_buckets])
    assert by_role[Role.CANARY] == by_role[Role.STABLE] == Histogram.from_buckets([(0.1, 80), (math.inf, 100)])


def test_an_empty_version_is_a_missing_version_label_and_is_held_to_the_grouping_too() -> None:
    """ingress-nginx: a request routed to the stable carries no canary label at all."""
    preset = PRESETS["ingress-nginx"]
    plan = Plan.build(CHECKS, preset, "shop", {Role.CANARY: "shop-canary-80", Role.STABLE: ""}, "5m")
    stable = [({"outcome": "ok"}, 990.0), ({"outcome": "error"}, 10.0)]
    assert distributions(plan, Source.REQUESTS, stable)[Role.STABLE] == Outcomes(ok=990, errors=10)
    with pytest.raises(PrometheusError) as caught:
        distributions(plan, Source.REQUESTS, [*stable, ({"outcome": "ok"}, 990.0)])
    assert f'outcome="ok", {preset.version_label}="" answered more than once' in caught.value.detail


async def test_measure_asks_for_every_family_in_one_query() -> None:
    observed = {role: {Source.LATENCY: LATENCY, Source.REQUESTS: REQUESTS} for role in Role}
    fake = FakePrometheus(PLAN, observed, warnings=("partial response",))
    measurement = await measure(PLAN, fake, at=1_700_000_000, budget=1)
    assert fake.sent == [PLAN.calls()[FAMILIES]]
    assert fake.sent[0] == " or ".join(f"({query})" for query in PLAN.queries.values())
    assert measurement.observed[Role.CANARY] == {Source.LATENCY: LATENCY, Source.REQUESTS: REQUESTS}
    assert measurement.warnings == ("partial response",)


START_CHECK = promql.canary_start_query(Preset(), "checkout", VERSIONS[Role.CANARY], "2m", "1m")


@pytest.mark.parametrize("started", [None, 1_699_999_950.0])
async def test_a_known_start_is_checked_in_the_families_query(started: float | None) -> None:
    observed = {role: {Source.LATENCY: LATENCY, Source.REQUESTS: REQUESTS} for role in Role}
    plan = replace(PLAN, start_check=START_CHECK)
    fake = FakePrometheus(PLAN, observed, canary_started=started)
    measurement = await measure(plan, fake, at=1_700_000_000, budget=1)
    assert fake.sent == [plan.calls()[FAMILIES]] and START_CHECK in fake.sent[0]
    assert measurement.canary_start == started
    assert measurement.observed == {role: {Source.LATENCY: LATENCY, Source.REQUESTS: REQUESTS} for role in Role}


async def test_a_start_check_goes_out_alone_when_there_is_no_family() -> None:
    plan = replace(SHOP_PLAN, start_check=START_CHECK)
    fake = FakePrometheus(SHOP_PLAN, {role: {} for role in Role}, canary_started=1_699_999_950.0)
    measurement = await measure(plan, fake, at=1_700_000_000, budget=1)
    assert plan.calls()[FAMILIES] == promql.marked(START_CHECK, START_MARK)
    assert measurement.canary_start == 1_699_999_950.0


class Answering:
    """Answers the families query with the samples given, as a proxy between might have shaped them."""

    def __init__(self, samples: list) -> None:
        self.samples = tuple(samples)

    async def query(self, query: str, at: float, timeout: float) -> Vector:
        return Vector(self.samples, ())

    def failed(self, exc: PrometheusError) -> PrometheusError:
        return exc


@pytest.mark.parametrize(
    ("marked", "phrase"),
    [
        ([({START_MARK: "1", "pod": "a"}, 1_699_999_950.0)], "start came as 1 series"),
        ([({START_MARK: "1"}, 1_699_999_950.0), ({START_MARK: "1"}, 1_699_999_960.0)], "start came as 2 series"),
        ([({START_MARK: "1"}, 1_700_000_060.0)], "not a moment before the evaluation"),
        ([({START_MARK: "1"}, math.nan)], "not a moment before the evaluation"),
    ],
)
async def test_a_start_check_answered_in_another_shape_is_a_bad_response(marked: list, phrase: str) -> None:
    """Never a guess at which start was meant: a wrong start would judge the wrong span."""
    families = [({"version": "v2.0.1", "outcome": "ok"}, 97.0), ({"version": "v2.0.1", "outcome": "error"}, 3.0)]
    plan = replace(Plan.build([CHECKS[0]], Preset(), "checkout", VERSIONS, "5m"), start_check=START_CHECK)
    with pytest.raises(PrometheusError) as caught:
        await measure(plan, Answering(families + marked), at=1_700_000_000, budget=1)
    assert caught.value.cause is Cause.BAD_RESPONSE and phrase in caught.value.detail


async def test_user_checks_queries_go_out_together_with_the_families() -> None:
    plan = Plan.build([*CHECKS, CONVERSION, LAG], Preset(), "checkout", VERSIONS, "5m")
    fake = FakePrometheus(plan, {role: {} for role in Role}, delay=0.2, warnings=("partial response",))
    measurement = await measure(plan, fake, at=1_700_000_000, budget=1)
    assert sorted(fake.sent) == sorted(plan.calls().values()) and len(fake.sent) == 1 + 3 * 2
    assert fake.peak_in_flight == len(fake.sent)  # all at once
    assert measurement.warnings == ("partial response",)  # one copy, though every answer carried it


async def test_one_failed_family_fails_the_measurement() -> None:
    observed = {role: {Source.LATENCY: LATENCY, Source.REQUESTS: REQUESTS} for role in Role}
    error = PrometheusError(Cause.HTTP_STATUS, "HTTP 503")
    fake = FakePrometheus(PLAN, observed, failures={Source.LATENCY: error})
    with pytest.raises(PrometheusError) as caught:
        await measure(PLAN, fake, at=1_700_000_000, budget=1)
    assert caught.value is error


async def test_budget_exceeded_is_a_timeout() -> None:
    fake = FakePrometheus(PLAN, {role: {} for role in Role}, delay=5)
    with pytest.raises(PrometheusError) as caught:
        await measure(PLAN, fake, at=1_700_000_000, budget=0.2)
    assert caught.value.cause is Cause.TIMEOUT


async def test_measure_range_gives_the_distributions_at_each_step() -> None:
    observed = {Role.CANARY: {Source.LATENCY: LATENCY}, Role.STABLE: {Source.REQUESTS: REQUESTS}}
    history = await measure_range(PLAN, FakePrometheus(PLAN, observed), start=0, end=120, step=60, budget=1)
    assert [t for t, _ in history.steps] == [0, 60, 120]
    for _, by_role in history.steps:
        assert by_role[Role.CANARY] == {Source.LATENCY: LATENCY, Source.REQUESTS: None}
        assert by_role[Role.STABLE] == {Source.LATENCY: None, Source.REQUESTS: REQUESTS}


async def test_a_range_of_a_polls_plan_asks_for_the_families_alone() -> None:
    """The report's history of a poll: the start was checked at the poll's moment, not at every step."""
    observed = {role: {Source.LATENCY: LATENCY, Source.REQUESTS: REQUESTS} for role in Role}
    fake = FakePrometheus(PLAN, observed)
    history = await measure_range(replace(PLAN, start_check=START_CHECK), fake, start=0, end=60, step=60, budget=1)
    assert fake.sent == [PLAN.calls()[FAMILIES]]
    assert [by_role for _, by_role in history.steps] == [observed, observed]


def test_a_user_checks_queries_are_asked_per_version() -> None:
    assert SHOP_PLAN.queries == {}  # no built-in check, no family
    assert set(SHOP_PLAN.readings) == {
        (check.source, role, part)
        for check, parts in ((CONVERSION, ("events", "trials")), (LAG, ("value",)))
        for role in Role
        for part in parts
    }
    assert SHOP_PLAN.readings[LAG.source, Role.STABLE, "value"] == (
        'max(max_over_time(queue_lag_seconds{service="checkout",version="v2.0.0"}[5m]))'
    )


async def test_user_checks_read_as_counts_and_values() -> None:
    observed = {
        Role.CANARY: {CONVERSION.source: Outcomes(ok=80, errors=20), LAG.source: Reading(45.0)},
        Role.STABLE: {CONVERSION.source: None, LAG.source: None},
    }
    measurement = await measure(SHOP_PLAN, FakePrometheus(SHOP_PLAN, observed), at=1_700_000_000, budget=1)
    assert measurement.observed[Role.CANARY] == {CONVERSION.source: Outcomes(ok=80, errors=20), LAG.source: Reading(45)}
    assert measurement.observed[Role.STABLE] == {CONVERSION.source: None, LAG.source: None}  # no data, not zero


def answered(changes: dict[tuple[str, Role, str], tuple]) -> FakePrometheus:
    """A FakePrometheus for the shop plan (20 of 100 converted, a lag of 45 s), some answers replaced."""
    healthy = {CONVERSION.source: Outcomes(ok=80, errors=20), LAG.source: Reading(45.0)}
    fake = FakePrometheus(SHOP_PLAN, {role: healthy for role in Role})
    for key, samples in changes.items():
        fake.answers[SHOP_PLAN.readings[key]] = samples
    return fake


async def test_a_counter_that_never_moved_counted_no_events() -> None:
    fake = answered({(CONVERSION.source, Role.CANARY, "events"): ()})
    measurement = await measure(SHOP_PLAN, fake, at=1_700_000_000, budget=1)
    assert measurement.observed[Role.CANARY][CONVERSION.source] == Outcomes(ok=100, errors=0)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({(LAG.source, Role.CANARY, "value"): (({"pod": "a"}, 1.0), ({"pod": "b"}, 2.0))}, "2 series, not one"),
        ({(LAG.source, Role.CANARY, "value"): (({}, 45.0), ({}, 45.0))}, "2 series, not one: [{}, {}]"),
        ({(LAG.source, Role.CANARY, "value"): (({"pod": "a"}, 1.0),)}, "labels its query does not fix with =: pod"),
        (
            {(CONVERSION.source, Role.CANARY, "trials"): (({"version": "v2.0.0"}, 100.0),)},  # the stable's
            "labels its query does not fix with =: version",
        ),
        ({(CONVERSION.source, Role.STABLE, "events"): (({}, 101.0),)}, "101 events in 100 trials"),
        ({(CONVERSION.source, Role.STABLE, "events"): (({}, -1.0),)}, "-1 events in 100 trials"),
    ],
)
async def test_a_user_checks_unexpected_answer_is_a_bad_response(changes: dict, phrase: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        await measure(SHOP_PLAN, answered(changes), at=1_700_000_000, budget=1)
    assert caught.value.cause is Cause.BAD_RESPONSE and phrase in caught.value.detail


async def test_a_user_checks_nan_is_no_data() -> None:
    fake = answered({(LAG.source, Role.CANARY, "value"): (({}, math.nan),)})
    measurement = await measure(SHOP_PLAN, fake, at=1_700_000_000, budget=1)
    assert measurement.observed[Role.CANARY][LAG.source] is None


async def test_a_user_checks_series_may_keep_the_labels_its_query_fixes() -> None:
    """`sum by (service, version)` over `service="checkout",version="v2.0.1"` leaves just those."""
    fake = answered({(LAG.source, Role.CANARY, "value"): (({"service": "checkout", "version": "v2.0.1"}, 45.0),)})
    measurement = await measure(SHOP_PLAN, fake, at=1_700_000_000, budget=1)
    assert measurement.observed[Role.CANARY][LAG.source] == Reading(45.0)


# --- one version's counters by the values of a label (calibrate) -----------------------------------------

READING = Labelled(Preset(), "shop", "stable", "pod")


class RangeAnswering:
    """A client whose range queries all answer `matrix`; what it was asked is kept."""

    def __init__(self, series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> None:
        self.matrix = Matrix(tuple((labels, tuple(points)) for labels, points in series))
        self.asked: list[str] = []

    async def query_range(self, query: str, start: float, end: float, step: float, timeout: float) -> Matrix:
        self.asked.append(query)
        return self.matrix

    def failed(self, exc: PrometheusError) -> PrometheusError:
        return exc


def bucket(pod: str, le: str, *points: tuple[float, float]) -> tuple[dict[str, str], list[tuple[float, float]]]:
    return {"pod": pod, "version": "stable", "le": le}, list(points)


async def test_sums_by_a_label_are_arrays_by_value_step_and_column() -> None:
    client = RangeAnswering(
        [
            bucket("web-1", "+Inf", (0, 10), (60, 30), (120, 50)),
            bucket("web-1", "0.1", (0, 8), (60, 20), (120, 30)),
            bucket("web-0", "+Inf", (60, 5), (120, 9)),  # its series began in between
            bucket("web-0", "0.1", (60, 5), (120, 7)),
        ]
    )
    sums = await labelled_sums(READING, Source.LATENCY, client, 0, 120, 60, 1)  # type: ignore[arg-type]
    assert client.asked == [READING.sums(Source.LATENCY)]
    assert sums.values == ("web-0", "web-1") and sums.columns == (0.1, math.inf) and sums.samples == 10
    assert sums.present.tolist() == [[False, True, True], [True, True, True]]
    assert sums.counts[1, :, 0].tolist() == [8, 20, 30] and sums.counts[0, 0].tolist() == [0, 0]


async def test_a_bound_a_value_lacks_counts_its_requests_at_the_next_bound_up() -> None:
    client = RangeAnswering(
        [
            bucket("web-0", "0.1", (0, 1), (60, 2)),
            bucket("web-0", "0.5", (60, 3)),  # not there at the first step: a bucket layout that changed
            bucket("web-0", "+Inf", (0, 4), (60, 5)),
        ]
    )
    sums = await labelled_sums(READING, Source.LATENCY, client, 0, 60, 60, 1)  # type: ignore[arg-type]
    assert sums.counts[0].tolist() == [[1, 1, 4], [2, 3, 5]]
    later = replace(sums, steps=sums.steps + 120, values=("web-1",), columns=(0.25, math.inf))
    joined = LabelledSums.joined([sums, replace(later, counts=later.counts[:, :, 1:])])
    assert joined.values == ("web-0", "web-1") and joined.columns == (0.1, 0.25, 0.5, math.inf)
    assert joined.counts[0, 0].tolist() == [1, 1, 1, 4]  # 0.25 lies in web-0's (0.1, 0.5] bucket
    assert joined.counts[1, 2].tolist() == [0, 1, 1, 4]  # web-1 has no 0.1 nor 0.5 bound
    assert joined.present.tolist() == [[True, True, False, False], [False, False, True, True]]


async def test_request_counts_by_a_label_are_all_of_them_and_the_errors() -> None:
    labels = {"pod": "web-0", "version": "stable"}
    both = [({**labels, "outcome": "all"}, [(0, 5), (60, 9)]), ({**labels, "outcome": "error"}, [(60, 1)])]
    sums = await labelled_sums(READING, Source.REQUESTS, RangeAnswering(both), 0, 60, 60, 1)  # type: ignore[arg-type]
    assert sums.columns == ("ok", "error") and sums.counts[0].tolist() == [[5, 0], [8, 1]]
    for wrong in (
        [({**labels, "outcome": "all"}, [(0, 5)]), ({**labels, "outcome": "error"}, [(0, 6)])],
        [({**labels, "outcome": "error"}, [(0, 1)])],
    ):
        with pytest.raises(PrometheusError, match="more errors than requests"):
            await labelled_sums(READING, Source.REQUESTS, RangeAnswering(wrong), 0, 60, 60, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("series", "phrase"),
    [
        ([({"pod": "a", "version": "stable", "le": "+Inf", "zone": "x"}, [(0, 1)])], "does not group by"),
        ([({"pod": "a", "version": "canary", "le": "+Inf"}, [(0, 1)])], "not asked for"),
        ([({"pod": "a", "version": "stable"}, [(0, 1)])], "without le"),
        ([bucket("a", "+Inf", (30, 1))], "off the range's steps"),
        ([bucket("a", "+Inf", (180, 1))], "off the range's steps"),
        ([bucket("a", "+Inf", (0, -1))], "non-negative"),
        ([bucket("a", "+Inf", (0, math.nan))], "finite"),
        ([bucket("a", "+Inf", (0, 1)), bucket("a", "+Inf", (60, 1))], "more than once"),
        ([bucket("a", "0.1", (0, 1))], "+Inf"),
        ([bucket("a", "fast", (0, 1))], "bucket bounds"),
    ],
)
async def test_sums_in_a_shape_the_query_cannot_give_are_bad_responses(series: list, phrase: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        await labelled_sums(READING, Source.LATENCY, RangeAnswering(series), 0, 60, 60, 1)  # type: ignore[arg-type]
    assert caught.value.cause is Cause.BAD_RESPONSE and phrase in caught.value.detail


async def test_which_values_of_labels_a_versions_series_carry_and_when() -> None:
    client = RangeAnswering([({"pod": "web-0"}, [(0, 1), (300, 1)]), ({"pod": "web-1", "instance": "i"}, [(300, 1)])])
    present = await labels_present(READING, Source.REQUESTS, ["pod", "instance"], client, 0, 300, 300, 1)  # type: ignore[arg-type]
    assert {key: moments.tolist() for key, moments in present.items()} == {
        ("web-0", ""): [0, 300],
        ("web-1", "i"): [300],
    }
    with pytest.raises(PrometheusError, match="other labels"):
        await labels_present(READING, Source.REQUESTS, ["pod"], client, 0, 300, 300, 1)  # type: ignore[arg-type]
