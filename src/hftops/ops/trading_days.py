"""Trading days of an exchange calendar (exchange_calendars; "24/7": every day), cached per year.

exchange_calendars (pandas) is imported on first use only: loading one year of XTAI takes ~0.15 s, so it is
done once per calendar and year, never per poll.
"""

from __future__ import annotations

import warnings
from datetime import date
from typing import Any

import structlog

from hftops.model.phases import CALENDAR_24_7

log = structlog.get_logger("ops.trading_days")


class TradingDays:
    """`is_session(day)`: does the exchange trade on that (local) date."""

    def __init__(self, calendar: str) -> None:
        self.calendar = calendar
        self._years: dict[int, frozenset[date]] = {}
        self.load_errors = 0

    def is_session(self, day: date) -> bool:
        if self.calendar == CALENDAR_24_7:
            return True
        sessions = self._years.get(day.year)
        if sessions is None:
            sessions = self._years[day.year] = self._load(day.year)
        return day in sessions

    def _load(self, year: int) -> frozenset[date]:
        try:
            import exchange_calendars

            with warnings.catch_warnings():  # pandas deprecation noise from inside exchange_calendars
                warnings.simplefilter("ignore")
                cal: Any = exchange_calendars.get_calendar(self.calendar, start=f"{year}-01-01", end=f"{year}-12-31")
                return frozenset(ts.date() for ts in cal.sessions)
        except Exception as exc:  # a year the calendar cannot produce: no trading days (fail closed)
            self.load_errors += 1
            log.error(
                "trading_days_unavailable",
                calendar=self.calendar,
                year=year,
                error=f"{type(exc).__name__}: {exc}",
                effect="every day of that year is treated as closed",
                hint="upgrade exchange_calendars or declare the sessions with a track on calendar 24/7",
            )
            return frozenset()


class CalendarBook:
    """One TradingDays per calendar name, shared by the tracks that follow it."""

    def __init__(self) -> None:
        self._calendars: dict[str, TradingDays] = {}

    def get(self, calendar: str) -> TradingDays:
        days = self._calendars.get(calendar)
        if days is None:
            days = self._calendars[calendar] = TradingDays(calendar)
        return days
