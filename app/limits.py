"""What one client may cost the server: bounds on a request's size and on the time it takes to arrive.

Two layers, because uvicorn calls the app only once a request's headers are in:

- `RequestLimits`, an ASGI middleware: the query string's size and parameter count, and the body, read
  with a size limit (enforced while it streams in, whatever Content-Length says) and a deadline.
- `BoundedH11Protocol`, uvicorn's h11 protocol with what it lacks: a deadline for the request line and
  headers (uvicorn only times out idle kept-alive connections, so a client that sends a header byte now
  and then holds a connection forever), a cap on open connections, JSON for its own 400, and a lingering
  close (as nginx's) for a client that may still be sending when it is answered.

`server_options` gives uvicorn both, with the settings: `canary-analyzer serve`, the demo and the tests'
servers all start uvicorn with it.
"""

from __future__ import annotations

import asyncio
import uuid
from http import HTTPStatus
from typing import Any, ClassVar, cast

import h11
import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from app import metrics
from app.middleware import error_body, send_error
from app.settings import Settings

log = structlog.get_logger("canary_analyzer.access")

# A lingering close, as nginx's: a connection answered while its client may still be sending (headers past
# their limit or deadline, a body refused or late) is half-closed after the answer, and what the client still
# sends is read and dropped before the connection is closed. Closed with bytes unread, the kernel sends RST
# instead of FIN, and the RST can destroy the answer before the client has read it. Bounded in time and in
# bytes, so a client that never stops sending cannot hold the connection.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        body_timeout_seconds: float,
        max_query_bytes: int,
        max_query_parameters: int,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.max_query_bytes = max_query_bytes
        self.max_query_parameters = max_query_parameters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id: str = scope["state"]["trace_id"]  # RequestMiddleware, outside this one, set it
        if await self._refused_query(scope["query_string"], send, trace_id):
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            # Refused before a byte of it is read; closing is the only way not to read it.
            await send_error(send, 413, "content_too_large", trace_id, self._too_large, close=True)
            return
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            await send_error(send, 413, "content_too_large", trace_id, self._too_large, close=True)
            return
        except TimeoutError:
            detail = f"the body did not arrive within {self.body_timeout_seconds:g} s"
            await send_error(send, 408, "request_timeout", trace_id, detail, close=True)
            return
        if body is None:  # the client left; the answer goes nowhere but the access log
            await send_error(send, 400, "incomplete_request", trace_id, "the client closed the connection")
            return
        await self.app(scope, replay(body, receive), send)

    @property
    def _too_large(self) -> str:
        return f"the body may have at most {self.max_body_bytes} bytes"

    async def _refused_query(self, query: bytes, send: Send, trace_id: str) -> bool:
        if len(query) > self.max_query_bytes:
            detail = f"the query string has {len(query)} bytes; at most {self.max_query_bytes} are accepted"
            await send_error(send, 414, "uri_too_long", trace_id, detail)
            return True
        count = sum(1 for part in query.split(b"&") if part)
        if count > self.max_query_parameters:
            problem = {
                "loc": ["query"],
                "msg": f"at most {self.max_query_parameters} query parameters are accepted, got {count}",
                "type": "too_many_parameters",
            }
            await send_error(send, 422, "invalid_request", trace_id, [problem])
            return True
        return False


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "")
    return int(value) if value.isdigit() else None  # h11 has refused any other value already


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when the client went away; BodyTooLarge as soon as more than `limit`
    bytes have come, so no more than that is ever held."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then waits for the disconnect as before."""
    delivered = False

    async def receive_replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_replayed


