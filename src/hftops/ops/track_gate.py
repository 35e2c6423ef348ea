"""TrackGate: the session phase of a symbol in one dict lookup.

Membership (exact symbol, futures product root, glob) is resolved once per symbol and the effective phase
is kept per symbol, updated when a track changes phase, so the gate chain's lookup is `dict.get`. A symbol
in several tracks gets the most permissive of their phases. A symbol in no track is CLOSED (one warning per
symbol) unless HFT_TRACK_GATE_DEFAULT_OPEN=1 makes it OPEN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from hftops.config.tracks import TrackConfig, TrackMatcher
from hftops.model.phases import Phase, most_permissive

ENV_TRACK_GATE_DEFAULT_OPEN = "HFT_TRACK_GATE_DEFAULT_OPEN"


def default_open_from_env(environ: Mapping[str, str]) -> bool:
    return environ.get(ENV_TRACK_GATE_DEFAULT_OPEN, "0").strip().lower() in ("1", "true", "yes", "on")


class TrackGate:
    def __init__(
        self, tracks: Sequence[TrackConfig], *, default_open: bool = False, symbols: Iterable[str] = (), log: Any = None
    ) -> None:
        self._matcher = TrackMatcher(tracks)
        self._log = log or structlog.get_logger("ops.sessions")
        self.default_open = default_open
        self.track_phases: dict[str, Phase] = {t.name: Phase.INIT for t in tracks}
        self._members: dict[str, tuple[str, ...]] = {}  # symbol -> its tracks (config order)
        self._by_track: dict[str, set[str]] = {t.name: set() for t in tracks}  # track -> resolved symbols
        self._phase: dict[str, Phase] = {}  # symbol -> effective phase: the hot-path lookup
        self.unknown_symbols: set[str] = set()
        self.force_flat_tracks = 0  # tracks in FORCE_FLAT now: 0 lets the flatten gate skip its lookup
        for symbol in symbols:
            self._resolve(symbol)

    def phase_of(self, symbol: str) -> Phase:
        phase = self._phase.get(symbol)
        return phase if phase is not None else self._resolve(symbol)

    def is_open(self, symbol: str) -> bool:
        return self.phase_of(symbol) is Phase.OPEN

    def tracks_of(self, symbol: str) -> tuple[str, ...]:
        if symbol not in self._members:
            self._resolve(symbol)
        return self._members.get(symbol, ())

    def symbols_of_track(self, track: str, candidates: Iterable[str] = ()) -> set[str]:
        """The concrete symbols of `track` among those seen so far and `candidates` (e.g. open positions),
        so a track listing a product root (TXF) yields the real contract codes (TXFL6)."""
        if track not in self._by_track:
            raise KeyError(f"unknown track {track!r}; configured: {sorted(self._by_track)}")
        for symbol in candidates:
            if symbol not in self._members:
                self._resolve(symbol)
        return set(self._by_track[track])

    def cached_phases(self) -> dict[str, Phase]:
        """The symbol -> phase dict itself (updated in place), for gates that look up without a call."""
        return self._phase

    def set_track_phase(self, track: str, phase: Phase) -> None:
        self.track_phases[track] = phase
        self.force_flat_tracks = sum(p is Phase.FORCE_FLAT for p in self.track_phases.values())
        for symbol in self._by_track[track]:
            self._phase[symbol] = most_permissive(self.track_phases[t] for t in self._members[symbol])

    def _resolve(self, symbol: str) -> Phase:
        tracks = self._matcher.tracks_of(symbol)
        self._members[symbol] = tracks
        if tracks:
            for track in tracks:
                self._by_track[track].add(symbol)
            phase = most_permissive(self.track_phases[t] for t in tracks)
        else:
            phase = Phase.OPEN if self.default_open else Phase.CLOSED
            if symbol not in self.unknown_symbols:
                self.unknown_symbols.add(symbol)
                self._log.warning(
                    "track_gate_unknown_symbol",
                    symbol=symbol,
                    phase=phase.name,
                    hint="add the symbol (or its product root / a pattern) to a track in `tracks:`"
                    + ("" if self.default_open else "; HFT_TRACK_GATE_DEFAULT_OPEN=1 treats unknown symbols as OPEN"),
                )
        self._phase[symbol] = phase
        return phase
