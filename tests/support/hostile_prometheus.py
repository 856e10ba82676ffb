"""A Prometheus on loopback that answers as badly as a test asks: echoing the request's credentials in error
pages, streaming endless or compressed bodies, trickling, reporting partial data.

Large bodies are generated chunk by chunk while they are sent, never built whole: the test process stays
small, and generation stops as soon as the analyzer hangs up.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx

MB = 1024 * 1024
CHUNK = 64 * 1024
EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}
EMPTY_MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}

Reply = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: a body without Content-Length ends when the connection closes, as a stream of unknown size does.
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_POST(self) -> None:
        self.form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        self.query = self.form.get("query", [""])[0]
        # The analyzer hanging up on a body it will not read is what it should do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.server.owner.reply(self)

    def echoed_request(self) -> str:
        """The request line and headers, as a proxy's error page repeats them, and basic credentials decoded."""
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        decoded = base64.b64decode(credentials).decode() if scheme == "Basic" else ""
        return f"{self.requestline}\n{self.headers}\n(credentials: {decoded})"

    def start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    owner: HostilePrometheus


def empty_answers(handler: Handler) -> None:
    """What a Prometheus without data answers: an empty vector, or an empty matrix for a range query."""
    json_reply(200, EMPTY_MATRIX if handler.path.endswith("query_range") else EMPTY_VECTOR)(handler)


class HostilePrometheus:
    def __init__(self) -> None:
        self.reply: Reply = empty_answers
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostilePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    """A JSON answer, whole: for this server's replies and the other stand-ins' (recorder, TokenReview)."""
    encoded = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(encoded)))
    handler.end_headers()
    handler.wfile.write(encoded)


def json_reply(status: int, body: dict) -> Reply:
    def reply(handler: Handler) -> None:
        send_json(handler, status, body)

    return reply


def forwarded_after(url: str, seconds: float) -> Reply:
    """A real Prometheus' answer, held back `seconds` before its first byte: a slow evaluation."""

    def reply(handler: Handler) -> None:
        time.sleep(seconds)
        form = {name: values[0] for name, values in handler.form.items()}
        answer = httpx.post(f"{url}{handler.path}", data=form, timeout=30)
        handler.start(answer.status_code, {"Content-Type": answer.headers["Content-Type"]})
        handler.wfile.write(answer.content)

    return reply


def answer_by_query(answer: Callable[[str], dict]) -> Reply:
    """Answers each instant query with the API answer `answer(the PromQL)` makes of it; a range query (the
    canary's recent minutes) with no data."""

    def reply(handler: Handler) -> None:
        if handler.path.endswith("query_range"):
            empty_answers(handler)
            return
        json_reply(200, answer(handler.query))(handler)

    return reply


def echo_reply(status: int, page: Callable[[str], str | dict]) -> Reply:
    """Answers `page(the request echoed)`: an HTML page when it is text, JSON when it is a dict."""

    def reply(handler: Handler) -> None:
        body = page(handler.echoed_request())
        if isinstance(body, dict):
            json_reply(status, body)(handler)
            return
        encoded = body.encode()
        handler.start(status, {"Content-Type": "text/html", "Content-Length": str(len(encoded))})
        handler.wfile.write(encoded)

    return reply


def streamed_reply(body: Callable[[], Iterable[bytes]], headers: dict[str, str] | None = None) -> Reply:
    """A 200 whose body, made anew for each request, is sent as it is generated, without Content-Length
    unless `headers` declare one."""

    def reply(handler: Handler) -> None:
        handler.start(200, {"Content-Type": "application/json", **(headers or {})})
        for chunk in body():
            handler.wfile.write(chunk)

    return reply


def padded_answer(total_bytes: int) -> Iterator[bytes]:
    """A valid, empty answer of `total_bytes`: padding in a field nobody reads."""
    head = json.dumps(EMPTY_VECTOR)[:-1].encode() + b', "padding": "'
    tail = b'"}'
    yield head
    yield from _repeated(b"x" * CHUNK, total_bytes - len(head) - len(tail))
    yield tail


def many_series(count: int, per_chunk: int = 1000) -> Iterator[bytes]:
    """A vector of `count` histogram bucket series, generated `per_chunk` at a time."""
    yield b'{"status": "success", "data": {"resultType": "vector", "result": ['
    for start in range(0, count, per_chunk):
        series = (
            json.dumps({"metric": {"version": "canary", "le": str(n)}, "value": [1700000000, "1"]})
            for n in range(start, min(count, start + per_chunk))
        )
        yield (b"," if start else b"") + ",".join(series).encode()
    yield b"]}}"


def gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        if compressed := compressor.compress(chunk):
            yield compressed
    yield compressor.flush()


def trickle(server: HostilePrometheus, interval: float) -> Reply:
    """Headers at once, then the body one byte per `interval`, until the server stops."""

    def reply(handler: Handler) -> None:
        handler.start(200, {"Content-Type": "application/json"})
        for byte in json.dumps(EMPTY_VECTOR).encode() * 1000:
            if server.stopping.wait(interval):
                return
            handler.wfile.write(bytes([byte]))

    return reply


def silence(server: HostilePrometheus) -> Reply:
    """Accepts the request and never answers, until the server stops."""

    def reply(handler: Handler) -> None:
        server.stopping.wait()

    return reply


def _repeated(block: bytes, total: int) -> Iterator[bytes]:
    while total > 0:
        yield block[:total]
        total -= len(block)
