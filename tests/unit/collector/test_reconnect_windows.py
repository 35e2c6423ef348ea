"""HFT_RECONNECT_HOURS(_2): parsing, inside/outside (also across midnight), which symbols they apply to and
how the collector groups its connections by policy."""

from __future__ import annotations

import pytest

from hftops.config import Config
from hftops.config.tracks import default_tracks, parse_window, windows_from_env
from hftops.pipeline.collector.app import stream_sets
from hftops.pipeline.collector.windows import ReconnectWindows, reconnect_policies
from tests.unit.ops.session_support import taipei_ns


def test_defaults_and_second_window() -> None:
    assert windows_from_env({}) == ((510, 815),)
    assert windows_from_env({"HFT_RECONNECT_HOURS_2": "14:50-05:05"}) == ((510, 815), (890, 305))


@pytest.mark.parametrize("bad", ["8:30-13:35", "08:30", "08:30-08:30", "08:30-25:00", "x"])
def test_malformed_window_names_the_variable(bad: str) -> None:
    with pytest.raises(ValueError, match=r"HFT_RECONNECT_HOURS_2='.*': expected HH:MM-HH:MM"):
        windows_from_env({"HFT_RECONNECT_HOURS_2": bad})


def test_wait_inside_outside_and_across_midnight() -> None:
    day = ReconnectWindows((parse_window("w", "08:30-13:35"),), "Asia/Taipei")
    assert day.wait_s(taipei_ns(2026, 11, 20, 8, 30)) == 0
    assert day.wait_s(taipei_ns(2026, 11, 20, 13, 34, 59)) == 0
    assert day.wait_s(taipei_ns(2026, 11, 20, 13, 35)) == pytest.approx((24 * 60 - 13 * 60 - 35 + 8 * 60 + 30) * 60)
    assert day.wait_s(taipei_ns(2026, 11, 20, 8, 29)) == pytest.approx(60)
    night = ReconnectWindows((parse_window("w", "08:30-13:35"), parse_window("w", "14:50-05:05")), "Asia/Taipei")
    assert night.wait_s(taipei_ns(2026, 11, 21, 3)) == 0
    assert night.wait_s(taipei_ns(2026, 11, 20, 14)) == pytest.approx(50 * 60)
    assert night.describe() == "08:30-13:35, 14:50-05:05 Asia/Taipei"


def test_only_calendar_bound_symbols_have_windows() -> None:
    policies = reconnect_policies(default_tracks(), ["BTCUSDT", "2330", "TXFL6", "2454"], {})
    assert policies["BTCUSDT"] is None  # 24/7 track: always reconnects
    assert policies["2454"] is None  # in no track: capture is not trading, keep it flowing
    assert policies["2330"] == policies["TXFL6"] == ReconnectWindows(((510, 815),), "Asia/Taipei")


def test_connections_never_mix_policies() -> None:
    config = Config.model_validate({"venue": {"symbols": ["BTCUSDT", "2330", "ETHUSDT", "TXFL6"]}})
    sets = stream_sets(config, {})
    assert [(s.symbols, s.window is None) for s in sets] == [(("BTCUSDT", "ETHUSDT"), True), (("2330", "TXFL6"), False)]
    assert sets[1].streams == ("2330@aggTrade", "2330@bookTicker", "txfl6@aggTrade", "txfl6@bookTicker")
