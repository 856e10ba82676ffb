"""Traffic with known properties, one service per scenario, for the real test Prometheus."""

from __future__ import annotations

from dataclasses import dataclass

from app.demo.traffic import Traffic
from app.presets import Preset

HISTORY_SECONDS = 3600
FUTURE_SECONDS = 3600  # the suite evaluates at "now", so samples run past the end of the run
# A canary's pods started this long before "now" (a rollout a few steps in); the stables serve the whole history.
CANARY_AGE_SECONDS = 15 * 60

DEFAULT_CONVENTIONS = Preset()
CUSTOM = Preset(
    requests_metric="shop_requests_total",
    duration_metric="shop_latency_seconds",
    service_label="app",
    version_label="track",
    error_label="code",
)


@dataclass(frozen=True)
class Version:
    rps: float
    error_ratio: float = 0.0
    client_error_ratio: float = 0.0
    p95_seconds: float = 0.1
    stopped_seconds_ago: float | None = None
    started_seconds_ago: float | None = None  # default: CANARY_AGE_SECONDS for a canary, the history for a stable


@dataclass(frozen=True)
class Scenario:
    service: str
    expected: str  # the verdict in statistical mode
    canary: Version | None
    stable: Version | None
    conventions: Preset = DEFAULT_CONVENTIONS
    expected_threshold: str | None = None  # in threshold mode, when it differs

    def verdict(self, mode: str) -> str:
        return self.expected_threshold if mode == "threshold" and self.expected_threshold else self.expected


HEALTHY_STABLE = Version(rps=10, error_ratio=0.004, p95_seconds=0.12)

SCENARIOS = {
    s.service: s
    for s in [
        Scenario("healthy", "pass", Version(rps=2, error_ratio=0.003, p95_seconds=0.13), HEALTHY_STABLE),
        Scenario("latency-regression", "fail", Version(rps=2, p95_seconds=0.45), HEALTHY_STABLE),
        Scenario("error-regression", "fail", Version(rps=2, error_ratio=0.08, p95_seconds=0.12), HEALTHY_STABLE),
        # Within every SLO, but clearly worse than the stable.
        Scenario(
            "relative-regression",
            "fail",
            Version(rps=10, error_ratio=0.015, p95_seconds=0.24),
            Version(rps=10, error_ratio=0.001, p95_seconds=0.1),
        ),
        Scenario("no-canary", "inconclusive", None, HEALTHY_STABLE),
        # 18 requests since the canary started, under min_requests for the suite's first 25 minutes.
        Scenario("low-traffic", "inconclusive", Version(rps=0.02, p95_seconds=0.12), HEALTHY_STABLE),
        Scenario(
            "stopped",
            "inconclusive",
            Version(rps=2, p95_seconds=0.12, stopped_seconds_ago=1200, started_seconds_ago=HISTORY_SECONDS),
            HEALTHY_STABLE,
        ),
        # The series exist but carry no new requests: every rate is 0 and the ratios NaN.
        Scenario("zero-traffic", "inconclusive", Version(rps=0, p95_seconds=0.12), HEALTHY_STABLE),
        Scenario("first-release", "pass", Version(rps=2, error_ratio=0.003, p95_seconds=0.13), None),
        Scenario(
            "client-errors",
            "pass",
            Version(rps=2, client_error_ratio=0.4, p95_seconds=0.12),
            HEALTHY_STABLE,
        ),
        Scenario("off-the-chart", "fail", Version(rps=2, p95_seconds=20), HEALTHY_STABLE),
        # Healthy HTTP traffic; their business signals (business.py) are judged by a team's own checks.
        Scenario("business-steady", "pass", Version(rps=2, p95_seconds=0.12), HEALTHY_STABLE),
        Scenario("business-drop", "pass", Version(rps=2, p95_seconds=0.12), HEALTHY_STABLE),
        Scenario(
            "custom-healthy",
            "pass",
            Version(rps=2, p95_seconds=0.13),
            HEALTHY_STABLE,
            CUSTOM,
        ),
        Scenario(
            "custom-regression",
            "fail",
            Version(rps=2, error_ratio=0.1, p95_seconds=0.13),
            HEALTHY_STABLE,
            CUSTOM,
        ),
    ]
}


# Versions with regex metacharacters, and a decoy that `v1.2.3` as a regex would also match.
DOTTED_SERVICE = "dotted-versions"
DOTTED_CANARY, DOTTED_STABLE, DOTTED_DECOY = "v1.2.3", "v1.2.2", "v1x2x3"


def dotted_versions(now: float) -> list[Traffic]:
    start, stop = now - HISTORY_SECONDS, now + FUTURE_SECONDS
    return [
        Traffic(DOTTED_SERVICE, DOTTED_CANARY, 2, start, stop, error_ratio=0.003, p95_seconds=0.12),
        Traffic(DOTTED_SERVICE, DOTTED_STABLE, 10, start, stop, error_ratio=0.003, p95_seconds=0.12),
        Traffic(DOTTED_SERVICE, DOTTED_DECOY, 50, start, stop, error_ratio=0.5, p95_seconds=5),
    ]


def traffic(conventions: Preset, now: float) -> list[Traffic]:
    out = [] if conventions != DEFAULT_CONVENTIONS else dotted_versions(now)
    for scenario in SCENARIOS.values():
        if scenario.conventions != conventions:
            continue
        for name, version in (("canary", scenario.canary), ("stable", scenario.stable)):
            if version is None:
                continue
            stop = now + FUTURE_SECONDS
            if version.stopped_seconds_ago is not None:
                stop = now - version.stopped_seconds_ago
            age = version.started_seconds_ago or (CANARY_AGE_SECONDS if name == "canary" else HISTORY_SECONDS)
            out.append(
                Traffic(
                    scenario.service,
                    name,
                    version.rps,
                    now - age,
                    stop,
                    error_ratio=version.error_ratio,
                    client_error_ratio=version.client_error_ratio,
                    p95_seconds=version.p95_seconds,
                )
            )
    return out
