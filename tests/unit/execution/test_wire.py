"""Decoding Binance's documented user-data and REST payloads (USD-M futures examples, comments removed)."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.execution.wire import (
    AccountUpdate,
    ListenKeyExpired,
    OrderTradeUpdate,
    PositionRisk,
    UnknownEvent,
    UserTrade,
    decode_user_event,
)

# "Event: Order Update" (ORDER_TRADE_UPDATE), USD-M futures user data streams.
ORDER_TRADE_UPDATE = b"""{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{
 "s":"BTCUSDT","c":"TEST","S":"SELL","o":"TRAILING_STOP_MARKET","f":"GTC","q":"0.001","p":"0","ap":"0",
 "sp":"7103.04","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":1568879465650,
 "t":0,"b":"0","a":"9.91","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"TRAILING_STOP_MARKET","ps":"LONG",
 "cp":false,"AP":"7476.89","cr":"5.0","pP":false,"si":0,"ss":0,"rp":"0","V":"EXPIRE_TAKER","pm":"OPPONENT",
 "gtd":0}}"""

# "Event: Balance and Position Update" (ACCOUNT_UPDATE), USD-M futures user data streams.
ACCOUNT_UPDATE = b"""{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER",
 "B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"},
      {"a":"BUSD","wb":"1.00000000","cw":"0.00000000","bc":"-49.12345678"}],
 "P":[{"s":"BTCUSDT","pa":"0","ep":"0.00000","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0.00000000",
       "ps":"BOTH"},
      {"s":"BTCUSDT","pa":"20","ep":"6563.66500","bep":"6563.6","cr":"0","up":"2850.21200000","mt":"isolated",
       "iw":"13200.70726908","ps":"LONG"}]}}"""

# "Account Trade List (USER_DATA)" GET /fapi/v1/userTrades response example.
USER_TRADES = b"""[{"buyer":false,"commission":"-0.07819010","commissionAsset":"USDT","id":698759,"maker":false,
 "orderId":25851813,"price":"7819.01","qty":"0.002","quoteQty":"15.63802","realizedPnl":"-0.91539999",
 "side":"SELL","positionSide":"SHORT","symbol":"BTCUSDT","time":1569514978020}]"""

POSITION_RISK = b"""[{"entryPrice":"0.00000","breakEvenPrice":"0.0","marginType":"isolated",
 "isAutoAddMargin":"false","isolatedMargin":"0.00000000","leverage":"10","liquidationPrice":"0",
 "markPrice":"6679.50671178","maxNotionalValue":"20000000","positionAmt":"0.000","notional":"0",
 "isolatedWallet":"0","symbol":"BTCUSDT","unRealizedProfit":"0.00000000","positionSide":"BOTH",
 "updateTime":0}]"""


def test_order_trade_update_example() -> None:
    event = decode_user_event(ORDER_TRADE_UPDATE)
    assert isinstance(event, OrderTradeUpdate)
    o = event.o
    assert (o.s, o.c, o.S, o.x, o.X, o.i, o.t) == ("BTCUSDT", "TEST", "SELL", "NEW", "NEW", 8886774, 0)
    assert o.q == Decimal("0.001") and o.ps == "LONG"


def test_account_update_example() -> None:
    event = decode_user_event(ACCOUNT_UPDATE)
    assert isinstance(event, AccountUpdate)
    assert event.a.m == "ORDER" and event.a.B[0].wb == Decimal("122624.12345678")
    assert [p.pa for p in event.a.P] == [Decimal(0), Decimal(20)]


def test_listen_key_expired_and_unknown_types() -> None:
    assert isinstance(decode_user_event(b'{"e":"listenKeyExpired","E":1576653824250}'), ListenKeyExpired)
    with pytest.raises(UnknownEvent):
        decode_user_event(b'{"e":"MARGIN_CALL","E":1}')


def test_rest_examples() -> None:
    trade = msgspec.json.decode(USER_TRADES, type=list[UserTrade])[0]
    assert trade.id == 698759 and trade.realizedPnl == Decimal("-0.91539999")
    risk = msgspec.json.decode(POSITION_RISK, type=list[PositionRisk])[0]
    assert risk.positionAmt == 0 and risk.leverage == "10"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'{"e":1}',
        b'{"e":"ORDER_TRADE_UPDATE"}',
        ORDER_TRADE_UPDATE.replace(b'"q":"0.001"', b'"q":true'),
        ORDER_TRADE_UPDATE.replace(b'"i":8886774', b'"i":"x"'),
    ],
)
def test_malformed_frames_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_user_event(raw)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_else(raw: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError, UnknownEvent):
        decode_user_event(raw)
