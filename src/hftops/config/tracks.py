"""The `tracks:` configuration section, which track(s) a symbol belongs to, and which calendars exist.

Pure and cheap (no exchange_calendars import unless a calendar name is checked), so the collector and
the engine resolve membership the same way. A track's `symbols` entry matches a symbol when it is
  - the exact symbol (`2330`, `BTCUSDT`),
  - a futures product root of a contract code (`TXF` or `TX` for `TXFL6`: root + month letter A-L + year
    digit, the TAIFEX / Shioaji contract code style), or
  - a glob pattern (`*USDT`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hftops.model.phases import CALENDAR_24_7, CONFIG_PHASE_NAMES, Phase

# root (2-4 letters) + delivery month letter (A=Jan .. L=Dec) + last digit of the year: TXFL6 = TXF Dec 2026
FUTURES_CODE = re.compile(r"([A-Z]{2,4})[A-L][0-9]")
_PATTERN_CHARS = frozenset("*?[")


def symbols_as_text(value: Any) -> Any:
    """YAML reads `[2330, 2317]` as numbers; stock codes are text (quote codes with leading zeros: "0050")."""
    if isinstance(value, list | tuple):
        return tuple(str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value)
    return value


class TrackLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def calendar(self) -> str: ...


def is_pattern(entry: str) -> bool:
    return not _PATTERN_CHARS.isdisjoint(entry)


def product_roots(symbol: str) -> tuple[str, ...]:
    """`TXFL6` -> (`TXF`, `TX`): the contract's product root, with and without the TAIFEX `F` suffix."""
    match = FUTURES_CODE.fullmatch(symbol)
    if match is None:
        return ()
    root = match.group(1)
    if root.endswith("F") and len(root) > 2:
        return root, root[:-1]
    return (root,)


class TrackMatcher:
    """Resolves symbols to the names of the tracks they belong to (config order, each name once)."""

    def __init__(self, tracks: Sequence[TrackLike]) -> None:
        self._exact: dict[str, list[str]] = {}
        self._patterns: list[tuple[str, str]] = []  # (pattern, track)
        for track in tracks:
            for entry in track.symbols:
                if is_pattern(entry):
                    self._patterns.append((entry, track.name))
                else:
                    self._exact.setdefault(entry, []).append(track.name)
        self._order = {track.name: i for i, track in enumerate(tracks)}

    def tracks_of(self, symbol: str) -> tuple[str, ...]:
        names = list(self._exact.get(symbol, ()))
        for root in product_roots(symbol):
            names.extend(self._exact.get(root, ()))
        names.extend(track for pattern, track in self._patterns if fnmatch.fnmatchcase(symbol, pattern))
        return tuple(sorted(set(names), key=self._order.__getitem__))

    def members(self, track: str, candidates: Iterable[str]) -> set[str]:
        return {symbol for symbol in candidates if track in self.tracks_of(symbol)}


@cache
def calendar_names() -> frozenset[str]:
    """Every exchange_calendars name and alias, plus "24/7" (imported on first use: pandas is heavy)."""
    import exchange_calendars

    return frozenset(exchange_calendars.get_calendar_names(include_aliases=True)) | {CALENDAR_24_7}


def check_calendar(name: str) -> str:
    """The name if exchange_calendars knows it (or it is "24/7"); ValueError with the fix otherwise."""
    if name == CALENDAR_24_7 or name in calendar_names():
        return name
    close = sorted(n for n in calendar_names() if n[:1] == name[:1].upper())[:8]
    raise ValueError(
        f"unknown calendar {name!r}; use an exchange_calendars name such as XTAI (Taiwan) or XNYS, or "
        f"'{CALENDAR_24_7}' for a market that never closes" + (f" (names starting alike: {close})" if close else "")
    )


# --- the `tracks:` section of the configuration (imported into config.schema) -----------------------------

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_SYMBOL_ENTRY = re.compile(r"[A-Z0-9*?\[\]!]+")
MINUTES_PER_DAY = 1440


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleEntry(_Section):
    """From local time `at` on, the track is in `phase` (until the next entry)."""

    phase: str = Field(description=f"one of {list(CONFIG_PHASE_NAMES)}")
    at: str = Field(description='local time of the track, HH:MM; quote it in YAML ("13:25")')

    @field_validator("phase", mode="before")
    @classmethod
    def _known_phase(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"phase must be a name, one of {list(CONFIG_PHASE_NAMES)}")
        phase = Phase.parse(value)
        if phase is Phase.INIT:
            raise ValueError(f"init is the engine's own start phase; use one of {list(CONFIG_PHASE_NAMES)}")
        return phase.config_name

    @field_validator("at", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f"got the number {value}: YAML reads an unquoted time such as 13:25 as a base-60 number; "
                'quote it, e.g. at: "13:25"'
            )
        if not isinstance(value, str) or _HHMM.fullmatch(value.strip()) is None:
            raise ValueError('time must be HH:MM between 00:00 and 23:59, e.g. "08:30"')
        return value.strip()

    @property
    def phase_value(self) -> Phase:
        return Phase.parse(self.phase)

    @property
    def minutes(self) -> int:
        hours, minutes = self.at.split(":")
        return int(hours) * 60 + int(minutes)


