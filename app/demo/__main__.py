"""`python -m app.demo`: a local Prometheus with synthetic traffic, and the analyzer in front of it."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import uvicorn

from app.api import AUDIT_LOGGER
from app.cli import Exit
from app.demo.local_prometheus import LocalPrometheus, backfill, ensure_installed, free_port
from app.demo.traffic import Traffic, openmetrics
from app.limits import server_options
from app.presets import PRESETS
from app.settings import Settings, SettingsProblem, load_settings

HISTORY_SECONDS = 2 * 3600
# checkout's stable runs on pods told apart by a `pod` label, with hours of history: what `calibrate` replays.
CALIBRATION_HISTORY_SECONDS = 7 * 3600
STABLE_PODS = 4
# The canaries' pods started this long before the demo: a rollout a few steps in. The stables serve the history.
CANARY_AGE_SECONDS = 20 * 60
SIGMA = 0.5  # latencies spread as real ones do, over several buckets
# Samples run ahead of the clock so the demo keeps giving the same verdicts for hours.
FUTURE_SECONDS = 8 * 3600
SCENARIOS = {
    "service=checkout": "pass: canary as fast and as clean as the stable",
    "service=payments": "fail: canary P95 and error rate over the SLO",
    "service=search": "inconclusive: too little canary traffic",
    "service=onboarding": "pass: first release, no stable baseline to compare with",
    "service=reviews&canary=v2&stable=v1&preset=istio": "pass: Istio's metrics, in milliseconds, both reporters",
    "service=ratings&canary=v2&stable=v1&preset=istio": "fail: Istio's metrics, the canary answers 503s",
}
# What terminals, process managers, container runtimes and `kill` send to stop a process.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived: raised so that every `with` block on the way out stops what it started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def demo_traffic(now: float, future_seconds: float = FUTURE_SECONDS) -> list[Traffic]:
    start, canary_start, stop = now - HISTORY_SECONDS, now - CANARY_AGE_SECONDS, now + future_seconds
    spread = {"sigma": SIGMA}
    checkout_pods = [
        Traffic("checkout", "stable", 20 / STABLE_PODS, now - CALIBRATION_HISTORY_SECONDS, stop, error_ratio=0.004,
                p95_seconds=0.12, labels={"pod": f"checkout-stable-{pod}"}, **spread)
        for pod in range(STABLE_PODS)
    ]  # fmt: skip
    return [
        *checkout_pods,
        Traffic("checkout", "canary", 2, canary_start, stop, error_ratio=0.003, client_error_ratio=0.05,
                p95_seconds=0.12, **spread),
        Traffic("payments", "stable", 10, start, stop, error_ratio=0.002, p95_seconds=0.18, **spread),
        Traffic("payments", "canary", 1, canary_start, stop, error_ratio=0.06, p95_seconds=0.45, **spread),
        Traffic("search", "stable", 15, start, stop, error_ratio=0.001, p95_seconds=0.07, **spread),
        # A request every 3 minutes: under min_requests for the demo's first three hours.
        Traffic("search", "canary", 0.005, canary_start, stop, p95_seconds=0.07, **spread),
        Traffic("onboarding", "canary", 1, canary_start, stop, error_ratio=0.001, p95_seconds=0.2, **spread),
    ]  # fmt: skip


def istio_traffic(now: float, future_seconds: float = FUTURE_SECONDS) -> list[Traffic]:
    """Services in Istio's shape: each request reported by the callee, and again by the caller
    (slower: it adds the network), which the istio preset leaves out."""
    start, canary_start, stop = now - HISTORY_SECONDS, now - CANARY_AGE_SECONDS, now + future_seconds
    spread = {"sigma": SIGMA}
    by_destination = [
        Traffic("reviews", "v1", 20, start, stop, error_ratio=0.002, p95_seconds=0.09, **spread),
        Traffic("reviews", "v2", 4, canary_start, stop, error_ratio=0.002, p95_seconds=0.09, **spread),
        Traffic("ratings", "v1", 20, start, stop, error_ratio=0.002, p95_seconds=0.04, **spread),
        Traffic("ratings", "v2", 4, canary_start, stop, error_ratio=0.05, p95_seconds=0.04, **spread),
    ]
    by_source = [
        dataclasses.replace(t, p95_seconds=t.p95_seconds * 2, labels={"reporter": "source"}) for t in by_destination
    ]
    return by_destination + by_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", type=Path, default=Path(".demo/prometheus"))
    parser.add_argument(
        "--hours-ahead",
        type=float,
        default=FUTURE_SECONDS / 3600,
        help="how long the verdicts stay the same: traffic is backfilled this far past now (default: %(default)s)",
    )
    args = parser.parse_args()
    try:
        # Read before anything starts: a bad setting stops the demo with its message, not a traceback later.
        demo_settings("http://127.0.0.1:9090")
    except SettingsProblem as exc:
        for problem in str(exc).splitlines():
            print(f"Error: {problem}", file=sys.stderr)
        sys.exit(Exit.USAGE)

    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_stop_signal)
    try:
        run(args)
    except Stopped as stopped:
        _exit_as_killed_by(stopped.signum)


def run(args: argparse.Namespace) -> None:
    # Imported once the settings are known to be good (main): importing app.main builds an app from them.
    from app.main import create_app

    ensure_installed()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    print("Backfilling synthetic canary/stable traffic into a local Prometheus...", flush=True)
    now, future = time.time(), args.hours_ahead * 3600
    backfill(openmetrics(demo_traffic(now, future), PRESETS["default"]), args.data_dir)
    backfill(openmetrics(istio_traffic(now, future), PRESETS["istio"]), args.data_dir)
    with LocalPrometheus(args.data_dir, port=_port_or_free(9090)) as prometheus:
        base = f"http://{args.host}:{args.port}"
        print(f"\nDemo Prometheus: {prometheus.url}\nAnalyzer:        {base}  (API docs: {base}/docs)\n")
        for query, expected in SCENARIOS.items():
            print(f"  {base}/analyze?{query}\n      -> {expected}")
        print(flush=True)
        settings = demo_settings(prometheus.url)
        app = create_app(settings)
        # One line per request below the URLs: the access line, which carries an analysis' verdict. The audit
        # record (every input and check) would scroll them away; its warnings (Prometheus failing) still show.
        logging.getLogger(AUDIT_LOGGER).setLevel(logging.WARNING)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", **server_options(settings))


def demo_settings(prometheus_url: str) -> Settings:
    """The analyzer's settings in front of the demo's Prometheus: lines a person reads, unless LOG_FORMAT says."""
    settings = load_settings(prometheus_url=prometheus_url)
    if "log_format" in settings.model_fields_set:
        return settings
    return load_settings(prometheus_url=prometheus_url, log_format="console")


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    # uvicorn swaps in its own SIGINT and SIGTERM handlers while it serves; after its graceful shutdown it
    # puts this one back and raises the signal again, which lands here. With SIGTERM's default action the
    # process used to end right there, before the `with` block could stop Prometheus.
    uvicorn_handler = signal.getsignal(signal.SIGTERM)
    if uvicorn_handler is not _on_stop_signal and callable(uvicorn_handler):
        uvicorn_handler(signum, frame)  # SIGHUP while serving: the same graceful shutdown, then back here
        return
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)  # stopping has begun: a second signal must not cut it short
    raise Stopped(signum)


def _exit_as_killed_by(signum: int) -> None:
    """Dies of the signal, everything stopped: the status a caller expects (128 + signum in a shell)."""
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _port_or_free(port: int) -> int:
    try:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
        return port
    except OSError:
        return free_port()


if __name__ == "__main__":
    main()
