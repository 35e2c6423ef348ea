"""The phase timeline against the real XTAI calendar: day and overnight schedules at their boundaries,
weekends and holidays, the trading day an overnight session belongs to, and the next transition."""

from __future__ import annotations

from datetime import date

import pytest

from hftops.model.phases import Phase
from hftops.ops.session_schedule import TrackTimeline
from hftops.ops.trading_days import TradingDays
from tests.unit.ops.session_support import crypto_track, night_track, stock_track, taipei_ns, track

NS = 1_000_000_000
XTAI = TradingDays("XTAI")


def phase(timeline: TrackTimeline, ns: int) -> Phase:
    point = timeline.phase_at(ns)
    return Phase.CLOSED if point is None else point.phase


def test_xtai_calendar_knows_weekends_and_holidays() -> None:
    assert XTAI.is_session(date(2026, 11, 20))  # a Friday
    assert not XTAI.is_session(date(2026, 11, 21))  # Saturday
    assert not XTAI.is_session(date(2026, 2, 16))  # Lunar New Year's Eve
    assert not XTAI.is_session(date(2026, 10, 9))  # National Day, observed on the Friday
    assert not XTAI.is_session(date(2026, 1, 1))
    assert TradingDays("24/7").is_session(date(2026, 2, 16))


@pytest.mark.parametrize(
    ("hms", "expected"),
    [
        ((0, 0, 0), Phase.CLOSED),
        ((8, 29, 59), Phase.CLOSED),
        ((8, 30, 0), Phase.PRE_OPEN),
        ((8, 59, 59), Phase.PRE_OPEN),
        ((9, 0, 0), Phase.OPEN),
        ((13, 24, 59), Phase.OPEN),
        ((13, 25, 0), Phase.CLOSE_ONLY),
        ((13, 28, 59), Phase.CLOSE_ONLY),
        ((13, 29, 0), Phase.FORCE_FLAT),
        ((13, 29, 59), Phase.FORCE_FLAT),
        ((13, 30, 0), Phase.CLOSED),
        ((23, 59, 59), Phase.CLOSED),
    ],
)
def test_day_schedule_at_its_boundaries(hms: tuple[int, int, int], expected: Phase) -> None:
    timeline = TrackTimeline(stock_track(), XTAI.is_session)
    at = taipei_ns(2026, 11, 20, *hms)
    assert phase(timeline, at) is expected
    if expected is not Phase.CLOSED:
        assert timeline.phase_at(at).day == date(2026, 11, 20)  # type: ignore[union-attr]


def test_one_nanosecond_before_a_boundary_is_still_the_old_phase() -> None:
    timeline = TrackTimeline(stock_track(), XTAI.is_session)
    open_at = taipei_ns(2026, 11, 20, 9)
    assert phase(timeline, open_at - 1) is Phase.PRE_OPEN
    assert phase(timeline, open_at) is Phase.OPEN


def test_weekend_is_closed_and_next_transition_is_monday_pre_open() -> None:
    timeline = TrackTimeline(stock_track(), XTAI.is_session)
    saturday = taipei_ns(2026, 11, 21, 10)
    assert phase(timeline, saturday) is Phase.CLOSED
    nxt = timeline.next_change(taipei_ns(2026, 11, 20, 13, 30), Phase.CLOSED)
    assert nxt is not None
    assert (nxt.phase, nxt.at_ns, nxt.day) == (Phase.PRE_OPEN, taipei_ns(2026, 11, 23, 8, 30), date(2026, 11, 23))


def test_lunar_new_year_holidays_are_closed_all_day() -> None:
    timeline = TrackTimeline(stock_track(), XTAI.is_session)
    for day in range(12, 23):  # 2026-02-12 .. 2026-02-22: no XTAI session
        assert phase(timeline, taipei_ns(2026, 2, day, 10)) is Phase.CLOSED, day
    nxt = timeline.next_change(taipei_ns(2026, 2, 11, 14), Phase.CLOSED)
    assert nxt is not None and nxt.at_ns == taipei_ns(2026, 2, 23, 8, 30) and nxt.phase is Phase.PRE_OPEN