class TrackConfig(_Section):
    """A set of symbols that share an exchange calendar and a daily session schedule."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$", description="track name in status and events")
    calendar: str = Field(CALENDAR_24_7, description='exchange_calendars name (XTAI, ...) or "24/7"')
    timezone: str = Field("UTC", description="IANA time zone of the schedule, e.g. Asia/Taipei")
    symbols: tuple[str, ...] = Field(description="exact symbols, futures product roots (TXF) or globs (*USDT)")
    schedule: tuple[ScheduleEntry, ...] = Field(
        (), description="phase changes in session order, ending with closed; empty: open all day on trading days"
    )

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: str) -> str:
        return check_calendar(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Taipei or UTC") from None
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols_as_text(cls, value: Any) -> Any:
        return symbols_as_text(value)

    @field_validator("symbols")
    @classmethod
    def _symbols_well_formed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("a track needs at least one symbol, product root or pattern")
        for entry in value:
            if _SYMBOL_ENTRY.fullmatch(entry) is None:
                raise ValueError(
                    f"symbol {entry!r} must be upper-case letters and digits (2330, TXF, BTCUSDT) or a glob (*USDT)"
                )
        return value

    @model_validator(mode="after")
    def _schedule_in_session_order(self) -> TrackConfig:
        schedule = self.schedule
        if not schedule:
            return self
        first = previous = schedule[0].minutes
        wrapped = False
        for i, entry in enumerate(schedule[1:], 1):
            offset = entry.minutes + (MINUTES_PER_DAY if wrapped else 0)
            if offset <= previous and not wrapped:
                wrapped, offset = True, entry.minutes + MINUTES_PER_DAY  # the session runs past midnight
            if offset <= previous or offset - first >= MINUTES_PER_DAY:
                raise ValueError(
                    f"schedule[{i}] at {entry.at} does not follow schedule[{i - 1}] at {schedule[i - 1].at}: list "
                    "the times in session order; a session may run past midnight once and lasts less than 24 h"
                )
            previous = offset
        if schedule[-1].phase_value is not Phase.CLOSED:
            raise ValueError(
                f"schedule must end with phase closed (it ends with {schedule[-1].phase} at {schedule[-1].at}); "
                "non-trading days are closed all day, so every session has to close"
            )
        return self

    def offsets(self) -> tuple[tuple[Phase, int], ...]:
        """(phase, minutes after the trading day's local midnight); past midnight adds 1440."""
        if not self.schedule:
            return ((Phase.OPEN, 0), (Phase.CLOSED, MINUTES_PER_DAY))
        out: list[tuple[Phase, int]] = []
        previous = -1
        day = 0
        for entry in self.schedule:
            if entry.minutes + day <= previous:
                day = MINUTES_PER_DAY
            previous = entry.minutes + day
            out.append((entry.phase_value, previous))
        return tuple(out)


def _entry(phase: str, at: str) -> ScheduleEntry:
    return ScheduleEntry.model_construct(phase=phase, at=at)


def default_tracks() -> tuple[TrackConfig, ...]:
    """Crypto all day every day beside the Taiwan stock and TAIFEX day-futures sessions (XTAI calendar).

    Built without validation (model_construct) so loading the defaults never imports exchange_calendars
    (pandas, ~80 MB) into every process; tests validate these defaults once.
    """
    taipei = "Asia/Taipei"
    return (
        TrackConfig.model_construct(
            name="crypto", calendar=CALENDAR_24_7, timezone="UTC", symbols=("*USDT", "*USDC"), schedule=()
        ),
        TrackConfig.model_construct(
            name="stock",
            calendar="XTAI",
            timezone=taipei,
            symbols=("2330", "2317"),
            schedule=(
                _entry("pre_open", "08:30"),
                _entry("open", "09:00"),
                _entry("close_only", "13:25"),
                _entry("force_flat", "13:29"),
                _entry("closed", "13:30"),
            ),
        ),
        TrackConfig.model_construct(
            name="futures",
            calendar="XTAI",
            timezone=taipei,
            symbols=("TXF", "MXF"),
            schedule=(
                _entry("pre_open", "08:30"),
                _entry("open", "08:45"),
                _entry("close_only", "13:40"),
                _entry("force_flat", "13:43"),
                _entry("closed", "13:45"),
            ),
        ),
    )


def check_track_names(tracks: tuple[TrackConfig, ...]) -> tuple[TrackConfig, ...]:
    names = [t.name for t in tracks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"track names must be unique; {duplicates} appear more than once")
    return tracks


# --- the collector's auto-reconnect windows (env), checked by `trading check` too --------------------------

ENV_RECONNECT_HOURS = "HFT_RECONNECT_HOURS"
ENV_RECONNECT_HOURS_2 = "HFT_RECONNECT_HOURS_2"
DEFAULT_RECONNECT_HOURS = "08:30-13:35"
_WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_window(name: str, text: str) -> tuple[int, int]:
    """`08:30-13:35` -> (510, 815) minutes after local midnight; an end before the start wraps midnight."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None or match.group(1, 2) == match.group(3, 4):
        raise ValueError(f"{name}={text!r}: expected HH:MM-HH:MM with two different times, e.g. 08:30-13:35")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return h1 * 60 + m1, h2 * 60 + m2


def windows_from_env(environ: Mapping[str, str]) -> tuple[tuple[int, int], ...]:
    """The configured windows; ValueError names the variable and the expected form."""
    windows = [parse_window(ENV_RECONNECT_HOURS, environ.get(ENV_RECONNECT_HOURS) or DEFAULT_RECONNECT_HOURS)]
    second = environ.get(ENV_RECONNECT_HOURS_2)
    if second:
        windows.append(parse_window(ENV_RECONNECT_HOURS_2, second))
    return tuple(windows)
