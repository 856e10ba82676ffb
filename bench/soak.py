"""Soak: 20 callers without pause while Prometheus is stopped, paused and restarted under them.

The analyzer runs as production runs it (`canary-analyzer serve`) in front of a real Prometheus
backfilled with the demo traffic. Prometheus goes round healthy → stopped → healthy → paused
(SIGSTOP) → healthy … until the time is up, ending healthy. Every answer is checked:

- every answer comes within ANSWER_WITHIN_SECONDS, and is a 200 with the scenario's verdict or a
  503 in JSON naming a cause; never another status, never a wrong verdict;
- an analysis that ran wholly while Prometheus was healthy is a 200; one that ran wholly while it
  was stopped or paused is a 503 (one that straddles a change may be either). A stop or pause
  counts as settled SETTLE_SECONDS after it is made: an analysis asked for just after it may join
  a run whose answer from Prometheus had already arrived, and rightly give its verdict;
- the analyzer's memory and open files are flat: what they are at the end of the last healthy
  phase exceeds what they were at the end of the first by less than RSS_GROWTH_LIMIT_MIB and
  FD_GROWTH_LIMIT.

Prints a JSON summary; exits 1 when anything above is broken.

    .venv/bin/python bench/soak.py [--seconds 180] [--healthy-seconds 10] [--down-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

# Run as a script, only bench/ is on the path: make `app` and `bench` importable too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.demo.local_prometheus import LocalPrometheus
from bench.served import demo_service
from tests.support.processes import open_file_descriptors, resident_kib

CALLERS = 20
EXPECTED = {"checkout": "pass", "payments": "fail", "search": "inconclusive"}
ANSWER_WITHIN_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 20.0  # longer than the promise, so a late answer is seen as late, not lost
RSS_GROWTH_LIMIT_MIB = 25.0
FD_GROWTH_LIMIT = 30
SETTLE_SECONDS = 0.5
WARM_UP_SECONDS = 3.0
SAMPLE_EVERY_SECONDS = 0.5


@dataclass(frozen=True)
class Answer:
    service: str
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no answer at all (connection refused, reset, client timeout)
    verdict: str | None
    cause: str | None
    problem: str | None  # what is wrong with the answer as such, whatever the phase


@dataclass(frozen=True)
class Interval:
    state: str  # "healthy", "stopped" or "paused" (settled)
    start: float
    end: float

    def holds(self, answer: Answer) -> bool:
        return self.start <= answer.started and answer.finished <= self.end


def check_answer(service: str, response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(verdict, cause, problem) of one answer, problem None when the answer is well formed."""
    try:
        body = response.json()
    except ValueError:
        return None, None, f"{response.status_code} not JSON: {response.text[:120]!r}"
    if response.status_code == 200:
        verdict = body.get("verdict")
        if verdict != EXPECTED[service]:
            return verdict, None, f"wrong verdict {verdict!r} for {service} (expected {EXPECTED[service]!r})"
        return verdict, None, None
    if response.status_code == 503:
        cause = body.get("cause")
        return None, cause, None if cause else f"503 without a cause: {body!r}"
    return None, None, f"unexpected status {response.status_code}: {response.text[:120]!r}"


async def caller(client: httpx.AsyncClient, until: float, answers: list[Answer], rng: random.Random) -> None:
    while time.monotonic() < until:
        service = rng.choice(list(EXPECTED))
        started = time.monotonic()
        try:
            response = await client.get("/analyze", params={"service": service})
        except httpx.HTTPError as exc:
            answers.append(Answer(service, started, time.monotonic(), None, None, None, f"no answer: {exc!r}"))
            continue
        finished = time.monotonic()
        verdict, cause, problem = check_answer(service, response)
        if problem is None and finished - started > ANSWER_WITHIN_SECONDS:
            problem = f"answered in {finished - started:.1f} s"
        answers.append(Answer(service, started, finished, response.status_code, verdict, cause, problem))


class Disruptor:
    """Takes Prometheus round its phases and writes down when each settled state held."""

    def __init__(self, prometheus: LocalPrometheus, healthy_seconds: float, down_seconds: float) -> None:
        self.prometheus = prometheus
        self.healthy_seconds = healthy_seconds
        self.down_seconds = down_seconds
        self.intervals: list[Interval] = []
        self.healthy_ends: list[float] = []

    async def run(self, until: float) -> None:
        disruptions = ("stopped", "paused")
        turn = 0
        while True:
            healthy_from = time.monotonic()
            await asyncio.sleep(self.healthy_seconds)
            now = time.monotonic()
            self.intervals.append(Interval("healthy", healthy_from, now))
            self.healthy_ends.append(now)
            # A disruption only if there is time left for it and for a healthy phase after it.
            if until - now < self.down_seconds + self.healthy_seconds:
                return
            how = disruptions[turn % len(disruptions)]
            turn += 1
            await self._disrupt(how)

    async def _disrupt(self, how: str) -> None:
        if how == "stopped":
            await asyncio.to_thread(self.prometheus.stop)
        else:
            os.kill(self.prometheus.pid, signal.SIGSTOP)
        down_from = time.monotonic() + SETTLE_SECONDS
        await asyncio.sleep(self.down_seconds)
        self.intervals.append(Interval(how, down_from, time.monotonic()))
        if how == "stopped":
            await asyncio.to_thread(self.prometheus.start)  # returns once Prometheus says it is ready
        else:
            os.kill(self.prometheus.pid, signal.SIGCONT)


