"""Auto-reconnect windows: when a lost venue connection may be re-opened.

A connection whose symbols all follow an exchange calendar (e.g. Taiwan stocks and futures on XTAI)
reconnects only inside `HFT_RECONNECT_HOURS` (default 08:30-13:35) or `HFT_RECONNECT_HOURS_2` (unset),
in the track's time zone: outside the session the feed is silent anyway, and reconnecting all night only
floods the logs and the flap detector. A connection carrying any symbol of a 24/7 track (or of no track)
always reconnects. The first connection at start is never held back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hftops.config.tracks import TrackConfig, TrackMatcher, windows_from_env
from hftops.model.phases import CALENDAR_24_7


@dataclass(frozen=True)
class ReconnectWindows:
    windows: tuple[tuple[int, int], ...]
    timezone: str

    def wait_s(self, now_ns: int) -> float:
        """0 inside a window, else the seconds until the next window opens."""
        tz = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now_ns / 1e9, UTC).astimezone(tz)
        minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 60e6
        best: float | None = None
        for start, end in self.windows:
            inside = start <= minute < end if start < end else (minute >= start or minute < end)
            if inside:
                return 0.0
            ahead = (start - minute) % 1440
            best = ahead if best is None else min(best, ahead)
        return (best or 0.0) * 60.0

    def describe(self) -> str:
        spans = ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in self.windows)
        return f"{spans} {self.timezone}"


def reconnect_policies(
    tracks: Sequence[TrackConfig], symbols: Sequence[str], environ: Mapping[str, str]
) -> dict[str, ReconnectWindows | None]:
    """symbol -> its windows, or None when it always reconnects (24/7 track or no track)."""
    matcher = TrackMatcher(tracks)
    by_name = {t.name: t for t in tracks}
    windows: tuple[tuple[int, int], ...] | None = None
    out: dict[str, ReconnectWindows | None] = {}
    for symbol in symbols:
        members = [by_name[n] for n in matcher.tracks_of(symbol)]
        if not members or any(t.calendar == CALENDAR_24_7 for t in members):
            out[symbol] = None
            continue
        if windows is None:
            windows = windows_from_env(environ)
        out[symbol] = ReconnectWindows(windows, members[0].timezone)
    return out
