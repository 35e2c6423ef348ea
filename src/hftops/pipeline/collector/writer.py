"""Everything the collector says to Redis: one MULTI/EXEC per flush, the cursor, stats, stream lengths."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from hftops.model.market import BATCH_ENCODER
from hftops.model.streams import (
    DLQ_STREAM,
    ENTRY_VERSION,
    F_COUNT,
    F_DATA,
    F_FLUSH_NS,
    F_HI,
    F_LO,
    F_VERSION,
    MdKind,
    collector_cursor_key,
    md_stream,
)
from hftops.pipeline.collector.batcher import Chunk, Key
from hftops.pipeline.collector.ingest import DeadLetterFields

STATS_HASH = "ops:stats"
# hiredis's stub types the argument as a 1-tuple; it takes any tuple of str / bytes / int / float.
pack_command = cast(Callable[[tuple[Any, ...]], bytes], hiredis.pack_command)
_MULTI = pack_command((b"MULTI",))
_EXEC = pack_command((b"EXEC",))
_INFO_SERVER = pack_command((b"INFO", b"server"))
MAX_WRITES_PER_TX = 64  # writes that queued during one round trip and go together in the next


def redis_client(url: str, timeout_s: float, single_connection: bool) -> aioredis.Redis:
    # No silent retries inside redis-py: a failed write must reach the collector, which keeps the rows,
    # backs off, and checks after reconnecting whether Redis came back without data (restart, AOF loss).
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        single_connection_client=single_connection,
        decode_responses=False,
    )


def write_connection(url: str, timeout_s: float) -> redis.connection.AbstractConnection:
    """The transaction connection: blocking, used only by the writer thread; it connects on first use and
    again after any failure (a restarted server breaks it)."""
    pool = redis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        health_check_interval=0,
        decode_responses=False,
    )
    return cast(redis.connection.AbstractConnection, pool.make_connection())


class WriteAbandoned(Exception):
    """A write queued behind one that failed: not sent, so nothing after a failure can land before it."""


class _Tx(NamedTuple):
    packed: bytes  # the write's commands in the Redis protocol, without MULTI / EXEC
    commands: int
    future: asyncio.Future[tuple[int, int]]


class _Call(NamedTuple):
    fn: Callable[[], Any]
    future: asyncio.Future[Any]


class BusWriter:
    """Writes flushed chunks as stream entries: one entry per chunk, no MAXLEN, cursor in the same MULTI.

    The transactions run on a thread of their own with a blocking connection. On the event loop a reply
    waits until the task decoding a burst of frames gives the loop back, so every hop carried that wait
    (the transaction's round trip was 2-3 ms at 20,000 msg/s against 0.35 ms for a PING). On its own thread
    the reply is read as soon as it arrives, and its time is the moment the rows were known to be in Redis.

    `submit` only queues, so a due batch leaves from the frame that made it due, even while the event loop
    works through a backlog of frames. Writes queued while one is in flight go together as the next
    transaction (group commit). They are applied in the order submitted; after a failure every queued write
    fails with `WriteAbandoned` until `server_state` has been read again, so no write ever lands after one
    before it failed (a stored cursor never passes rows that are not in Redis).
    """

    def __init__(self, url: str, venue: str, wall_ns: Callable[[], int] = time.time_ns, timeout_s: float = 2.0) -> None:
        self.url = url
        self.venue = venue
        self.cursor_key = collector_cursor_key(venue)
        self._wall_ns = wall_ns
        self._conn = write_connection(url, timeout_s)
        self._jobs: queue.SimpleQueue[_Tx | _Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failed: Exception | None = None  # the last write's failure, until server_state succeeds
        self._aux = redis_client(url, timeout_s, single_connection=False)
        self._keys: dict[Key, str] = {}

    def stream_key(self, key: Key) -> str:
        name = self._keys.get(key)
        if name is None:
            name = self._keys[key] = md_stream(self.venue, key[0], key[1])
        return name

    def submit(
        self, chunks: Sequence[Chunk], dead_letters: Sequence[DeadLetterFields], cursors: Mapping[str, int]
    ) -> asyncio.Future[tuple[int, int]]:
        """Queue one atomic write; its future gives (round trip ns, wall ns of the reply) or the redis / OS
        error (`WriteAbandoned` for a write queued behind a failed one). Retrying is the caller's."""
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._put(_Tx(*self._pack(chunks, dead_letters, cursors), future))
        return future

    def _pack(
        self, chunks: Sequence[Chunk], dead_letters: Sequence[DeadLetterFields], cursors: Mapping[str, int]
    ) -> tuple[bytes, int]:
        """The write's commands, packed here by hiredis's C packer: redis-py's pipeline encodes each argument
        in Python (about 0.5 ms for a 20-stream flush on this box, with the GIL held, which the event loop
        then waits for)."""
        flush_ns = self._wall_ns()
        packed = [
            pack_command(
                (
                    b"XADD",
                    self.stream_key(chunk.key),
                    b"*",
                    F_VERSION,
                    ENTRY_VERSION,
                    F_COUNT,
                    len(chunk.rows),
                    F_LO,
                    chunk.lo,
                    F_HI,
                    chunk.hi,
                    F_DATA,
                    BATCH_ENCODER.encode(chunk.rows),
                    F_FLUSH_NS,
                    flush_ns,
                )
            )
            for chunk in chunks
        ]
        for fields in dead_letters:
            packed.append(pack_command((b"XADD", DLQ_STREAM, b"*", *(x for kv in fields.items() for x in kv))))
        if cursors:
            packed.append(pack_command((b"HSET", self.cursor_key, *(x for kv in cursors.items() for x in kv))))
        return b"".join(packed), len(packed)

    async def server_state(self) -> tuple[str, dict[str, int]]:
        """(run_id, stored cursor) read over the write connection, after every write queued before it; once
        it succeeds, writes are sent again after a failure."""
        future: asyncio.Future[tuple[str, dict[str, int]]] = asyncio.get_running_loop().create_future()
        self._put(_Call(self._server_state, future))
        return await future

    def _put(self, job: _Tx | _Call) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="redis-tx", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    # --- the writer thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        jobs = self._jobs
        job = jobs.get()
        while job is not None:
            if isinstance(job, _Call):
                self._call(job)
                job = jobs.get()
                continue
            group = [job]
            job = None
            # Group commit: writes that queued up during the last round trip share the next one.
            while len(group) < MAX_WRITES_PER_TX:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    job = None
                    break
                if not isinstance(job, _Tx):
                    break
                group.append(job)
                job = None
            self._transaction(group)
            if job is None:
                job = jobs.get()

    def _transaction(self, group: list[_Tx]) -> None:
        if self._failed is not None:
            abandoned = WriteAbandoned(f"not sent: an earlier write failed ({self._failed!r})")
            for tx in group:
                _resolve(tx.future, None, abandoned)
            return
        try:
            result = self._execute(group)
        except Exception as exc:
            self._failed = exc
            for tx in group:
                _resolve(tx.future, None, exc)
            return
        for tx in group:
            _resolve(tx.future, result, None)

    def _execute(self, group: list[_Tx]) -> tuple[int, int]:
        """One MULTI/EXEC holding every write of the group; (round trip ns, wall ns of the reply)."""
        conn = self._conn
        sent_ns = time.monotonic_ns()
        try:
            conn.send_packed_command([_MULTI, *(tx.packed for tx in group), _EXEC], check_health=False)
            queued_error: ResponseError | None = None
            for _ in range(1 + sum(tx.commands for tx in group)):  # +OK, then +QUEUED per command
                try:
                    conn.read_response()
                except ResponseError as exc:
                    queued_error = queued_error or exc  # read on: the EXEC reply must still be consumed
            try:
                replies = conn.read_response()
            except ResponseError as exc:  # EXECABORT: nothing of the transaction was applied
                raise queued_error or exc from None
        except BaseException:
            conn.disconnect()  # whatever was half read, the next write starts on a fresh connection
            raise
        acked_ns = self._wall_ns()
        errors = [reply for reply in replies or () if isinstance(reply, Exception)]
        if replies is None or errors:
            raise ResponseError(f"transaction not applied in full: {errors[:3] or 'EXEC returned nil'}")
        return time.monotonic_ns() - sent_ns, acked_ns

    def _call(self, job: _Call) -> None:
        try:
            result = job.fn()
        except Exception as exc:
            _resolve(job.future, None, exc)
        else:
            _resolve(job.future, result, None)

    def _server_state(self) -> tuple[str, dict[str, int]]:
        conn = self._conn
        try:
            conn.send_packed_command([_INFO_SERVER, pack_command((b"HGETALL", self.cursor_key))], check_health=False)
            info = conn.read_response()
            raw = conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        self._failed = None
        run_id = next((line[7:] for line in info.splitlines() if line.startswith(b"run_id:")), b"")
        cursor = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
        return run_id.decode(), _parse_cursor(cursor)

    async def read_cursor(self) -> dict[str, int]:
        return _parse_cursor(await self._aux.hgetall(self.cursor_key))

    async def stream_lengths(self, symbols: Iterable[str], kinds: Iterable[MdKind]) -> dict[str, int]:
        keys = [self.stream_key((kind, symbol)) for symbol in symbols for kind in kinds]
        pipe = self._aux.pipeline(transaction=False)
        for key in keys:
            pipe.xlen(key)
        return dict(zip(keys, await pipe.execute(), strict=True))

    async def publish_stats(self, component: str, snapshot: bytes) -> None:
        await self._aux.hset(STATS_HASH, component, snapshot)

    async def aclose(self) -> None:
        if self._thread is not None:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._jobs.put(_Call(self._conn.disconnect, future))
            self._jobs.put(None)
            with contextlib.suppress(Exception):  # a client of a dead server must not stop a shutdown
                await asyncio.wait_for(future, 1.0)
        with contextlib.suppress(Exception):
            await self._aux.aclose()


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """From the writer thread: settle `future` on its event loop (gone at shutdown: nobody waits then)."""

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):
        future.get_loop().call_soon_threadsafe(settle)


def _parse_cursor(raw: Mapping[Any, Any]) -> dict[str, int]:
    cursor: dict[str, int] = {}
    for field, value in raw.items():
        try:
            cursor[field.decode()] = int(value)
        except (UnicodeDecodeError, ValueError):
            continue  # not ours; the cursor hash holds SYMBOL -> integer only
    return cursor
