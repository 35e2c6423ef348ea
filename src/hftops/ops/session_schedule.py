"""A track's phase timeline: which phase holds at an instant and when it changes next (pure, no I/O).

Each trading day `D` holds one session: the schedule's entries placed at D's local wall-clock times, an
entry earlier than the one before it falling on D+1 (overnight sessions belong to the day they open; the
config validates that a session ends with `closed` and lasts under 24 h). A non-trading day (calendar
holiday, weekend, override closure) holds no session, so the track stays CLOSED from the previous session's
close until the next trading day's first entry. The phase at an instant is that of the latest entry at or
before it; an instant before every session in reach is CLOSED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hftops.config.tracks import TrackConfig
from hftops.model.phases import Phase

_NS = 1_000_000_000
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Point:
    """From `at_ns` the track is in `phase`; `day` is the trading day of the session it belongs to."""

    at_ns: int
    phase: Phase
    day: date


class TrackTimeline:
    def __init__(self, track: TrackConfig, is_trading_day: Callable[[date], bool]) -> None:
        self.name = track.name
        self.tz = ZoneInfo(track.timezone)
        self._offsets = track.offsets()
        self._is_trading_day = is_trading_day

    def local_date(self, ns: int) -> date:
        return datetime.fromtimestamp(ns / _NS, self.tz).date()

    def session(self, day: date) -> list[Point]:
        """The points of the session opening on `day`; empty on a non-trading day."""
        if not self._is_trading_day(day):
            return []
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        # wall-clock arithmetic (aware datetime + timedelta keeps the wall time): "13:25" stays 13:25 local
        return [
            Point(int((midnight + timedelta(minutes=m)).timestamp()) * _NS, phase, day) for phase, m in self._offsets
        ]

    def phase_at(self, now_ns: int) -> Point | None:
        """The point in force at `now_ns`; None when no session reaches it (CLOSED)."""
        today = self.local_date(now_ns)
        current: Point | None = None
        for day in (today - _DAY, today):
            for point in self.session(day):
                if point.at_ns <= now_ns:
                    current = point
        return current

    def points_after(self, after_ns: int, until_ns: int) -> Iterator[Point]:
        """Points in (after_ns, until_ns], in time order; of points at the same instant only the last counts
        (an all-day session closing at midnight as the next one opens)."""
        day = self.local_date(after_ns) - _DAY
        last_day = self.local_date(until_ns)
        pending: Point | None = None
        while day <= last_day:
            for point in self.session(day):
                if point.at_ns <= after_ns or point.at_ns > until_ns:
                    continue
                if pending is not None and pending.at_ns != point.at_ns:
                    yield pending
                pending = point
            day += _DAY
        if pending is not None:
            yield pending

    def changes(self, after_ns: int, until_ns: int, phase: Phase) -> list[Point]:
        """The points in (after_ns, until_ns] that change the phase, starting from `phase`."""
        out = []
        for point in self.points_after(after_ns, until_ns):
            if point.phase is not phase:
                out.append(point)
                phase = point.phase
        return out

    def next_change(self, now_ns: int, phase: Phase, horizon_days: int = 40) -> Point | None:
        """The first point after `now_ns` that leaves `phase`, looking `horizon_days` ahead."""
        until = now_ns + horizon_days * 86_400 * _NS
        step = 3 * 86_400 * _NS  # a few days at a time: the next change is usually today or tomorrow
        start = now_ns
        while start < until:
            end = min(until, start + step)
            for point in self.points_after(start, end):
                if point.phase is not phase:
                    return point
            start = end
        return None
