"""The HALT latch as the engine honours it in this issue: a gate that refuses every NEW/AMEND while the
latch file `<data>/state/autonomy_latch.json` (written by `trading emergency-stop`) says HALT.

Deliberately minimal: cancels still pass; the full autonomy ladder (reduce-only, flatten, re-arm rules)
is issue 5's and plugs into the same chain slot. An unreadable latch file counts as HALT: a damaged
safety latch must fail closed.
"""

from __future__ import annotations

import json
from typing import Any

from hftops.config.paths import DataPaths
from hftops.engine.state import EngineState
from hftops.model.orders import ACCEPTED, GateDecision, GateResult, Intent, IntentKind, RejectReason

# Same file as hftops.control.latch.LATCH_FILE (the engine does not import the control package).
LATCH_FILE = "autonomy_latch.json"


def halt_latch(paths: DataPaths) -> dict[str, Any] | None:
    """The latch when it says HALT (or cannot be read), else None."""
    path = paths.state / LATCH_FILE
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"mode": "HALT", "reason": f"latch file {path} unreadable: {exc.strerror}"}
    try:
        data = json.loads(raw)
    except ValueError:
        return {"mode": "HALT", "reason": f"latch file {path} is not valid JSON"}
    if not isinstance(data, dict):
        return {"mode": "HALT", "reason": f"latch file {path} is not a JSON object"}
    return data if str(data.get("mode", "")).upper() == "HALT" else None


class HaltGate:
    name = "halt_latch"

    def __init__(self) -> None:
        self.latch: dict[str, Any] | None = None

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        latch = self.latch
        if latch is None or intent.kind is IntentKind.CANCEL:
            return ACCEPTED
        return GateResult(
            GateDecision.REJECT,
            RejectReason.AUTONOMY_MODE,
            None,
            self.name,
            f"HALT latch ({latch.get('reason', '?')} by {latch.get('by', '?')}): no new orders until `trading rearm`",
        )
