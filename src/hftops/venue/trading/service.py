"""Composition of the venue's trading side: `build_trading(...)` wires book, account, desk, journal, stream."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

from websockets.http11 import Response

from hftops.venue.symbols import SymbolSpec
from hftops.venue.trading.account import Account
from hftops.venue.trading.auth import Credentials
from hftops.venue.trading.book import DepthBook, Touch
from hftops.venue.trading.faults import TradingFaults
from hftops.venue.trading.journal import Journal
from hftops.venue.trading.matching import Desk, mark_price
from hftops.venue.trading.userstream import UserStreams

MAINT_MARGIN_RATE = Decimal("0.004")  # Binance's first maintenance tier of the big perpetuals
DEPTH_FACTOR = 4  # level i behind the touch holds DEPTH_FACTOR * typical trade size * (1 + i)


class _TickLike(Protocol):
    books: dict[str, Any]
    trades: dict[str, Any]


class Trading:
    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        desk: Desk,
        streams: UserStreams,
        faults: TradingFaults,
        credentials: Credentials,
        journal: Journal,
    ) -> None:
        self.specs = specs
        self.desk = desk
        self.account = desk.account
        self.streams = streams
        self.faults = faults
        self.credentials = credentials
        self.journal = journal

    def on_tick(self, tick: _TickLike) -> None:
        """Move each symbol's touch to the tick's last bookTicker (or last trade when there is none)."""
        on_touch, books = self.desk.on_touch, self.desk.books
        for symbol, batch in tick.books.items():
            bid, bid_qty, ask, ask_qty = batch.quotes[-1]
            on_touch(symbol, Touch(bid, bid_qty, ask, ask_qty))
        for symbol, batch in tick.trades.items():
            if symbol not in tick.books and batch.prices:
                old, price = books[symbol].touch, batch.prices[-1]
                if not old.bid <= price <= old.ask:
                    tick_units = self.specs[symbol].tick_units
                    on_touch(symbol, Touch(price, old.bid_qty, price + tick_units, old.ask_qty))

    def close(self) -> None:
        self.journal.close()


def build_trading(
    specs: list[SymbolSpec],
    last_prices: dict[str, int],
    journal_dir: Path | None,
    faults: TradingFaults,
    is_down: Callable[[], bool],
    clock: Callable[[], float],
    wall_ms: Callable[[], int],
    json_response: Callable[[HTTPStatus, dict[str, Any]], Response],
    wallet: float = 100_000.0,
    default_leverage: int = 10,
    maker_rate: float = 0.0002,
    taker_rate: float = 0.0005,
    depth_levels: int = 10,
    credentials: Credentials | None = None,
) -> Trading:
    by_symbol = {s.symbol: s for s in specs}
    books = {}
    for spec in specs:
        depth = spec.typical_qty_units * DEPTH_FACTOR
        price = last_prices.get(spec.symbol, spec.start_price_units)
        books[spec.symbol] = DepthBook(
            Touch(price, depth, price + spec.tick_units, depth), spec.tick_units, depth, depth_levels
        )
    account = Account(
        by_symbol,
        Decimal(str(wallet)),
        default_leverage,
        Decimal(str(maker_rate)),
        Decimal(str(taker_rate)),
        MAINT_MARGIN_RATE,
        mark_price(books, by_symbol),
    )
    streams = UserStreams(faults, is_down, clock, wall_ms, json_response)
    journal = Journal(journal_dir)
    desk = Desk(by_symbol, account, books, journal, faults, streams.push, wall_ms)
    return Trading(by_symbol, desk, streams, faults, credentials or Credentials.from_env(), journal)
