"""The `sessions` part of status: taken from the running engine's stats, empty when the engine is not
running, and shown as a table with each track's next transition."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from hftops.control.session_view import session_metric_families, session_renderables, sessions_view

SESSIONS = {
    "crypto": {"phase": "OPEN", "next_phase": None, "next_at": None, "calendar": "24/7", "timezone": "UTC"},
    "stock": {
        "phase": "CLOSED",
        "next_phase": "PRE_OPEN",
        "next_at": "2026-11-23T08:30:00+08:00",
        "calendar": "XTAI",
        "timezone": "Asia/Taipei",
    },
}
FLOW: dict[str, Any] = {"stats": {"engine": {"sessions": SESSIONS}}}


def test_sessions_come_from_the_running_engine() -> None:
    assert sessions_view({"engine": {"state": "running"}}, FLOW) == SESSIONS
    assert sessions_view({"engine": {"state": "stopped"}}, FLOW) == {}
    assert sessions_view({"engine": {"state": "running"}}, {"stats": {}}) == {}


def test_table_shows_an_open_market_beside_a_scheduled_one() -> None:
    console = Console(width=140, record=True)
    for part in session_renderables(SESSIONS):
        console.print(part)
    text = console.export_text()
    assert "crypto" in text and "none ahead" in text
    assert "stock" in text and "PRE_OPEN" in text and "2026-11-23T08:30:00+08:00" in text
    assert session_renderables({}) == []


def test_metrics_families() -> None:
    gate = {
        "transitions": [{"track": "stock", "phase": "CLOSED", "count": 2}],
        "drops": [{"strategy": "mm1", "symbol": "2330", "phase": "CLOSE_ONLY", "count": 3}],
    }
    families = {f.name: f for f in session_metric_families(SESSIONS, gate)}
    assert {s.labels["track"]: s.value for s in families["hftops_session_phase"].samples} == {
        "crypto": 2.0,
        "stock": 5.0,
    }
    (drop,) = [s for s in families["hftops_session_dropped_intents"].samples if s.name.endswith("_total")]
    assert (drop.labels, drop.value) == ({"strategy": "mm1", "symbol": "2330", "phase": "CLOSE_ONLY"}, 3.0)
