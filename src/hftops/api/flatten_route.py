"""POST /api/flatten: the API's `trading flatten` (token required; one API_CALL_FLATTEN audit entry per call).

`wait: false` (default) answers 202 with the job id once the engine accepted it; the report follows on
ops:events:flatten. `wait: true` holds the request until the report (up to the deadline + a grace) and
answers 200 with it (`report.ok` false: something is still open and the engine went HALT). 409: refused
(that scope is being flattened, or a bad scope/id); 503: the engine did not answer; 504: no report in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from hftops.control.audit import OPERATOR_PATTERN, AuditEvent
from hftops.control.engine_link import EngineCommandError
from hftops.control.flatten_client import FlattenReportMissing, request_flatten

FLATTEN_PATH = "/api/flatten"


class FlattenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator: str | None = Field(None, pattern=OPERATOR_PATTERN, description="who asks (audit actor)")
    scope: Literal["all", "strategy", "track"] = Field("all", description="what to flatten")
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="strategy id or track name")
    deadline_s: float | None = Field(None, gt=0, le=3600, description="default: flatten.deadline_s (120)")
    reason: str = Field("", max_length=500, description="why (kept in the audit log)")
    wait: StrictBool = Field(False, description="hold the request until the report")


def add_flatten_route(app: FastAPI, redis_url: str, *, actor: Callable[..., str], record: Callable[..., None]) -> None:
    @app.post(FLATTEN_PATH)
    async def flatten(request: Request, body: FlattenBody) -> JSONResponse:
        def call() -> tuple[int, dict[str, Any]]:
            try:
                outcome = request_flatten(
                    redis_url,
                    scope=body.scope,
                    scope_id=body.id or "",
                    deadline_s=body.deadline_s,
                    trigger="api",
                    operator=actor(request, body),
                    reason=body.reason,
                    wait=body.wait,
                )
            except EngineCommandError as exc:
                return (409 if exc.refused else 503), {"error": str(exc), "refused": exc.refused}
            except FlattenReportMissing as exc:
                return 504, {"error": str(exc)}
            if outcome.report is None:
                return 202, {"accepted": outcome.accepted}
            return 200, {"accepted": outcome.accepted, "report": msgspec.to_builtins(outcome.report)}

        code, content = await asyncio.to_thread(call)
        report = content.get("report") or {}
        record(
            AuditEvent.API_CALL_FLATTEN,
            request,
            body,
            {
                "status": code,
                "job": (content.get("accepted") or {}).get("id"),
                "ok": report.get("ok"),
                "error": content.get("error"),
            },
        )
        return JSONResponse(status_code=code, content=content)
