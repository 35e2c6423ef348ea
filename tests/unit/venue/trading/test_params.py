"""Generated request parameters: every input ends as an order or as a Binance error, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.venue.symbols import spec_for
from hftops.venue.trading import errors as E
from hftops.venue.trading import params as P
from hftops.venue.trading.errors import TradingError

SPECS = {"BTCUSDT": spec_for("BTCUSDT")}
KEYS = ["symbol", "side", "type", "quantity", "price", "timeInForce", "reduceOnly", "newClientOrderId"]
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["BTCUSDT", "BUY", "SELL", "LIMIT", "MARKET", "GTC", "IOC", "FOK", "true", "false"]),
    st.sampled_from(["0.001", "1e999999999", "-1", "NaN", "Infinity", "60000.10", "60000.05", "0", "1E-30"]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES))
def test_any_parameters_give_an_order_or_a_binance_error(params: dict[str, str]) -> None:
    try:
        order, resp_type = P.new_order(params, SPECS)
    except TradingError as exc:
        assert exc.code < 0 and exc.msg
        return
    assert order.qty > 0 and resp_type in ("ACK", "RESULT")
    assert order.price >= 0 and order.price % SPECS["BTCUSDT"].tick_units == 0


def test_huge_exponent_and_lot_size() -> None:
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
    for qty, code in (("1e999999999", E.ILLEGAL_CHARS), ("100000", E.FILTER_FAILURE), ("NaN", E.ILLEGAL_CHARS)):
        try:
            P.new_order({**base, "quantity": qty}, SPECS)
        except TradingError as exc:
            assert exc.code == code, qty
        else:
            raise AssertionError(f"quantity {qty} accepted")
