"""What one client may cost the server: big bodies, slow requests, many connections, long query strings.

Real `canary-analyzer serve` processes; memory and file descriptors are read from /proc of the server.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.limits import LINGER_BYTES, LINGER_SECONDS
from tests.support.exposition import samples, value
from tests.support.processes import open_file_descriptors, peak_resident_kib, reset_peak_resident, resident_kib
from tests.support.recorder import RecordingPrometheus
from tests.support.servers import ROOT, AnalyzerServer, error_of, read_until_closed

# The production defaults, but the two deadlines (10 s) shortened so the tests wait less.
DEADLINE_SECONDS = 2.0
# How long past a deadline the server may take to act on it, on a busy machine.
GRACE_SECONDS = 10.0
HUGE_BODY_BYTES = 100 * 1024 * 1024
MEMORY_BUDGET_KIB = 50 * 1024
SLOW_CLIENTS = 200
# Descriptors the server may open meanwhile for itself (a connection to Prometheus, a log rotation).
FD_SLACK = 5
MAX_CONNECTIONS = 20
# More than the server reads at once (asyncio: 256 KiB), so that bytes wait unread when it answers; less than
# it drops while lingering.
UNREAD_BYTES = 600 * 1024
REPEATS = 50


@pytest.fixture(scope="module")
def server(start_analyzer: Callable[..., AnalyzerServer], recorder: RecordingPrometheus) -> AnalyzerServer:
    return start_analyzer(
        prometheus_url=recorder.url,
        header_timeout_seconds=str(DEADLINE_SECONDS),
        body_timeout_seconds=str(DEADLINE_SECONDS),
    )


def refused(server: AnalyzerServer, reason: str) -> float:
    """Connections the server answered and closed itself, for this reason: uvicorn never asks the app."""
    return value(samples(server), "canary_analyzer_connections_refused_total", reason=reason)


def connect(server: AnalyzerServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_SECONDS + GRACE_SECONDS)


def post_head(content_length: int) -> bytes:
    return (
        "POST /analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """A body streamed in pieces, never held whole by the client either."""
    for _ in range(total // size):
        yield b"x" * size


def settled_descriptors(server: AnalyzerServer) -> int:
    """The server's open descriptors once a connection it is still closing (its start-up probe's) is gone."""
    previous = open_file_descriptors(server.pid)
    while True:
        time.sleep(0.2)
        if (current := open_file_descriptors(server.pid)) == previous:
            return current
        previous = current


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "length_header",
    [{"Content-Length": str(HUGE_BODY_BYTES)}, {}],  # declared, and chunked with no length at all
    ids=["declared", "chunked"],
)
def test_a_huge_body_is_413_quickly_and_never_held(server: AnalyzerServer, length_header: dict[str, str]) -> None:
    reset_peak_resident(server.pid)
    before = resident_kib(server.pid)
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/analyze",
        content=chunks(HUGE_BODY_BYTES),
        headers={"Content-Type": "application/json", **length_header},
        timeout=30,
    )
    elapsed = time.monotonic() - started
    grown = peak_resident_kib(server.pid) - before
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "content_too_large"
    assert response.json()["trace_id"] == response.headers["X-Trace-ID"]
    assert response.headers["connection"] == "close"
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert grown < MEMORY_BUDGET_KIB, f"the server's peak memory grew by {grown / 1024:.0f} MiB"


def test_a_body_within_the_limit_is_served(server: AnalyzerServer) -> None:
    """The control: the limit refuses what is too big, not bodies as such."""
    padding = " " * (60 * 1024)  # JSON whitespace: the body is near the 64 KiB limit and still valid
    response = httpx.post(
        f"{server.url}/analyze",
        content=f'{{"service": "checkout"{padding}}}',
        headers={"Content-Type": "application/json"},
        timeout=15,
    )
    assert response.status_code == 200, response.text


def test_a_body_longer_than_its_declared_length_is_not_read_as_one(server: AnalyzerServer) -> None:
    """What follows the declared length is read as the next request: refused as not HTTP, never buffered."""
    reset_peak_resident(server.pid)
    before = resident_kib(server.pid)
    with connect(server) as sock:
        sock.sendall(post_head(content_length=2))
        with contextlib.suppress(OSError):  # the server closed the connection: what the test wants
            for piece in chunks(HUGE_BODY_BYTES // 4):
                sock.sendall(piece)
        raw = read_until_closed(sock)
    first, _, rest = raw.partition(b"HTTP/1.1 400")
    assert first.startswith(b"HTTP/1.1 422")  # the two bytes declared, judged as the body
    status, _, body = error_of(b"HTTP/1.1 400" + rest)
    assert (status, body["error"]) == (400, "bad_request")
    assert peak_resident_kib(server.pid) - before < MEMORY_BUDGET_KIB


def test_a_body_that_does_not_arrive_is_408_and_closed(server: AnalyzerServer) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(content_length=100) + b"{")
        started = time.monotonic()
        raw = read_until_closed(sock)
    elapsed = time.monotonic() - started
    status, headers, body = error_of(raw)
    assert (status, body["error"]) == (408, "request_timeout")
    assert body["trace_id"] == headers["x-trace-id"]
    assert DEADLINE_SECONDS * 0.9 < elapsed < DEADLINE_SECONDS + GRACE_SECONDS


@pytest.mark.parametrize("kept_alive", [False, True], ids=["first-request", "next-request"])
def test_headers_that_do_not_arrive_are_408_and_closed(server: AnalyzerServer, kept_alive: bool) -> None:
    counted = refused(server, "request_timeout")
    with connect(server) as sock:
        if kept_alive:  # one whole request first: the deadline applies to every request on a connection
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        raw = read_until_closed(sock)
    elapsed = time.monotonic() - started
    status, _, body = error_of(raw)
    assert (status, body["error"]) == (408, "request_timeout")
    assert "headers" in body["detail"]
    assert DEADLINE_SECONDS * 0.9 < elapsed < DEADLINE_SECONDS + GRACE_SECONDS
    assert refused(server, "request_timeout") == counted + 1


def test_a_connection_that_sends_nothing_is_closed(server: AnalyzerServer) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""  # nothing was asked: closed without an answer


def test_many_slow_half_sent_requests_are_closed_and_their_descriptors_freed(server: AnalyzerServer) -> None:
    baseline = settled_descriptors(server)
    sockets = [connect(server) for _ in range(SLOW_CLIENTS)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /analyze?service=checkout HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
        most_held, deadline = 0, time.monotonic() + DEADLINE_SECONDS + GRACE_SECONDS
        while True:
            held = open_file_descriptors(server.pid) - baseline
            most_held = max(most_held, held)
            if most_held >= SLOW_CLIENTS * 0.9 and held <= FD_SLACK:
                break  # the server did hold them all at once, and has let them all go
            assert time.monotonic() < deadline, f"{held} descriptors held (at most {most_held})"
            for sock in sockets:  # a header line now and then, as slowloris keeps an idle timeout at bay
                with contextlib.suppress(OSError):  # closed by the server
                    sock.send(b"X-Slow: 1\r\n")
            time.sleep(0.2)
    finally:
        for sock in sockets:
            sock.close()


def test_headers_beyond_their_limit_are_a_json_400(server: AnalyzerServer) -> None:
    counted = refused(server, "bad_request")
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):  # closed by the server
            for _ in range(40):  # 40 KiB of headers that never end, past the 16 KiB limit
                sock.sendall(b"X-Padding: " + b"p" * 1000 + b"\r\n")
        raw = read_until_closed(sock)
    status, _, body = error_of(raw)
    assert (status, body["error"]) == (400, "bad_request")
    assert refused(server, "bad_request") == counted + 1


def headers_in_lines(sock: socket.socket) -> None:
    """40 KiB of headers that never end, a line at a time, past the 16 KiB limit."""
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
    for _ in range(40):
        sock.sendall(b"X-Padding: " + b"p" * 1000 + b"\r\n")


def headers_in_one_piece(sock: socket.socket) -> None:
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * UNREAD_BYTES)


def body_declared_too_large(sock: socket.socket) -> None:
    """Refused at its headers (413): the body that follows is never read by the app."""
    sock.sendall(post_head(content_length=HUGE_BODY_BYTES) + b"x" * UNREAD_BYTES)


ANSWERED_MID_REQUEST = {
    "headers-in-lines": (headers_in_lines, 400, "bad_request"),
    "headers-in-one-piece": (headers_in_one_piece, 400, "bad_request"),
    "body-declared-too-large": (body_declared_too_large, 413, "content_too_large"),
}


@pytest.mark.parametrize("case", ANSWERED_MID_REQUEST)
def test_an_answer_to_a_client_still_sending_arrives_every_time(server: AnalyzerServer, case: str) -> None:
    """Closed with the client's bytes unread, the server's kernel answers RST instead of FIN, and the RST can
    destroy the answer before the client has read it (CI once saw `Connection reset by peer` here): the server
    half-closes after answering and drops what still comes, as nginx's lingering close does."""
    send, status, error = ANSWERED_MID_REQUEST[case]
    for attempt in range(REPEATS):
        with connect(server) as sock:
            with contextlib.suppress(OSError):  # the server may stop reading: what the test wants
                send(sock)
            raw = read_until_closed(sock)
        answered, _, body = error_of(raw)
        assert (answered, body["error"]) == (status, error), f"attempt {attempt}"


def answered_then_still_open(server: AnalyzerServer) -> socket.socket:
    """A connection answered 400 for its headers, which the server has half-closed and lingers on."""
    sock = connect(server)
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * (20 * 1024))
    status, _, _ = error_of(read_until_closed(sock))  # the answer, then the end of what the server sends
    assert status == 400
    return sock


def test_a_client_that_keeps_sending_is_cut_off_after_the_lingering_time(server: AnalyzerServer) -> None:
    baseline = settled_descriptors(server)
    counted = refused(server, "bad_request")
    with answered_then_still_open(server) as sock:
        started, cut_off = time.monotonic(), None
        while cut_off is None and time.monotonic() - started < LINGER_SECONDS + GRACE_SECONDS:
            try:
                sock.send(b"x" * 100)  # slowly, never closing
            except OSError:  # reset: the server closed
                cut_off = time.monotonic() - started
            time.sleep(0.05)
    assert cut_off is not None, "still open"
    assert LINGER_SECONDS * 0.8 < cut_off < LINGER_SECONDS + GRACE_SECONDS, f"cut off after {cut_off:.2f} s"
    assert refused(server, "bad_request") == counted + 1
    assert wait_until(lambda: open_file_descriptors(server.pid) <= baseline + FD_SLACK, timeout=5)


