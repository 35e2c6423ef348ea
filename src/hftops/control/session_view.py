"""The `sessions` part of status: each track's phase and next transition as the running engine enforces
them, its terminal table and its Prometheus families."""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from hftops.model.phases import Phase

_PHASE_STYLE = {"OPEN": "green", "CLOSE_ONLY": "yellow", "FORCE_FLAT": "bold red", "PRE_OPEN": "cyan"}


def sessions_view(components: dict[str, Any], flow: dict[str, Any]) -> dict[str, Any]:
    """track -> phase, next_phase, next_at (and since, calendar, ...) from the engine's stats; {} while the
    engine is not running: a stopped engine's last word is not the market's phase."""
    if (components.get("engine") or {}).get("state") != "running":
        return {}
    engine = (flow.get("stats") or {}).get("engine") or {}
    return dict(engine.get("sessions") or {})


def session_renderables(sessions: dict[str, Any]) -> list[RenderableType]:
    if not sessions:
        return []
    table = Table(title="sessions", title_justify="left")
    for col in ("track", "phase", "since", "next", "at", "calendar"):
        table.add_column(col)
    for track, info in sessions.items():
        phase = str(info.get("phase", "?"))
        table.add_row(
            track,
            Text(phase, _PHASE_STYLE.get(phase, "dim")),
            str(info.get("since") or ""),
            str(info.get("next_phase") or "none ahead"),
            str(info.get("next_at") or ""),
            f"{info.get('calendar', '')} {info.get('timezone', '')}".strip(),
        )
    return [table]


def session_metric_families(sessions: dict[str, Any], gate: dict[str, Any]) -> list[Metric]:
    """hftops_session_phase{track} (0 INIT .. 5 CLOSED), transitions and session-filtered intents."""
    phase = GaugeMetricFamily(
        "hftops_session_phase",
        "track phase: 0 INIT 1 PRE_OPEN 2 OPEN 3 CLOSE_ONLY 4 FORCE_FLAT 5 CLOSED",
        labels=["track"],
    )
    for track, info in sessions.items():
        name = str(info.get("phase", ""))
        if name in Phase.__members__:
            phase.add_metric([track], float(Phase[name]))
    transitions = CounterMetricFamily(
        "hftops_session_transitions", "phase changes per track and phase entered", labels=["track", "phase"]
    )
    for row in gate.get("transitions") or []:
        transitions.add_metric([str(row["track"]), str(row["phase"])], float(row["count"]))
    drops = CounterMetricFamily(
        "hftops_session_dropped_intents", "intents refused by the session phase", labels=["strategy", "symbol", "phase"]
    )
    for row in gate.get("drops") or []:
        drops.add_metric([str(row["strategy"]), str(row["symbol"]), str(row["phase"])], float(row["count"]))
    return [phase, transitions, drops]
