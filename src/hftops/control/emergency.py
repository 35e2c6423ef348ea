"""The first half of `trading emergency-stop`, light enough for the CLI's fast path: persist the HALT latch
and the restart block, then ask a running supervisor to kill every pipeline process."""

from __future__ import annotations

from typing import Any

from hftops.config.paths import DataPaths
from hftops.control import latch
from hftops.control.client import SupervisorClient, SupervisorUnavailable


def emergency_stop_through_supervisor(paths: DataPaths, operator: str, reason: str) -> dict[str, Any] | None:
    """The latch is on disk before anything is killed, whatever happens next. The supervisor's answer, or
    None when none answers (the caller then kills by PID file)."""
    latch.write_halt_latch(paths, operator, reason)
    latch.block_restarts(paths, operator, "emergency-stop")
    client = SupervisorClient(paths)
    if not client.running():
        return None
    try:
        code, body = client.request(
            "POST",
            "/api/emergency-stop",
            json={"confirm": True, "operator": operator, "reason": reason},
            timeout_s=5.0,
        )
    except SupervisorUnavailable:
        return None
    return body if code == 200 and isinstance(body, dict) else None
