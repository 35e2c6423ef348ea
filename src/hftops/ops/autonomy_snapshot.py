"""The autonomy controller as operators read it (`status --json` key `autonomy`, the engine's stats)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hftops.ops.modes import Mode

if TYPE_CHECKING:
    from hftops.ops.autonomy_state import AutonomyController


def iso(ns: int | None) -> str | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def autonomy_snapshot(c: AutonomyController) -> dict[str, Any]:
    """mode, reasons, since, manual_rearm_required, strategies (+ details, grace, cooldown, counters)."""
    now = c.clock()
    entries = c.entries()
    strategies: dict[str, Any] = {sid: {"state": "normal", "reasons": [], "since": None} for sid in c.strategy_ids}
    for e in entries:
        if e.strategy_id:
            view = strategies.setdefault(e.strategy_id, {"state": "normal", "reasons": [], "since": None})
            view["state"] = "quarantined"
            view["reasons"].append(e.reason.value)
            view["since"] = min(filter(None, (view["since"], iso(e.since_ns))))
    details = []
    for e in entries:
        left = None
        if not e.latched and e.clear_since_ns is not None:
            left = round(max(0, e.clear_since_ns + c.cooldown_ns - now) / 1e9, 3)
        details.append(
            {
                **e.to_json(),
                "scope": e.scope.value,
                "since": iso(e.since_ns),
                "mode": e.mode.value,
                "recovers_in_s": left,
            }
        )
    since = c.since_ns
    if c.mode is Mode.NORMAL and c.quarantined:
        since = min(e.since_ns for e in entries if e.strategy_id)
    return {
        "mode": c.ladder_mode.value,
        "platform_mode": c.mode.value,
        "reasons": sorted({e.reason.value for e in entries if not e.strategy_id}),
        "since": iso(since),
        "since_ns": since,
        "manual_rearm_required": any(e.latched for e in entries),
        "strategies": strategies,
        "details": details,
        "grace_remaining_s": round(max(0, c.grace_until_ns - now) / 1e9, 3),
        "cooldown_s": c.cooldown_ns / 1e9,
        "halt_episode": c.halt_episode,
        "persist_error": c.persist_error,
        "counters": dict(c.counters),
    }
