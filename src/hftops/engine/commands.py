"""The running engine's command inbox: operator commands (halt, rearm, flatten, ...) arrive on the Redis
stream `ops:engine:cmd` and every answer goes to `ops:engine:reply` under the command's id.

Commands are control traffic, not data: the inbox reads from the stream's tail at start (a command sent
while the engine was down is answered by nobody and the caller's wait times out with that message), and
handlers run one at a time in arrival order, so two operators racing see one outcome each. A handler
raises `CommandRefused` to refuse with a reason; any other exception is answered as an internal error
and logged, never kills the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import structlog

from hftops.model.streams import ENGINE_CMD_MAXLEN, ENGINE_CMD_STREAM, ENGINE_REPLY_STREAM

Handler = Callable[["Command"], Awaitable[dict[str, Any]]]


class CommandRefused(Exception):
    """The command was understood and refused; the message says why and what to do."""


class Command:
    __slots__ = ("args", "cmd", "id", "operator", "reason", "ts_ns")

    def __init__(self, id: str, cmd: str, args: dict[str, Any], operator: str, reason: str, ts_ns: int) -> None:
        self.id = id
        self.cmd = cmd
        self.args = args
        self.operator = operator
        self.reason = reason
        self.ts_ns = ts_ns

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Command:
        def text(key: str) -> str:
            return fields.get(key.encode(), b"").decode(errors="replace")

        args = json.loads(text("args") or "{}")
        if not isinstance(args, dict):
            raise ValueError("args must be a JSON object")
        return cls(text("id"), text("cmd"), args, text("operator"), text("reason"), int(text("ts_ns") or 0))


class CommandInbox:
    def __init__(self, redis: aioredis.Redis, log: Any = None) -> None:
        self.redis = redis
        self.log = log or structlog.get_logger("engine").bind(component="engine")
        self.handlers: dict[str, Handler] = {}
        self.counters = {"received": 0, "ok": 0, "refused": 0, "failed": 0, "malformed": 0}

    def register(self, name: str, handler: Handler) -> None:
        if name in self.handlers:
            raise ValueError(f"engine command {name!r} registered twice")
        self.handlers[name] = handler

    async def run(self, stopping: asyncio.Event, poll_ms: int = 200) -> None:
        last = "$"
        while not stopping.is_set():
            try:
                batch = await self.redis.xread({ENGINE_CMD_STREAM: last}, count=16, block=poll_ms)
            except Exception as exc:  # Redis away: the caller times out; we retry
                self.log.warning("engine_cmd_read_failed", error=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 0.5)
                continue
            replies: list[Any] = list(batch or ())
            for _stream, entries in replies:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    await self._handle(fields)

    async def _handle(self, fields: dict[bytes, bytes]) -> None:
        self.counters["received"] += 1
        try:
            command = Command.from_fields(fields)
        except (ValueError, UnicodeDecodeError) as exc:
            self.counters["malformed"] += 1
            raw_id = fields.get(b"id", b"").decode(errors="replace")
            self.log.error("engine_cmd_malformed", id=raw_id, error=str(exc))
            await self._reply(raw_id, False, {"error": f"malformed command: {exc}"})
            return
        handler = self.handlers.get(command.cmd)
        if handler is None:
            self.counters["refused"] += 1
            await self._reply(
                command.id, False, {"error": f"unknown engine command {command.cmd!r}; known: {sorted(self.handlers)}"}
            )
            return
        self.log.info("engine_cmd", id=command.id, cmd=command.cmd, operator=command.operator, args=command.args)
        try:
            result = await handler(command)
        except CommandRefused as exc:
            self.counters["refused"] += 1
            self.log.warning("engine_cmd_refused", id=command.id, cmd=command.cmd, reason=str(exc))
            await self._reply(command.id, False, {"error": str(exc), "refused": True})
            return
        except Exception as exc:
            self.counters["failed"] += 1
            self.log.exception("engine_cmd_failed", id=command.id, cmd=command.cmd)
            await self._reply(
                command.id, False, {"error": f"engine failed on {command.cmd}: {type(exc).__name__}: {exc}"}
            )
            return
        self.counters["ok"] += 1
        await self._reply(command.id, True, result)

    async def _reply(self, command_id: str, ok: bool, result: dict[str, Any]) -> None:
        try:
            await self.redis.xadd(
                ENGINE_REPLY_STREAM,
                {"id": command_id, "ok": "1" if ok else "0", "result": json.dumps(result, default=str)},
                maxlen=ENGINE_CMD_MAXLEN,
                approximate=True,
            )
        except Exception as exc:
            self.log.error("engine_cmd_reply_failed", id=command_id, error=f"{type(exc).__name__}: {exc}")