def test_overnight_session_belongs_to_the_day_it_opens() -> None:
    timeline = TrackTimeline(night_track(), XTAI.is_session)
    friday_night = timeline.phase_at(taipei_ns(2026, 11, 20, 23))
    assert friday_night is not None and friday_night.phase is Phase.OPEN and friday_night.day == date(2026, 11, 20)
    saturday_early = timeline.phase_at(taipei_ns(2026, 11, 21, 4, 54, 59))
    assert saturday_early is not None and saturday_early.phase is Phase.OPEN
    assert saturday_early.day == date(2026, 11, 20)  # past midnight, still Friday's session
    assert phase(timeline, taipei_ns(2026, 11, 21, 4, 55)) is Phase.CLOSE_ONLY
    assert phase(timeline, taipei_ns(2026, 11, 21, 4, 59)) is Phase.FORCE_FLAT
    assert phase(timeline, taipei_ns(2026, 11, 21, 5)) is Phase.CLOSED
    assert phase(timeline, taipei_ns(2026, 11, 21, 15)) is Phase.CLOSED  # no session opens on a Saturday
    assert phase(timeline, taipei_ns(2026, 11, 23, 2)) is Phase.CLOSED  # nor on Sunday
    assert phase(timeline, taipei_ns(2026, 11, 23, 14, 50)) is Phase.PRE_OPEN


def test_overnight_session_before_a_holiday_runs_into_it_and_none_opens_on_it() -> None:
    timeline = TrackTimeline(night_track(), XTAI.is_session)
    into_holiday = timeline.phase_at(taipei_ns(2026, 2, 12, 3))  # Feb 11 was a trading day, Feb 12 is not
    assert into_holiday is not None and into_holiday.phase is Phase.OPEN and into_holiday.day == date(2026, 2, 11)
    assert phase(timeline, taipei_ns(2026, 2, 12, 16)) is Phase.CLOSED


def test_changes_in_an_interval_and_the_phase_sequence_of_a_day() -> None:
    timeline = TrackTimeline(stock_track(), XTAI.is_session)
    points = timeline.changes(taipei_ns(2026, 11, 20, 8), taipei_ns(2026, 11, 20, 14), Phase.CLOSED)
    assert [(p.phase, p.at_ns) for p in points] == [
        (Phase.PRE_OPEN, taipei_ns(2026, 11, 20, 8, 30)),
        (Phase.OPEN, taipei_ns(2026, 11, 20, 9)),
        (Phase.CLOSE_ONLY, taipei_ns(2026, 11, 20, 13, 25)),
        (Phase.FORCE_FLAT, taipei_ns(2026, 11, 20, 13, 29)),
        (Phase.CLOSED, taipei_ns(2026, 11, 20, 13, 30)),
    ]


def test_24_7_track_is_always_open_with_no_next_transition() -> None:
    timeline = TrackTimeline(crypto_track(), TradingDays("24/7").is_session)
    for ns in (taipei_ns(2026, 2, 16, 0), taipei_ns(2026, 11, 21, 23, 59, 59), taipei_ns(2026, 12, 31, 12)):
        assert phase(timeline, ns) is Phase.OPEN
    # the all-day session closing at midnight as the next one opens is no transition
    assert timeline.next_change(taipei_ns(2026, 11, 20, 12), Phase.OPEN) is None


def test_24_7_track_with_a_daily_break_in_utc() -> None:
    maintenance = track("perp", ["BTCUSDT"], [("open", "00:05"), ("closed", "23:55")], calendar="24/7", timezone="UTC")
    timeline = TrackTimeline(maintenance, TradingDays("24/7").is_session)
    utc_2358 = taipei_ns(2026, 11, 21, 7, 58)  # 23:58 UTC on the 20th
    assert phase(timeline, utc_2358) is Phase.CLOSED
    nxt = timeline.next_change(utc_2358, Phase.CLOSED)
    assert nxt is not None and nxt.phase is Phase.OPEN and nxt.at_ns == taipei_ns(2026, 11, 21, 8, 5)
    assert nxt.at_ns % NS == 0
