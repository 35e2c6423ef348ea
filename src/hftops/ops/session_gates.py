"""The session gates of the chain: SessionGate (phase filtering) first, FlattenGate second.

SessionGate, by the symbol's phase (TrackGate):
  OPEN                   everything passes
  CLOSE_ONLY             cancels, force-flat, and NEW/AMEND that strictly reduce the same strategy's position:
                         the quantity is clamped so position + resting reducing orders never flip it
  FORCE_FLAT             cancels and force-flat only
  PRE_OPEN, CLOSED, INIT cancels only
Every drop is a REJECT `session_phase` (the strategy hears it through on_reject) and a counter per
(strategy, symbol, phase).

FlattenGate: while the symbol's phase is FORCE_FLAT only closing orders (cancels and force-flat) pass
(`flatten_only`), whatever gate precedes it: a strategy must not reopen what is being flattened. (Within a
running flatten job's scope the flattener's own gate, `FlattenActiveGate`, does the same.)
"""

from __future__ import annotations

from hftops.engine.state import EngineState
from hftops.model.orders import ACCEPTED, ZERO, GateDecision, GateResult, Intent, IntentKind, RejectReason, Side
from hftops.model.phases import Phase
from hftops.ops.track_gate import TrackGate

_OPEN = Phase.OPEN
_CLOSE_ONLY = Phase.CLOSE_ONLY
_FORCE_FLAT_PHASE = Phase.FORCE_FLAT
_CANCEL = IntentKind.CANCEL
_FORCE_FLAT = IntentKind.FORCE_FLAT
_AMEND = IntentKind.AMEND
_SELL = Side.SELL
_ZERO = ZERO
_REJECT = GateDecision.REJECT
_SESSION_PHASE = RejectReason.SESSION_PHASE
# enum .name/.value are descriptors (slow on 3.11): a refusal's text is built from plain strings
_PHASE_NAME = {p: p.name for p in Phase}
_KIND_NAME = {k: k.value for k in IntentKind}
_SIDE_NAME = {s: s.value for s in Side}


class SessionGate:
    name = "session"

    def __init__(self, tracks: TrackGate) -> None:
        self._tracks = tracks
        self._cached = tracks.cached_phases().get  # hot path: one dict lookup; unseen symbols resolve once
        self.drops: dict[tuple[str, str, str], int] = {}  # (strategy, symbol, phase) -> dropped intents

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        phase = self._cached(intent.symbol) or self._tracks.phase_of(intent.symbol)
        if phase is _OPEN:
            return ACCEPTED
        kind = intent.kind
        if kind is _CANCEL:
            return ACCEPTED
        if kind is _FORCE_FLAT:
            if phase is _CLOSE_ONLY or phase is _FORCE_FLAT_PHASE:
                return ACCEPTED
            return self._drop(intent, phase, "the market is not trading: nothing can be flattened now")
        if phase is _CLOSE_ONLY:
            return self._reducing_only(intent, state)
        if phase is _FORCE_FLAT_PHASE:
            return self._drop(intent, phase, "the track is being flattened: only cancels and force-flat pass")
        return self._drop(intent, phase, "no new orders; cancels pass")

    def _reducing_only(self, intent: Intent, state: EngineState) -> GateResult:
        sid, symbol, side = intent.strategy_id, intent.symbol, intent.side
        if side is None:  # IntentShapeGate refuses these before; never let one through here
            return self._drop(intent, _CLOSE_ONLY, "{} without a side", _KIND_NAME[intent.kind])
        position = state.positions.qty(sid, symbol)
        # resting orders on the same side reduce too: count them, so that all of them filling cannot flip
        resting = state.orders.pending_qty(sid, symbol, side)
        if intent.kind is _AMEND and intent.client_order_id is not None:
            amended = state.orders.get(intent.client_order_id)
            if amended is not None and amended.side is side:
                resting -= amended.remaining_qty
        room = position - resting if side is _SELL else -position - resting  # what may still be closed
        if room <= _ZERO:
            if not position:
                return self._drop(intent, _CLOSE_ONLY, "only reducing orders pass and {} is flat", sid)
            return self._drop(
                intent,
                _CLOSE_ONLY,
                "only orders reducing {}'s position pass; position {}, {} resting {}",
                sid,
                position,
                _SIDE_NAME[side],
                resting,
            )
        if intent.qty <= room:
            return ACCEPTED
        return GateResult(
            GateDecision.CLAMP,
            RejectReason.SESSION_PHASE,
            room,
            self.name,
            "{} CLOSE_ONLY: clamped to {} so the position ({}) is not flipped",
            (symbol, room, position),
        )

    def _drop(self, intent: Intent, phase: Phase, why: str, *args: object) -> GateResult:
        """Counts the drop; the refusal's sentence (`why` formatted with `args`) is built only when read."""
        name = _PHASE_NAME[phase]
        key = (intent.strategy_id, intent.symbol, name)
        drops = self.drops
        drops[key] = drops.get(key, 0) + 1
        template = "{} {} refused: session phase {}; " + why
        return GateResult(
            _REJECT, _SESSION_PHASE, None, "session", template, (_KIND_NAME[intent.kind], intent.symbol, name, *args)
        )

    def drops_as_list(self) -> list[dict[str, object]]:
        return [{"strategy": s, "symbol": y, "phase": p, "count": n} for (s, y, p), n in sorted(self.drops.items())]


class FlattenGate:
    name = "flatten"

    def __init__(self, tracks: TrackGate) -> None:
        self._tracks = tracks
        self.drops: dict[tuple[str, str], int] = {}  # (strategy, symbol) -> intents refused for the phase

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        kind = intent.kind
        if kind is _CANCEL or kind is _FORCE_FLAT:
            return ACCEPTED
        tracks = self._tracks
        if tracks.force_flat_tracks and tracks.phase_of(intent.symbol) is _FORCE_FLAT_PHASE:
            key = (intent.strategy_id, intent.symbol)
            self.drops[key] = self.drops.get(key, 0) + 1
            text = (
                f"{_KIND_NAME[kind]} {intent.symbol} refused: its track is FORCE_FLAT; only cancels and force-flat pass"
            )
            return GateResult(_REJECT, RejectReason.FLATTEN_ONLY, None, "flatten", text)
        return ACCEPTED
