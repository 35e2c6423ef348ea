"""IdRanges against Python sets: every operation must agree with the set it stands for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.pipeline.intervals import IdRanges

small_ids = st.sets(st.integers(min_value=-20, max_value=120), max_size=60)
range_lists = st.lists(st.tuples(st.integers(-20, 120), st.integers(-20, 120)), max_size=12)


def as_set(ranges: IdRanges) -> set[int]:
    return set(ranges.ids())


def well_formed(ranges: IdRanges) -> bool:
    pairs = list(ranges.ranges())
    return all(lo <= hi for lo, hi in pairs) and all(pairs[i][1] + 1 < pairs[i + 1][0] for i in range(len(pairs) - 1))


@given(small_ids)
def test_from_sorted_ids_is_the_set(ids: set[int]) -> None:
    ranges = IdRanges.from_sorted_ids(sorted(ids))
    assert as_set(ranges) == ids
    assert ranges.count == len(ids) == len(ranges)
    assert well_formed(ranges)


@given(st.lists(st.integers(-20, 120), max_size=60))
def test_from_sorted_ids_accepts_repeats(ids: list[int]) -> None:
    ranges = IdRanges.from_sorted_ids(sorted(ids))
    assert as_set(ranges) == set(ids)


def test_from_sorted_ids_refuses_unsorted_input() -> None:
    with pytest.raises(ValueError, match="not sorted: 3 after 5"):
        IdRanges.from_sorted_ids([1, 5, 3])


@given(range_lists)
def test_constructor_normalises_overlapping_and_adjacent_ranges(pairs: list[tuple[int, int]]) -> None:
    ranges = IdRanges(pairs)
    expected = {i for lo, hi in pairs for i in range(lo, hi + 1)}
    assert as_set(ranges) == expected
    assert well_formed(ranges)


@given(
    st.lists(
        st.one_of(
            st.integers(-20, 120).map(lambda i: (i, i)),
            st.tuples(st.integers(-20, 120), st.integers(-20, 120)),
        ),
        max_size=40,
    )
)
def test_add_and_add_range_in_any_order(steps: list[tuple[int, int]]) -> None:
    ranges = IdRanges()
    expected: set[int] = set()
    for lo, hi in steps:
        if lo == hi:
            ranges.add(lo)
        else:
            ranges.add_range(lo, hi)
        expected |= set(range(lo, hi + 1))
        assert well_formed(ranges)
    assert as_set(ranges) == expected


@given(small_ids, small_ids)
def test_union_difference_intersection(a_ids: set[int], b_ids: set[int]) -> None:
    a, b = IdRanges.from_ids(a_ids), IdRanges.from_ids(b_ids)
    assert as_set(a.union(b)) == a_ids | b_ids
    assert as_set(a | b) == a_ids | b_ids
    assert as_set(a.difference(b)) == a_ids - b_ids
    assert as_set(a - b) == a_ids - b_ids
    assert as_set(a.intersection(b)) == a_ids & b_ids
    for result in (a | b, a - b, a & b):
        assert well_formed(result)
    # operands untouched
    assert as_set(a) == a_ids and as_set(b) == b_ids


@given(small_ids, small_ids, small_ids)
def test_multi_operand_union_and_difference(a_ids: set[int], b_ids: set[int], c_ids: set[int]) -> None:
    a, b, c = (IdRanges.from_ids(x) for x in (a_ids, b_ids, c_ids))
    assert as_set(a.union(b, c)) == a_ids | b_ids | c_ids
    assert as_set(a.difference(b, c)) == a_ids - b_ids - c_ids


@given(small_ids, st.integers(-30, 130))
def test_contains(ids: set[int], probe: int) -> None:
    ranges = IdRanges.from_ids(ids)
    assert ranges.contains(probe) == (probe in ids)
    assert (probe in ranges) == (probe in ids)


@given(small_ids, st.integers(-30, 130), st.integers(-30, 130))
def test_clip(ids: set[int], lo: int, hi: int) -> None:
    assert as_set(IdRanges.from_ids(ids).clip(lo, hi)) == {i for i in ids if lo <= i <= hi}


def test_to_list_min_max_and_limit() -> None:
    ranges = IdRanges.from_sorted_ids([1, 2, 3, 7, 9, 10])
    assert ranges.to_list() == [[1, 3], [7, 7], [9, 10]]
    assert ranges.to_list(limit=2) == [[1, 3], [7, 7]]
    assert (ranges.min, ranges.max, ranges.range_count) == (1, 10, 3)
    empty = IdRanges()
    assert (empty.min, empty.max, empty.count, bool(empty)) == (None, None, 0, False)
    assert IdRanges.single(5, 4) == IdRanges()


def test_large_dense_sets_stay_small() -> None:
    # three million ids with one hole: two ranges, and the algebra never expands them
    stored = IdRanges([(1, 1_000_000), (1_000_051, 3_000_000)])
    published = IdRanges.single(1, 3_000_000)
    missing = published - stored
    assert missing.to_list() == [[1_000_001, 1_000_050]]
    assert missing.count == 50
    assert (stored | missing) == published
