"""The capture ledger: per venue and symbol, published = stored + WAL + pending in streams + dead-lettered.

`compute_ledger(config)` reads the live sources (venue ground truth, Redis streams, the recorder's WAL, the
database) in a fixed order and does set algebra over id ranges; `LedgerSources` makes every source
injectable so the maths is tested with plain data and the readers against real Valkey and chDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hftops.pipeline.intervals import IdRanges

if TYPE_CHECKING:
    from hftops.config.schema import Config

# JSON lists at most this many missing/extra ranges per symbol; the counts stay exact.
MAX_RANGES_SHOWN = 1000


class SourceUnavailable(Exception):
    """A ledger source could not be read; the message names it and how to fix it."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class LedgerUnavailable(Exception):
    """The ledger cannot be computed at all (published or stored ids unreadable)."""

    def __init__(self, unknown: dict[str, str]) -> None:
        self.unknown = unknown
        super().__init__("; ".join(f"{k}: {v}" for k, v in unknown.items()))


@dataclass(frozen=True)
class Published:
    """What the venue published for one symbol: every id in [first_id, last_id].

    first_id None: the venue cannot say where publication began (a real exchange); the smallest id the
    platform holds stands in for it, so the ledger proves "no hole since capture began".
    """

    first_id: int | None
    last_id: int


@dataclass(frozen=True)
class Stored:
    ids: IdRanges  # distinct ids in market_trades
    duplicates: int = 0  # rows - distinct ids, as readers see the table
    raw_duplicates: int = 0  # rows - distinct ids before the engine's background merge (informational)


class LedgerSources(Protocol):
    """Where the ledger's figures come from; keys are "<venue>:<SYMBOL>"."""

    def published(self) -> dict[str, Published]: ...

    def settle(self, published: Mapping[str, Published]) -> None:
        """Give ids the venue already published a bounded moment to reach the bus (may do nothing)."""

    def pending(self) -> dict[str, IdRanges]: ...

    def wal(self) -> dict[str, IdRanges]: ...

    def stored(self) -> dict[str, Stored]: ...

    def dlq(self) -> dict[str, IdRanges]: ...


@dataclass
class Observation:
    """One ordered read of every source."""

    published: dict[str, Published]
    horizon: dict[str, int]  # last published id per symbol at the END of the read
    stored: dict[str, Stored] = field(default_factory=dict)
    pending: dict[str, IdRanges] = field(default_factory=dict)
    wal: dict[str, IdRanges] = field(default_factory=dict)
    dlq: dict[str, IdRanges] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SymbolLedger:
    published: int
    stored: int  # distinct stored ids inside the published range
    duplicates: int
    missing: IdRanges
    pending: int  # not stored, in a stream entry the recorder has not acknowledged
    wal: int  # not stored, waiting in the WAL
    dlq: int  # none of the above, dead-lettered
    extra: IdRanges  # held somewhere but never published (outside [first, last] even at the end of the read)
    in_flight: int  # published while the ledger was being read; not judged this time
    raw_duplicates: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and self.duplicates == 0 and not self.extra

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "published": self.published,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "missing": self.missing.count,
            "missing_ranges": self.missing.to_list(MAX_RANGES_SHOWN),
            "pending": self.pending,
            "wal": self.wal,
            "dlq": self.dlq,
            "extra": self.extra.count,
            "extra_ranges": self.extra.to_list(MAX_RANGES_SHOWN),
            "in_flight": self.in_flight,
            "unmerged_duplicates": self.raw_duplicates,
        }
        if self.missing.range_count > MAX_RANGES_SHOWN:
            out["missing_ranges_total"] = self.missing.range_count
        return out


COUNT_KEYS = ("published", "stored", "duplicates", "missing", "pending", "wal", "dlq", "extra", "in_flight")


