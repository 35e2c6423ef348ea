"""The `autonomy` key of `status --json`: the running engine's live view, else the persisted state (what the
next boot will restore), so a latch shows even while nothing runs."""

from __future__ import annotations

from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.ops.autonomy_store import AutonomyStore
from hftops.ops.manual_rearm import persisted_view

_LIVE_KEYS = (
    "mode",
    "platform_mode",
    "reasons",
    "since",
    "since_ns",
    "manual_rearm_required",
    "strategies",
    "details",
    "grace_remaining_s",
    "cooldown_s",
    "halt_episode",
    "persist_error",
)


def autonomy_view(components: dict[str, Any], flow: dict[str, Any], config: Config | None) -> dict[str, Any]:
    engine_up = (components.get("engine") or {}).get("state") == "running"
    live = ((flow.get("stats") or {}).get("engine") or {}).get("autonomy")
    if engine_up and isinstance(live, dict):
        return {**{k: live.get(k) for k in _LIVE_KEYS}, "source": "engine"}
    if config is None:
        return {}
    strategy_ids = tuple(s.id for s in config.engine.strategies if s.enabled)
    return persisted_view(AutonomyStore(DataPaths(config.data_dir).state), strategy_ids)
