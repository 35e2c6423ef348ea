from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.engine.positions import Position, PositionBook
from hftops.model.orders import MANUAL_STRATEGY, Side
from tests.unit.engine.fakes import D, fill

BUY, SELL = Side.BUY, Side.SELL


def test_open_add_reduce_close() -> None:
    p = Position("s", "X")
    assert p.apply_fill(BUY, D(1), D(100), D("0.1")) == 0
    assert p.apply_fill(BUY, D(3), D(104), D("0.3")) == 0
    assert (p.qty, p.avg_price) == (D(4), D(103))
    assert p.apply_fill(SELL, D(1), D(110)) == D(7)  # reduce: 1 x (110 - 103)
    assert (p.qty, p.avg_price) == (D(3), D(103))  # reducing keeps the average
    assert p.apply_fill(SELL, D(3), D(100)) == D(-9)  # close at a loss
    assert (p.qty, p.avg_price, p.realized_pnl, p.fees) == (0, 0, D(-2), D("0.4"))


def test_short_side_and_flip() -> None:
    p = Position("s", "X")
    p.apply_fill(SELL, D(2), D(100))
    p.apply_fill(SELL, D(1), D(106))
    assert (p.qty, p.avg_price) == (D(-3), D(102))
    realized = p.apply_fill(BUY, D(5), D(101))  # closes 3 at +1 each, opens 2 long at 101
    assert realized == D(3)
    assert (p.qty, p.avg_price, p.realized_pnl) == (D(2), D(101), D(3))
    realized = p.apply_fill(SELL, D("2.5"), D(99))  # flip back: realize 2 x -2, 0.5 short at 99
    assert realized == D(-4)
    assert (p.qty, p.avg_price, p.realized_pnl) == (D("-0.5"), D(99), D(-1))


def test_fill_qty_must_be_positive() -> None:
    with pytest.raises(ValueError, match="s/X"):
        Position("s", "X").apply_fill(BUY, D(0), D(1))


def test_unrealized_equity_and_peak() -> None:
    book = PositionBook(initial_equity=D(1000))
    book.apply_fill(fill("a", "X", BUY, "2", "100", fee="1"))
    book.apply_fill(fill("b", "X", SELL, "1", "101"))
    assert book.net_qty("X") == D(1)
    assert book.unrealized_pnl({"X": D(105)}) == D(10) + D(-4)
    assert book.mark({"X": D(105)}) == D(1000) - 1 + 6
    assert book.peak_equity == D(1005)
    assert book.mark({"X": D(90)}) == D(1000) - 1 - 20 + 11
    assert book.peak_equity == D(1005)  # peak stays
    assert book.mark({}) == D(999)  # no mid: marked at cost
    rows = book.marks({"X": D(105)})
    assert [(r.strategy_id, r.qty, r.unrealized_pnl, r.mark_price) for r in rows] == [
        ("a", D(2), D(10), D(105)),
        ("b", D(-1), D(-4), D(105)),
    ]
    assert book.marks({})[0].unrealized_pnl == 0 and book.marks({})[0].mark_price is None


def test_adjust_manual_moves_net_only_through_manual() -> None:
    book = PositionBook()
    book.apply_fill(fill("a", "X", BUY, "5", "100"))
    book.adjust_manual("X", D(-2), D(101))
    assert book.net_qty("X") == D(3)
    assert book.qty("a", "X") == D(5)
    manual = book.get(MANUAL_STRATEGY, "X")
    assert manual is not None and manual.qty == D(-2) and not manual.cost_known


def test_snapshot_restore_roundtrip() -> None:
    book = PositionBook()
    book.apply_fill(fill("a", "X", BUY, "1.5", "100.25", fee="0.01"))
    book.apply_fill(fill("b", "Y", SELL, "2", "3"))
    restored = PositionBook.restore(book.snapshots())
    assert restored.snapshots() == book.snapshots()
    assert restored.net() == book.net()


class ReferencePosition:
    """Exact rational reference: FIFO-free average-cost accounting written the textbook way."""

    def __init__(self) -> None:
        self.qty = Fraction(0)
        self.cost = Fraction(0)  # signed qty x avg price
        self.realized = Fraction(0)

    def fill(self, signed: Fraction, price: Fraction) -> None:
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.qty += signed
            self.cost += signed * price
            return
        avg = self.cost / self.qty
        closed = min(abs(signed), abs(self.qty))
        sign = 1 if self.qty > 0 else -1
        self.realized += closed * (price - avg) * sign
        remaining = abs(signed) - closed
        self.qty -= sign * closed
        self.cost = self.qty * avg
        if remaining:
            self.qty = -sign * remaining
            self.cost = self.qty * price


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from([BUY, SELL]),
        st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
        st.decimals(min_value=D("0.01"), max_value=D(100000), places=2),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(fills_strategy)
def test_random_fills_match_reference(fills: list[tuple[str, Side, Decimal, Decimal]]) -> None:
    book = PositionBook()
    refs = {sid: ReferencePosition() for sid in "abc"}
    signed_sum = D(0)
    for sid, side, qty, price in fills:
        book.apply_fill(fill(sid, "X", side, str(qty), str(price)))
        signed = qty if side is BUY else -qty
        signed_sum += signed
        refs[sid].fill(Fraction(signed), Fraction(price))
    assert book.net_qty("X") == signed_sum  # exact
    assert sum((p.qty for p in book), D(0)) == signed_sum
    for sid, ref in refs.items():
        pos = book.get(sid, "X")
        if pos is None:
            assert ref.qty == 0
            continue
        assert Fraction(pos.qty) == ref.qty  # exact
        assert abs(Fraction(pos.realized_pnl) - ref.realized) < Fraction(1, 10**20)
        if ref.qty:
            assert abs(Fraction(pos.avg_price) - ref.cost / ref.qty) < Fraction(1, 10**25)
        else:
            assert pos.avg_price == 0
