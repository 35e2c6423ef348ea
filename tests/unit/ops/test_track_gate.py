"""TrackGate: membership (exact, futures product root, glob), the most permissive phase across tracks,
unknown symbols CLOSED with one warning each unless HFT_TRACK_GATE_DEFAULT_OPEN=1."""

from __future__ import annotations

import pytest

from hftops.model.phases import Phase, most_permissive
from hftops.ops.track_gate import TrackGate, default_open_from_env
from tests.unit.ops.session_support import STOCK_DAY, RecordingLog, crypto_track, stock_track, track


def futures() -> object:
    return track("futures", ["TXF", "MX"], STOCK_DAY)


def test_membership_by_symbol_product_root_and_pattern() -> None:
    gate = TrackGate([crypto_track(), stock_track(), futures()], log=RecordingLog())  # type: ignore[list-item]
    assert gate.tracks_of("2330") == ("stock",)
    assert gate.tracks_of("TXFL6") == ("futures",)  # contract code -> product root TXF
    assert gate.tracks_of("MXFA7") == ("futures",)  # MXF listed by its TAIFEX root MX
    assert gate.tracks_of("BTCUSDT") == ("crypto",)
    assert gate.tracks_of("2454") == ()
    assert gate.symbols_of_track("futures", ["TXFL6", "TXFA7", "2330"]) == {"TXFL6", "MXFA7", "TXFA7"}


def test_phase_follows_the_track_and_unknown_symbols_are_closed_once_warned() -> None:
    log = RecordingLog()
    gate = TrackGate([stock_track()], symbols=["2330"], log=log)
    assert gate.phase_of("2330") is Phase.INIT
    gate.set_track_phase("stock", Phase.OPEN)
    assert gate.phase_of("2330") is Phase.OPEN and gate.is_open("2317")
    gate.set_track_phase("stock", Phase.CLOSE_ONLY)
    assert gate.phase_of("2330") is Phase.CLOSE_ONLY and gate.phase_of("2317") is Phase.CLOSE_ONLY
    for _ in range(5):
        assert gate.phase_of("2454") is Phase.CLOSED
    assert [w["symbol"] for w in log.events("track_gate_unknown_symbol")] == ["2454"]
    assert gate.unknown_symbols == {"2454"}


def test_default_open_makes_unknown_symbols_open() -> None:
    gate = TrackGate([stock_track()], default_open=True, log=RecordingLog())
    assert gate.phase_of("2454") is Phase.OPEN
    assert default_open_from_env({"HFT_TRACK_GATE_DEFAULT_OPEN": "1"})
    assert not default_open_from_env({})
    assert not default_open_from_env({"HFT_TRACK_GATE_DEFAULT_OPEN": "0"})


@pytest.mark.parametrize(
    ("day", "allday", "expected"),
    [
        (Phase.CLOSED, Phase.OPEN, Phase.OPEN),
        (Phase.CLOSE_ONLY, Phase.CLOSED, Phase.CLOSE_ONLY),
        (Phase.FORCE_FLAT, Phase.PRE_OPEN, Phase.FORCE_FLAT),
        (Phase.PRE_OPEN, Phase.CLOSED, Phase.PRE_OPEN),
        (Phase.OPEN, Phase.CLOSE_ONLY, Phase.OPEN),
    ],
)
def test_a_symbol_in_several_tracks_gets_the_most_permissive_phase(day: Phase, allday: Phase, expected: Phase) -> None:
    other = track("block", ["2330"], [("open", "14:00"), ("closed", "14:30")])
    gate = TrackGate([stock_track(), other], symbols=["2330", "2317"], log=RecordingLog())
    assert gate.tracks_of("2330") == ("stock", "block")
    gate.set_track_phase("stock", day)
    gate.set_track_phase("block", allday)
    assert gate.phase_of("2330") is expected
    assert gate.phase_of("2317") is day  # only in one track
    assert most_permissive([day, allday]) is expected


def test_unknown_track_is_named() -> None:
    gate = TrackGate([stock_track()], log=RecordingLog())
    with pytest.raises(KeyError, match="unknown track 'nope'"):
        gate.symbols_of_track("nope")
