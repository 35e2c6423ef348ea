"""Shared by the session tests: a controllable wall clock in a track's time zone, a log that records its
events, and the default Taiwan schedules as config."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hftops.config.tracks import TrackConfig

TAIPEI = ZoneInfo("Asia/Taipei")


def taipei_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=TAIPEI).timestamp()) * 1_000_000_000


class WallClock:
    """A wall clock that tests set and move (nanoseconds since the epoch)."""

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def set(self, ns: int) -> None:
        self.ns = ns

    def advance(self, **delta: float) -> None:
        self.ns += int(timedelta(**delta).total_seconds() * 1e9)


class RecordingLog:
    """Stands in for a structlog logger: keeps (level, event, fields) so tests can count warnings."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def bind(self, **_: Any) -> RecordingLog:
        return self

    def _record(self, level: str, event: str, **fields: Any) -> None:
        self.records.append((level, event, fields))

    def debug(self, event: str, **fields: Any) -> None:
        self._record("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._record("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._record("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._record("error", event, **fields)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for _, event, fields in self.records if event == name]


def track(
    name: str,
    symbols: list[str],
    schedule: list[tuple[str, str]],
    *,
    calendar: str = "XTAI",
    timezone: str = "Asia/Taipei",
) -> TrackConfig:
    return TrackConfig.model_validate(
        {
            "name": name,
            "calendar": calendar,
            "timezone": timezone,
            "symbols": symbols,
            "schedule": [{"phase": p, "at": at} for p, at in schedule],
        }
    )


STOCK_DAY = [
    ("pre_open", "08:30"),
    ("open", "09:00"),
    ("close_only", "13:25"),
    ("force_flat", "13:29"),
    ("closed", "13:30"),
]
FUTURES_NIGHT = [
    ("pre_open", "14:50"),
    ("open", "15:00"),
    ("close_only", "04:55"),
    ("force_flat", "04:59"),
    ("closed", "05:00"),
]


def stock_track() -> TrackConfig:
    return track("stock", ["2330", "2317"], STOCK_DAY)


def night_track() -> TrackConfig:
    return track("night", ["TXF"], FUTURES_NIGHT)


def crypto_track() -> TrackConfig:
    return TrackConfig.model_validate({"name": "crypto", "calendar": "24/7", "symbols": ["*USDT"]})
