"""Rows as the store takes them: JSONCompactEachRow lines built from bus records, parsed back, validated.

A line is built by splicing the msgspec JSON of an array-like row between a constant prefix (venue,
symbol) and suffix (ingest time), so the hot path costs one encode per row and no per-field Python.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from hftops.model.market import BboRow, DeadLetter, TradeRow
from hftops.model.streams import MdKind
from hftops.model.tables import DEAD_LETTERS, MARKET_BBO, MARKET_TRADES

_JSON = msgspec.json.Encoder()
_LINE = msgspec.json.Decoder(list[Any])

TABLE_OF_KIND = {MdKind.TRADE: MARKET_TRADES, MdKind.BBO: MARKET_BBO}
KIND_OF_TABLE = {MARKET_TRADES: MdKind.TRADE, MARKET_BBO: MdKind.BBO}

# Decimal(38, 18): at most 20 integer digits and 18 fraction digits, no sign, no exponent, no NaN.
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,18})?")
_ZERO = re.compile(r"0(?:\.0+)?")
_MS_MIN, _MS_MAX = 946_684_800_000, 4_102_444_800_000  # 2000-01-01 .. 2100-01-01
_UINT64_MAX = 2**64 - 1


@functools.lru_cache(maxsize=4096)
def _prefix(venue: str, symbol: str) -> bytes:
    return _JSON.encode([venue, symbol])[:-1] + b","


@functools.lru_cache(maxsize=16)
def _suffix(ingest_us: int) -> bytes:
    return b",%d]" % ingest_us


def market_lines(
    kind: MdKind, venue: str, symbol: str, rows: Iterable[TradeRow | BboRow], ingest_us: int
) -> list[bytes]:
    """One line per row, columns as ddl.TRADE_INSERT_COLUMNS / BBO_INSERT_COLUMNS (kind decides)."""
    prefix = _prefix(venue, symbol)
    suffix = _suffix(ingest_us)
    encode = _JSON.encode
    return [b"%s%s%s" % (prefix, encode(row)[1:-1], suffix) for row in rows]


def dead_letter_line(entry_id: str, letter: DeadLetter, ingest_us: int) -> bytes:
    return _JSON.encode(
        [
            entry_id,
            letter.source,
            letter.reason,
            letter.detail,
            letter.venue,
            letter.symbol,
            letter.kind,
            letter.ref_id,
            base64.b64encode(letter.payload).decode(),
            letter.time_ns,
            ingest_us,
        ]
    )


def replay_mark_line(dead_letter_id: str, replayed_at_us: int, rows: int, operator: str) -> bytes:
    return _JSON.encode([dead_letter_id, replayed_at_us, rows, operator])


def parse_line(line: bytes) -> list[Any]:
    return _LINE.decode(line)


def line_id(table: str, line: bytes) -> int | str:
    """The deduplication id of one line: the venue id for market tables, the entry id for dead letters."""
    values = _LINE.decode(line)
    return values[0] if table == DEAD_LETTERS else values[2]


def line_row(table: str, line: bytes) -> tuple[str, str, TradeRow | BboRow]:
    """(venue, symbol, row) of a market line, for validation and dead-lettering of refused rows."""
    values = _LINE.decode(line)
    fields = values[2:-1]
    row: TradeRow | BboRow = TradeRow(*fields) if table == MARKET_TRADES else BboRow(*fields)
    return values[0], values[1], row


def _decimal_problem(name: str, value: object, positive: bool) -> str | None:
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        return f"{name} {value!r} is not a plain decimal (digits, optional point, at most 18 decimals)"
    if positive and _ZERO.fullmatch(value):
        return f"{name} {value!r} must be greater than zero"
    return None


def _id_problem(name: str, value: object) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _UINT64_MAX:
        return f"{name} {value!r} is not an unsigned 64-bit id"
    return None


def _ms_problem(name: str, value: object, zero_ok: bool = False) -> str | None:
    if zero_ok and value == 0:
        return None  # Spot bookTicker carries no event/transaction time; the collector writes 0
    if not isinstance(value, int) or not _MS_MIN <= value < _MS_MAX:
        return f"{name} {value!r} is not a millisecond time between 2000 and 2100"
    return None


def _ns_problem(name: str, value: object) -> str | None:
    if not isinstance(value, int) or not _MS_MIN * 1_000_000 <= value < _MS_MAX * 1_000_000:
        return f"{name} {value!r} is not a nanosecond time between 2000 and 2100"
    return None


def trade_problem(row: TradeRow) -> str | None:
    """None when the row can be stored; else a sentence naming the bad field."""
    for problem in (
        _id_problem("trade_id", row.trade_id),
        _decimal_problem("price", row.price, positive=True),
        _decimal_problem("qty", row.qty, positive=True),
        _ms_problem("trade_time_ms", row.trade_time_ms),
        _ms_problem("event_time_ms", row.event_time_ms),
        _ns_problem("receive_time_ns", row.receive_time_ns),
        _id_problem("first_id", row.first_id),
        _id_problem("last_id", row.last_id),
    ):
        if problem:
            return problem
    return None


def bbo_problem(row: BboRow) -> str | None:
    for problem in (
        _id_problem("update_id", row.update_id),
        _decimal_problem("bid_price", row.bid_price, positive=False),
        _decimal_problem("bid_qty", row.bid_qty, positive=False),
        _decimal_problem("ask_price", row.ask_price, positive=False),
        _decimal_problem("ask_qty", row.ask_qty, positive=False),
        _ms_problem("event_time_ms", row.event_time_ms, zero_ok=True),
        _ms_problem("transaction_time_ms", row.transaction_time_ms, zero_ok=True),
        _ns_problem("receive_time_ns", row.receive_time_ns),
    ):
        if problem:
            return problem
    return None


def row_problem(row: TradeRow | BboRow) -> str | None:
    return trade_problem(row) if isinstance(row, TradeRow) else bbo_problem(row)


def row_id(row: TradeRow | BboRow) -> int:
    return row.trade_id if isinstance(row, TradeRow) else row.update_id
