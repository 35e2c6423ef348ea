"""SessionGovernor: drives every track's phase from the wall clock (injected) and the calendars.

Polled at least once a second by the engine's housekeeping, never driven by market events: a silent feed
must not keep a market open. Each poll returns the transitions it made (the engine publishes them on
`ops:events:session`); every transition is logged and counted here and applied to the TrackGate before the
poll returns. Entering FORCE_FLAT calls `on_force_flat(track)`, and so does the first poll after a start
inside FORCE_FLAT: a restart must not leave positions open that the schedule wanted flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from hftops.config.tracks import TrackConfig
from hftops.model.ops_events import SessionTransition
from hftops.model.phases import Phase, SessionCause
from hftops.ops.session_overrides import SessionOverrides
from hftops.ops.session_schedule import Point, TrackTimeline
from hftops.ops.track_gate import TrackGate
from hftops.ops.trading_days import CalendarBook

ForceFlatHook = Callable[[str], None]
_NS = 1_000_000_000
_RECHECK_NS = 3600 * _NS  # with no change in the horizon, look again hourly (calendars, overrides, clock)
_CATCH_UP_NS = 7 * 86_400 * _NS  # replay missed points up to a week back; beyond that jump to the present


@dataclass
class _Track:
    config: TrackConfig
    timeline: TrackTimeline
    phase: Phase = Phase.INIT
    day: date | None = None
    since_ns: int = 0
    evaluated_ns: int = 0
    next: Point | None = None
    recheck_ns: int = 0


class SessionGovernor:
    def __init__(
        self,
        tracks: Sequence[TrackConfig],
        clock: Callable[[], int] = time.time_ns,
        override_file: Path | None = None,
        *,
        on_force_flat: ForceFlatHook | None = None,
        symbols: Iterable[str] = (),
        default_open: bool = False,
        horizon_days: int = 40,
        calendar_cache: Path | None = None,
        log: Any = None,
    ) -> None:
        self.clock = clock
        self.on_force_flat = on_force_flat
        self.horizon_days = horizon_days
        self.log = log or structlog.get_logger("ops.sessions").bind(component="sessions")
        self.gate = TrackGate(tracks, default_open=default_open, symbols=symbols, log=self.log)
        self.overrides = SessionOverrides(override_file, tracks, self.log)
        calendars = CalendarBook(calendar_cache)
        self._tracks: dict[str, _Track] = {}
        for track in tracks:
            days = calendars.get(track.calendar)

            def is_trading_day(day: date, name: str = track.name, sessions: Any = days) -> bool:
                return sessions.is_session(day) and self.overrides.closure(name, day) is None

            self._tracks[track.name] = _Track(track, TrackTimeline(track, is_trading_day))
        self.transitions: dict[tuple[str, str], int] = {}  # (track, to_phase) -> count
        self.force_flat_calls: dict[str, int] = {}
        self.callback_errors = 0
        self.polls = 0

    # --- queries (the interface the engine, status and the flattener use) ---------------------------------

    def phase_of(self, symbol: str) -> Phase:
        return self.gate.phase_of(symbol)

    def is_open(self, symbol: str) -> bool:
        return self.gate.phase_of(symbol) is Phase.OPEN

    def track_phase(self, track: str) -> Phase:
        return self._tracks[track].phase

    def track_of(self, symbol: str) -> str | None:
        tracks = self.gate.tracks_of(symbol)
        return tracks[0] if tracks else None

    def symbols_of_track(self, name: str, candidates: Iterable[str] = ()) -> set[str]:
        return self.gate.symbols_of_track(name, candidates)

    @property
    def track_names(self) -> tuple[str, ...]:
        return tuple(self._tracks)

    # --- the clock drives it -------------------------------------------------------------------------------

    def poll(self) -> list[SessionTransition]:
        now = self.clock()
        self.polls += 1
        overrides_changed = self.overrides.refresh()
        out: list[SessionTransition] = []
        entered_force_flat: list[str] = []
        for track in self._tracks.values():
            made = self._poll_track(track, now, overrides_changed)
            if made:
                out.extend(made)
                if made[-1].to_phase == Phase.FORCE_FLAT.name:
                    entered_force_flat.append(track.config.name)
        for name in entered_force_flat:  # after every track is applied: the flattener sees a settled gate
            self._force_flat(name)
        return out

    def _poll_track(self, track: _Track, now: int, overrides_changed: bool) -> list[SessionTransition]:
        timeline = track.timeline
        if track.phase is Phase.INIT:
            made = [self._enter(track, timeline.phase_at(now), now, SessionCause.BOOT)]
        elif overrides_changed or now < track.evaluated_ns or now - track.evaluated_ns > _CATCH_UP_NS:
            # the closures changed, or the clock stepped back or far ahead: judge the present afresh
            point = timeline.phase_at(now)
            phase = Phase.CLOSED if point is None else point.phase
            cause = SessionCause.OVERRIDE if overrides_changed else SessionCause.SCHEDULE
            made = [] if phase is track.phase else [self._enter(track, point, now, cause)]
        elif track.next is not None and now >= track.next.at_ns:
            points = timeline.changes(track.evaluated_ns, now, track.phase)
            made = [self._enter(track, p, now, SessionCause.SCHEDULE) for p in points]
        elif track.next is None and now >= track.recheck_ns:
            made = []
        else:
            track.evaluated_ns = now
            return []
        track.evaluated_ns = now
        self._plan_next(track, now)
        if made:  # the last transition carries the next change
            made[-1] = _with_next(made[-1], track.next)
        return made

    def _enter(self, track: _Track, point: Point | None, now: int, cause: SessionCause) -> SessionTransition:
        phase = Phase.CLOSED if point is None else point.phase
        if point is None and cause is SessionCause.SCHEDULE:
            cause = SessionCause.CALENDAR
        name = track.config.name
        before = track.phase
        # since: the scheduled instant (also after a restart), or now when an override or the calendar decided
        scheduled = point is not None and cause in (SessionCause.SCHEDULE, SessionCause.BOOT)
        track.phase, track.since_ns = phase, point.at_ns if scheduled and point is not None else now
        track.day = point.day if point is not None else track.timeline.local_date(now)
        self.gate.set_track_phase(name, phase)
        key = (name, phase.name)
        self.transitions[key] = self.transitions.get(key, 0) + 1
        closure = self.overrides.closure(name, track.day)
        self.log.info(
            "session_transition",
            track=name,
            from_phase=before.name,
            to_phase=phase.name,
            cause=cause.value,
            trading_day=track.day.isoformat(),
            closure=closure.reason if closure is not None else None,
        )
        return SessionTransition(
            time_ns=now,
            track=name,
            from_phase=before.name,
            to_phase=phase.name,
            trading_day=track.day.isoformat(),
            cause=cause.value,
        )

    def _plan_next(self, track: _Track, now: int) -> None:
        track.next = track.timeline.next_change(now, track.phase, self.horizon_days)
        track.recheck_ns = now + _RECHECK_NS if track.next is None else track.next.at_ns

    def _force_flat(self, name: str) -> None:
        self.force_flat_calls[name] = self.force_flat_calls.get(name, 0) + 1
        self.log.warning(
            "session_force_flat",
            track=name,
            symbols=sorted(self.gate.symbols_of_track(name)),
            action="flattening the track's positions",
        )
        if self.on_force_flat is None:
            return
        try:
            self.on_force_flat(name)
        except Exception as exc:  # the governor keeps the clock running whatever the flattener does
            self.callback_errors += 1
            self.log.error("session_force_flat_failed", track=name, error=f"{type(exc).__name__}: {exc}")

    # --- status --------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """track -> phase, next_phase, next_at (ISO, track-local) and context; the shape of status `sessions`."""
        out: dict[str, dict[str, Any]] = {}
        for name, track in self._tracks.items():
            nxt = track.next
            tz = track.timeline.tz
            out[name] = {
                "phase": track.phase.name,
                "next_phase": None if nxt is None else nxt.phase.name,
                "next_at": None if nxt is None else _iso(nxt.at_ns, tz),
                "next_at_ns": None if nxt is None else nxt.at_ns,
                "since": _iso(track.since_ns, tz) if track.since_ns else None,
                "trading_day": None if track.day is None else track.day.isoformat(),
                "calendar": track.config.calendar,
                "timezone": track.config.timezone,
                "symbols": list(track.config.symbols),
            }
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "transitions": [{"track": t, "phase": p, "count": n} for (t, p), n in sorted(self.transitions.items())],
            "force_flat_calls": dict(self.force_flat_calls),
            "callback_errors": self.callback_errors,
            "unknown_symbols": sorted(self.gate.unknown_symbols),
            "default_open": self.gate.default_open,
            "overrides": self.overrides.snapshot(),
        }


def _with_next(event: SessionTransition, nxt: Point | None) -> SessionTransition:
    if nxt is None:
        return event
    return msgspec.structs.replace(event, next_phase=nxt.phase.name, next_at_ns=nxt.at_ns)


def _iso(ns: int, tz: Any) -> str:
    return datetime.fromtimestamp(ns / _NS, UTC).astimezone(tz).isoformat()
