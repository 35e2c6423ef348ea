"""Typed market-data records as they travel on the bus (array-like msgspec structs, msgpack-encoded)."""

from __future__ import annotations

import msgspec


class TradeRow(msgspec.Struct, array_like=True, frozen=True):
    """One trade. Prices and quantities keep the venue's decimal text, so nothing is rounded on the way."""

    trade_id: int  # the venue's id: aggregate id for aggTrade, trade id for Spot @trade
    price: str
    qty: str
    buyer_is_maker: bool  # Binance "m": True means the taker sold
    trade_time_ms: int
    event_time_ms: int
    receive_time_ns: int
    first_id: int
    last_id: int


class BboRow(msgspec.Struct, array_like=True, frozen=True):
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    event_time_ms: int
    transaction_time_ms: int
    receive_time_ns: int


TRADE_BATCH_DECODER = msgspec.msgpack.Decoder(list[TradeRow])
BBO_BATCH_DECODER = msgspec.msgpack.Decoder(list[BboRow])
BATCH_ENCODER = msgspec.msgpack.Encoder()


class DeadLetter(msgspec.Struct, frozen=True):
    """What the dead-letter stream carries: the original payload, why it was refused, and where it came from."""

    source: str  # component that refused it: collector, recorder, ...
    reason: str  # short machine-readable code, e.g. invalid_frame, bad_price, too_many_deliveries
    detail: str  # human sentence naming what is wrong
    payload: bytes
    time_ns: int
    venue: str = ""
    symbol: str = ""
    kind: str = ""
    ref_id: int = -1  # the venue id when known, for the ledger; -1 when unknown
