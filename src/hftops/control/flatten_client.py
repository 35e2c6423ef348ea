"""Ask the running engine to flatten (engine command `flatten`) and wait for the job's report, which the
engine publishes on ops:events:flatten (with the last reports also in its ops:stats entry, as a fallback
for a report the recorder has already trimmed from the stream). Used by `trading flatten` and the API."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import redis

from hftops.control.engine_link import EngineCommandError, engine_command
from hftops.model.ops_events import FlattenReport
from hftops.model.streams import F_DATA, STATS_HASH, OpsKind, ops_stream

REPORT_GRACE_S = 15.0  # beyond the deadline: the last round's orders, the broker re-read, publishing


@dataclass(frozen=True)
class FlattenOutcome:
    accepted: dict[str, Any]  # the engine's answer: id, scope, scope_id, trigger, deadline_s, started_ns
    report: FlattenReport | None  # None when not waited for
    after: str = "0-0"  # ops:events:flatten position taken before the command: its report comes later

    @property
    def job_id(self) -> str:
        return str(self.accepted["id"])

    @property
    def report_timeout_s(self) -> float:
        return float(self.accepted.get("deadline_s") or 120.0) + REPORT_GRACE_S


class FlattenReportMissing(Exception):
    """The engine accepted the flatten but no report arrived in time; the message says where to look."""


def _stream_end(client: redis.Redis, stream: str) -> str:
    if not client.exists(stream):
        return "0-0"
    info: Any = client.xinfo_stream(stream)
    last = info["last-generated-id"]
    return last.decode() if isinstance(last, bytes) else str(last)


def _from_stats(client: redis.Redis, job_id: str) -> FlattenReport | None:
    raw: Any = client.hget(STATS_HASH, "engine")
    if raw is None:
        return None
    for entry in (json.loads(raw).get("flatten") or {}).get("recent", []):
        if entry.get("id") == job_id:
            return msgspec.convert(entry, FlattenReport)
    return None


def wait_report(client: redis.Redis, job_id: str, after: str, timeout_s: float) -> FlattenReport:
    stream = ops_stream(OpsKind.FLATTEN)
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        batch: Any = client.xread({stream: after}, count=64, block=max(1, int(min(left, 0.5) * 1000)))
        for _stream, entries in batch or ():
            for entry_id, fields in entries:
                after = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                report = msgspec.msgpack.decode(fields[F_DATA.encode()], type=FlattenReport)
                if report.id == job_id:
                    return report
        if not batch and (kept := _from_stats(client, job_id)) is not None:
            return kept
    raise FlattenReportMissing(
        f"flatten {job_id} was accepted but its report did not arrive within {timeout_s:g} s; "
        f"see `trading status` (engine flatten section) and `trading logs engine`"
    )


def request_flatten(
    redis_url: str,
    *,
    scope: str,
    scope_id: str = "",
    deadline_s: float | None = None,
    trigger: str = "manual",
    operator: str = "",
    reason: str = "",
    wait: bool = True,
    answer_timeout_s: float = 10.0,
) -> FlattenOutcome:
    """Blocking. EngineCommandError: refused (busy, bad scope) or no answer; FlattenReportMissing."""
    client = redis.Redis.from_url(redis_url, socket_timeout=answer_timeout_s + 5.0)
    try:
        after = _stream_end(client, ops_stream(OpsKind.FLATTEN))  # before the command: the report comes after
        args: dict[str, Any] = {"scope": scope, "id": scope_id, "trigger": trigger}
        if deadline_s is not None:
            args["deadline_s"] = deadline_s
        accepted = engine_command(
            redis_url, "flatten", args, operator=operator, reason=reason, timeout_s=answer_timeout_s
        )
        outcome = FlattenOutcome(accepted, None, after)
        if not wait:
            return outcome
        return FlattenOutcome(accepted, wait_report(client, outcome.job_id, after, outcome.report_timeout_s), after)
    finally:
        client.close()


def await_report(redis_url: str, outcome: FlattenOutcome) -> FlattenReport:
    """The report of a flatten accepted with `request_flatten(..., wait=False)`."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10.0)
    try:
        return wait_report(client, outcome.job_id, outcome.after, outcome.report_timeout_s)
    finally:
        client.close()


__all__ = [
    "EngineCommandError",
    "FlattenOutcome",
    "FlattenReportMissing",
    "await_report",
    "request_flatten",
    "wait_report",
]