async def soak(analyzer_url: str, pid: int, prometheus: LocalPrometheus, args: argparse.Namespace) -> dict:
    limits = httpx.Limits(max_connections=CALLERS, max_keepalive_connections=CALLERS)
    rng = random.Random(9)
    samples: list[tuple[float, float, int]] = []
    async with httpx.AsyncClient(base_url=analyzer_url, timeout=CLIENT_TIMEOUT_SECONDS, limits=limits) as client:
        disruptor = Disruptor(prometheus, args.healthy_seconds, args.down_seconds)
        answers: list[Answer] = []
        warm_from = time.monotonic()
        warm_until = warm_from + WARM_UP_SECONDS
        await asyncio.gather(*(caller(client, warm_until, answers, rng) for _ in range(CALLERS)))
        disruptor.intervals.append(Interval("healthy", warm_from, time.monotonic()))  # not a phase of its own

        until = time.monotonic() + args.seconds

        async def sample() -> None:
            while time.monotonic() < until:
                samples.append((time.monotonic(), resident_kib(pid) / 1024, open_file_descriptors(pid)))
                await asyncio.sleep(SAMPLE_EVERY_SECONDS)

        await asyncio.gather(
            disruptor.run(until),
            sample(),
            *(caller(client, until, answers, rng) for _ in range(CALLERS)),
        )
    return summarise(answers, disruptor, samples)


def summarise(answers: list[Answer], disruptor: Disruptor, samples: list[tuple[float, float, int]]) -> dict:
    violations = [f"{a.service}: {a.problem}" for a in answers if a.problem]
    by_state: dict[str, Counter[str]] = {state: Counter() for state in ("healthy", "stopped", "paused", "straddling")}
    slowest_down = 0.0
    for a in answers:
        interval = next((i for i in disruptor.intervals if i.holds(a)), None)
        state = interval.state if interval else "straddling"
        by_state[state][str(a.status)] += 1
        if state == "healthy" and a.status != 200 and not a.problem:
            violations.append(f"{a.service}: {a.status} ({a.cause}) while Prometheus was healthy")
        if state in ("stopped", "paused"):
            slowest_down = max(slowest_down, a.finished - a.started)
            if a.status != 503 and not a.problem:
                violations.append(f"{a.service}: {a.status} while Prometheus was {state}")

    def figures_at(moment: float) -> tuple[float, int]:
        _, rss, fds = min(samples, key=lambda s: abs(s[0] - moment))
        return rss, fds

    first, last = figures_at(disruptor.healthy_ends[0]), figures_at(disruptor.healthy_ends[-1])
    if last[0] - first[0] >= RSS_GROWTH_LIMIT_MIB:
        violations.append(f"RSS grew from {first[0]:.0f} MiB to {last[0]:.0f} MiB")
    if last[1] - first[1] >= FD_GROWTH_LIMIT:
        violations.append(f"open files grew from {first[1]} to {last[1]}")
    disruptions = Counter(i.state for i in disruptor.intervals if i.state != "healthy")
    return {
        "answers": len(answers),
        "statuses": {state: dict(counts) for state, counts in by_state.items()},
        "disruptions": dict(disruptions),
        "slowest_answer_while_down_seconds": round(slowest_down, 2),
        "rss_mib": {"first_healthy_end": round(first[0], 1), "last_healthy_end": round(last[0], 1)},
        "rss_mib_range": [round(min(s[1] for s in samples), 1), round(max(s[1] for s in samples), 1)],
        "open_files": {"first_healthy_end": first[1], "last_healthy_end": last[1]},
        "violations": len(violations),
        "first_violations": violations[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180, help="how long the callers call (default 180)")
    parser.add_argument("--healthy-seconds", type=float, default=10, help="each healthy phase (default 10)")
    # Longer than two of the analyzer's waits for a first byte (5 s), so that some analyses start
    # and end within a pause: the first wave to arrive waits out the pause's start.
    parser.add_argument("--down-seconds", type=float, default=15, help="each stop or pause (default 15)")
    args = parser.parse_args()
    with demo_service() as served:
        try:
            summary = asyncio.run(soak(served.url, served.pid, served.prometheus, args))
        finally:
            if served.prometheus.pid:
                os.kill(served.prometheus.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    print(json.dumps(summary, indent=2))
    sys.exit(1 if summary["violations"] else 0)


if __name__ == "__main__":
    main()
