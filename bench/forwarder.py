"""The floor of the analyzer's stack: a bare FastAPI route on uvicorn that forwards one query to
Prometheus with httpx and answers a small JSON. No validation, judging, answer, links, logs or
metrics: what any service built on these parts pays to stand between a caller and Prometheus.

    python bench/forwarder.py --prometheus http://127.0.0.1:9090 --port 8091

`GET /forward?query=...` sends the query at now and answers the number of series it got back.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI


def forwarder(prometheus_url: str) -> FastAPI:
    client = httpx.AsyncClient(base_url=prometheus_url, timeout=30)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with client:
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/forward")
    async def forward(query: str) -> dict[str, int]:
        response = await client.get("/api/v1/query", params={"query": query})
        response.raise_for_status()
        return {"series": len(response.json()["data"]["result"])}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The analyzer's own server options that bear on speed: h11, no access log.
    uvicorn.run(forwarder(args.prometheus), host="127.0.0.1", port=args.port, http="h11", access_log=False)


if __name__ == "__main__":
    main()
