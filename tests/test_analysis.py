"""One analysis in process: the plan, the measurement through a fake Prometheus, the judgment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.analysis import plan_for, run_analysis
from app.judge.judgment import Verdict
from app.measurement import Role
from app.models import AnalysisRequest
from app.presets import Preset
from tests.support.fake_prometheus import FakePrometheus
from tests.support.observations import observed

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def fake_for(request, canary, stable) -> FakePrometheus:
    return FakePrometheus(plan_for(request, Preset()), {Role.CANARY: canary, Role.STABLE: stable})


async def test_one_query_one_verdict() -> None:
    request = AnalysisRequest(service="checkout", at=AT)
    fake = fake_for(request, observed(p95=0.45), observed(p95=0.12))
    analysis = await run_analysis(request, fake, Preset(), budget_seconds=2)
    assert len(fake.sent) == 1
    assert analysis.judgment.verdict is Verdict.FAIL
    assert analysis.evaluated_at == AT
    assert analysis.expressions["p95_latency"][Role.CANARY].startswith("histogram_quantile(0.95,")
    assert 'version="stable"' in analysis.expressions["error_rate"][Role.STABLE]


async def test_limits_asked_for_reach_the_judgment() -> None:
    request = AnalysisRequest(service="checkout", p95_max_seconds=0.5, p95_ratio_max=5, at=AT)
    analysis = await run_analysis(request, fake_for(request, observed(p95=0.45), observed()), Preset(), 2)
    assert analysis.judgment.verdict is Verdict.PASS