@dataclass(frozen=True)
class Ledger:
    symbols: dict[str, SymbolLedger]
    unknown: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read

    @property
    def balanced(self) -> bool:
        return not self.unknown and all(s.ok for s in self.symbols.values())

    @property
    def exit_code(self) -> int:
        """0 balanced; 2 a source could not be read; 1 a difference was found."""
        if self.unknown:
            return 2
        return 0 if self.balanced else 1

    def totals(self) -> dict[str, Any]:
        totals: dict[str, Any] = {key: 0 for key in COUNT_KEYS}
        ranges: list[list[Any]] = []
        for key, sym in self.symbols.items():
            row = sym.to_dict()
            for name in COUNT_KEYS:
                totals[name] += row[name]
            ranges.extend([key, lo, hi] for lo, hi in row["missing_ranges"])
        totals["missing_ranges"] = ranges[:MAX_RANGES_SHOWN]
        return totals

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "balanced": self.balanced,
            "totals": self.totals(),
            "symbols": {key: sym.to_dict() for key, sym in self.symbols.items()},
        }
        if self.unknown:
            out["unknown"] = dict(self.unknown)
        return out

    def summary_line(self) -> str:
        if self.balanced:
            return "ledger balanced"
        problems: list[str] = [f"{source} unknown ({why})" for source, why in self.unknown.items()]
        for key, sym in self.symbols.items():
            name = key.split(":", 1)[-1]
            if sym.missing:
                problems.append(f"{name} missing {_ranges_text(sym.missing)} ({sym.missing.count} ids)")
            if sym.duplicates:
                problems.append(f"{name} {sym.duplicates} duplicates")
            if sym.extra:
                problems.append(f"{name} holds {sym.extra.count} ids never published ({_ranges_text(sym.extra)})")
        return "ledger NOT balanced: " + "; ".join(problems)


def _ranges_text(ranges: IdRanges, shown: int = 3) -> str:
    parts = [f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges.to_list(shown)]
    more = f" and {ranges.range_count - shown} more ranges" if ranges.range_count > shown else ""
    return ", ".join(parts) + more


# -- reading ------------------------------------------------------------------------------------------


def read_sources(sources: LedgerSources) -> Observation:
    """Read every source once, in the one order that cannot report a false missing id.

    Why this order: an id only ever moves forward along the pipeline — collector -> stream (unacked)
    -> WAL -> database, or stream -> database, or stream -> ops:dlq -> dead_letters. The recorder acks
    a stream entry only after the WAL fsync or the insert, and an id leaves the WAL index only after
    its replay insert. So:
    1. Published first: every id judged was already published before anything else was read.
    2. `settle` waits (bounded) for the collector's cursor to pass those ids: they are on the bus.
    3. Streams, then the WAL, then the database — the direction of travel. An id in the stream when
       the stream is read is seen there; one that left it earlier is already in the WAL or the
       database, both read later; one that leaves the WAL before the WAL read is in the database
       read after it. To be missed, an id would have to move backwards. (Reading the database first
       would not hold: an id could be in the stream then, and in the database only after.)
    4. Dead letters (ops:dlq, then its table) after: same direction, stream -> ops:dlq -> table.
    5. Streams again: ids that were still inside the collector at step 3 (settle timed out) and
       have reached the bus meanwhile.
    6. Published again: ids published while reading are "in flight" — neither judged nor "extra".
    """
    unknown: dict[str, str] = {}
    try:
        published = sources.published()
    except SourceUnavailable as exc:
        raise LedgerUnavailable({exc.source: exc.message}) from exc
    sources.settle(published)
    obs = Observation(published=published, horizon={k: p.last_id for k, p in published.items()})

    first_pending = _try(sources.pending, unknown)
    obs.wal = _try(sources.wal, unknown) or {}
    try:
        obs.stored = sources.stored()
    except SourceUnavailable as exc:
        raise LedgerUnavailable({**unknown, exc.source: exc.message}) from exc
    obs.dlq = _try(sources.dlq, unknown) or {}
    second_pending = _try(sources.pending, {})
    if first_pending is not None:
        obs.pending = _merge(first_pending, second_pending or {})

    try:
        later = sources.published()
        obs.horizon = {k: max(p.last_id, later[k].last_id) if k in later else p.last_id for k, p in published.items()}
    except SourceUnavailable as exc:
        unknown[exc.source] = exc.message
    obs.unknown = unknown
    return obs


