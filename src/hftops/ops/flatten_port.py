"""What the PositionFlattener needs from the engine (`FlattenPort`) and the running engine as it provides it
(`EngineFlattenPort`): its book, its broker connection, its gate chain and order router. Orders go out
through `Engine.send_flatten_order` (gates, then the router), so they are tracked, booked and published
like every other order."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from hftops.model.ops_events import FlattenReport
from hftops.model.orders import GateResult, Intent
from hftops.model.streams import OpsKind

if TYPE_CHECKING:
    from hftops.engine.service import Engine


class FlattenPort(Protocol):
    """What the flattener needs from the engine."""

    def ready(self) -> bool: ...
    def book(self) -> dict[str, dict[str, Decimal]]: ...  # symbol -> {strategy: engine qty != 0}
    def open_orders(self, strategy_id: str) -> list[str]: ...  # client order ids of its open orders
    def all_symbols(self) -> set[str]: ...
    def symbols_of_track(self, track: str) -> set[str]: ...  # KeyError for an unknown track
    async def cancel_symbols(self, symbols: Collection[str]) -> list[str]: ...  # problems, empty when fine
    async def cancel_orders(self, client_order_ids: Collection[str]) -> list[str]: ...
    async def broker_positions(self) -> dict[str, Decimal]: ...
    async def resync(self, symbols: Collection[str]) -> None: ...
    def next_client_order_id(self, strategy_id: str) -> str: ...
    def send(self, intent: Intent) -> GateResult | None: ...  # the gate's refusal, or None when sent
    def publish(self, report: FlattenReport) -> None: ...


def _problem(what: str, exc: BaseException) -> str:
    return f"{what}: {type(exc).__name__}: {exc}"


class EngineFlattenPort:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ready(self) -> bool:
        return self.engine.started and not self.engine.stopping.is_set()

    def book(self) -> dict[str, dict[str, Decimal]]:
        out: dict[str, dict[str, Decimal]] = {}
        for pos in self.engine.state.positions:
            if pos.qty != 0:
                out.setdefault(pos.symbol, {})[pos.strategy_id] = pos.qty
        return out

    def open_orders(self, strategy_id: str) -> list[str]:
        engine = self.engine
        known = {o.client_order_id for o in engine.state.orders if o.strategy_id == strategy_id}
        known |= {o.client_order_id for o in engine.execution.router.open_orders() if o.strategy_id == strategy_id}
        return sorted(known)

    def all_symbols(self) -> set[str]:
        engine = self.engine
        return set(engine.symbols) | set(self.book()) | {o.symbol for o in engine.execution.router.open_orders()}

    def symbols_of_track(self, track: str) -> set[str]:
        sessions = getattr(self.engine, "sessions", None)
        if sessions is None:
            raise KeyError("this engine has no session governor (config `tracks`)")
        return set(sessions.symbols_of_track(track))

    async def cancel_symbols(self, symbols: Collection[str]) -> list[str]:
        """DELETE allOpenOrders on each symbol in scope that has a resting order - ours or anyone's, as the
        venue lists them (one GET openOrders) - all at once; the user-data stream reports the cancellations."""
        rest, router = self.engine.execution.rest, self.engine.execution.router
        wanted = set(symbols)
        resting = {o.symbol for o in router.open_orders()}
        try:
            resting |= {o.symbol for o in await rest.open_orders()}
        except Exception as exc:  # cannot list them: cancel on every symbol in scope instead
            resting = wanted
            problems = [_problem("list open orders", exc)]
        else:
            problems = []
        targets = sorted(resting & wanted)
        results = await asyncio.gather(*(rest.cancel_all(s) for s in targets), return_exceptions=True)
        return problems + [
            _problem(f"cancel all {s}", r)
            for s, r in zip(targets, results, strict=True)
            if isinstance(r, BaseException)
        ]

    async def cancel_orders(self, client_order_ids: Collection[str]) -> list[str]:
        router = self.engine.execution.router
        results = await asyncio.gather(*(router.cancel(c) for c in client_order_ids), return_exceptions=True)
        return [
            _problem(f"cancel {c}", r)
            for c, r in zip(client_order_ids, results, strict=True)
            if isinstance(r, BaseException) and not isinstance(r, KeyError)
        ]

    async def broker_positions(self) -> dict[str, Decimal]:
        rows = await self.engine.execution.rest.position_risk()
        held: dict[str, Decimal] = {}
        for row in rows:  # one-way mode: one BOTH row per symbol; hedge mode would list LONG and SHORT
            if row.positionAmt != 0:
                held[row.symbol] = held.get(row.symbol, Decimal(0)) + row.positionAmt
        return held

    async def resync(self, symbols: Collection[str]) -> None:
        await self.engine.execution.router.resync(symbols)

    def next_client_order_id(self, strategy_id: str) -> str:
        return self.engine.execution.router.ids.next(strategy_id)

    def send(self, intent: Intent) -> GateResult | None:
        return self.engine.send_flatten_order(intent)

    def publish(self, report: FlattenReport) -> None:
        self.engine.publisher.publish_ops(OpsKind.FLATTEN, report, "ok" if report.ok else "failed")
