"""The FlattenActiveGate (slot "flatten" of the chain, after the session's FlattenGate): while a flatten job
runs, its scope takes only cancels and flatten orders, so a strategy cannot reopen what is being closed."""

from __future__ import annotations

from collections.abc import Mapping

from hftops.model.orders import ACCEPTED, GateDecision, GateResult, Intent, IntentKind, RejectReason
from hftops.ops.flatten_job import FlattenJob


class FlattenActiveGate:
    """While a flatten job runs, its scope takes only cancels and flatten orders: a strategy must not
    reopen what is being closed. Refusals carry `flatten_only`."""

    name = "flatten_active"

    def __init__(self, running: Mapping[tuple[str, str], FlattenJob]) -> None:
        self._running = running

    def check(self, intent: Intent, state: object) -> GateResult:
        if not self._running or intent.kind is IntentKind.CANCEL or intent.kind is IntentKind.FORCE_FLAT:
            return ACCEPTED
        for job in self._running.values():
            if job.covers(intent.strategy_id, intent.symbol):
                return GateResult(GateDecision.REJECT, RejectReason.FLATTEN_ONLY, None, self.name, job.gate_detail)
        return ACCEPTED
