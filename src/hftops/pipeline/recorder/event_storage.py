"""Makes event-table jobs durable (orders, fills, positions, ... and the safety layer's events): the database
first, the WAL when it fails, and replays them; the event counterpart of storage.Storage, sharing its
store, WAL, worker threads, disk guard, dead-letter queue and health.

Exactly once: events already durable are filtered out by key (event_keys.EventKeys) before the insert;
keys the registry cannot vouch for are asked of the table first, and a WAL replay always asks.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hftops.model.market import DeadLetter
from hftops.model.tables import EVENT_TABLES
from hftops.pipeline.recorder import deadletters
from hftops.pipeline.recorder.batches import derived_token, make_token
from hftops.pipeline.recorder.event_jobs import EventJob
from hftops.pipeline.recorder.event_keys import EventKeys
from hftops.pipeline.recorder.event_streams import EVENT_KINDS
from hftops.pipeline.recorder.guard import GuardActive
from hftops.pipeline.recorder.wal import WalRecord
from hftops.store.errors import DatabaseUnavailable, InsertRejected
from hftops.store.event_tables import EVENT_INSERT_COLUMNS, KEY_COLUMN

if TYPE_CHECKING:
    from hftops.pipeline.recorder.storage import Storage

_LABEL = {k.table: k.label for k in EVENT_KINDS}
_ASK_CHUNK = 1000  # keys per IN (...) list
LOAD_WINDOW_NS = 86_400 * 10**9  # re-deliveries and re-sends are recent: a day of keys is plenty


def sql_string(text: str) -> str:
    """A ClickHouse string literal (keys come from event ids: quote them, never trust them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class EventStorage:
    def __init__(self, storage: Storage, keys: EventKeys | None = None) -> None:
        self.storage = storage
        self.keys = keys or EventKeys()

    # -- start ---------------------------------------------------------------------------------------

    def recover(self, table: str, keys: list[str]) -> None:
        self.keys.mark_wal(table, keys)

    async def load_stored(self) -> None:
        """The newest keys of each event table (at most `max_keys`, from the last LOAD_WINDOW_NS of event
        time, so a large table is not scanned whole at start); older events are asked of the table."""
        cap = self.keys.max_keys
        for table in EVENT_TABLES:
            newest = await self.storage.run_db(
                self.storage.store.query, f"SELECT count(), toUnixTimestamp64Nano(max(time)) FROM {table}"
            )
            count, top = (int(v) for v in newest.rows[0])
            if count == 0:
                self.keys.load_stored(table, [], -1)
                continue
            since = top - LOAD_WINDOW_NS
            result = await self.storage.run_db(
                self.storage.store.query,
                f"SELECT {KEY_COLUMN}, toUnixTimestamp64Nano(time) AS t FROM {table} "
                f"WHERE time > fromUnixTimestamp64Nano({since}, 'UTC') ORDER BY t DESC LIMIT {cap + 1}",
            )
            pairs = [(str(key), int(time_ns)) for key, time_ns in result.rows]
            floor = pairs[cap][1] if len(pairs) > cap else since
            self.keys.load_stored(table, pairs[:cap], floor)
        self.keys.loaded = True

    # -- the live path -------------------------------------------------------------------------------

    async def persist(self, job: EventJob) -> None:
        """Make one job durable. Raises GuardActive, WalWriteError or redis errors: the caller retries."""
        storage = self.storage
        if not job.done:
            if storage.db_healthy and job.ask:
                try:
                    await self._ask(job)
                except DatabaseUnavailable as exc:
                    storage._unhealthy(exc)
            if job.rows and storage.db_healthy:
                try:
                    await self._insert(job)
                except DatabaseUnavailable as exc:
                    storage._unhealthy(exc)
                except InsertRejected as exc:
                    await self._isolate(job, exc)
            if job.rows:
                await self._to_wal(job)
            job.done = True
        await storage.flush_letters()

    async def _insert(self, job: EventJob, replayed: bool = False) -> None:
        started = time.perf_counter()
        await self.storage.run_db(
            self.storage.store.insert, job.table, EVENT_INSERT_COLUMNS[job.table], job.body, job.token
        )
        self.keys.mark_stored(job.table, job.pairs())
        self.storage.metrics.inserted(job.table, job.rows, time.perf_counter() - started, replayed)
        job.keep([])

    async def _to_wal(self, job: EventJob) -> None:
        storage = self.storage
        if storage.guard.active:
            raise GuardActive(storage.guard.reason)
        await storage.run_wal(storage.wal.append, job.record(storage.wall_ns()))
        self.keys.mark_wal(job.table, job.keys)
        storage.metrics.walled(job.table, job.rows)
        storage.update_wal_gauges()
        storage.guard.update(storage.wal.bytes)
        job.keep([])

    async def _ask(self, job: EventJob) -> None:
        """Drop the lines whose key the table already holds (their stored state was unknown)."""
        asked = sorted(job.ask)
        existing: set[str] = set()
        for start in range(0, len(asked), _ASK_CHUNK):
            listed = ", ".join(sql_string(k) for k in asked[start : start + _ASK_CHUNK])
            result = await self.storage.run_db(
                self.storage.store.query, f"SELECT {KEY_COLUMN} FROM {job.table} WHERE {KEY_COLUMN} IN ({listed})"
            )
            existing.update(str(row[0]) for row in result.rows)
        job.ask = set()
        if existing:
            before = job.rows
            self.keys.mark_stored(job.table, [(k, t) for k, t in job.pairs() if k in existing])
            job.keep([i for i, key in enumerate(job.keys) if key not in existing])
            job.token = derived_token(job.token, job.body)
            self.storage.metrics.duplicate(job.table, before - job.rows)

    # -- lines the database refuses --------------------------------------------------------------------

    async def _isolate(self, job: EventJob, error: InsertRejected) -> None:
        """Insert what the database takes, dead-letter exactly the lines it refuses; lines left when the
        database goes down meanwhile stay in the job (for the WAL)."""
        storage = self.storage
        storage.log.warning(
            "insert_rejected", table=job.table, rows=job.rows, error=str(error), action="isolating the refused rows"
        )
        leftover: list[int] = []
        refused: list[tuple[int, str]] = []
        stack = [list(range(job.rows))]
        while stack:
            part = stack.pop()
            if not part:
                continue
            if not storage.db_healthy:
                leftover.extend(part)
                continue
            sub = EventJob(
                job.table, [job.lines[i] for i in part], [job.keys[i] for i in part], [job.times[i] for i in part], ""
            )
            sub.token = derived_token(job.token, sub.body)
            try:
                await self._insert(sub)
            except InsertRejected as exc:
                if len(part) == 1:
                    refused.append((part[0], str(exc)))
                else:
                    mid = len(part) // 2
                    stack.extend((part[mid:], part[:mid]))
            except DatabaseUnavailable as exc:
                storage._unhealthy(exc)
                leftover.extend(part)
        now = storage.wall_ns()
        for index, problem in refused:
            storage.pending_letters.append(self._letter(job, index, problem, now))
        job.keep(sorted(leftover))
        job.token = derived_token(job.token, job.body)

    def _letter(self, job: EventJob, index: int, problem: str, now_ns: int) -> DeadLetter:
        return DeadLetter(
            source=deadletters.SOURCE,
            reason=deadletters.REJECTED_BY_DATABASE,
            detail=f"{job.table} event {job.keys[index]}: the database refused it: {problem}",
            payload=job.lines[index],
            time_ns=now_ns,
            kind=_LABEL.get(job.table, job.table),
        )

    # -- replay --------------------------------------------------------------------------------------

    async def replay(self, records: list[WalRecord]) -> bool:
        """Consecutive WAL records of one event table, as one insert; False when the database failed."""
        storage = self.storage
        table = records[0].table
        lines = [line for r in records for line in r.body.split(b"\n") if line]
        token = (
            records[0].token
            if len(records) == 1
            else make_token("replay", ",".join(r.token for r in records), b"\n".join(lines))
        )
        job = EventJob.from_lines(table, lines, token)
        walled = [key for r in records for key in r.keys] or list(job.keys)
        try:
            await self._ask(job)
            if job.rows:
                await self._insert(job, replayed=True)
        except DatabaseUnavailable as exc:
            storage._unhealthy(exc)
            return False
        except InsertRejected as exc:
            await self._isolate(job, exc)
        self.keys.drop_wal(table, walled)
        if job.rows:
            await self._to_wal(job)  # the database went down while isolating: a new record for the rest
        await storage.flush_letters()
        return True
