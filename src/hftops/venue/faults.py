"""Fault injection state of the simulated venue: what is armed, validation of requests, malformed frames.

The venue asks this book each tick (is a symbol paused? how many ids to keep off the wire? a malformed
frame to interleave?) and for each REST request (fail? delay? down?). Time comes from the injected clock.

Semantics worth knowing: `down` closes every WebSocket, answers handshakes and Binance REST with 503 (the
admin API stays up) and pauses generation, so nothing is published that no client could have received;
`rest_fail` without `count` lasts until cleared; `malformed` targets `symbol` (default: the first configured
symbol) on whichever trade stream a connection subscribed, one frame per tick until `count` were sent, and
waits while no connection subscribes to that stream; `skip_ids` ids are recorded and served by REST.
Trading faults (reject_orders, delay_acks, drop_user_stream, malformed_json, position_drift, cap_fills) are in
`self.trading` (`venue.trading.faults`); `rest_fail`, `rest_slow` and `down` hit the trading REST as well.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import msgspec

from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading.faults import TRADING_FAULTS, TradingFaults
from hftops.venue.wire import StreamKind


class FaultName(StrEnum):
    DROP_CONNECTIONS = "drop_connections"
    PAUSE_SYMBOL = "pause_symbol"
    RESUME_SYMBOL = "resume_symbol"
    SKIP_IDS = "skip_ids"
    MALFORMED = "malformed"
    REST_FAIL = "rest_fail"
    REST_SLOW = "rest_slow"
    DOWN = "down"
    # trading side (semantics in hftops.venue.trading.faults)
    REJECT_ORDERS = "reject_orders"
    DELAY_ACKS = "delay_acks"
    DROP_USER_STREAM = "drop_user_stream"
    MALFORMED_JSON = "malformed_json"
    POSITION_DRIFT = "position_drift"
    CAP_FILLS = "cap_fills"


class MalformedKind(StrEnum):
    BAD_JSON = "bad_json"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NAN_PRICE = "nan_price"
    NEGATIVE_PRICE = "negative_price"
    OVERSIZED = "oversized"


REST_FAIL_STATUSES = (429, 500, 503)


class FaultRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /admin/fault."""

    fault: str
    symbol: str | None = None
    seconds: float | None = None
    count: int | None = None
    kind: str | None = None
    status: int | None = None
    ms: float | None = None
    qty: float | str | None = None  # position_drift: signed base quantity


class FaultError(ValueError):
    """A fault request the venue refuses; the message names the field and the allowed values."""


@dataclass
class MalformedOrder:
    kind: MalformedKind
    symbol: str
    remaining: int


@dataclass
class FaultCounters:
    skipped_on_wire: int = 0
    malformed_sent: int = 0
    rest_failed: int = 0
    rest_delayed: int = 0
    rest_refused_down: int = 0
    connections_dropped: int = 0


