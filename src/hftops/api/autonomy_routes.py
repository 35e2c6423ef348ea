"""The API's halt and rearm (token required; exactly one API_CALL_HALT / API_CALL_REARM audit entry per call)
and a read of the autonomy state.

POST /api/halt {operator, reason} -> 200; POST /api/rearm {operator, reason, strategy?, force?} -> 200, 409 when
refused (a triggering condition still present without force, nothing to rearm), 503 when the engine holds the
state but did not answer. GET /api/autonomy: the `autonomy` section of the status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from hftops.config.schema import Config
from hftops.control.audit import OPERATOR_PATTERN, AuditEvent
from hftops.control.autonomy_ops import AutonomyRefused, AutonomyUnavailable, halt, rearm

HALT_PATH = "/api/halt"
REARM_PATH = "/api/rearm"
AUTONOMY_PATHS = frozenset({HALT_PATH, REARM_PATH})


class HaltBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator: str = Field(pattern=OPERATOR_PATTERN, description="the named human who halts (audit actor)")
    reason: str = Field(min_length=1, max_length=500, description="why (kept with the transition and the audit)")


class RearmBody(HaltBody):
    strategy: str | None = Field(
        None, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$", description="lift this strategy's quarantine only"
    )
    force: StrictBool = Field(False, description="rearm although the triggering condition is still present")


def add_autonomy_routes(
    app: FastAPI, config: Config, status: Callable[[], Any], *, actor: Callable[..., str], record: Callable[..., None]
) -> None:
    def outcome(call: Callable[[], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        try:
            return 200, {"ok": True, **call()}
        except AutonomyRefused as exc:
            return 409, {"ok": False, "refused": True, "error": str(exc)}
        except AutonomyUnavailable as exc:
            return 503, {"ok": False, "error": str(exc)}

    @app.post(HALT_PATH)
    async def halt_route(request: Request, body: HaltBody) -> JSONResponse:
        who = actor(request, body)
        code, content = await asyncio.to_thread(outcome, lambda: halt(config, who, body.reason))
        record(
            AuditEvent.API_CALL_HALT,
            request,
            body,
            {"status": code, "mode": content.get("mode"), "error": content.get("error")},
        )
        return JSONResponse(status_code=code, content=content)

    @app.post(REARM_PATH)
    async def rearm_route(request: Request, body: RearmBody) -> JSONResponse:
        who = actor(request, body)
        code, content = await asyncio.to_thread(
            outcome, lambda: rearm(config, who, body.reason, strategy=body.strategy, force=body.force)
        )
        record(
            AuditEvent.API_CALL_REARM,
            request,
            body,
            {
                "status": code,
                "mode": content.get("mode"),
                "refused": bool(content.get("refused")),
                "forced_over": content.get("forced_over") or [],
                "error": content.get("error"),
            },
        )
        return JSONResponse(status_code=code, content=content)

    @app.get("/api/autonomy")
    async def autonomy() -> dict[str, Any]:
        full = await status()
        return dict(full.get("autonomy") or {})
