"""Re-parsing dead-letter payloads: the recorder's own entry format and the venue's frames."""

from __future__ import annotations

import json

import pytest

from hftops.model.market import TradeRow
from hftops.model.streams import MdKind, md_stream
from hftops.pipeline.recorder.deadletters import row_payload
from hftops.pipeline.recorder.dlq_replay import Letter, entry_fields, parse_letter
from hftops.pipeline.recorder.idset import Key

T = 1_700_000_000_000


def letter(payload: bytes) -> Letter:
    return Letter("1-0", "collector", "x", "sim", "BTCUSDT", "trade", 5, "d", payload, T * 1_000_000)


def test_recorder_payloads_round_trip() -> None:
    row = TradeRow(5, "1.5", "2", True, T, T, T * 1_000_000, 5, 5)
    key = Key("sim", MdKind.TRADE, "BTCUSDT")
    stream, rows = parse_letter(letter(row_payload(key, md_stream("sim", "trade", "BTCUSDT"), row, 1)), "sim")
    assert (stream, rows) == ("md:sim:trade:BTCUSDT", [row])
    fields = entry_fields(rows, 7)
    assert (fields["n"], fields["lo"], fields["hi"], fields["v"]) == (1, 5, 5, b"1")


@pytest.mark.parametrize(
    ("event", "stream"),
    [
        (
            {"e": "aggTrade", "E": T, "s": "BTCUSDT", "a": 9, "p": "1", "q": "1", "f": 9, "l": 9, "T": T, "m": True},
            "md:sim:trade:BTCUSDT",
        ),
        (
            {"e": "trade", "E": T, "s": "ETHUSDT", "t": 3, "p": "1", "q": "1", "T": T, "m": False},
            "md:sim:trade:ETHUSDT",
        ),
        (
            {"e": "bookTicker", "u": 4, "E": T, "T": T, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"},
            "md:sim:bbo:BTCUSDT",
        ),
    ],
)
def test_venue_frames_parse_raw_or_combined(event: dict[str, object], stream: str) -> None:
    for payload in (event, {"stream": "x", "data": event}):
        got_stream, rows = parse_letter(letter(json.dumps(payload).encode()), "sim")
        assert got_stream == stream and len(rows) == 1


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", "no payload"),
        (b"{not json", "does not parse"),
        (
            json.dumps(
                {
                    "e": "aggTrade",
                    "E": T,
                    "s": "BTCUSDT",
                    "a": 9,
                    "p": "NaN",
                    "q": "1",
                    "f": 9,
                    "l": 9,
                    "T": T,
                    "m": True,
                }
            ).encode(),
            "price",
        ),
        (json.dumps({"e": "depthUpdate"}).encode(), "unknown event"),
    ],
)
def test_still_invalid_payloads_name_why(payload: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_letter(letter(payload), "sim")
