"""Sample engine and safety-layer events, and publishing them the way the engine does (EventPublisher)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec

from hftops.bus.client import async_client
from hftops.engine.events import EventPublisher
from hftops.model.exec_events import PnlSnapshot, PositionRow, PositionsSnapshot, ReconEvent
from hftops.model.ops_events import (
    AutonomyTransition,
    EvidenceRecord,
    FlattenReport,
    FlattenSymbol,
    MarginEvent,
    SessionTransition,
)
from hftops.model.orders import Fill, OrderStatus, OrderType, OrderUpdate, Side
from hftops.model.streams import ExecKind, OpsKind, exec_stream, ops_stream

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
Event = tuple[ExecKind | OpsKind, msgspec.Struct]


def order(n: int, status: OrderStatus = OrderStatus.ACK, filled: str = "0", symbol: str = "BTCUSDT") -> OrderUpdate:
    return OrderUpdate(
        strategy_id="mm1",
        symbol=symbol,
        client_order_id=f"c-{n}",
        status=status,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=Decimal("0.010"),
        price=Decimal("100.5"),
        filled_qty=Decimal(filled),
        order_id=n,
        time_ns=T0 + n * 1_000_000,
    )


def fill(trade_id: int, symbol: str = "BTCUSDT", time_ns: int | None = None) -> Fill:
    return Fill(
        strategy_id="mom1",
        symbol=symbol,
        side=Side.SELL,
        qty=Decimal("0.002"),
        price=Decimal("101.25"),
        fee=Decimal("0.0000810"),
        client_order_id=f"c-{trade_id}",
        order_id=trade_id,
        trade_id=trade_id,
        time_ns=time_ns if time_ns is not None else T0 + trade_id * 1_000_000,
        is_maker=trade_id % 2 == 0,
    )


def positions(n: int) -> PositionsSnapshot:
    rows = [
        PositionRow(
            strategy_id=s,
            symbol="BTCUSDT",
            qty=Decimal("0.004") * (1 if s == "mm1" else -1),
            avg_price=Decimal("100.123456789012345678901"),
            realized_pnl=Decimal("-1.5"),
            fees=Decimal("0.01"),
            unrealized_pnl=Decimal("0.25"),
            mark_price=None if n == 0 else Decimal("100.2"),
        )
        for s in ("mm1", "mom1")
    ]
    return PositionsSnapshot(time_ns=T0 + n * 1_000_000_000, positions=rows, net={"BTCUSDT": Decimal(0)})


def pnl(n: int) -> PnlSnapshot:
    return PnlSnapshot(
        time_ns=T0 + n * 1_000_000_000,
        realized_pnl=Decimal("-1.5"),
        unrealized_pnl=Decimal("0.5"),
        fees=Decimal("0.02"),
        equity=Decimal("9999.0"),
        peak_equity=Decimal("10000"),
    )


def recon(n: int) -> ReconEvent:
    return ReconEvent(
        time_ns=T0 + n,
        kind="drift",
        symbol="ETHUSDT",
        local_qty=Decimal("0.1"),
        broker_qty=Decimal("0.2"),
        checks=2,
        since_ns=T0,
        detail="engine 0.1, broker 0.2",
        diff=Decimal("0.1"),
    )


def session(n: int) -> SessionTransition:
    return SessionTransition(
        time_ns=T0 + n,
        track="crypto",
        from_phase="PRE_OPEN",
        to_phase="OPEN",
        trading_day="2026-01-01",
        cause="schedule",
        next_phase="CLOSE_ONLY",
        next_at_ns=T0 + 10**12,
    )


def autonomy(n: int) -> AutonomyTransition:
    return AutonomyTransition(
        id=f"ev-{n}",
        time_ns=T0 + n,
        scope="platform",
        from_mode="NORMAL",
        to_mode="PLATFORM_REDUCE_ONLY",
        reasons=["db_write_stale"],
        trigger="db_write_stale",
    )


def evidence(n: int) -> EvidenceRecord:
    return EvidenceRecord(
        id=f"ev-{n}",
        time_ns=T0 + n,
        scope="platform",
        from_mode="NORMAL",
        to_mode="HALT",
        trigger="manual_operator",
        reasons=["manual_operator"],
        trigger_values={"db_write_age_s": "61.2"},
        thresholds={"db_write_age_s": "60"},
        health={"rss_mb": "120"},
        positions=[{"symbol": "BTCUSDT", "qty": "0.004"}],
        stream_lag={"md:sim:trade:BTCUSDT": "0"},
        process={"pid": "1"},
        log_tail=["line 'one'", "line \\two\\"],
    )


def flatten(n: int) -> FlattenReport:
    return FlattenReport(
        id=f"fl-{n}",
        time_ns=T0 + n,
        started_ns=T0,
        scope="all",
        trigger="halt",
        deadline_s=120.0,
        ok=True,
        symbols=[
            FlattenSymbol(
                symbol="BTCUSDT", start_qty="0.004", submitted="0.004", filled="0.004", remaining="0", failed=False
            )
        ],
    )


def margin(n: int) -> MarginEvent:
    return MarginEvent(time_ns=T0 + n, level="warning", ratio="0.82", used="820", available="180")


def one_of_each(n: int = 1) -> list[Event]:
    return [
        (ExecKind.ORDERS, order(n)),
        (ExecKind.FILLS, fill(n)),
        (ExecKind.POSITIONS, positions(n)),
        (ExecKind.PNL, pnl(n)),
        (ExecKind.RECON, recon(n)),
        (OpsKind.SESSION, session(n)),
        (OpsKind.AUTONOMY, autonomy(n)),
        (OpsKind.EVIDENCE, evidence(n)),
        (OpsKind.FLATTEN, flatten(n)),
        (OpsKind.MARGIN, margin(n)),
    ]


# rows each sample event makes in its table (a positions snapshot holds one row per strategy and symbol)
ROWS_PER_SAMPLE = {
    "orders": 1,
    "fills": 1,
    "positions": 2,
    "pnl": 1,
    "recon_events": 1,
    "session_transitions": 1,
    "autonomy_transitions": 1,
    "autonomy_evidence": 1,
    "flatten_reports": 1,
    "margin_events": 1,
}


def publish(redis_url: str, events: list[Event], venue: str = "sim") -> None:
    """XADD the events exactly as the engine's EventPublisher writes them."""

    async def run() -> None:
        client = async_client(redis_url)
        publisher = EventPublisher(client, venue)
        try:
            for kind, event in events:
                if isinstance(kind, ExecKind):
                    publisher.publish(kind, event)
                else:
                    publisher.publish_ops(kind, event)
            assert await publisher.flush(), "Redis refused the events"
        finally:
            await client.aclose()

    asyncio.run(run())


def stream_of(kind: ExecKind | OpsKind, venue: str = "sim") -> str:
    return exec_stream(venue, kind) if isinstance(kind, ExecKind) else ops_stream(kind)


def entry_fields(event: msgspec.Struct, label: str = "x") -> dict[bytes, bytes]:
    """One stream entry's fields as the recorder reads them (what EventPublisher writes)."""
    return {b"d": msgspec.msgpack.encode(event), b"kind": label.encode()}
