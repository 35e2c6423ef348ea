"""How the engine holds the session layer: the governor built from config, the gates in the chain, the
cancels a transition calls for and the force-flat hand-off to the flattener. Kept here so the engine's
composition root gains a few lines only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hftops.config import Config
from hftops.config.paths import DataPaths
from hftops.engine.state import EngineState
from hftops.model.ops_events import SessionTransition
from hftops.model.orders import Intent, IntentKind
from hftops.model.phases import Phase
from hftops.ops.session_gates import FlattenGate, SessionGate
from hftops.ops.session_governor import ForceFlatHook, SessionGovernor
from hftops.ops.session_overrides import OVERRIDE_FILE
from hftops.ops.track_gate import default_open_from_env

CALENDAR_CACHE_DIR = "calendars"  # under $HFT_DATA_DIR/state: each calendar's sessions per year (a cache)


def build_session_governor(
    config: Config,
    *,
    environ: Mapping[str, str],
    clock: Callable[[], int],
    on_force_flat: ForceFlatHook | None,
    log: Any = None,
) -> SessionGovernor:
    state = DataPaths(config.data_dir).state
    return SessionGovernor(
        config.tracks,
        clock,
        state / OVERRIDE_FILE,
        on_force_flat=on_force_flat,
        symbols=config.venue.symbols,
        default_open=default_open_from_env(environ),
        calendar_cache=state / CALENDAR_CACHE_DIR,
        log=log,
    )


def session_gates(governor: SessionGovernor) -> tuple[SessionGate, FlattenGate]:
    """The first two safety gates of the chain, in DESIGN order: session phase, then flatten."""
    return SessionGate(governor.gate), FlattenGate(governor.gate)


def cancels_for(
    transitions: Iterable[SessionTransition], governor: SessionGovernor, state: EngineState
) -> list[Intent]:
    """CANCEL intents for the resting orders on the symbols of tracks that just left OPEN.

    An order placed while OPEN could otherwise fill after the close and add risk outside OPEN. Orders that
    only reduce a position are cancelled too; in CLOSE_ONLY the strategy may place them again (clamped).
    """
    tracks = {t.track for t in transitions if t.to_phase != Phase.OPEN.name}
    if not tracks:
        return []
    symbols: set[str] = set()
    for track in tracks:
        symbols |= governor.symbols_of_track(track)
    return [
        Intent(
            kind=IntentKind.CANCEL,
            strategy_id=o.strategy_id,
            symbol=o.symbol,
            client_order_id=o.client_order_id,
            tag="session_close",
        )
        for o in state.orders
        if o.symbol in symbols and governor.phase_of(o.symbol) is not Phase.OPEN
    ]


def request_track_flatten(flattener: Any, track: str, log: Any) -> None:
    """Hand a FORCE_FLAT track to the flattener; a flatten of that track already running is left alone."""
    try:
        flattener.request(scope="track", scope_id=track, trigger="force_flat")
    except Exception as exc:  # FlattenBusy (one is already running) or a refusal: say so, never raise
        log.warning("session_force_flat_not_started", track=track, reason=f"{type(exc).__name__}: {exc}")