def test_a_client_that_floods_is_cut_off_after_the_lingering_bytes(server: AnalyzerServer) -> None:
    with answered_then_still_open(server) as sock:
        started, sent, cut_off = time.monotonic(), 0, False
        try:
            while time.monotonic() - started < LINGER_SECONDS / 2:
                sent += sock.send(b"x" * 65536)
        except OSError:  # reset: the server closed
            cut_off = True
    assert cut_off, f"still open after {sent:,} bytes"
    assert sent > LINGER_BYTES


def test_a_lingering_connection_does_not_hold_up_the_servers_stop(
    start_analyzer: Callable[..., AnalyzerServer], recorder: RecordingPrometheus
) -> None:
    stopping = start_analyzer(prometheus_url=recorder.url)
    with connect(stopping) as sock:
        sock.sendall(post_head(content_length=HUGE_BODY_BYTES) + b"x" * 1024)
        assert error_of(read_until_closed(sock))[0] == 413  # answered; the server lingers, the client stays
        started = time.monotonic()
        stopping.stop()
        stopped = time.monotonic() - started
    assert stopped < LINGER_SECONDS * 0.75, f"stopped after {stopped:.2f} s"  # not at the lingering bound


def test_connections_beyond_the_limit_are_refused_at_once(
    start_analyzer: Callable[..., AnalyzerServer], recorder: RecordingPrometheus
) -> None:
    server = start_analyzer(prometheus_url=recorder.url, max_connections=str(MAX_CONNECTIONS))
    baseline = settled_descriptors(server)
    held = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        assert wait_until(lambda: open_file_descriptors(server.pid) >= baseline + MAX_CONNECTIONS, timeout=5)
        for _ in range(10):
            with connect(server) as extra:
                extra.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")  # as a client does at once
                status, _, body = error_of(read_until_closed(extra))
            assert (status, body["error"]) == (503, "too_many_connections")
            assert set(body) == {"error", "cause", "detail", "trace_id"}, body
        assert open_file_descriptors(server.pid) <= baseline + MAX_CONNECTIONS + FD_SLACK
    finally:
        for sock in held:
            sock.close()
    assert wait_until(lambda: open_file_descriptors(server.pid) <= baseline + FD_SLACK, timeout=5)
    assert httpx.get(f"{server.url}/health/live", timeout=10).status_code == 200
    assert refused(server, "too_many_connections") == 10


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("&".join(f"p{n}=1" for n in range(33)), 422, "invalid_request"),
        ("x=" + "a" * 4095, 414, "uri_too_long"),
    ],
    ids=["33-parameters", "4097-bytes"],
)
def test_query_strings_beyond_their_limits_are_refused(
    server: AnalyzerServer, recorder: RecordingPrometheus, query: str, status: int, error: str
) -> None:
    before = len(recorder.queries)
    response = httpx.get(f"{server.url}/analyze?service=checkout&{query}", timeout=10)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["trace_id"] == response.headers["X-Trace-ID"]
    assert len(recorder.queries) == before
    if status == 422:  # not merely the unknown fields' own 422
        assert response.json()["detail"][0]["type"] == "too_many_parameters"


@pytest.mark.parametrize(
    "query", ["&".join(f"p{n}=1" for n in range(32)), "x=" + "a" * 4094], ids=["32-parameters", "4096-bytes"]
)
def test_query_strings_at_their_limits_pass(server: AnalyzerServer, query: str) -> None:
    assert httpx.get(f"{server.url}/health/live?{query}", timeout=10).status_code == 200


@pytest.mark.parametrize("prometheus_url", ["", "http://prometheus:9090"], ids=["demo", "own-prometheus"])
def test_make_run_serves_through_the_bounded_server(prometheus_url: str) -> None:
    """`make run` starts what applies these limits (`canary-analyzer serve`, or the demo, which serves
    with the same options), never a bare uvicorn."""
    dry_run = subprocess.run(
        # Under `make test` this make is nested: without the flag it would say which directory it entered.
        ["make", "--no-print-directory", "-n", "run", f"PROMETHEUS_URL={prometheus_url}", "PORT=1234"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    command = dry_run.stdout.strip().splitlines()[-1]
    assert command in (
        ".venv/bin/canary-analyzer serve --host 127.0.0.1 --port 1234",
        ".venv/bin/python -m app.demo --host 127.0.0.1 --port 1234",
    ), command
    assert ("canary-analyzer serve" in command) == bool(prometheus_url)
