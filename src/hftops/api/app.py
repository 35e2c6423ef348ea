"""The control HTTP API (FastAPI), served by the supervisor.

Read endpoints are open on the bound address (127.0.0.1 by default). Mutating endpoints need
`Authorization: Bearer <token>` and each accepted call writes exactly one `API_CALL_*` audit entry
(the operation it triggers writes its own step entries: SHUTDOWN_START, <COMPONENT>_STOP, ...).
The same app, built with `local=True`, serves the CLI over the 0600 unix socket in the run directory,
where file permissions stand in for the token.
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.background import BackgroundTask

from hftops.api.auth import check_bearer
from hftops.api.autonomy_routes import AUTONOMY_PATHS, add_autonomy_routes
from hftops.api.flatten_route import FLATTEN_PATH, add_flatten_route
from hftops.api.metrics import exposition
from hftops.control import logview
from hftops.control.audit import OPERATOR_PATTERN, AuditEvent, default_actor
from hftops.control.shutdown_plan import ShutdownPlan
from hftops.model.components import COMPONENT_NAMES

if TYPE_CHECKING:
    from hftops.control.supervisor import Supervisor


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator: str | None = Field(None, pattern=OPERATOR_PATTERN, description="who asks (audit actor)")


class StartBody(Body):
    pass


class StopBody(Body):
    drain: StrictBool = Field(False, description="stop the producer first and let the recorder drain")
    timeout_s: float | None = Field(None, gt=0, le=600, description="per-step SIGTERM timeout")
    drain_timeout_s: float = Field(120.0, gt=0, le=3600)


class EmergencyBody(Body):
    confirm: StrictBool = Field(description="must be true: kills every pipeline process at once")
    reason: str = Field("manual_operator", pattern=r"^[a-z0-9_]{1,64}$")


def _problems(exc: RequestValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "request"
        out.append(f"{where}: {err.get('msg')}")
    return out


def create_app(sup: Supervisor, *, token: str | None, local: bool = False) -> FastAPI:
    app = FastAPI(
        title="hftops control API", version="1", docs_url="/docs", redoc_url=None, openapi_url="/openapi.json"
    )
    audit = sup.audit

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "invalid request", "problems": _problems(exc)})

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"error": exc.detail}, headers=getattr(exc, "headers", None)
        )

    mutating = {"/api/pipeline/start", "/api/pipeline/stop", "/api/pipeline/restart", "/api/emergency-stop"}
    mutating.add(FLATTEN_PATH)
    mutating.update(AUTONOMY_PATHS)

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        # Before the body is even parsed: an unauthenticated call learns nothing and changes nothing.
        if not local and request.method == "POST" and request.url.path in mutating:
            try:
                check_bearer(request, token)
            except HTTPException as exc:
                return JSONResponse(status_code=exc.status_code, content={"error": exc.detail}, headers=exc.headers)
        response: Response = await call_next(request)
        return response

    def actor(request: Request, body: Body | None) -> str:
        who = body.operator if body and body.operator else None
        if local:
            return who or default_actor()
        host = request.client.host if request.client else "unknown"
        return f"{who or 'api'}@{host}"

    def record(event: AuditEvent, request: Request, body: Body | None, result: dict[str, Any]) -> None:
        if not local:  # the local socket carries CLI commands; their operations are audited already
            args = body.model_dump(exclude_none=True) if body else {}
            audit.append(event, actor=actor(request, body), args=args, result=result)

    add_flatten_route(app, sup.config.redis_url, actor=actor, record=record)
    add_autonomy_routes(app, sup.config, lambda: sup.status(with_ledger=False), actor=actor, record=record)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "phase": sup.phase, "halted": sup.halted}

    @app.get("/api/status")
    async def status(ledger: bool = True) -> dict[str, Any]:
        return await sup.status(with_ledger=ledger)

    @app.post("/api/pipeline/start")
    async def start(request: Request, body: StartBody | None = None) -> JSONResponse:
        comps = sup.components_status()
        if sup.phase == "running" and all(c["state"] in ("running", "disabled") for c in comps.values()):
            pids = {n: c["pid"] for n, c in comps.items() if c["pid"]}
            result = {"ok": False, "refused": "already running", "pids": pids}
            record(AuditEvent.API_CALL_START, request, body, result)
            return JSONResponse(status_code=409, content={"error": "already running", "pids": pids})
        result = await sup.start_pipeline(actor(request, body))
        record(AuditEvent.API_CALL_START, request, body, result)
        return JSONResponse(status_code=200 if result["ok"] else 503, content=result)

    @app.post("/api/pipeline/stop")
    async def stop(request: Request, body: StopBody | None = None) -> dict[str, Any]:
        body = body or StopBody.model_validate({})
        plan = ShutdownPlan(
            actor=actor(request, body),
            drain=body.drain,
            timeout_s=body.timeout_s,
            drain_timeout_s=body.drain_timeout_s,
            reason="api stop",
        )
        report = (await sup.stop(plan, include_api=False)).to_dict()
        record(
            AuditEvent.API_CALL_STOP,
            request,
            body,
            {"exit_code": report["exit_code"], "forced": report["forced"]},
        )
        return report

    @app.post("/api/pipeline/restart")
    async def restart(request: Request, body: StartBody | None = None) -> JSONResponse:
        result = await sup.restart_pipeline(actor(request, body))
        record(AuditEvent.API_CALL_RESTART, request, body, result)
        return JSONResponse(status_code=200 if result["start"]["ok"] else 503, content=result)

    @app.post("/api/emergency-stop")
    async def emergency(request: Request, body: EmergencyBody) -> dict[str, Any]:
        if body.confirm is not True:
            raise HTTPException(
                status_code=400,
                detail="confirm must be true: emergency-stop kills every pipeline process at once",
            )
        result = await sup.emergency_stop(actor(request, body), body.reason)
        record(AuditEvent.API_CALL_EMERGENCY_STOP, request, body, {"killed": result["killed"]})
        return result

    @app.get("/api/logs")
    async def logs(component: str = "all", n: Annotated[int, Query(ge=1, le=5000)] = 200) -> dict[str, Any]:
        if (
            component != "all"
            and component not in (*COMPONENT_NAMES, "supervisor")
            and not re.fullmatch(r"[a-z_]{1,32}", component)
        ):
            raise HTTPException(
                status_code=400,
                detail=f"unknown component {component!r}; use one of {['all', *COMPONENT_NAMES, 'supervisor']}",
            )
        entries = await asyncio.to_thread(logview.tail, sup.paths.log, None if component == "all" else component, n)
        return {"component": component, "entries": entries}

    @app.get("/metrics")
    async def metrics() -> Response:
        status = await sup.status(with_ledger=False)
        body = await asyncio.to_thread(exposition, status, sup.config.recorder_query_url)
        return Response(content=body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        page = resources.files("hftops.api").joinpath("static/dashboard.html").read_text()
        return HTMLResponse(page)

    if local:

        @app.post("/local/shutdown")
        async def shutdown(request: Request, body: StopBody | None = None) -> JSONResponse:
            body = body or StopBody.model_validate({})
            plan = ShutdownPlan(
                actor=actor(request, body),
                drain=body.drain,
                timeout_s=body.timeout_s,
                drain_timeout_s=body.drain_timeout_s,
                reason="trading stop",
            )
            report = await sup.shutdown(plan)
            # the supervisor exits only after this answer has been sent
            return JSONResponse(report.to_dict(), background=BackgroundTask(sup.exit_requested.set))

    return app