class FaultBook:
    def __init__(self, symbols: tuple[str, ...], clock: Callable[[], float]) -> None:
        self.symbols = symbols
        self._clock = clock
        self.paused_until: dict[str, float | None] = {}  # None: until resume_symbol
        self.skip: dict[str, int] = {}
        self.malformed: deque[MalformedOrder] = deque()
        self.rest_fail_status: int | None = None
        self.rest_fail_remaining: int | None = None  # None: every request until cleared
        self.rest_slow_ms: float = 0.0
        self.down_until: float | None = None
        self.counters = FaultCounters()
        self.trading = TradingFaults(clock)

    # ---------------------------------------------------------------- requests

    def apply(self, request: FaultRequest) -> None:
        """Arm the fault (validated). Side effects on connections are the caller's (it owns them)."""
        try:
            name = FaultName(request.fault)
        except ValueError:
            raise FaultError(f"unknown fault {request.fault!r}; known: {[f.value for f in FaultName]}") from None
        now = self._clock()
        if name is FaultName.PAUSE_SYMBOL:
            symbol = self._symbol(request, required=True)
            seconds = self._positive(request.seconds, "seconds", optional=True)
            self.paused_until[symbol] = None if seconds is None else now + seconds
        elif name is FaultName.RESUME_SYMBOL:
            self.paused_until.pop(self._symbol(request, required=True), None)
        elif name is FaultName.SKIP_IDS:
            symbol = self._symbol(request, required=True)
            self.skip[symbol] = self.skip.get(symbol, 0) + self._count(request.count, default=None)
        elif name is FaultName.MALFORMED:
            kinds = [k.value for k in MalformedKind]
            if request.kind not in kinds:
                raise FaultError(f"malformed needs kind, one of {kinds} (got {request.kind!r})")
            self.malformed.append(
                MalformedOrder(
                    MalformedKind(request.kind),
                    self._symbol(request, required=False),
                    self._count(request.count, default=1),
                )
            )
        elif name is FaultName.REST_FAIL:
            if request.status not in REST_FAIL_STATUSES:
                raise FaultError(f"rest_fail needs status, one of {list(REST_FAIL_STATUSES)} (got {request.status!r})")
            self.rest_fail_status = request.status
            self.rest_fail_remaining = None if request.count is None else self._count(request.count, default=None)
        elif name is FaultName.REST_SLOW:
            ms = request.ms
            if ms is None or ms < 0 or ms > 60_000:
                raise FaultError(f"rest_slow needs ms between 0 and 60000 (got {ms!r})")
            self.rest_slow_ms = float(ms)
        elif name.value in TRADING_FAULTS:
            drift_symbol = self._symbol(request, required=True) if name is FaultName.POSITION_DRIFT else None
            if request.count is not None:
                self._count(request.count, default=None)
            refuse_s = self._positive(request.seconds, "seconds", optional=True)
            try:
                self.trading.apply(name.value, drift_symbol, request.count, request.ms, request.qty, refuse_s)
            except ValueError as exc:
                raise FaultError(str(exc)) from None
        elif name is FaultName.DOWN:
            seconds = self._positive(request.seconds, "seconds", optional=False)
            assert seconds is not None
            self.down_until = now + seconds
        # DROP_CONNECTIONS has no state: the caller closes the connections.

    def _symbol(self, request: FaultRequest, required: bool) -> str:
        if request.symbol is None:
            if required:
                raise FaultError(f"{request.fault} needs symbol, one of {list(self.symbols)}")
            return self.symbols[0]
        symbol = request.symbol.upper()
        if symbol not in self.symbols:
            raise FaultError(f"unknown symbol {request.symbol!r}; this venue serves {list(self.symbols)}")
        return symbol

    @staticmethod
    def _count(count: int | None, default: int | None) -> int:
        if count is None:
            if default is None:
                raise FaultError("count is required (a positive integer)")
            return default
        if count < 1 or count > 10_000_000:
            raise FaultError(f"count must be between 1 and 10000000 (got {count})")
        return count

    @staticmethod
    def _positive(value: float | None, field: str, optional: bool) -> float | None:
        if value is None:
            if optional:
                return None
            raise FaultError(f"{field} is required (a positive number)")
        if not 0 < value <= 86_400:
            raise FaultError(f"{field} must be > 0 and <= 86400 (got {value})")
        return float(value)

    def clear(self) -> None:
        self.paused_until.clear()
        self.skip.clear()
        self.malformed.clear()
        self.rest_fail_status = self.rest_fail_remaining = None
        self.rest_slow_ms = 0.0
        self.down_until = None
        self.trading.clear()

    # ---------------------------------------------------------------- queries made while publishing

    def is_paused(self, symbol: str, now: float) -> bool:
        if symbol not in self.paused_until:
            return False
        until = self.paused_until[symbol]
        if until is not None and now >= until:
            del self.paused_until[symbol]
            return False
        return True

    def is_down(self, now: float) -> bool:
        if self.down_until is None:
            return False
        if now >= self.down_until:
            self.down_until = None
            return False
        return True

    def take_skip(self, symbol: str, count: int) -> int:
        """How many of the next `count` trade ids of `symbol` stay off the wire."""
        pending = self.skip.get(symbol, 0)
        if not pending:
            return 0
        taken = min(pending, count)
        if pending == taken:
            del self.skip[symbol]
        else:
            self.skip[symbol] = pending - taken
        self.counters.skipped_on_wire += taken
        return taken

    def peek_malformed(self) -> MalformedOrder | None:
        return self.malformed[0] if self.malformed else None

    def malformed_delivered(self) -> None:
        order = self.malformed[0]
        order.remaining -= 1
        self.counters.malformed_sent += 1
        if order.remaining <= 0:
            self.malformed.popleft()

    def rest_failure(self) -> int | None:
        """The HTTP status the next REST request must fail with, or None."""
        if self.rest_fail_status is None:
            return None
        status = self.rest_fail_status
        if self.rest_fail_remaining is not None:
            self.rest_fail_remaining -= 1
            if self.rest_fail_remaining <= 0:
                self.rest_fail_status = self.rest_fail_remaining = None
        self.counters.rest_failed += 1
        return status

    def describe(self) -> dict[str, Any]:
        now = self._clock()
        paused = [s for s in list(self.paused_until) if self.is_paused(s, now)]
        down = self.is_down(now)
        return {
            "paused_symbols": {
                s: None if (until := self.paused_until[s]) is None else round(until - now, 3) for s in paused
            },
            "skip_ids": dict(self.skip),
            "malformed": [{"kind": o.kind.value, "symbol": o.symbol, "remaining": o.remaining} for o in self.malformed],
            "rest_fail": None
            if self.rest_fail_status is None
            else {"status": self.rest_fail_status, "remaining": self.rest_fail_remaining},
            "rest_slow_ms": self.rest_slow_ms,
            "down_remaining_s": round(self.down_until - now, 3) if down and self.down_until else None,
            "counters": asdict(self.counters),
            "trading": self.trading.describe(),
        }


