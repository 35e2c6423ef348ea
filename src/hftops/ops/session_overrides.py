"""Ad-hoc market closures (typhoon days, exchange outages) from a local file the operator edits:
`$HFT_DATA_DIR/state/session_overrides.yaml`.

    closures:
      - date: 2026-07-29          # the trading day (a session past midnight belongs to the day it opens)
        tracks: [stock, futures]  # these tracks ...
        reason: typhoon Gaemi
      - date: 2026-07-30
        calendar: XTAI            # ... or every track on this calendar
        reason: typhoon Gaemi

A closed trading day is CLOSED all day, like a holiday of the calendar. The file is re-read when it changes
(checked at every poll); a file that cannot be used is reported (log, counter, status) and the previous
closures stay in force, because an operator's typo must not reopen a market they closed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import structlog
import yaml

from hftops.config.tracks import TrackConfig

OVERRIDE_FILE = "session_overrides.yaml"
_ENTRY_KEYS = frozenset({"date", "tracks", "calendar", "reason"})


@dataclass(frozen=True, slots=True)
class Closure:
    day: date
    tracks: frozenset[str]  # the tracks it closes (a `calendar:` entry is expanded to that calendar's tracks)
    reason: str


class OverrideError(ValueError):
    pass


def parse_closures(text: str, tracks: Sequence[TrackConfig]) -> tuple[Closure, ...]:
    """The closures of an override file's text; OverrideError names the entry and the fix."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OverrideError(f"not valid YAML: {exc}") from None
    if data is None:
        return ()
    if not isinstance(data, dict) or set(data) - {"closures"}:
        raise OverrideError("the file must be a mapping with one key, closures: [ {date, tracks|calendar, reason} ]")
    entries = data.get("closures") or []
    if not isinstance(entries, list):
        raise OverrideError("closures must be a list of {date, tracks|calendar, reason}")
    return tuple(_closure(i, entry, tracks) for i, entry in enumerate(entries))


def _closure(i: int, entry: Any, tracks: Sequence[TrackConfig]) -> Closure:
    where = f"closures[{i}]"
    if not isinstance(entry, dict):
        raise OverrideError(f"{where}: must be a mapping {{date, tracks|calendar, reason}}")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise OverrideError(f"{where}: unknown key(s) {unknown}; use date, tracks or calendar, reason")
    day = entry.get("date")
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise OverrideError(f"{where}.date: {day!r} is not a date; write it as 2026-07-29") from None
    if not isinstance(day, date):
        raise OverrideError(f"{where}.date: missing or not a date; write it as 2026-07-29")
    names = {t.name for t in tracks}
    if ("tracks" in entry) == ("calendar" in entry):
        raise OverrideError(f"{where}: give exactly one of tracks: [names] or calendar: NAME")
    if "tracks" in entry:
        listed = entry["tracks"]
        if not isinstance(listed, list) or not listed or not all(isinstance(t, str) for t in listed):
            raise OverrideError(f"{where}.tracks: must be a non-empty list of track names, e.g. [stock]")
        missing = sorted(set(listed) - names)
        if missing:
            raise OverrideError(f"{where}.tracks: unknown track(s) {missing}; configured: {sorted(names)}")
        closed = frozenset(listed)
    else:
        calendar = str(entry["calendar"])
        closed = frozenset(t.name for t in tracks if t.calendar == calendar)
        if not closed:
            raise OverrideError(
                f"{where}.calendar: no track follows calendar {calendar!r}; "
                f"calendars in use: {sorted({t.calendar for t in tracks})}"
            )
    return Closure(day, closed, str(entry.get("reason") or ""))


class SessionOverrides:
    """The closures currently in force, reloaded from `path` whenever the file changes."""

    def __init__(self, path: Path | None, tracks: Sequence[TrackConfig], log: Any = None) -> None:
        self.path = path
        self._tracks = tuple(tracks)
        self._log = log or structlog.get_logger("ops.sessions")
        self._seen: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of the file last read
        self._closed: dict[tuple[str, date], Closure] = {}
        self.closures: tuple[Closure, ...] = ()
        self.error: str | None = None
        self.errors = 0
        self.loads = 0

    def closure(self, track: str, day: date) -> Closure | None:
        return self._closed.get((track, day))

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the closures in force changed."""
        if self.path is None:
            return False
        try:
            st = os.stat(self.path)
            seen: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            seen = None
        except OSError as exc:
            return self._failed(f"cannot stat it: {exc.strerror}", None)
        if seen == self._seen:
            return False
        if seen is None:
            self._seen = None
            self.error = None
            return self._apply(())
        try:
            closures = parse_closures(self.path.read_text(), self._tracks)
        except OSError as exc:
            return self._failed(f"cannot read it: {exc.strerror}", seen)
        except OverrideError as exc:
            return self._failed(str(exc), seen)
        self._seen = seen
        self.error = None
        self.loads += 1
        self._log.info(
            "session_overrides_loaded",
            path=str(self.path),
            closures=len(closures),
            days=sorted({c.day.isoformat() for c in closures}),
        )
        return self._apply(closures)

    def _apply(self, closures: tuple[Closure, ...]) -> bool:
        changed = closures != self.closures
        self.closures = closures
        self._closed = {(track, c.day): c for c in closures for track in c.tracks}
        return changed

    def _failed(self, problem: str, seen: tuple[int, int, int] | None) -> bool:
        self._seen = seen  # report a bad file once, not at every poll; a new edit is read again
        self.errors += 1
        self.error = f"{self.path}: {problem}"
        self._log.error(
            "session_overrides_invalid",
            path=str(self.path),
            problem=problem,
            effect=f"the previous closures stay in force ({len(self.closures)})",
            hint="fix the file; it is re-read as soon as it changes",
        )
        return False

    def snapshot(self) -> dict[str, Any]:
        return {
            "path": None if self.path is None else str(self.path),
            "closures": [
                {"date": c.day.isoformat(), "tracks": sorted(c.tracks), "reason": c.reason} for c in self.closures
            ],
            "error": self.error,
            "errors": self.errors,
        }
