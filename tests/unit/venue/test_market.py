"""The market under a controlled clock: rates, per-symbol id sequences, pauses, skipped ids, bursts."""

from __future__ import annotations

from pathlib import Path

from hftops.venue.faults import FaultBook, FaultRequest
from hftops.venue.ground_truth import GroundTruth
from hftops.venue.market import MAX_CATCH_UP_S, MAX_TICK_MESSAGES, Market, RateSchedule
from hftops.venue.symbols import spec_for

SYMBOLS = ("BTCUSDT", "ETHUSDT", "XRPUSDT")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _market(
    tmp_path: Path,
    clock: Clock,
    rate: float = 10_000,
    burst_factor: float = 1.0,
    bbo_share: float = 0.5,
    seed: int = 42,
) -> Market:
    truth = GroundTruth(tmp_path, SYMBOLS)
    schedule = RateSchedule(rate, burst_factor, 10.0, 1.0, start=clock())
    return Market([spec_for(s) for s in SYMBOLS], truth, FaultBook(SYMBOLS, clock), schedule, seed, bbo_share)


def _run(market: Market, clock: Clock, seconds: float, step_s: float = 0.001) -> list:
    ticks = []
    for _ in range(round(seconds / step_s)):
        clock.now += step_s
        tick = market.step(clock.now, int(clock.now * 1000))
        if tick is not None:
            ticks.append(tick)
    return ticks


def test_rate_and_share_of_book_updates(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock, rate=10_000, bbo_share=0.4)
    market.step(clock.now, 0)
    ticks = _run(market, clock, 1.0)
    trades = sum(len(b.prices) for t in ticks for b in t.trades.values())
    books = sum(len(b.quotes) for t in ticks for b in t.books.values())
    assert abs(trades - 6000) <= 3 and abs(books - 4000) <= 3
    assert max(len(b.prices) for t in ticks for b in t.trades.values()) >= 2  # several trades share a millisecond


def test_ids_are_sequential_per_symbol_and_recorded_before_publishing(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock)
    market.step(clock.now, 0)
    ticks = _run(market, clock, 0.5)
    for symbol in SYMBOLS:
        ids = [b.first_id + i for t in ticks if (b := t.trades.get(symbol)) for i in range(len(b.prices))]
        assert ids == list(range(1, len(ids) + 1))
        assert market.ground_truth[symbol].last_id == len(ids) == market.published(symbol)
        us = [b.first_id + i for t in ticks if (b := t.books.get(symbol)) for i in range(len(b.quotes))]
        assert us == list(range(1, len(us) + 1)) and market.book_published(symbol) == len(us)


def test_same_seed_same_trades_at_another_rate(tmp_path: Path) -> None:
    fast_clock, slow_clock = Clock(), Clock()
    fast = _market(tmp_path / "a", fast_clock, rate=50_000)
    slow = _market(tmp_path / "b", slow_clock, rate=3_000)
    for market, clock in ((fast, fast_clock), (slow, slow_clock)):
        market.step(clock.now, 0)
        while market.published("BTCUSDT") < 2000:
            _run(market, clock, 0.01)
    assert list(fast.ground_truth["BTCUSDT"].rows(1, 2000)) != []
    strip_time = [(i, p, q, m) for i, p, _, q, m in fast.ground_truth["BTCUSDT"].rows(1, 2000)]
    assert strip_time == [(i, p, q, m) for i, p, _, q, m in slow.ground_truth["BTCUSDT"].rows(1, 2000)]


def test_pause_symbol_and_publishing_pause(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock)
    market.step(clock.now, 0)
    market.faults.apply(FaultRequest("pause_symbol", symbol="ETHUSDT", seconds=0.2))
    ticks = _run(market, clock, 0.1)
    assert all("ETHUSDT" not in t.trades and "ETHUSDT" not in t.books for t in ticks)
    assert any("BTCUSDT" in t.trades for t in ticks)
    _run(market, clock, 0.2)
    assert market.published("ETHUSDT") > 0  # the pause ran out

    market.paused = True
    before = {s: market.published(s) for s in SYMBOLS}
    assert _run(market, clock, 0.1) == []
    assert before == {s: market.published(s) for s in SYMBOLS}


def test_skipped_ids_are_recorded_but_marked_off_the_wire(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock)
    market.step(clock.now, 0)
    _run(market, clock, 0.05)
    start = market.published("BTCUSDT")
    market.faults.apply(FaultRequest("skip_ids", symbol="BTCUSDT", count=25))
    ticks = _run(market, clock, 0.2)
    hidden = [b.first_id + i for t in ticks if (b := t.trades.get("BTCUSDT")) for i in range(b.hidden)]
    on_wire = [
        b.wire_first_id + i for t in ticks if (b := t.trades.get("BTCUSDT")) for i in range(len(b.prices) - b.hidden)
    ]
    assert hidden == list(range(start + 1, start + 26))
    assert on_wire[0] == start + 26
    assert market.ground_truth["BTCUSDT"].last_id == market.published("BTCUSDT") >= start + 26
    assert market.faults.counters.skipped_on_wire == 25


def test_bursts_multiply_the_rate_inside_the_window(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock, rate=1000, burst_factor=5.0)  # bursts: first 1 s of every 10 s
    market.step(clock.now, 0)
    in_burst = sum(t.messages for t in _run(market, clock, 0.9))
    clock.now += 0.2
    market.step(clock.now, 0)
    calm = sum(t.messages for t in _run(market, clock, 0.9))
    assert abs(in_burst - 4500) < 60 and abs(calm - 900) < 30


def test_a_stall_is_not_replayed_as_a_flood(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock, rate=1000)
    market.step(clock.now, 0)
    clock.now += 30.0  # the loop was stuck for 30 s
    tick = market.step(clock.now, 0)
    assert tick is not None and tick.messages <= 1000 * MAX_CATCH_UP_S + 3
    assert sum(t.messages for t in _run(market, clock, 0.1)) <= 100 + 3  # and nothing more is owed after it
    assert market.shortfall == 1000 * (30 - MAX_CATCH_UP_S)  # what was not owed is counted, not hidden


def test_a_hiccup_is_made_up_over_the_next_ticks_within_the_tick_cap(tmp_path: Path) -> None:
    clock = Clock()
    market = _market(tmp_path, clock, rate=50_000)
    market.step(clock.now, 0)
    generated = sum(t.messages for t in _run(market, clock, 0.2))
    clock.now += 0.3  # the simulator's loop did not run for 300 ms
    assert abs(market.behind(clock.now) - 0.3) < 1e-9
    owed_from = market.generated_until
    ticks = _run(market, clock, 0.5)
    generated += sum(t.messages for t in ticks)
    assert abs(generated - 50_000) <= 10  # 1 s of market time, all of it published
    assert max(t.messages for t in ticks) <= MAX_TICK_MESSAGES + 20
    assert market.shortfall == 0 and market.behind(clock.now) < 0.01
    assert market.generated_until > owed_from