def malformed_frames(
    kind: MalformedKind,
    spec: SymbolSpec,
    trade_kind: StreamKind,
    event_ms: int,
    price_units: int,
    max_frame_bytes: int,
) -> tuple[bytes, bytes]:
    """(raw payload, combined payload) of one malformed trade event. Its id is 0, never a real trade id."""
    id_key = "a" if trade_kind is StreamKind.AGG_TRADE else "t"
    price = spec.price_text(price_units).decode()
    event: dict[str, Any] = {
        "e": trade_kind.value,
        "E": event_ms,
        "s": spec.symbol,
        id_key: 0,
        "p": price,
        "q": spec.qty_text(1).decode(),
    }
    if trade_kind is StreamKind.AGG_TRADE:
        event.update({"f": 0, "l": 0})
    event.update({"T": event_ms, "m": False})
    if kind is MalformedKind.MISSING_FIELD:
        del event["p"]
    elif kind is MalformedKind.WRONG_TYPE:
        event[id_key] = "not-an-id"
    elif kind is MalformedKind.NAN_PRICE:
        event["p"] = "NaN"
    elif kind is MalformedKind.NEGATIVE_PRICE:
        event["p"] = "-" + price
    elif kind is MalformedKind.OVERSIZED:
        event["pad"] = "x" * max_frame_bytes  # one frame above the configured maximum frame size
    raw = msgspec.json.encode(event)
    stream = f"{spec.stream_prefix}@{trade_kind.value}".encode()
    combined = b'{"stream":"' + stream + b'","data":' + raw + b"}"
    if kind is MalformedKind.BAD_JSON:
        return raw[: len(raw) // 2], combined[: len(combined) // 2]
    return raw, combined
