"""The engine command `flatten` (see engine.commands): args {scope, id, deadline_s, trigger}; answers at once
with the job's id - the job's report follows on ops:events:flatten - so the command inbox is never held
for the length of a flatten (a `halt` sent meanwhile is answered at once)."""

from __future__ import annotations

from typing import Any

from hftops.engine.commands import Command, CommandRefused, Handler
from hftops.ops.flatten_job import FlattenBusy, FlattenTrigger
from hftops.ops.position_flattener import PositionFlattener


def flatten_handler(flattener: PositionFlattener) -> Handler:
    async def handle(command: Command) -> dict[str, Any]:
        args = command.args
        deadline = args.get("deadline_s")
        try:
            deadline_s = None if deadline is None else float(deadline)
            job = flattener.request(
                str(args.get("scope") or "all"),
                str(args.get("id") or ""),
                deadline_s=deadline_s,
                trigger=str(args.get("trigger") or FlattenTrigger.MANUAL),
                operator=command.operator,
            )
        except FlattenBusy as exc:
            raise CommandRefused(str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise CommandRefused(f"flatten refused: {exc}") from None
        return {
            "id": job.id,
            "scope": job.scope,
            "scope_id": job.scope_id,
            "trigger": job.trigger,
            "deadline_s": job.deadline_s,
            "started_ns": job.started_ns,
        }

    return handle
