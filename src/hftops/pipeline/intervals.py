"""IdRanges: a set of integer ids kept as sorted, disjoint, non-adjacent inclusive [lo, hi] ranges.

Venue ids are dense (sequential per symbol), so millions of ids usually collapse into a handful of ranges;
the ledger compares such sets without ever holding one Python int per id.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator


class IdRanges:
    """Immutable-by-convention set algebra over inclusive integer ranges.

    `add` and `add_range` mutate in place (handy while collecting); `union`, `difference` and
    `intersection` return new sets and leave both operands untouched.
    """

    __slots__ = ("_hi", "_lo")

    def __init__(self, ranges: Iterable[tuple[int, int] | list[int]] = ()) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        normalised = _normalise(ranges)
        if normalised:
            self._lo = [lo for lo, _ in normalised]
            self._hi = [hi for _, hi in normalised]

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_sorted_ids(cls, ids: Iterable[int]) -> IdRanges:
        """Ids in non-decreasing order (repeats allowed): one pass, no sort. ValueError if out of order."""
        out = cls()
        lo_list, hi_list = out._lo, out._hi
        for raw in ids:
            value = int(raw)
            if hi_list:
                last = hi_list[-1]
                if value < last:
                    raise ValueError(f"ids not sorted: {value} after {last}")
                if value == last:
                    continue  # a repeat
                if value == last + 1:
                    hi_list[-1] = value
                    continue
            lo_list.append(value)
            hi_list.append(value)
        return out

    @classmethod
    def from_ids(cls, ids: Iterable[int]) -> IdRanges:
        """Ids in any order (sorted here)."""
        return cls.from_sorted_ids(sorted(int(i) for i in ids))

    @classmethod
    def single(cls, lo: int, hi: int) -> IdRanges:
        return cls([(lo, hi)]) if hi >= lo else cls()

    def copy(self) -> IdRanges:
        out = IdRanges()
        out._lo = list(self._lo)
        out._hi = list(self._hi)
        return out

    # -- mutation -----------------------------------------------------------------------------------

    def add(self, value: int) -> None:
        self.add_range(value, value)

    def add_range(self, lo: int, hi: int) -> None:
        """Add every id in [lo, hi]; merges with overlapping and adjacent ranges. Empty if hi < lo."""
        if hi < lo:
            return
        # ids mostly arrive in order: touching or beyond the last range needs no search
        if not self._lo or lo > self._hi[-1] + 1:
            self._lo.append(lo)
            self._hi.append(hi)
            return
        if lo >= self._lo[-1]:
            self._hi[-1] = max(self._hi[-1], hi)
            return
        # first range that could touch [lo, hi]: its hi >= lo - 1
        start = bisect_left(self._hi, lo - 1)
        # ranges that could touch: lo_i <= hi + 1
        end = bisect_right(self._lo, hi + 1)
        if start < end:
            lo = min(lo, self._lo[start])
            hi = max(hi, self._hi[end - 1])
        self._lo[start:end] = [lo]
        self._hi[start:end] = [hi]

    def extend_ascending(self, ids: Iterable[int]) -> None:
        """Add ids given in strictly increasing order, every one above the current maximum (the caller
        checked both): one pass, no search."""
        lo_list, hi_list = self._lo, self._hi
        last = hi_list[-1] if hi_list else None
        for value in ids:
            if last is not None and value == last + 1:
                hi_list[-1] = value
            else:
                lo_list.append(value)
                hi_list.append(value)
            last = value

    # -- queries ------------------------------------------------------------------------------------

    def contains(self, value: int) -> bool:
        index = bisect_right(self._lo, value) - 1
        return index >= 0 and value <= self._hi[index]

    __contains__ = contains

    @property
    def count(self) -> int:
        """Number of ids (not ranges)."""
        return sum(self._hi) - sum(self._lo) + len(self._lo)

    def __len__(self) -> int:
        return self.count

    @property
    def range_count(self) -> int:
        return len(self._lo)

    def __bool__(self) -> bool:
        return bool(self._lo)

    @property
    def min(self) -> int | None:
        return self._lo[0] if self._lo else None

    @property
    def max(self) -> int | None:
        return self._hi[-1] if self._hi else None

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._lo, self._hi, strict=True)

    def ids(self) -> Iterator[int]:
        """Every id, ascending (for tests and small sets; the point of this class is not to need it)."""
        for lo, hi in self.ranges():
            yield from range(lo, hi + 1)

    def to_list(self, limit: int | None = None) -> list[list[int]]:
        """[[lo, hi], ...] for JSON; `limit` keeps the first ranges only."""
        pairs = self.ranges() if limit is None else zip(self._lo[:limit], self._hi[:limit], strict=True)
        return [[lo, hi] for lo, hi in pairs]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdRanges):
            return NotImplemented
        return self._lo == other._lo and self._hi == other._hi

    __hash__ = None  # type: ignore[assignment]  # mutable, like set

    def __repr__(self) -> str:
        shown = ", ".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in list(self.ranges())[:8])
        more = f", ... ({self.range_count} ranges)" if self.range_count > 8 else ""
        return f"IdRanges([{shown}{more}])"

    # -- algebra ------------------------------------------------------------------------------------

    def union(self, *others: IdRanges) -> IdRanges:
        pairs: list[tuple[int, int]] = list(self.ranges())
        for other in others:
            pairs.extend(other.ranges())
        return IdRanges(pairs)

    __or__ = union

    def intersection(self, other: IdRanges) -> IdRanges:
        out = IdRanges()
        i = j = 0
        a_lo, a_hi, b_lo, b_hi = self._lo, self._hi, other._lo, other._hi
        while i < len(a_lo) and j < len(b_lo):
            lo = max(a_lo[i], b_lo[j])
            hi = min(a_hi[i], b_hi[j])
            if lo <= hi:
                out._lo.append(lo)
                out._hi.append(hi)
            if a_hi[i] < b_hi[j]:
                i += 1
            else:
                j += 1
        return out

    __and__ = intersection

    def difference(self, *others: IdRanges) -> IdRanges:
        result = self
        for other in others:
            result = result._minus(other)
        return result if result is not self else self.copy()

    __sub__ = difference

    def _minus(self, other: IdRanges) -> IdRanges:
        out = IdRanges()
        j = 0
        b_lo, b_hi = other._lo, other._hi
        for lo, hi in self.ranges():
            # skip subtrahend ranges entirely below this range
            while j < len(b_lo) and b_hi[j] < lo:
                j += 1
            cursor = lo
            k = j
            while k < len(b_lo) and b_lo[k] <= hi:
                if b_lo[k] > cursor:
                    out._lo.append(cursor)
                    out._hi.append(b_lo[k] - 1)
                cursor = max(cursor, b_hi[k] + 1)
                if cursor > hi:
                    break
                k += 1
            if cursor <= hi:
                out._lo.append(cursor)
                out._hi.append(hi)
        return out

    def clip(self, lo: int, hi: int) -> IdRanges:
        """The ids inside [lo, hi]."""
        return self.intersection(IdRanges.single(lo, hi))


def _normalise(ranges: Iterable[tuple[int, int] | list[int]]) -> list[tuple[int, int]]:
    pairs = sorted((int(lo), int(hi)) for lo, hi in ranges)
    merged: list[tuple[int, int]] = []
    for lo, hi in pairs:
        if hi < lo:
            continue
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged
