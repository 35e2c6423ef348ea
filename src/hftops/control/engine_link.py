"""Send a command to the running engine and wait for its answer (see `hftops.engine.commands`)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis

from hftops.model.streams import ENGINE_CMD_MAXLEN, ENGINE_CMD_STREAM, ENGINE_REPLY_STREAM


class EngineCommandError(Exception):
    """The engine refused the command, failed on it, or did not answer in time; the message says which."""

    def __init__(self, message: str, *, refused: bool = False, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        self.result = result or {}


def engine_command(
    redis_url: str,
    cmd: str,
    args: dict[str, Any] | None = None,
    *,
    operator: str = "",
    reason: str = "",
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Blocking: XADD the command, then read replies until ours arrives or `timeout_s` passes."""
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout_s + 2.0)
    command_id = uuid.uuid4().hex
    try:
        # Read replies from the stream's current end, taken before sending so ours cannot be missed.
        info = client.xinfo_stream(ENGINE_REPLY_STREAM) if client.exists(ENGINE_REPLY_STREAM) else None
        last = info["last-generated-id"] if info else "0-0"
        last = last.decode() if isinstance(last, bytes) else last
        client.xadd(
            ENGINE_CMD_STREAM,
            {
                "id": command_id,
                "cmd": cmd,
                "args": json.dumps(args or {}),
                "operator": operator,
                "reason": reason,
                "ts_ns": str(time.time_ns()),
            },
            maxlen=ENGINE_CMD_MAXLEN,
            approximate=True,
        )
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            batch: Any = client.xread({ENGINE_REPLY_STREAM: last}, count=64, block=max(1, int(left * 1000)))
            for _stream, entries in batch or ():
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    if fields.get(b"id", b"").decode() != command_id:
                        continue
                    result = json.loads(fields.get(b"result", b"{}"))
                    if fields.get(b"ok") == b"1":
                        return result
                    raise EngineCommandError(
                        str(result.get("error", "engine refused")), refused=bool(result.get("refused")), result=result
                    )
        raise EngineCommandError(
            f"the engine did not answer {cmd!r} within {timeout_s:g} s: is it running "
            f"(`trading status`) and connected to {redis_url}?"
        )
    finally:
        client.close()
