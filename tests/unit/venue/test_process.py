"""The price process is a pure function of (seed, symbol, id): batching, rate and restarts do not matter."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.venue.process import BLOCK, BookProcess, TradeProcess
from hftops.venue.symbols import spec_for


def _trades(seed: int, symbol: str, batches: list[int]) -> list[tuple[int, int, int, bool]]:
    process = TradeProcess(spec_for(symbol), seed)
    out = []
    for size in batches:
        first_id, prices, qtys, sides = process.take(size)
        out += [(first_id + i, p, q, m) for i, (p, q, m) in enumerate(zip(prices, qtys, sides, strict=True))]
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=20))
def test_same_seed_same_trades_however_batched(batches: list[int]) -> None:
    total = sum(batches)
    assert _trades(7, "BTCUSDT", batches) == _trades(7, "BTCUSDT", [total])


def test_ids_are_sequential_from_one_and_cross_block_boundaries() -> None:
    trades = _trades(1, "ETHUSDT", [BLOCK - 3, 10, BLOCK])
    assert [t[0] for t in trades] == list(range(1, 2 * BLOCK + 8))


def test_different_seed_or_symbol_gives_different_trades() -> None:
    base = _trades(1, "BTCUSDT", [500])
    assert base != _trades(2, "BTCUSDT", [500])
    assert [t[2:] for t in base] != [t[2:] for t in _trades(1, "ETHUSDT", [500])]


def test_a_restart_from_the_last_id_and_price_continues_the_same_path() -> None:
    spec = spec_for("SOLUSDT")
    straight = TradeProcess(spec, 42)
    _, first_prices, _, _ = straight.take(5000)
    _, rest_prices, rest_qtys, rest_sides = straight.take(3000)

    resumed = TradeProcess(spec, 42, last_id=5000, last_price_units=first_prices[-1])
    first_id, prices, qtys, sides = resumed.take(3000)
    assert first_id == 5001
    assert (prices, qtys, sides) == (rest_prices, rest_qtys, rest_sides)


def test_prices_stay_on_the_tick_grid_and_positive_with_plausible_levels() -> None:
    for symbol, low, high in (
        ("BTCUSDT", 50_000, 70_000),
        ("ETHUSDT", 2_500, 3_500),
        ("NEWCOINUSDT", 0.5, 600),
    ):
        spec = spec_for(symbol)
        _, prices, qtys, _ = TradeProcess(spec, 3).take(20_000)
        assert all(p % spec.tick_units == spec.start_price_units % spec.tick_units for p in prices)
        assert all(low <= p / 10**spec.price_decimals <= high for p in prices), symbol
        assert min(qtys) >= 1


def test_many_trades_print_at_the_same_price_and_sides_are_mixed() -> None:
    _, prices, _, sides = TradeProcess(spec_for("BTCUSDT"), 5).take(10_000)
    unchanged = sum(1 for a, b in itertools.pairwise(prices) if a == b)
    assert 0.4 < unchanged / len(prices) < 0.9
    assert 0.4 < sum(sides) / len(sides) < 0.6


def test_book_quotes_straddle_the_last_price_and_ids_are_sequential() -> None:
    spec = spec_for("BTCUSDT")
    book = BookProcess(spec, 9, last_update_id=41)
    first_id, quotes = book.take(1000, 6_000_000)
    assert first_id == 42 and book.next_id == 1042
    for bid, bid_qty, ask, ask_qty in quotes:
        assert bid <= 6_000_000 <= ask + spec.tick_units and bid < ask
        assert bid_qty >= 1 and ask_qty >= 1