class ClosingTransport:
    """The connection's transport as uvicorn sees it: its `close` is the protocol's, which may linger (uvicorn
    closes after a 413 or 408 it did not write itself), and a lingering connection is closing."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def close(self) -> None:
        self._protocol.close_connection()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BoundedH11Protocol(H11Protocol):
    """One connection. The class attributes are set from the settings by `bounded_protocol`."""

    header_timeout_seconds: ClassVar[float]
    max_connections: ClassVar[int]
    socket_transport: asyncio.Transport  # the connection's own; uvicorn holds it as a ClosingTransport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_deadline: asyncio.TimerHandle | None = None
        self.linger_deadline: asyncio.TimerHandle | None = None
        self.lingered_bytes = 0

    @property
    def lingering(self) -> bool:
        return self.linger_deadline is not None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.socket_transport = transport
        super().connection_made(cast(asyncio.Transport, ClosingTransport(transport, self)))
        if len(self.connections) > self.max_connections:
            # Answered and closed at once (lingering only while the client still sends, within the bounds), so the
            # file descriptor is soon back. Until it is, the connection counts against the cap.
            log.warning("connection refused", reason="too many connections", limit=self.max_connections)
            self._answer_and_close(503, "too_many_connections", f"at most {self.max_connections} connections")
            return
        self._watch_headers()  # a connection that never sends a byte must not stay either

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self._drop(data)
            return
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_deadline()
        if self.linger_deadline is not None:
            self.linger_deadline.cancel()  # stays set: the connection is done with, never read again
        super().connection_lost(exc)

    def close_connection(self) -> None:
        """Every close uvicorn makes. One whose request body was not read to its end (a 413, a 408, an error) is
        likely to meet more of it: that one lingers; the others (idle, answered in full) close at once."""
        if self.conn.their_state is h11.SEND_BODY:
            self._linger()
        else:
            self.socket_transport.close()

    def shutdown(self) -> None:
        """The server stopping: a lingering connection is answered already, and what its client still sends is
        not worth waiting for."""
        if self.lingering:
            self.socket_transport.close()
            return
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP (or headers beyond max_header_bytes), in JSON."""
        self._answer_and_close(400, "bad_request", msg)

    def _watch_headers(self) -> None:
        """Runs the header deadline while a request's headers are awaited, from the connection's start or
        the next request's first byte; idle kept-alive connections are uvicorn's timeout_keep_alive's."""
        awaiting_headers = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not awaiting_headers:
            self._stop_header_deadline()
        elif self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.header_timeout_seconds, self._headers_too_slow)

    def _stop_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_deadline = None
        partial_request, _ = self.conn.trailing_data
        if not partial_request:  # nothing asked, nothing to answer: close like an idle keep-alive
            self.transport.close()
            return
        detail = f"the request headers did not arrive within {self.header_timeout_seconds:g} s"
        log.info("connection closed", reason="request headers too slow", status=408)
        self._answer_and_close(408, "request_timeout", detail)

    def _answer_and_close(self, status: int, error: str, detail: str) -> None:
        """Writes a whole response past h11 (no request was parsed to answer) and closes the connection."""
        metrics.CONNECTIONS_REFUSED.labels(reason=error).inc()
        body = error_body(error, uuid.uuid4().hex, detail)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        # A client past the header limit is mid-request, a slow one may finish it, and one over the connection
        # cap has likely sent its request already: each may still be sending.
        self._linger()

    def _linger(self) -> None:
        """Half-closes after the answer and drops what still comes, until the client closes (EOF: asyncio then
        closes the transport) or LINGER_SECONDS or LINGER_BYTES run out."""
        transport = self.socket_transport
        if self.lingering or transport.is_closing():
            return
        self._stop_header_deadline()
        self._unset_keepalive_if_required()
        if transport.can_write_eof():
            transport.write_eof()  # FIN once the answer is sent: the client reads it to its end
        self.flow.resume_reading()  # uvicorn pauses reading while a body waits for the app
        self.linger_deadline = self.loop.call_later(LINGER_SECONDS, transport.close)

    def _drop(self, data: bytes) -> None:
        self.lingered_bytes += len(data)
        if self.lingered_bytes > LINGER_BYTES:
            self.socket_transport.close()


def bounded_protocol(settings: Settings) -> type[BoundedH11Protocol]:
    limits = {
        "header_timeout_seconds": settings.header_timeout_seconds,
        "max_connections": settings.max_connections,
    }
    return type("BoundedH11Protocol", (BoundedH11Protocol,), limits)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options wherever the app is served. h11 always: httptools, if it were installed, would
    get none of the bounds above."""
    return {
        "http": bounded_protocol(settings),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "ws": "none",  # no WebSocket routes: an Upgrade header is served as plain HTTP
        # A proxy's groups header is believed from the connection's own peer (app/tenancy/callers.py):
        # uvicorn would put X-Forwarded-For's address in its place.
        "proxy_headers": settings.groups_header is None,
    }
