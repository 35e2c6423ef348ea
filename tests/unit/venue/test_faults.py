"""Fault requests are validated with messages naming the field; malformed frames really are malformed."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.model.binance import AggTrade, CombinedFrame, SpotTrade
from hftops.venue.faults import FaultBook, FaultError, FaultRequest, MalformedKind, malformed_frames
from hftops.venue.symbols import spec_for
from hftops.venue.wire import StreamKind

SYMBOLS = ("BTCUSDT", "ETHUSDT")


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "request_, problem",
    [
        (FaultRequest("explode"), "unknown fault 'explode'"),
        (FaultRequest("pause_symbol"), "needs symbol"),
        (FaultRequest("pause_symbol", symbol="DOGEUSDT"), "unknown symbol"),
        (FaultRequest("skip_ids", symbol="BTCUSDT"), "count is required"),
        (FaultRequest("skip_ids", symbol="BTCUSDT", count=0), "count must be between"),
        (FaultRequest("malformed", kind="weird"), "malformed needs kind"),
        (FaultRequest("rest_fail", status=404), "rest_fail needs status"),
        (FaultRequest("rest_slow"), "rest_slow needs ms"),
        (FaultRequest("down"), "seconds is required"),
        (FaultRequest("down", seconds=-1), "seconds must be > 0"),
    ],
)
def test_bad_requests_name_the_problem(request_: FaultRequest, problem: str) -> None:
    with pytest.raises(FaultError, match=problem):
        FaultBook(SYMBOLS, Clock()).apply(request_)


@settings(max_examples=200)
@given(
    st.builds(
        FaultRequest,
        fault=st.sampled_from(
            [
                "down",
                "skip_ids",
                "malformed",
                "rest_fail",
                "pause_symbol",
                "rest_slow",
                "resume_symbol",
                "drop_connections",
                "x",
            ]
        ),
        symbol=st.none() | st.sampled_from(["BTCUSDT", "btcusdt", "NOPE", ""]),
        seconds=st.none() | st.floats(allow_nan=True),
        count=st.none() | st.integers(),
        kind=st.none() | st.text(max_size=12) | st.sampled_from([k.value for k in MalformedKind]),
        status=st.none() | st.integers(),
        ms=st.none() | st.floats(),
    )
)
def test_any_request_is_armed_or_refused_with_a_fault_error(request_: FaultRequest) -> None:
    book = FaultBook(SYMBOLS, Clock())
    try:
        book.apply(request_)
    except FaultError:
        return
    book.describe()


def test_timed_faults_expire_and_counted_faults_run_out() -> None:
    clock = Clock()
    book = FaultBook(SYMBOLS, clock)
    book.apply(FaultRequest("down", seconds=2))
    book.apply(FaultRequest("pause_symbol", symbol="ETHUSDT", seconds=1))
    book.apply(FaultRequest("rest_fail", status=503, count=2))
    assert book.is_down(0.0) and book.is_paused("ETHUSDT", 0.0) and not book.is_paused("BTCUSDT", 0.0)
    assert [book.rest_failure() for _ in range(3)] == [503, 503, None]
    clock.now = 1.5
    assert not book.is_paused("ETHUSDT", clock.now) and book.is_down(clock.now)
    clock.now = 2.0
    assert not book.is_down(clock.now)
    book.apply(FaultRequest("skip_ids", symbol="btcusdt", count=5))
    assert [book.take_skip("BTCUSDT", 3), book.take_skip("BTCUSDT", 3), book.take_skip("BTCUSDT", 3)] == [
        3,
        2,
        0,
    ]


def test_clear_disarms_everything() -> None:
    book = FaultBook(SYMBOLS, Clock())
    for request in (
        FaultRequest("down", seconds=5),
        FaultRequest("rest_slow", ms=50),
        FaultRequest("malformed", kind="bad_json", count=3),
        FaultRequest("pause_symbol", symbol="BTCUSDT"),
    ):
        book.apply(request)
    book.clear()
    state = book.describe()
    assert state["down_remaining_s"] is None and state["rest_slow_ms"] == 0 and state["malformed"] == []
    assert state["paused_symbols"] == {}


@pytest.mark.parametrize("trade_kind, struct", [(StreamKind.AGG_TRADE, AggTrade), (StreamKind.TRADE, SpotTrade)])
@pytest.mark.parametrize("kind", list(MalformedKind))
def test_malformed_frames_fail_the_way_their_kind_says(
    kind: MalformedKind, trade_kind: StreamKind, struct: type
) -> None:
    raw, combined = malformed_frames(kind, spec_for("BTCUSDT"), trade_kind, 1_700_000_000_000, 6_000_000, 4096)
    if kind is MalformedKind.BAD_JSON:
        for payload in (raw, combined):
            with pytest.raises(msgspec.DecodeError):
                msgspec.json.decode(payload)
        return
    frame = msgspec.json.decode(combined, type=CombinedFrame)
    assert frame.stream == f"btcusdt@{trade_kind.value}" and bytes(frame.data) == raw
    if kind in (MalformedKind.MISSING_FIELD, MalformedKind.WRONG_TYPE):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(raw, type=struct)
        return
    event = msgspec.json.decode(raw, type=struct)
    assert (event.a if trade_kind is StreamKind.AGG_TRADE else event.t) == 0  # never a real trade id
    if kind is MalformedKind.NAN_PRICE:
        assert event.p == "NaN"
    elif kind is MalformedKind.NEGATIVE_PRICE:
        assert event.p == "-60000.00"
    else:
        assert len(raw) > 4096
