"""Stream sets (<= 200 streams per connection, a symbol's streams together) and reconnect backoff."""

from __future__ import annotations

import random

from hftops.pipeline.collector.connection import ReconnectBackoff, plan_stream_sets
from hftops.pipeline.collector.stats import FlapDetector, LatencyWindow, histogram_quantile


def test_small_sets_use_one_connection_with_the_binance_url() -> None:
    (only,) = plan_stream_sets(["BTCUSDT", "ETHUSDT"], "aggTrade", bbo=True)
    assert only.url("wss://fstream.binance.com/") == (
        "wss://fstream.binance.com/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker/ethusdt@aggTrade/"
        "ethusdt@bookTicker"
    )
    (spot,) = plan_stream_sets(["BTCUSDT"], "trade", bbo=False)
    assert spot.streams == ("btcusdt@trade",)


def test_more_than_200_streams_are_split_and_a_symbol_never_straddles_two_connections() -> None:
    symbols = [f"S{i:03d}USDT" for i in range(250)]
    sets = plan_stream_sets(symbols, "aggTrade", bbo=True)
    assert [len(s.streams) for s in sets] == [200, 200, 100]
    assert [len(s.symbols) for s in sets] == [100, 100, 50]
    assert [sym for s in sets for sym in s.symbols] == symbols
    for stream_set in sets:
        assert {st.split("@")[0] for st in stream_set.streams} == {s.lower() for s in stream_set.symbols}
    assert [len(s.streams) for s in plan_stream_sets(symbols, "aggTrade", bbo=False)] == [200, 50]


def test_backoff_doubles_with_jitter_to_the_cap_and_resets() -> None:
    backoff = ReconnectBackoff(1.0, 30.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    for delay, base in zip(delays, [1, 2, 4, 8, 16, 30, 30, 30], strict=True):
        assert base / 2 <= delay <= base
    assert len(set(delays)) == len(delays)  # jittered, so reconnecting clients do not stampede
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_flapping_is_three_reconnects_within_a_minute() -> None:
    flaps = FlapDetector()
    for t in (0.0, 10.0):
        flaps.record(t)
    assert not flaps.flapping(11.0)
    flaps.record(59.0)
    assert flaps.flapping(59.0)
    assert not flaps.flapping(70.5)  # the first fell out of the window


def test_latency_window_percentiles_in_ms_and_reset() -> None:
    window = LatencyWindow()
    for ms in range(1, 101):
        window.record(ms * 1_000_000)
    assert window.summary(reset=False) == {"p50": 50.0, "p99": 99.0, "max": 100.0, "samples": 100}
    window.summary()
    assert window.summary()["samples"] == 0


def test_latency_histogram_is_cumulative_and_survives_the_window_reset() -> None:
    window = LatencyWindow()
    for ms in (0.2, 0.5, 0.51, 4.9, 5.0, 5.01, 2_000):  # bounds are inclusive ("le")
        window.record(int(ms * 1_000_000))
    window.summary()  # the one-second window resets; the histogram does not
    hist = window.cumulative()
    counts = dict(zip(hist["le_ms"], hist["counts"], strict=True))  # type: ignore[call-overload]
    assert counts[0.5] == 2 and counts[1] == 1 and counts[5] == 2 and counts[6] == 1 and counts[None] == 1
    assert sum(hist["counts"]) == 7  # type: ignore[arg-type]


def test_histogram_quantile_takes_the_bucket_bound_and_differences_of_readings() -> None:
    le = [1.0, 5.0, 10.0, None]
    assert histogram_quantile(0.99, le, [0, 0, 0, 0]) is None
    assert histogram_quantile(0.5, le, [60, 30, 10, 0]) == 1.0
    assert histogram_quantile(0.99, le, [60, 30, 10, 0]) == 10.0
    assert histogram_quantile(0.9, le, [60, 30, 10, 0]) == 5.0
    assert histogram_quantile(0.99, le, [0, 0, 0, 5]) is None  # beyond the last finite bound
    before, after = [50, 10, 0, 0], [150, 10, 0, 0]
    assert histogram_quantile(0.99, le, [a - b for a, b in zip(after, before, strict=True)]) == 1.0
