"""A stand-in Prometheus (or Mimir) on loopback that records every request and answers an empty vector.

It lets a test prove that no query left the analyzer, and which tenant header arrived, which a real
Prometheus cannot tell.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.support.hostile_prometheus import EMPTY_MATRIX, EMPTY_VECTOR, send_json


class RecordingPrometheus:
    def __init__(self, delay: float = 0.0) -> None:
        """`delay`: how long each answer takes, so that callers can overlap."""
        self.queries: list[str] = []
        self.tenants: list[str | None] = []  # each request's X-Scope-OrgID, as a Mimir would read it
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                recorder.queries.extend(form.get("query", []))
                recorder.tenants.append(self.headers.get("X-Scope-OrgID"))
                recorder.paths.append(self.path)
                time.sleep(delay)
                send_json(self, 200, EMPTY_MATRIX if self.path.endswith("/query_range") else EMPTY_VECTOR)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingPrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
