"""Insert jobs of the event tables: the events of a batch not yet durable, one job per table.

Like batches.InsertJob, a job is built once per batch and kept until it is durable, so a retry sends the
same bytes with the same deduplication token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from hftops.model.tables import EVENT_TABLES
from hftops.pipeline.recorder.event_keys import EventKeys, Seen
from hftops.pipeline.recorder.event_rows import EventRow, event_line
from hftops.pipeline.recorder.wal import WalRecord
from hftops.store.rows import parse_line


@dataclass
class EventJob:
    table: str
    lines: list[bytes]
    keys: list[str]  # one per line, same order
    times: list[int]  # event time of each line
    token: str
    ask: set[str] = field(default_factory=set)  # keys whose stored state is unknown: ask the table first
    done: bool = False

    @property
    def rows(self) -> int:
        return len(self.lines)

    @property
    def body(self) -> bytes:
        return b"\n".join(self.lines)

    def pairs(self) -> list[tuple[str, int]]:
        return list(zip(self.keys, self.times, strict=True))

    def keep(self, wanted: list[int]) -> None:
        """Point the job at a subset of its lines (by index)."""
        self.lines = [self.lines[i] for i in wanted]
        self.keys = [self.keys[i] for i in wanted]
        self.times = [self.times[i] for i in wanted]
        self.ask &= set(self.keys)

    def record(self, created_ns: int) -> WalRecord:
        return WalRecord(
            table=self.table,
            token=self.token,
            body=self.body,
            ids={},
            dlq_ids=[],
            rows=self.rows,
            created_ns=created_ns,
            recheck=True,  # a replay always asks the table: the registry may not hold these keys by then
            keys=list(self.keys),
        )

    @classmethod
    def from_lines(cls, table: str, lines: list[bytes], token: str) -> EventJob:
        """A job rebuilt from stored lines (WAL replay): key and time are the first two values of each line."""
        keys: list[str] = []
        times: list[int] = []
        for line in lines:
            values = parse_line(line)
            keys.append(str(values[0]))
            times.append(int(values[1]))
        return cls(table, lines, keys, times, token, ask=set(keys))


@dataclass
class EventBuild:
    jobs: list[EventJob]
    duplicates: dict[str, int]


def build_event_jobs(
    entries: list[tuple[str, list[EventRow]]], registry: EventKeys, token_of: Callable[[str, bytes], str]
) -> EventBuild:
    """entries: (table, rows) per stream entry in batch order; token_of(table, body) -> insert token."""
    lines: dict[str, list[bytes]] = defaultdict(list)
    keys: dict[str, list[str]] = defaultdict(list)
    times: dict[str, list[int]] = defaultdict(list)
    ask: dict[str, set[str]] = defaultdict(set)
    seen: dict[str, set[str]] = defaultdict(set)
    duplicates: dict[str, int] = defaultdict(int)
    for table, rows in entries:
        for row in rows:
            verdict = registry.classify(table, row.key, row.time_ns)
            if verdict is Seen.DUPLICATE or row.key in seen[table]:
                duplicates[table] += 1
                continue
            if verdict is Seen.ASK:
                ask[table].add(row.key)
            seen[table].add(row.key)
            lines[table].append(event_line(table, row))
            keys[table].append(row.key)
            times[table].append(row.time_ns)
    jobs = []
    for table in EVENT_TABLES:
        if lines.get(table):
            body = b"\n".join(lines[table])
            jobs.append(EventJob(table, lines[table], keys[table], times[table], token_of(table, body), ask[table]))
    return EventBuild(jobs, dict(duplicates))
