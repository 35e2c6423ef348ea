"""User-data frames: dispatch, unknown types skipped, bad frames counted and handed on, consumer bugs contained."""

from __future__ import annotations

from typing import Any

from hftops.execution.user_stream import UserDataStream
from hftops.execution.wire import OrderTradeUpdate
from tests.unit.execution.test_wire import ACCOUNT_UPDATE, ORDER_TRADE_UPDATE


def stream(on_event: Any) -> tuple[UserDataStream, list[tuple[str, bytes]]]:
    bad: list[tuple[str, bytes]] = []
    s = UserDataStream(
        rest=None,
        ws_base_url="ws://unused",
        on_event=on_event,  # type: ignore[arg-type]
        on_bad_frame=lambda reason, raw: bad.append((reason, raw)),
    )
    return s, bad


def test_frames_are_dispatched_counted_or_dead_lettered() -> None:
    events: list[Any] = []
    s, bad = stream(events.append)
    assert s._handle(ORDER_TRADE_UPDATE) is False
    assert s._handle(ACCOUNT_UPDATE) is False
    assert s._handle(b'{"e":"TRADE_LITE","E":1}') is False
    assert s._handle(b'{"e":"ORDER_TRADE_UPDATE","E":1}') is False
    assert s._handle(b"\xff not json") is False
    assert isinstance(events[0], OrderTradeUpdate) and len(events) == 2
    assert (s.counters.events, s.counters.unknown_events, s.counters.bad_frames) == (2, 1, 2)
    assert [raw for _, raw in bad] == [b'{"e":"ORDER_TRADE_UPDATE","E":1}', b"\xff not json"]
    assert "not a valid Binance event" in bad[0][0]


def test_listen_key_expiry_asks_for_a_new_connection() -> None:
    s, _ = stream(lambda e: None)
    s.listen_key = "old"
    assert s._handle(b'{"e":"listenKeyExpired","E":1576653824250}') is True
    assert s.listen_key is None


def test_a_failing_consumer_does_not_end_the_stream() -> None:
    def boom(_: Any) -> None:
        raise RuntimeError("consumer bug")

    s, _ = stream(boom)
    assert s._handle(ORDER_TRADE_UPDATE) is False
    assert s.counters.handler_errors == 1
