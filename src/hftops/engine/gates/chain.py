"""The gate chain: an ordered list of gates, each answering accept / reject-with-reason / clamp.

Issue 5's safety gates (session phase, flatten, autonomy mode, strategy governor) implement the same
`Gate` protocol and are placed before the limit gates by `build_gate_chain(..., safety_gates=...)`.
Hot path: an accepting gate returns the shared `ACCEPTED` result, so a clean pass allocates nothing
but the returned tuple.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from hftops.engine.state import EngineState
from hftops.model.orders import ACCEPTED, GateDecision, GateResult, Intent

_ACCEPT = GateDecision.ACCEPT


class Gate(Protocol):
    name: str

    def check(self, intent: Intent, state: EngineState) -> GateResult:
        """ACCEPTED, a REJECT with a RejectReason, or a CLAMP with the smaller qty."""
        ...


class GateCounters:
    """Counts per (strategy, symbol, reason) for rejections and clamps; plain dicts, read by stats/metrics."""

    __slots__ = ("accepted", "clamped", "evaluated", "rejected")

    def __init__(self) -> None:
        self.evaluated = 0
        self.accepted = 0
        self.rejected: dict[tuple[str, str, str], int] = {}
        self.clamped: dict[tuple[str, str, str], int] = {}

    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "evaluated": self.evaluated,
            "accepted": self.accepted,
            "rejected": [
                {"strategy": s, "symbol": y, "reason": r, "count": n} for (s, y, r), n in sorted(self.rejected.items())
            ],
            "clamped": [
                {"strategy": s, "symbol": y, "reason": r, "count": n} for (s, y, r), n in sorted(self.clamped.items())
            ],
        }


class GateChain:
    """Evaluates every gate in order. A REJECT stops the chain; a CLAMP passes the smaller intent on."""

    def __init__(self, gates: Sequence[Gate]) -> None:
        names = [g.name for g in gates]
        if len(set(names)) != len(names):
            raise ValueError(f"gate names must be unique, got {names}")
        self._gates: tuple[Gate, ...] = tuple(gates)
        self._checks = tuple(g.check for g in gates)  # bound once: no attribute lookup per gate per intent
        self.counters = GateCounters()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self._gates)

    def evaluate(self, intent: Intent, state: EngineState) -> tuple[Intent | None, GateResult]:
        """Returns (intent to send, last non-accept result or ACCEPTED); (None, rejection) when refused."""
        counters = self.counters
        counters.evaluated += 1
        verdict = ACCEPTED
        for check in self._checks:
            result = check(intent, state)
            if result is ACCEPTED or result.decision is _ACCEPT:
                continue
            # RejectReason is a StrEnum: the member keys (and compares, hashes, encodes) as its value string,
            # and skips the enum `.value` property lookup
            key = (intent.strategy_id, intent.symbol, result.reason or "")
            if result.decision is GateDecision.REJECT:
                counters.rejected[key] = counters.rejected.get(key, 0) + 1
                return None, result
            counters.clamped[key] = counters.clamped.get(key, 0) + 1
            intent = msgspec.structs.replace(intent, qty=result.qty)
            verdict = result
        counters.accepted += 1
        return intent, verdict
