"""Batches of stream entries and the insert jobs built from them (one per table, filtered, tokenised).

A job is built once per batch and kept until it is durable, so a retry sends the same bytes with the
same deduplication token (derived from the stream-id range of the batch and the body itself).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from hftops.model.market import BboRow, TradeRow
from hftops.model.tables import DEAD_LETTERS, MARKET_BBO, MARKET_TRADES
from hftops.pipeline.intervals import IdRanges
from hftops.pipeline.recorder.entries import DlqEntry, EmptyEntry, Entry, EventEntry, MdEntry, PoisonEntry
from hftops.pipeline.recorder.event_jobs import EventJob, build_event_jobs
from hftops.pipeline.recorder.event_keys import EventKeys
from hftops.pipeline.recorder.event_rows import EventRow
from hftops.pipeline.recorder.idset import IdRegistry, Key
from hftops.pipeline.recorder.wal import WalRecord
from hftops.store.rows import TABLE_OF_KIND, dead_letter_line, market_lines


@dataclass
class Batch:
    started: float  # monotonic time of the first entry: the batch closes batch_max_ms later
    entries: list[Entry] = field(default_factory=list)
    rows: int = 0
    jobs: list[InsertJob | EventJob] | None = None  # built on first attempt, reused by every retry
    poison_published: bool = False

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        if isinstance(entry, MdEntry):
            self.rows += len(entry.rows)
        else:
            self.rows += 1

    def __len__(self) -> int:
        return len(self.entries)

    def acks(self) -> dict[str, list[bytes]]:
        out: dict[str, list[bytes]] = defaultdict(list)
        for entry in self.entries:
            out[entry.stream].append(entry.entry_id)
        return out

    def poison(self) -> list[PoisonEntry]:
        return [e for e in self.entries if isinstance(e, PoisonEntry)]

    def empties(self) -> int:
        return sum(1 for e in self.entries if isinstance(e, EmptyEntry))


@dataclass
class InsertJob:
    table: str
    body: bytes
    token: str
    rows: int
    ids: dict[Key, IdRanges] = field(default_factory=dict)
    dlq_ids: list[str] = field(default_factory=list)
    recheck: dict[Key, list[int]] = field(default_factory=dict)  # stored state unknown: ask the table
    dlq_recheck: bool = False
    event_ms: list[int] = field(default_factory=list)  # first row's event time per entry, for latency
    done: bool = False

    def record(self, created_ns: int) -> WalRecord:
        return WalRecord(
            table=self.table,
            token=self.token,
            body=self.body,
            ids={key.text(): [(lo, hi) for lo, hi in ranges.ranges()] for key, ranges in self.ids.items()},
            dlq_ids=self.dlq_ids,
            rows=self.rows,
            created_ns=created_ns,
            recheck=bool(self.recheck) or self.dlq_recheck,
        )

    @classmethod
    def from_records(cls, records: list[WalRecord]) -> InsertJob:
        """One job for consecutive WAL records of one table; a single record keeps its own token."""
        table = records[0].table
        pairs: dict[Key, list[tuple[int, int]]] = defaultdict(list)
        for record in records:
            for text, ranges in record.ids.items():
                pairs[Key.parse(text)].extend(ranges)
        body = b"\n".join(r.body for r in records)
        token = (
            records[0].token if len(records) == 1 else make_token("replay", ",".join(r.token for r in records), body)
        )
        return cls(
            table,
            body,
            token,
            sum(r.rows for r in records),
            {key: IdRanges(p) for key, p in pairs.items()},
            [i for r in records for i in r.dlq_ids],
            dlq_recheck=table == DEAD_LETTERS,
        )


def make_token(table: str, ranges: str, body: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(table.encode() + b"|" + ranges.encode() + b"|")
    digest.update(body)
    return digest.hexdigest()


def derived_token(token: str, body: bytes) -> str:
    """Token for a subset of a job's lines (after filtering or isolating refused rows)."""
    return make_token("subset", token, body)


def _stream_ranges(entries: list[Entry]) -> str:
    first: dict[str, bytes] = {}
    last: dict[str, bytes] = {}
    for entry in entries:
        first.setdefault(entry.stream, entry.entry_id)
        last[entry.stream] = entry.entry_id
    return ";".join(f"{s}:{first[s].decode()}-{last[s].decode()}" for s in sorted(first))


@dataclass(slots=True)
class _Part:
    """Consecutive entries of one stream whose ids ascend across them: one filter call and one line build
    instead of one per entry (a live feed brings ~75 entries per stream per batch, of 2-4 rows each)."""

    entries: list[MdEntry]
    rows: list[TradeRow | BboRow]
    ids: list[int]
    lo: int
    ordered: bool


