"""Signing against Binance's documented example, parameter encoding, and credentials that never print."""

from __future__ import annotations

import pytest

from hftops.execution.errors import CredentialsError
from hftops.execution.ids import CLIENT_ORDER_ID_RE, ClientOrderIds, new_session_id
from hftops.execution.signing import DEV_API_KEY, Credentials, encode_params, load_credentials, sign

# Binance USD-M futures "General Info", SIGNED endpoint examples for POST /fapi/v1/order - HMAC keys.
DOC_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
DOC_QUERY = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"
)
DOC_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
# Example 3 of the same page: query string and body concatenated with no '&' between them.
DOC_MIXED = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"
)


def test_signature_matches_binance_documented_example() -> None:
    assert sign(DOC_QUERY, DOC_SECRET) == DOC_SIGNATURE


def test_encoded_params_reproduce_the_documented_query_string() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": 1,
        "price": 9000,
        "timeInForce": "GTC",
        "recvWindow": 5000,
        "timestamp": 1591702613943,
    }
    query = encode_params(params)
    assert query == DOC_QUERY
    assert Credentials("k", DOC_SECRET).sign(query) == DOC_SIGNATURE


def test_mixed_payload_signs_differently() -> None:
    assert sign(DOC_MIXED, DOC_SECRET) != DOC_SIGNATURE


def test_encoding_skips_none_and_lowercases_booleans() -> None:
    assert encode_params({"a": None, "reduceOnly": True, "x": False}) == "reduceOnly=true&x=false"


def test_credentials_never_print_the_secret() -> None:
    creds = Credentials("abcdefghijklmnop", "very-secret-value")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "very-secret-value" not in text
        assert "abcdefghijklmnop" not in text


def test_dev_pair_only_for_the_simulator() -> None:
    assert load_credentials("K", "S", {}, allow_dev_default=True).api_key == DEV_API_KEY
    with pytest.raises(CredentialsError, match="set K and S"):
        load_credentials("K", "S", {}, allow_dev_default=False)
    with pytest.raises(CredentialsError, match="set S"):
        load_credentials("K", "S", {"K": "key"}, allow_dev_default=True)
    creds = load_credentials("K", "S", {"K": "key", "S": "secret"}, allow_dev_default=False)
    assert (creds.api_key, creds.api_secret, creds.source) == ("key", "secret", "env")


def test_client_order_ids_are_unique_bounded_and_in_binance_charset() -> None:
    ids = ClientOrderIds(new_session_id(1_700_000_000))
    seen = {ids.next("mm1") for _ in range(5000)}
    assert len(seen) == 5000
    long = ids.next("a-very/long strategy name with spaces and ünïcode" * 3)
    for cid in [*seen, long, ids.format("x", 36**10)]:
        assert CLIENT_ORDER_ID_RE.fullmatch(cid), cid
        assert len(cid) <= 36
    assert ids.format("mm1", 1) == f"mm1-{ids.session}-1"
    assert ids.parse_strategy(ids.format("mm1", 77)) == "mm1"
    assert ids.parse_strategy("someone-else") is None


def test_session_id_shape() -> None:
    with pytest.raises(ValueError):
        ClientOrderIds("bad-session")
    assert len(new_session_id()) <= 10
