"""Trading faults of the simulated venue, armed through POST /admin/fault like every other fault.

- `reject_orders` {count?}: every new order (the next `count`, or all until cleared) is refused with -2010.
- `delay_acks` {ms}: order and cancel responses leave `ms` late (the order is already live: its fills may
  reach the user-data stream before the REST answer, as on a busy venue).
- `drop_user_stream` {seconds?}: close every user-data WebSocket now; refuse new ones for `seconds`.
- `malformed_json` {count}: the next `count` successful trading responses are cut in half (invalid JSON).
- `position_drift` {symbol, qty}: positionRisk and account report the position plus `qty` (signed); the
  venue's real position (GET /admin/positions) is unchanged. qty 0 removes the drift.
- `cap_fills` {qty?, count?}: an order taking liquidity fills at most `qty` (base quantity, default 0: none)
  of its size when it arrives, as on a book with no depth; a MARKET/IOC remainder expires unfilled. The
  next `count` orders (default all, until cleared).
`rest_fail`, `rest_slow` and `down` apply to the trading endpoints as to every Binance endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

TRADING_FAULTS = ("reject_orders", "delay_acks", "drop_user_stream", "malformed_json", "position_drift", "cap_fills")


@dataclass
class TradingFaultCounters:
    orders_rejected: int = 0
    acks_delayed: int = 0
    user_streams_dropped: int = 0
    malformed_sent: int = 0
    fills_capped: int = 0


class TradingFaults:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.reject_armed = False
        self.reject_remaining: int | None = None
        self.delay_ms = 0.0
        self.user_stream_refused_until: float | None = None
        self.malformed_remaining = 0
        self.drift: dict[str, Decimal] = {}
        self.fill_cap: Decimal | None = None
        self.fill_cap_remaining: int | None = None
        self.counters = TradingFaultCounters()
        self.drop_requested: Callable[[], int] = lambda: 0  # set by the user stream: closes its sockets

    def apply(
        self,
        name: str,
        symbol: str | None,
        count: int | None,
        ms: float | None,
        qty: float | str | None,
        seconds: float | None,
    ) -> None:
        """Arm a trading fault; raises ValueError naming the field when the request is wrong."""
        if name == "reject_orders":
            self.reject_armed, self.reject_remaining = True, count
        elif name == "delay_acks":
            if ms is None or not 0 <= ms <= 60_000:
                raise ValueError(f"delay_acks needs ms between 0 and 60000 (got {ms!r})")
            self.delay_ms = float(ms)
        elif name == "drop_user_stream":
            self.user_stream_refused_until = None if seconds is None else self._clock() + seconds
            self.counters.user_streams_dropped += self.drop_requested()
        elif name == "malformed_json":
            self.malformed_remaining += count or 1
        elif name == "position_drift":
            if symbol is None or qty is None:
                raise ValueError('position_drift needs symbol and qty (signed base quantity, e.g. "0.01")')
            try:
                drift = Decimal(str(qty))
            except InvalidOperation:
                raise ValueError(f"position_drift qty must be a number (got {qty!r})") from None
            if not drift.is_finite():
                raise ValueError(f"position_drift qty must be finite (got {qty!r})")
            if drift:
                self.drift[symbol] = drift
            else:
                self.drift.pop(symbol, None)
        elif name == "cap_fills":
            try:
                cap = Decimal(str(qty if qty is not None else "0"))
            except InvalidOperation:
                raise ValueError(f"cap_fills qty must be a number (got {qty!r})") from None
            if not cap.is_finite() or cap < 0:
                raise ValueError(f"cap_fills qty must be >= 0 (got {qty!r})")
            self.fill_cap, self.fill_cap_remaining = cap, count
        else:
            raise ValueError(f"unknown trading fault {name!r}; known: {list(TRADING_FAULTS)}")

    def clear(self) -> None:
        self.reject_armed, self.reject_remaining = False, None
        self.delay_ms = 0.0
        self.user_stream_refused_until = None
        self.malformed_remaining = 0
        self.drift.clear()
        self.fill_cap, self.fill_cap_remaining = None, None

    def take_reject(self) -> bool:
        if not self.reject_armed:
            return False
        if self.reject_remaining is not None:
            self.reject_remaining -= 1
            if self.reject_remaining <= 0:
                self.reject_armed, self.reject_remaining = False, None
        self.counters.orders_rejected += 1
        return True

    def take_fill_cap(self) -> Decimal | None:
        """The most an arriving order may fill now (base quantity), or None when fills are not capped."""
        cap = self.fill_cap
        if cap is None:
            return None
        if self.fill_cap_remaining is not None:
            self.fill_cap_remaining -= 1
            if self.fill_cap_remaining <= 0:
                self.fill_cap, self.fill_cap_remaining = None, None
        self.counters.fills_capped += 1
        return cap

    def take_malformed(self) -> bool:
        if self.malformed_remaining <= 0:
            return False
        self.malformed_remaining -= 1
        self.counters.malformed_sent += 1
        return True

    def user_stream_refused(self) -> bool:
        until = self.user_stream_refused_until
        if until is None:
            return False
        if self._clock() >= until:
            self.user_stream_refused_until = None
            return False
        return True

    def describe(self) -> dict[str, Any]:
        until = self.user_stream_refused_until
        return {
            "reject_orders": None if not self.reject_armed else {"remaining": self.reject_remaining},
            "delay_acks_ms": self.delay_ms,
            "user_stream_refused_s": None if until is None else round(max(0.0, until - self._clock()), 3),
            "malformed_json_remaining": self.malformed_remaining,
            "position_drift": {s: str(q) for s, q in self.drift.items()},
            "cap_fills": None
            if self.fill_cap is None
            else {"qty": str(self.fill_cap), "remaining": self.fill_cap_remaining},
            "counters": asdict(self.counters),
        }