def _ascending_parts(run: list[MdEntry]) -> list[_Part]:
    parts: list[_Part] = []
    current: _Part | None = None
    top = 0
    for entry in run:
        if current is not None and current.ordered and entry.ordered and entry.lo > top:
            current.entries.append(entry)
            current.rows.extend(entry.rows)
            current.ids.extend(entry.ids)
        else:
            current = _Part([entry], list(entry.rows), list(entry.ids), entry.lo, entry.ordered)
            parts.append(current)
        top = entry.hi
    return parts


def _first_event_ms(entries: list[MdEntry], kept: list[TradeRow] | list[BboRow], all_kept: bool) -> list[int]:
    """One visible-latency sample per entry with a row kept: the event time of its first kept row."""
    if all_kept:
        return [entry.rows[0].event_time_ms for entry in entries]
    out: list[int] = []
    at = 0
    for entry in entries:
        first: TradeRow | BboRow | None = None
        for row in entry.rows:
            if at < len(kept) and kept[at] is row:
                if first is None:
                    first = row
                at += 1
        if first is not None:
            out.append(first.event_time_ms)
    return out


@dataclass
class BuildStats:
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    header_mismatches: int = 0


def build_jobs(
    batch: Batch, registry: IdRegistry, dlq_wal_ids: set[str], ingest_us: int, event_keys: EventKeys | None = None
) -> tuple[list[InsertJob | EventJob], BuildStats]:
    """Filter the batch against what is already durable and turn it into at most one job per table."""
    stats = BuildStats()
    events: list[tuple[str, list[EventRow]]] = []
    lines: dict[str, list[bytes]] = defaultdict(list)
    kept_ids: dict[str, dict[Key, IdRanges]] = defaultdict(dict)
    recheck: dict[str, dict[Key, list[int]]] = defaultdict(dict)
    event_ms: dict[str, list[int]] = defaultdict(list)
    dlq_ids: list[str] = []
    runs: dict[str, list[MdEntry]] = {}  # a stream's entries, in order: filtered and turned into lines together
    for entry in batch.entries:
        if isinstance(entry, MdEntry):
            stats.header_mismatches += entry.header_mismatch
            run = runs.get(entry.stream)
            if run is None:
                runs[entry.stream] = [entry]
            else:
                run.append(entry)
        elif isinstance(entry, DlqEntry):
            entry_id = entry.entry_id.decode()
            if entry_id in dlq_wal_ids or entry_id in dlq_ids:
                stats.duplicates[DEAD_LETTERS] += 1
                continue
            dlq_ids.append(entry_id)
            lines[DEAD_LETTERS].append(dead_letter_line(entry_id, entry.letter, ingest_us))
        elif isinstance(entry, EventEntry):
            events.append((entry.table, entry.events))
    for run in runs.values():
        key = run[0].key
        table = TABLE_OF_KIND[key.kind]
        seen = kept_ids[table].get(key)
        if seen is None:
            seen = kept_ids[table][key] = IdRanges()
        for part in _ascending_parts(run):
            filtered = registry.filter(key, part.rows, part.lo, part.ordered, seen, part.ids)
            stats.duplicates[table] += filtered.duplicates
            if filtered.recheck:
                recheck[table].setdefault(key, []).extend(filtered.recheck)
            if filtered.rows:
                lines[table].extend(market_lines(key.kind, key.venue, key.symbol, filtered.rows, ingest_us))
                event_ms[table].extend(_first_event_ms(part.entries, filtered.rows, filtered.duplicates == 0))
    ranges = _stream_ranges(batch.entries)
    jobs: list[InsertJob | EventJob] = []
    for table in (MARKET_TRADES, MARKET_BBO, DEAD_LETTERS):
        if not lines.get(table):
            continue
        body = b"\n".join(lines[table])
        ids = {key: r for key, r in kept_ids[table].items() if r}
        jobs.append(
            InsertJob(
                table=table,
                body=body,
                token=make_token(table, ranges, body),
                rows=len(lines[table]),
                ids=ids,
                dlq_ids=dlq_ids if table == DEAD_LETTERS else [],
                recheck=recheck.get(table, {}),
                # Dead letters have no venue-id set in memory: each batch of them asks the table (by primary
                # key, and they are rare), which also covers a Redis restart that re-delivers acked entries.
                dlq_recheck=table == DEAD_LETTERS,
                event_ms=event_ms.get(table, []),
            )
        )
    if events:
        built = build_event_jobs(events, event_keys or EventKeys(), lambda table, body: make_token(table, ranges, body))
        jobs.extend(built.jobs)
        for table, n in built.duplicates.items():
            stats.duplicates[table] += n
    return jobs, stats
