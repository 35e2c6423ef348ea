"""Trading days of an exchange calendar (exchange_calendars; "24/7": every day), cached per year.

exchange_calendars (pandas) is imported on first use only: loading one year of XTAI takes ~0.15 s, so it is
done once per calendar and year, never per poll. With a cache directory the sessions of a year are also kept
on disk (one small JSON file per calendar and year), so a warm engine start does not import pandas at all:
that import alone is 0.7 s of the engine's start. A cached year is used only while the installed
exchange_calendars is the one that computed it (its package file's path, size and mtime), so an upgrade that
changes a holiday recomputes it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from hftops.model.phases import CALENDAR_24_7

log = structlog.get_logger("ops.trading_days")


class TradingDays:
    """`is_session(day)`: does the exchange trade on that (local) date."""

    def __init__(self, calendar: str, cache_dir: Path | None = None) -> None:
        self.calendar = calendar
        self.cache_dir = cache_dir
        self._years: dict[int, frozenset[date]] = {}
        self.load_errors = 0
        self.cache_hits = 0

    def is_session(self, day: date) -> bool:
        if self.calendar == CALENDAR_24_7:
            return True
        sessions = self._years.get(day.year)
        if sessions is None:
            sessions = self._years[day.year] = self._cached(day.year)
        return day in sessions

    def _cached(self, year: int) -> frozenset[date]:
        if self.cache_dir is None:
            return self._load(year)
        path = self.cache_dir / f"{self.calendar}-{year}.json"
        source = calendars_fingerprint()
        try:
            body = json.loads(path.read_text())
            if body["calendar"] == self.calendar and body["year"] == year and body["source"] == source:
                sessions = frozenset(date.fromisoformat(day) for day in body["sessions"])
                self.cache_hits += 1
                return sessions
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent, from another exchange_calendars, or damaged: computed again below
        sessions = self._load(year)
        if sessions:  # a failed load is never cached: the next start tries again
            self._store(path, year, source, sessions)
        return sessions

    def _store(self, path: Path, year: int, source: str, sessions: frozenset[date]) -> None:
        body = {"calendar": self.calendar, "year": year, "source": source, "sessions": sorted(map(str, sessions))}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(body))
            os.replace(tmp, path)
        except OSError as exc:  # a cache, not state: the engine runs on what it computed
            with contextlib.suppress(OSError):
                tmp.unlink()
            log.warning("trading_days_cache_unwritable", path=str(path), error=str(exc))

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


def calendars_fingerprint() -> str:
    """Which exchange_calendars is installed, without importing it: its package file's path, size and mtime."""
    spec = importlib.util.find_spec("exchange_calendars")
    if spec is None or spec.origin is None:
        return "absent"
    try:
        stat = os.stat(spec.origin)
    except OSError:
        return "absent"
    return f"{spec.origin}:{stat.st_size}:{stat.st_mtime_ns}"


class CalendarBook:
    """One TradingDays per calendar name, shared by the tracks that follow it."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._calendars: dict[str, TradingDays] = {}

    def get(self, calendar: str) -> TradingDays:
        days = self._calendars.get(calendar)
        if days is None:
            days = self._calendars[calendar] = TradingDays(calendar, self.cache_dir)
        return days