def _try(read: Callable[[], dict[str, IdRanges]], unknown: dict[str, str]) -> dict[str, IdRanges] | None:
    try:
        return read()
    except SourceUnavailable as exc:
        unknown[exc.source] = exc.message
        return None


def _merge(a: Mapping[str, IdRanges], b: Mapping[str, IdRanges]) -> dict[str, IdRanges]:
    return {key: a.get(key, IdRanges()) | b.get(key, IdRanges()) for key in set(a) | set(b)}


# -- the maths ----------------------------------------------------------------------------------------


def evaluate(obs: Observation) -> Ledger:
    symbols = {key: evaluate_symbol(obs, key) for key in sorted(obs.published)}
    return Ledger(symbols=symbols, unknown=dict(obs.unknown))


def evaluate_symbol(obs: Observation, key: str) -> SymbolLedger:
    pub = obs.published[key]
    stored = obs.stored.get(key, Stored(IdRanges()))
    pending = obs.pending.get(key, IdRanges())
    wal = obs.wal.get(key, IdRanges())
    dlq = obs.dlq.get(key, IdRanges())
    held = stored.ids | wal | pending

    first = pub.first_id
    if first is None:
        first = (held.clip(-(2**63), pub.last_id)).min
    published = IdRanges.single(first, pub.last_id) if first is not None else IdRanges()

    # Each published id is counted once, in the furthest stage it reached, so the figures add up:
    # published = stored + wal + pending + dlq + missing.
    in_store = stored.ids & published
    in_wal = (wal & published) - in_store
    in_stream = (pending & published) - in_store - in_wal
    in_dlq = (dlq & published) - in_store - in_wal - in_stream
    missing = published - in_store - in_wal - in_stream - in_dlq

    horizon = max(pub.last_id, obs.horizon.get(key, pub.last_id))
    lower = first if first is not None else held.min
    allowed = IdRanges.single(lower, horizon) if lower is not None else IdRanges()
    extra = held - allowed
    in_flight = (held & allowed) - published
    return SymbolLedger(
        published=published.count,
        stored=in_store.count,
        duplicates=stored.duplicates,
        missing=missing,
        pending=in_stream.count,
        wal=in_wal.count,
        dlq=in_dlq.count,
        extra=extra,
        in_flight=in_flight.count,
        raw_duplicates=stored.raw_duplicates,
    )


# -- entry points -------------------------------------------------------------------------------------


def compute_ledger(config: Config, sources: LedgerSources | None = None) -> Ledger:
    """One ledger evaluation. Raises LedgerUnavailable when published or stored ids cannot be read."""
    if sources is not None:
        return evaluate(read_sources(sources))
    from hftops.pipeline.ledger_sources import LiveSources

    with LiveSources(config) as live:
        return evaluate(read_sources(live))


def compute_ledger_until_balanced(
    config: Config,
    wait_s: float,
    sources: LedgerSources | None = None,
    *,
    interval_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Ledger:
    """Re-evaluate until balanced or `wait_s` has passed (a running pipeline converging); the last result.

    A source that is unreachable meanwhile (a component restarting) is retried until the deadline; if it
    is still unreachable then, LedgerUnavailable is raised.
    """
    deadline = clock() + max(0.0, wait_s)
    while True:
        try:
            ledger: Ledger | None = compute_ledger(config, sources)
            failure: LedgerUnavailable | None = None
        except LedgerUnavailable as exc:
            ledger, failure = None, exc
        if (ledger is not None and ledger.balanced) or clock() + interval_s > deadline:
            if ledger is None:
                assert failure is not None
                raise failure
            return ledger
        sleep(interval_s)
