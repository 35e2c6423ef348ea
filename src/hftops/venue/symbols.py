"""Instrument specs of the simulated venue: start price, tick and lot grids, decimal text of prices and sizes.

Prices and quantities are integers in units of 10**-decimals everywhere inside the venue, so nothing is
rounded; they become Binance's decimal strings only on the way out.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    price_decimals: int
    tick_units: int  # tick size in price units (BTCUSDT: 10 units of 0.01 = 0.10)
    qty_decimals: int
    start_price_units: int
    typical_qty_units: int  # mean trade size
    weight: float  # share of the venue's activity, relative to the other symbols
    price_fmt: bytes = field(init=False, repr=False)
    qty_fmt: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_fmt", _decimal_format(self.price_decimals))
        object.__setattr__(self, "qty_fmt", _decimal_format(self.qty_decimals))

    @property
    def stream_prefix(self) -> str:
        return self.symbol.lower()

    def price_text(self, units: int) -> bytes:
        return _format(self.price_fmt, self.price_decimals, units)

    def qty_text(self, units: int) -> bytes:
        return _format(self.qty_fmt, self.qty_decimals, units)

    @property
    def tick_size(self) -> str:
        return self.price_text(self.tick_units).decode()

    @property
    def step_size(self) -> str:
        return self.qty_text(1).decode()


def _decimal_format(decimals: int) -> bytes:
    return b"%d" if decimals == 0 else b"%d.%0" + str(decimals).encode() + b"d"


def _format(fmt: bytes, decimals: int, units: int) -> bytes:
    if decimals == 0:
        return fmt % units
    sign = b"-" if units < 0 else b""
    return sign + fmt % divmod(abs(units), 10**decimals)


# Plausible figures for the usual USD-M perpetuals; other symbols get a stable made-up spec.
_KNOWN: dict[str, tuple[int, int, int, int, int, float]] = {
    #            price_dec tick  qty_dec start_units    typical_qty  weight
    "BTCUSDT": (2, 10, 3, 60_000_00, 10, 4.0),
    "ETHUSDT": (2, 1, 3, 3_000_00, 200, 3.0),
    "SOLUSDT": (2, 1, 0, 150_00, 5, 2.0),
    "BNBUSDT": (3, 10, 2, 580_000, 100, 1.5),
    "XRPUSDT": (4, 1, 1, 5_000, 10_000, 1.5),
    "DOGEUSDT": (5, 1, 0, 15_000, 5_000, 1.0),
}
# Taiwan instruments (quoted in TWD): TWSE stocks by code, TAIFEX futures by product root (TXFL6 -> TXF).
_TAIWAN: dict[str, tuple[int, int, int, int, int, float]] = {
    "2330": (2, 500, 0, 1_050_00, 2, 1.0),  # TSMC, tick 5.00 above 1000
    "2317": (2, 50, 0, 200_00, 3, 1.0),  # Hon Hai, tick 0.50 in 100-500
    "TXF": (0, 1, 0, 23_000, 2, 1.0),  # TAIEX futures, index points
    "MXF": (0, 1, 0, 23_000, 3, 1.0),  # mini-TAIEX futures
}
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "BTC", "ETH", "BNB")


def _taiwan_key(symbol: str) -> str | None:
    if symbol in _TAIWAN:
        return symbol
    if len(symbol) == 5 and symbol[:3] in _TAIWAN and "A" <= symbol[3] <= "L" and symbol[4].isdigit():
        return symbol[:3]  # contract code: root + month letter + year digit
    return None


def _split_assets(symbol: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3] or symbol, symbol[-3:]


def spec_for(symbol: str) -> SymbolSpec:
    taiwan = _taiwan_key(symbol)
    if taiwan is not None:
        price_dec, tick, qty_dec, start, typical, weight = _TAIWAN[taiwan]
        return SymbolSpec(symbol, symbol, "TWD", price_dec, tick, qty_dec, start, typical, weight)
    base, quote = _split_assets(symbol)
    if symbol in _KNOWN:
        price_dec, tick, qty_dec, start, typical, weight = _KNOWN[symbol]
    else:
        # crc32, not hash(): the made-up start price must be the same in every process and run.
        digest = zlib.crc32(symbol.encode())
        price_dec, tick, qty_dec = 4, 1, 2
        start = 10_000 + digest % 5_000_000  # 1.0000 .. 501.0000
        typical, weight = 1_000, 1.0
    return SymbolSpec(symbol, base, quote, price_dec, tick, qty_dec, start, typical, weight)
