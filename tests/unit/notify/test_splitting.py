from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftops.notify.splitting import TELEGRAM_MAX_CHARS, split_text, units


def test_short_text_is_one_part() -> None:
    assert split_text("hello\nworld") == ["hello\nworld"]


def test_splits_at_line_breaks_and_drops_the_break() -> None:
    assert split_text("aaa\nbbb\nccc", 7) == ["aaa\nbbb", "ccc"]


def test_over_long_line_fills_the_current_part_then_is_cut() -> None:
    assert split_text("ab\n" + "x" * 10, 6) == ["ab\nxxx", "xxxxxx", "x"]


def test_emoji_counts_as_two_units_and_is_never_cut_in_half() -> None:
    text = "🚨" * 5
    assert units(text) == 10
    parts = split_text(text, 4)
    assert parts == ["🚨🚨", "🚨🚨", "🚨"]


def test_whitespace_only_parts_are_dropped() -> None:
    assert split_text("x" * 4 + "\n   \n" + "y" * 4, 4) == ["xxxx", "yyyy"]


def test_limit_must_be_usable() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_text("abc", 1)


def test_telegram_limit_default() -> None:
    parts = split_text("\n".join("z" * 100 for _ in range(100)))
    assert len(parts) == 3 and all(units(p) <= TELEGRAM_MAX_CHARS for p in parts)
    assert "\n".join(parts) == "\n".join("z" * 100 for _ in range(100))


_lines = st.lists(st.text(alphabet=st.sampled_from("ab \t🚨é"), max_size=30), min_size=1, max_size=30)


@given(_lines, st.integers(min_value=2, max_value=40))
def test_parts_fit_and_keep_every_character_in_order(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    parts = split_text(text, limit)
    assert all(units(p) <= limit for p in parts)
    if units(text) > limit:
        assert all(p.strip() for p in parts)

    def squeeze(s: str) -> str:
        return "".join(s.split())

    assert squeeze("".join(parts)) == squeeze(text)


@given(_lines, st.integers(min_value=30, max_value=80))
def test_when_every_line_fits_parts_are_whole_lines(lines: list[str], limit: int) -> None:
    lines = [ln for ln in lines if ln.strip() and units(ln) <= limit]  # blank-only parts would be dropped
    text = "\n".join(lines)
    if not lines:
        return
    parts = split_text(text, limit)
    assert "\n".join(parts) == text
