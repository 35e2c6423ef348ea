"""The recorder's HTTP endpoints (uvicorn + FastAPI in the recorder's own event loop).

GET /healthz, POST /query (read-only), GET /wal, GET /stats, GET /metrics, POST /dlq/replayed.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import msgspec
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from hftops.embedded_http import EmbeddedServer
from hftops.store.errors import DatabaseUnavailable, QueryError, StoreError

if TYPE_CHECKING:
    from hftops.pipeline.recorder.service import Recorder

_JSON = msgspec.json.Encoder()


class QueryRequest(msgspec.Struct):
    sql: str


class ReplayMark(msgspec.Struct):
    id: str
    rows: int = 0


class ReplayedRequest(msgspec.Struct):
    marks: list[ReplayMark]
    operator: str = ""


def _json(payload: Any, status: int = 200) -> Response:
    return Response(_JSON.encode(payload), status_code=status, media_type="application/json")


def create_app(recorder: Recorder) -> FastAPI:
    app = FastAPI(title="hftops recorder", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json(recorder.health())

    @app.get("/wal")
    async def wal() -> Response:
        return _json(recorder.wal_view())

    @app.get("/stats")
    async def stats() -> Response:
        return _json(recorder.stats())

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(recorder.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.post("/query")
    async def query(request: Request) -> Response:
        try:
            body = msgspec.json.decode(await request.body(), type=QueryRequest)
        except msgspec.DecodeError as exc:
            return _json({"error": f'expected a JSON body {{"sql": "SELECT ..."}}: {exc}'}, 400)
        try:
            result = await recorder.read_query(body.sql)
        except QueryError as exc:
            return _json({"error": str(exc)}, 400)
        except DatabaseUnavailable as exc:
            return _json({"error": str(exc)}, 503)
        return _json(result.as_dict())

    @app.post("/dlq/replayed")
    async def replayed(request: Request) -> Response:
        try:
            body = msgspec.json.decode(await request.body(), type=ReplayedRequest)
        except msgspec.DecodeError as exc:
            return _json({"error": f'expected {{"marks": [{{"id": ..., "rows": n}}]}}: {exc}'}, 400)
        try:
            stored = await recorder.mark_replayed([(m.id, m.rows) for m in body.marks], body.operator)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        except StoreError as exc:
            return _json({"error": str(exc)}, 503)
        return _json({"marked": stored})

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so a port clash fails the start with a clear message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno,
            f"recorder: cannot bind {host}:{port} ({exc.strerror}); another recorder "
            "running, or set recorder.query_port",
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def make_server(app: FastAPI) -> EmbeddedServer:
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=1, loop="none"
    )
    return EmbeddedServer(config)
