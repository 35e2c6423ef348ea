"""Makes insert jobs durable: the database first, the WAL when it fails; replays the WAL when it is back.

Every blocking call (chDB releases the GIL; fsync) runs on one storage worker thread, so the event loop
keeps reading Redis. Id bookkeeping (IdRegistry) happens on the loop thread only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from hftops.model.market import DeadLetter
from hftops.model.streams import md_stream
from hftops.model.tables import DEAD_LETTERS, EVENT_TABLES, MARKET_TABLES
from hftops.pipeline.intervals import IdRanges
from hftops.pipeline.recorder import deadletters
from hftops.pipeline.recorder.batches import InsertJob, derived_token
from hftops.pipeline.recorder.deadletters import DeadLetterPublisher
from hftops.pipeline.recorder.event_jobs import EventJob
from hftops.pipeline.recorder.event_keys import EventKeys
from hftops.pipeline.recorder.event_storage import EventStorage
from hftops.pipeline.recorder.guard import DiskGuard, GuardActive
from hftops.pipeline.recorder.idset import IdRegistry, Key
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.wal import Segment, Wal, WalRecord
from hftops.store.backend import Store
from hftops.store.ddl import ID_COLUMN, INSERT_COLUMNS
from hftops.store.errors import DatabaseUnavailable, InsertRejected, StoreError
from hftops.store.rows import KIND_OF_TABLE, line_id, line_row, parse_line, row_problem

T = TypeVar("T")
_STREAM_ID = re.compile(r"\d+-\d+")
# Start-up loads the stored ids of the newest this-many ids per symbol (re-deliveries are recent); a
# bigger window costs chDB memory at start (groupUniqArray holds the window).
LOAD_WINDOW_IDS = 1_000_000


class Storage:
    def __init__(
        self,
        *,
        store: Store,
        wal: Wal,
        registry: IdRegistry,
        publisher: DeadLetterPublisher,
        metrics: RecorderMetrics,
        guard: DiskGuard,
        executor: Executor,
        wal_executor: Executor,
        venue: str,
        rejected_dir: Path,
        wall_ns: Callable[[], int] = time.time_ns,
        replay_max_rows: int = 20_000,
        log: structlog.stdlib.BoundLogger | None = None,
        event_keys: EventKeys | None = None,
    ) -> None:
        self.store = store
        self.wal = wal
        self.registry = registry
        self.publisher = publisher
        self.metrics = metrics
        self.guard = guard
        self.executor = executor  # database calls (inserts of different tables run side by side)
        self.wal_executor = wal_executor  # every WAL call, one at a time, in order
        self.replay_max_rows = replay_max_rows
        self.venue = venue
        self.rejected_dir = rejected_dir
        self.wall_ns = wall_ns
        self.log = log or structlog.get_logger("recorder")
        self.db_healthy = False
        self.db_error = "not connected yet"
        self.dlq_wal_ids: set[str] = set()
        self.pending_letters: list[DeadLetter] = []
        self.events = EventStorage(self, event_keys)  # the event tables: orders, fills, positions, ...

    async def run_db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def run_wal(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.wal_executor, fn, *args)

    # -- start -------------------------------------------------------------------------------------

    async def recover_wal(self) -> None:
        refs = await self.run_wal(self.wal.recover)
        for ref in refs:
            if ref.table in EVENT_TABLES:
                self.events.recover(ref.table, ref.keys)
                continue
            for text, ranges in ref.ids.items():
                self.registry.mark_wal(Key.parse(text), IdRanges(ranges))
            self.dlq_wal_ids.update(ref.dlq_ids)
        self.metrics.wal_torn_tails.inc(self.wal.torn_tails)
        self.metrics.wal_corrupt.inc(self.wal.corrupt_records)
        self.update_wal_gauges()

    async def load_stored(self) -> None:
        """One SQL per market table: runs of stored ids per symbol, in the newest `LOAD_WINDOW_IDS` ids and
        at most `max_ranges` runs; below that the floor says "ask the table" (only hand replays go there)."""
        cap = self.registry.max_ranges
        for table in MARKET_TABLES:
            column = ID_COLUMN[table]
            sql = (
                "SELECT symbol, r.1, r.2, bottom, top FROM ("
                "SELECT m.symbol AS symbol, any(w.bottom) AS bottom, any(w.top) AS top, "
                "arraySort(groupUniqArray(m.id)) AS ids, arrayZip("
                "arrayFilter((x, i) -> i = 1 OR x != ids[i - 1] + 1, ids, arrayEnumerate(ids)), "
                "arrayFilter((x, i) -> i = length(ids) OR x + 1 != ids[i + 1], ids, arrayEnumerate(ids))) AS runs "
                f"FROM (SELECT symbol, {column} AS id FROM {table} WHERE venue = {{venue:String}}) AS m "
                f"INNER JOIN (SELECT symbol, min({column}) AS bottom, max({column}) AS top FROM {table} "
                "WHERE venue = {venue:String} GROUP BY symbol) AS w ON m.symbol = w.symbol "
                f"WHERE m.id + {LOAD_WINDOW_IDS} > w.top GROUP BY m.symbol) "
                f"ARRAY JOIN runs AS r ORDER BY symbol, r.1 DESC LIMIT {cap + 1} BY symbol"
            )
            result = await self.run_db(self.store.query, sql, {"venue": self.venue})
            runs: dict[str, list[tuple[int, int]]] = {}
            floors: dict[str, int] = {}
            for symbol, lo, hi, bottom, top in result.rows:
                runs.setdefault(symbol, []).append((int(lo), int(hi)))
                if int(bottom) + LOAD_WINDOW_IDS <= int(top):
                    floors[symbol] = int(top) - LOAD_WINDOW_IDS  # older ids were left out of the scan
            for symbol, pairs in runs.items():
                floor = floors.get(symbol, -1)
                if len(pairs) > cap:
                    floor = max(floor, pairs.pop()[1])  # the oldest run: everything up to it is asked of the table
                self.registry.load_stored(Key(self.venue, KIND_OF_TABLE[table], symbol), pairs, floor)
        await self.events.load_stored()
        self.registry.loaded = True

    # -- health ------------------------------------------------------------------------------------

    def _unhealthy(self, exc: Exception) -> None:
        self.db_error = str(exc)
        self.metrics.tallies.db_failures += 1
        if self.db_healthy:
            self.db_healthy = False
            self.metrics.db_healthy.set(0)
            self.log.warning(
                "database_failing",
                error=self.db_error,
                wal_dir=str(self.wal.directory),
                **self.wal.summary(),
                action="writing batches to the WAL; probing the database",
            )

    async def probe(self) -> bool:
        try:
            await self.run_db(self.store.ping)
            if not self.registry.loaded:
                await self.load_stored()
        except StoreError as exc:
            self.db_error = str(exc)
            return False
        if not self.db_healthy:
            self.db_healthy = True
            self.db_error = ""
            self.metrics.db_healthy.set(1)
            self.log.info("database_healthy", **self.wal.summary())
        return True

    def update_wal_gauges(self) -> None:
        summary = self.wal.summary()
        self.metrics.wal_bytes.set(summary["bytes"])
        self.metrics.wal_segments.set(summary["segments"])
        self.metrics.wal_records.set(summary["records"])

    # -- the live path -----------------------------------------------------------------------------

    async def persist(self, job: InsertJob | EventJob) -> None:
        """Make one job durable. Raises GuardActive, WalWriteError or redis errors: the caller retries."""
        if isinstance(job, EventJob):
            return await self.events.persist(job)
        if not job.done:
            if self.db_healthy and (job.recheck or job.dlq_recheck):
                try:
                    await self._resolve_recheck(job)
                except DatabaseUnavailable as exc:
                    self._unhealthy(exc)
            if job.rows and self.db_healthy:
                try:
                    await self._insert(job)
                    job.rows = 0
                except DatabaseUnavailable as exc:
                    self._unhealthy(exc)
                except InsertRejected as exc:
                    await self._isolate(job, exc)
            if job.rows:
                await self._to_wal(job)
            job.done = True
        await self.flush_letters()

    async def flush_letters(self) -> None:
        letters, self.pending_letters = self.pending_letters, []
        try:
            await self.publisher.publish(letters)
        except Exception:
            self.pending_letters = letters + self.pending_letters
            raise
        for letter in letters:
            self.metrics.dead_lettered(letter.reason)

    async def _insert(self, job: InsertJob, replayed: bool = False) -> None:
        started = time.perf_counter()
        await self.run_db(self.store.insert, job.table, INSERT_COLUMNS[job.table], job.body, job.token)
        seconds = time.perf_counter() - started
        for key, ranges in job.ids.items():
            self.registry.mark_stored(key, ranges)
        self.metrics.inserted(job.table, job.rows, seconds, replayed)
        if job.event_ms:
            now_ms = self.wall_ns() // 1_000_000
            histogram = self.metrics.event_to_ingest.labels(job.table)
            for event_ms in job.event_ms:
                if event_ms > 0:
                    histogram.observe(max(0, now_ms - event_ms) / 1000)

    async def _to_wal(self, job: InsertJob) -> None:
        if self.guard.active:
            raise GuardActive(self.guard.reason)
        await self.run_wal(self.wal.append, job.record(self.wall_ns()))
        for key, ranges in job.ids.items():
            self.registry.mark_wal(key, ranges)
        self.dlq_wal_ids.update(job.dlq_ids)
        self.metrics.walled(job.table, job.rows)
        self.update_wal_gauges()
        self.guard.update(self.wal.bytes)
        job.rows = 0

    # -- rows whose stored state is unknown ----------------------------------------------------------

    async def _resolve_recheck(self, job: InsertJob) -> None:
        existing: set[tuple[str, str, int | str]] = set()
        if job.table == DEAD_LETTERS:
            entry_ids = [i for i in job.dlq_ids if _STREAM_ID.fullmatch(i)]
            if entry_ids:
                quoted = ", ".join(f"'{i}'" for i in entry_ids)
                result = await self.run_db(self.store.query, f"SELECT id FROM {DEAD_LETTERS} WHERE id IN ({quoted})")
                existing = {("", "", str(row[0])) for row in result.rows}
        else:
            column = ID_COLUMN[job.table]
            for key, ids in job.recheck.items():
                listed = ", ".join(str(int(i)) for i in sorted(set(ids)))
                result = await self.run_db(
                    self.store.query,
                    f"SELECT {column} FROM {job.table} WHERE venue = {{v:String}} AND symbol = {{s:String}} "
                    f"AND {column} IN ({listed})",
                    {"v": key.venue, "s": key.symbol},
                )
                existing.update((key.venue, key.symbol, int(row[0])) for row in result.rows)
        job.recheck = {}
        job.dlq_recheck = False
        if existing:
            keep = [line for line in job.body.split(b"\n") if _line_key(job.table, line) not in existing]
            self.metrics.duplicate(job.table, job.rows - len(keep))
            _reshape(job, keep)

    # -- rows the database refuses ---------------------------------------------------------------------

    async def _isolate(self, job: InsertJob, error: InsertRejected) -> None:
        """Dead-letter exactly the refused rows and insert the rest; lines left when the database goes
        down meanwhile stay in the job (for the WAL)."""
        self.log.warning(
            "insert_rejected", table=job.table, rows=job.rows, error=str(error), action="isolating the refused rows"
        )
        good: list[bytes] = []
        refused: list[tuple[bytes, str]] = []
        for line in job.body.split(b"\n"):
            problem = _line_problem(job.table, line)
            if problem:
                refused.append((line, problem))
            else:
                good.append(line)
        inserted: list[bytes] = []
        leftover: list[bytes] = []
        stack = [good]
        while stack:
            part = stack.pop()
            if not part:
                continue
            if not self.db_healthy:
                leftover.extend(part)
                continue
            body = b"\n".join(part)
            try:
                await self.run_db(
                    self.store.insert, job.table, INSERT_COLUMNS[job.table], body, derived_token(job.token, body)
                )
                inserted.extend(part)
            except InsertRejected as exc:
                if len(part) == 1:
                    refused.append((part[0], f"the database refused it: {exc}"))
                else:
                    mid = len(part) // 2
                    stack.extend((part[mid:], part[:mid]))
            except DatabaseUnavailable as exc:
                self._unhealthy(exc)
                leftover.extend(part)
        if inserted:
            done = InsertJob(job.table, b"", "", 0)
            _reshape(done, inserted)
            for key, ranges in done.ids.items():
                self.registry.mark_stored(key, ranges)
            self.metrics.inserted(job.table, done.rows, None)
        self._refuse(job.table, refused)
        _reshape(job, leftover)

    def _refuse(self, table: str, refused: list[tuple[bytes, str]]) -> None:
        if not refused:
            return
        now = self.wall_ns()
        if table == DEAD_LETTERS:
            # A refused dead letter cannot go back to ops:dlq (it would loop): keep it on disk, loudly.
            self.rejected_dir.mkdir(parents=True, exist_ok=True)
            path = self.rejected_dir / "rejected_dead_letters.jsonl"
            with open(path, "a", encoding="utf-8") as handle:
                for line, problem in refused:
                    handle.write(json.dumps({"line": line.decode(errors="replace"), "problem": problem}) + "\n")
            self.metrics.tallies.rejected_dead_letters += len(refused)
            self.log.error("dead_letters_refused", rows=len(refused), file=str(path))
            return
        for line, problem in refused:
            venue, symbol, row = line_row(table, line)
            key = Key(venue, KIND_OF_TABLE[table], symbol)
            reason = deadletters.INVALID_ROW if "refused" not in problem else deadletters.REJECTED_BY_DATABASE
            self.pending_letters.append(
                deadletters.row_letter(
                    key,
                    md_stream(venue, key.kind, symbol),
                    row,
                    reason,
                    f"{key.text()} id {line_id(table, line)}: {problem}",
                    now,
                )
            )
            self.registry.drop_wal(key, IdRanges.single(int(line_id(table, line)), int(line_id(table, line))))

    # -- replay ------------------------------------------------------------------------------------

    async def replay_segment(self, segment: Segment, should_stop: Callable[[], bool]) -> bool:
        """Replay what is left of one sealed segment; archive it when done. False when interrupted.

        Consecutive records of one table are inserted together (up to replay_max_rows rows): a replay
        then runs at bulk insert speed instead of paying the per-insert cost once per original batch.
        """
        while pending := segment.pending():
            if should_stop() or not self.db_healthy:
                return False
            # Records alternate between tables (one per table per batch): group by table, in order.
            table = segment.records[pending[0]].table
            group: list[int] = []
            rows = 0
            for index in pending:
                ref = segment.records[index]
                if ref.table != table:
                    continue
                if group and rows + ref.rows > self.replay_max_rows:
                    break
                group.append(index)
                rows += ref.rows
            records = [await self.run_wal(self.wal.read, segment, segment.records[i]) for i in group]
            if not await self._replay_records(records):
                return False
            segment.done.update(group)
            self.update_wal_gauges()
        target = await self.run_wal(self.wal.finish, segment)
        self.update_wal_gauges()
        self.guard.update(self.wal.bytes)
        self.log.info(
            "wal_segment_replayed", segment=segment.path.name, records=len(segment.records), moved_to=str(target)
        )
        return True

    async def _replay_records(self, records: list[WalRecord]) -> bool:
        if records[0].table in EVENT_TABLES:
            return await self.events.replay(records)
        job = InsertJob.from_records(records)
        original = {key: ranges.copy() for key, ranges in job.ids.items()}
        if job.table != DEAD_LETTERS:
            self._filter_stored(job, recheck_all=any(r.recheck for r in records))
        try:
            if job.recheck or job.dlq_recheck:
                await self._resolve_recheck(job)
            if job.rows:
                await self._insert(job, replayed=True)
                job.rows = 0
        except DatabaseUnavailable as exc:
            self._unhealthy(exc)
            return False
        except InsertRejected as exc:
            await self._isolate(job, exc)
        for key, ranges in original.items():
            self.registry.drop_wal(key, ranges)
        for record in records:
            self.dlq_wal_ids.difference_update(record.dlq_ids)
        if job.rows:
            await self._to_wal(job)  # the database went down while isolating: a new record for the rest
        await self.flush_letters()
        return True

    def _filter_stored(self, job: InsertJob, recheck_all: bool) -> None:
        overlaps = any(
            self.registry.ids(key).stored.intersection(ranges) or self.registry.below_floor(key, ranges.min or 0)
            for key, ranges in job.ids.items()
        )
        if not overlaps and not recheck_all:
            return
        keep: list[bytes] = []
        recheck: dict[Key, list[int]] = {}
        table_kind = KIND_OF_TABLE[job.table]
        for line in job.body.split(b"\n"):
            values = parse_line(line)
            key, venue_id = Key(values[0], table_kind, values[1]), int(values[2])
            if self.registry.in_stored(key, venue_id):
                continue
            if recheck_all or self.registry.below_floor(key, venue_id):
                recheck.setdefault(key, []).append(venue_id)
            keep.append(line)
        self.metrics.duplicate(job.table, job.rows - len(keep))
        _reshape(job, keep)
        job.recheck = recheck


def _line_key(table: str, line: bytes) -> tuple[str, str, int | str]:
    values = parse_line(line)
    if table == DEAD_LETTERS:
        return "", "", str(values[0])
    return values[0], values[1], int(values[2])


def _line_problem(table: str, line: bytes) -> str | None:
    if table == DEAD_LETTERS:
        return None
    try:
        _, _, row = line_row(table, line)
    except (TypeError, ValueError) as exc:
        return f"the line does not form a row: {exc}"
    return row_problem(row)


def _reshape(job: InsertJob, lines: list[bytes]) -> None:
    """Point the job at a subset of its lines: body, token, row count and ids follow."""
    body = b"\n".join(lines)
    if body != job.body:
        job.token = derived_token(job.token, body)
    job.body = body
    job.rows = len(lines)
    if job.table == DEAD_LETTERS:
        job.dlq_ids = [str(line_id(DEAD_LETTERS, line)) for line in lines]
        return
    ids: dict[Key, IdRanges] = {}
    kind = KIND_OF_TABLE[job.table]
    for line in lines:
        values = parse_line(line)
        ids.setdefault(Key(values[0], kind, values[1]), IdRanges()).add(int(values[2]))
    job.ids = ids
    job.event_ms = []
