"""Signing: HMAC-SHA256 over query string + body, API key header, timestamp inside recvWindow."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from hftops.venue.trading import errors as E
from hftops.venue.trading.auth import DEV_API_KEY, DEV_API_SECRET, Credentials, sign, verify_signed
from hftops.venue.trading.errors import TradingError

NOW = 1_700_000_000_000
CREDS = Credentials(DEV_API_KEY, DEV_API_SECRET)


def signed_query(params: dict[str, object], secret: str = DEV_API_SECRET) -> str:
    query = urlencode(params)
    return f"{query}&signature={sign(secret, query)}"


def code_of(key: str | None, query: str, body: str = "", now: int = NOW) -> int:
    with pytest.raises(TradingError) as info:
        verify_signed(CREDS, key, query, body, now)
    return info.value.code


def test_a_correctly_signed_query_passes_and_yields_its_params() -> None:
    query = signed_query({"symbol": "BTCUSDT", "quantity": "0.001", "timestamp": NOW - 100})
    assert verify_signed(CREDS, DEV_API_KEY, query, "", NOW) == {
        "symbol": "BTCUSDT",
        "quantity": "0.001",
        "timestamp": str(NOW - 100),
    }


def test_signature_covers_query_then_body() -> None:
    query, body = "symbol=BTCUSDT&timestamp=" + str(NOW), "side=BUY&quantity=1"
    signature = sign(DEV_API_SECRET, query + body)
    params = verify_signed(CREDS, DEV_API_KEY, query, f"{body}&signature={signature}", NOW)
    assert params["side"] == "BUY" and params["symbol"] == "BTCUSDT"


def test_wrong_secret_is_rejected_with_1022() -> None:
    assert code_of(DEV_API_KEY, signed_query({"timestamp": NOW}, secret="not-the-secret")) == E.BAD_SIGNATURE


def test_tampered_parameter_is_rejected_with_1022() -> None:
    query = signed_query({"quantity": "0.001", "timestamp": NOW}).replace("0.001", "1.000")
    assert code_of(DEV_API_KEY, query) == E.BAD_SIGNATURE


def test_stale_timestamp_outside_recv_window_is_rejected_with_1021() -> None:
    assert code_of(DEV_API_KEY, signed_query({"timestamp": NOW - 5001})) == E.TIMESTAMP_OUTSIDE
    wide = signed_query({"timestamp": NOW - 5001, "recvWindow": 10000})
    assert verify_signed(CREDS, DEV_API_KEY, wide, "", NOW)["recvWindow"] == "10000"


def test_timestamp_a_second_ahead_is_rejected_with_1021() -> None:
    assert code_of(DEV_API_KEY, signed_query({"timestamp": NOW + 1000})) == E.TIMESTAMP_OUTSIDE


def test_missing_or_wrong_api_key() -> None:
    query = signed_query({"timestamp": NOW})
    assert code_of(None, query) == E.BAD_API_KEY_FMT
    assert code_of("someone-else", query) == E.REJECTED_MBX_KEY


def test_missing_timestamp_or_signature_is_1102() -> None:
    assert code_of(DEV_API_KEY, signed_query({"symbol": "BTCUSDT"})) == E.MANDATORY_PARAM
    assert code_of(DEV_API_KEY, f"timestamp={NOW}") == E.MANDATORY_PARAM


def test_credentials_come_from_env_else_the_dev_pair_and_never_print_the_secret() -> None:
    assert Credentials.from_env({}) == CREDS
    custom = Credentials.from_env({"HFT_SIM_API_KEY": "k", "HFT_SIM_API_SECRET": "s3cr3t"})
    assert (custom.api_key, custom.api_secret) == ("k", "s3cr3t")
    assert "s3cr3t" not in repr(custom)
