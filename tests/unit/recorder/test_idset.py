"""The id registry's maths against plain Python sets: filtering is exact, fast path or not."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from hftops.model.market import TradeRow
from hftops.model.streams import MdKind
from hftops.pipeline.intervals import IdRanges
from hftops.pipeline.recorder.idset import IdRegistry, Key, strictly_increasing

KEY = Key("sim", MdKind.TRADE, "BTCUSDT")


def rows(ids: list[int]) -> list[TradeRow]:
    return [TradeRow(i, "1", "1", False, 1, 1, 1, i, i) for i in ids]


def loaded(stored: set[int] = frozenset(), wal: set[int] = frozenset(), max_ranges: int = 100_000) -> IdRegistry:
    registry = IdRegistry(max_ranges)
    registry.load_stored(KEY, list(IdRanges.from_ids(stored).ranges()))
    registry.mark_wal(KEY, IdRanges.from_ids(wal))
    registry.loaded = True
    return registry


def run_filter(registry: IdRegistry, ids: list[int], batch: IdRanges | None = None) -> tuple[list[int], int]:
    batch = batch if batch is not None else IdRanges()
    result = registry.filter(KEY, rows(ids), min(ids), strictly_increasing(ids), batch)
    return [r.trade_id for r in result.rows], result.duplicates


entries = st.lists(st.lists(st.integers(0, 200), min_size=1, max_size=30), min_size=1, max_size=8)


@given(st.sets(st.integers(0, 200)), st.sets(st.integers(0, 200)), entries)
def test_filter_keeps_exactly_the_ids_never_seen(
    stored: set[int], wal: set[int], batch_entries: list[list[int]]
) -> None:
    registry = loaded(stored, wal)
    batch = IdRanges()
    seen = set(stored) | set(wal)
    for ids in batch_entries:
        kept, duplicates = run_filter(registry, ids, batch)
        expected = []
        for i in ids:
            if i not in seen:
                expected.append(i)
                seen.add(i)
        assert kept == expected
        assert duplicates == len(ids) - len(expected)
    assert set(batch.ids()) == seen - set(stored) - set(wal)


def test_fast_path_for_entries_above_everything_known() -> None:
    registry = loaded(set(range(1, 101)))
    batch = IdRanges()
    assert run_filter(registry, list(range(101, 201)), batch) == (list(range(101, 201)), 0)
    assert batch.to_list() == [[101, 200]]
    assert run_filter(registry, [150, 201], batch) == ([201], 1)


def test_transitions_between_wal_and_stored() -> None:
    registry = loaded({1, 2, 3})
    registry.mark_wal(KEY, IdRanges.single(4, 10))
    assert registry.wal_ids() == {"sim:trade:BTCUSDT": [[4, 10]]}
    registry.mark_stored(KEY, IdRanges.single(4, 6))
    assert registry.wal_ids() == {"sim:trade:BTCUSDT": [[7, 10]]}
    registry.drop_wal(KEY, IdRanges.single(7, 10))
    assert registry.wal_ids() == {}
    assert registry.ids(KEY).stored.to_list() == [[1, 6]]


def test_loading_stored_removes_ids_replayed_before_a_crash_from_the_wal_view() -> None:
    registry = IdRegistry()
    registry.mark_wal(KEY, IdRanges.single(1, 10))  # recovered from WAL segments first
    registry.load_stored(KEY, [(1, 5)])
    assert registry.wal_ids() == {"sim:trade:BTCUSDT": [[6, 10]]}


def test_bounded_memory_moves_old_ranges_below_a_floor_that_is_rechecked() -> None:
    registry = loaded(max_ranges=4)
    for start in range(0, 100, 10):  # ten separate runs
        registry.mark_stored(KEY, IdRanges.single(start, start + 4))
    ids = registry.ids(KEY)
    assert ids.stored.range_count <= 4 and ids.floor >= 4
    result = registry.filter(KEY, rows([2]), 2, True, IdRanges())
    assert [r.trade_id for r in result.rows] == [2] and result.recheck == [2]  # the table decides
    assert run_filter(registry, [94]) == ([], 1)


def test_before_loading_every_row_is_rechecked() -> None:
    registry = IdRegistry()
    result = registry.filter(KEY, rows([5, 6]), 5, True, IdRanges())
    assert result.recheck == [5, 6]


@given(st.lists(st.integers(-5, 60), max_size=20))
def test_strictly_increasing_agrees_with_comparing_neighbours(ids: list[int]) -> None:
    assert strictly_increasing(ids) == all(a < b for a, b in itertools.pairwise(ids))


@given(st.lists(st.sets(st.integers(1, 400), min_size=1, max_size=12), min_size=1, max_size=6), st.booleans())
def test_the_fast_path_collects_gapped_ids_exactly(groups: list[set[int]], pass_ids: bool) -> None:
    """Book ids with gaps (Binance `u`), each entry above the last: kept whole, every id collected once."""
    registry = loaded({0})
    batch = IdRanges()
    top = 0
    collected: set[int] = set()
    for group in groups:
        ids = sorted(top + i for i in group)  # strictly increasing, all above everything seen
        top = ids[-1]
        result = registry.filter(KEY, rows(ids), ids[0], True, batch, ids if pass_ids else None)
        assert [r.trade_id for r in result.rows] == ids and result.duplicates == 0
        collected |= set(ids)
    assert set(batch.ids()) == collected
    assert all(hi + 1 < lo for (_, hi), (lo, _) in itertools.pairwise(batch.ranges()))
