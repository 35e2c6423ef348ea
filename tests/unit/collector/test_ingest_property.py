"""Property: whatever the venue sends, the collector does not raise; every bad frame yields exactly one
dead letter and every good frame around the bad ones is forwarded, in order."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftops.model.market import DeadLetter
from hftops.model.streams import MdKind
from hftops.pipeline.collector.batcher import Batcher
from hftops.pipeline.collector.decode import FrameDecoder
from hftops.pipeline.collector.ingest import Ingest
from hftops.pipeline.collector.reasons import SOURCE, RejectReason
from hftops.pipeline.collector.sequence import TradeSequence
from hftops.pipeline.collector.stats import Totals

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MAX_FRAME = 4096


def trade(symbol: str, trade_id: int) -> dict[str, Any]:
    return {
        "e": "aggTrade",
        "E": 2,
        "s": symbol,
        "a": trade_id,
        "p": "10.5",
        "q": "1",
        "f": trade_id,
        "l": trade_id,
        "T": 1,
        "m": False,
    }


def bbo(symbol: str, u: int) -> dict[str, Any]:
    return {
        "e": "bookTicker",
        "u": u,
        "E": 2,
        "T": 1,
        "s": symbol,
        "b": "10.1",
        "B": "1",
        "a": "10.2",
        "A": "1",
    }


def encode(stream: str, data: Any) -> bytes:
    return msgspec.json.encode({"stream": stream, "data": data})


NOT_A_DECIMAL = st.text(alphabet=st.characters(exclude_characters="0123456789"), max_size=12)
NON_POSITIVE = st.decimals(max_value=0, allow_nan=False, allow_infinity=False, places=3).map(str)
BAD_PRICE = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e5", "0", "0.0", " 1", "1_0"]),
    NOT_A_DECIMAL,
    NON_POSITIVE,
)
BAD_QTY = st.one_of(st.sampled_from(["NaN", "-1", "inf", "-0.001"]), NOT_A_DECIMAL)
WRONG_TYPE = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False).filter(lambda f: f != int(f) if f == f and abs(f) < 1e300 else True),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def bad_frame(draw: st.DrawFn) -> bytes:
    symbol = draw(st.sampled_from(SYMBOLS))
    base = trade(symbol, draw(st.integers(0, 10**6)))
    stream = f"{symbol.lower()}@aggTrade"
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "price",
                "qty",
                "neg_id",
                "missing",
                "wrong_type",
                "symbol",
                "stream",
                "oversized",
                "not_object",
                "truncated",
                "bbo_price",
            ]
        )
    )
    if kind == "bytes":
        raw = draw(st.binary(max_size=64))
        return raw if not raw.startswith(b"{") else b"x" + raw
    if kind == "price":
        base["p"] = draw(BAD_PRICE)
    elif kind == "qty":
        base["q"] = draw(BAD_QTY)
    elif kind == "neg_id":
        base[draw(st.sampled_from("afl"))] = draw(st.integers(max_value=-1))
    elif kind == "missing":
        del base[draw(st.sampled_from(sorted(base)))]
    elif kind == "wrong_type":
        base[draw(st.sampled_from(["a", "p", "q", "T", "m", "s"]))] = draw(WRONG_TYPE)
    elif kind == "symbol":
        base["s"] = draw(st.text(max_size=10).filter(lambda s: s != symbol))
    elif kind == "stream":
        stream = draw(
            st.text(max_size=20).filter(
                lambda s: s not in {f"{x.lower()}@{k}" for x in SYMBOLS for k in ("aggTrade", "bookTicker")}
            )
        )
    elif kind == "oversized":
        base["pad"] = "x" * MAX_FRAME
    elif kind == "not_object":
        return encode(stream, draw(st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers()))))
    elif kind == "truncated":
        full = encode(stream, base)
        return full[: draw(st.integers(0, len(full) - 1))]
    elif kind == "bbo_price":
        data = bbo(symbol, 1)
        data[draw(st.sampled_from(["b", "a"]))] = draw(BAD_PRICE)
        return encode(f"{symbol.lower()}@bookTicker", data)
    return encode(stream, base)


SLOT = st.one_of(st.sampled_from(["trade", "bbo"]), bad_frame())


def quiet_ingest() -> Ingest:
    sequences = {s: TradeSequence(s) for s in SYMBOLS}
    batcher = Batcher(flush_max=50, flush_ms=2.0, mono_ns=lambda: 0)
    return Ingest(
        "sim",
        FrameDecoder(SYMBOLS, "aggTrade", True, MAX_FRAME),
        sequences,
        batcher,
        Totals(),
        lambda: 1,
        lambda symbol: None,
        structlog.wrap_logger(structlog.ReturnLogger()),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slots=st.lists(SLOT, max_size=40),
    symbol_choice=st.lists(st.sampled_from(SYMBOLS), min_size=40, max_size=40),
)
def test_no_exception_one_dead_letter_per_bad_frame_good_frames_forwarded(
    slots: list[Any], symbol_choice: list[str]
) -> None:
    ingest = quiet_ingest()
    next_id = dict.fromkeys(SYMBOLS, 1000)
    expected: dict[tuple[MdKind, str], list[int]] = {}
    bad = 0
    for i, slot in enumerate(slots):
        symbol = symbol_choice[i]
        if slot == "trade":
            payload = encode(f"{symbol.lower()}@aggTrade", trade(symbol, next_id[symbol]))
            expected.setdefault((MdKind.TRADE, symbol), []).append(next_id[symbol])
            next_id[symbol] += 1
        elif slot == "bbo":
            payload = encode(f"{symbol.lower()}@bookTicker", bbo(symbol, i))
            expected.setdefault((MdKind.BBO, symbol), []).append(i)
        else:
            payload, bad = slot, bad + 1
        ingest.frame(payload)

    assert len(ingest.dead_letters) == bad
    assert sum(ingest.totals.dlq.values()) == bad and ingest.totals.received == len(slots)
    for fields in ingest.dead_letters:
        letter = msgspec.msgpack.decode(fields["d"], type=DeadLetter)
        assert letter.source == SOURCE and fields["reason"] == letter.reason
        assert RejectReason(letter.reason) is not RejectReason.INTERNAL_ERROR, letter.detail
        assert letter.detail
    forwarded: dict[tuple[MdKind, str], list[int]] = {}
    for chunk in ingest.batcher.take_due(everything=True, max_chunks=10_000):
        forwarded.setdefault(chunk.key, []).extend(
            r.trade_id if chunk.key[0] is MdKind.TRADE else r.update_id for r in chunk.rows
        )  # type: ignore[union-attr]
    assert forwarded == expected
    assert all(seq.healthy for seq in ingest.sequences.values())
