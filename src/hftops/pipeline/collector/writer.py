"""Everything the collector says to Redis: one MULTI/EXEC per flush, the cursor, stats, stream lengths."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from hftops.bus.resp import Replies, RespConnection, pack_command
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
_MULTI = pack_command((b"MULTI",))
_EXEC = pack_command((b"EXEC",))
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


class WriteAbandoned(Exception):
    """A write queued behind one that failed: not sent, so nothing after a failure can land before it."""


@dataclass(slots=True)
class _Job:
    packed: bytes  # the commands in the Redis protocol (a write's without MULTI / EXEC)
    commands: int
    future: asyncio.Future[Any]
    write: bool  # a write (abandoned after a failure) or the read of the server state (which clears it)


class BusWriter:
    """Writes flushed chunks as stream entries: one entry per chunk, no MAXLEN, cursor in the same MULTI.

    The writes go over a RespConnection on the event loop: `submit` packs and, when nothing is on the wire,
    sends at once; the reply is handled in the callback that reads it. (A writer thread with a blocking
    connection cost two thread hand-offs per write, each a wake-up that waits for a CPU on a busy box.)

    One transaction is on the wire at a time. Writes submitted meanwhile go together as the next one
    (group commit), sent from the reply of the one before. They are applied in the order submitted; after
    a failure every queued write fails with `WriteAbandoned` until `server_state` has been read again, so no
    write ever lands after one before it failed (a stored cursor never passes rows that are not in Redis).
    """

    def __init__(self, url: str, venue: str, wall_ns: Callable[[], int] = time.time_ns, timeout_s: float = 2.0) -> None:
        self.url = url
        self.venue = venue
        self.cursor_key = collector_cursor_key(venue)
        self._state_request = pack_command((b"INFO", b"server")) + pack_command((b"HGETALL", self.cursor_key))
        self._wall_ns = wall_ns
        self._conn = RespConnection(url, timeout_s)
        self._queue: deque[_Job] = deque()
        self._sending: list[_Job] | None = None  # the group on the wire
        self._connecting: asyncio.Task[None] | None = None  # held: the loop keeps only weak references to tasks
        self._idle = asyncio.Event()
        self._idle.set()
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
        packed, commands = self._pack(chunks, dead_letters, cursors)
        self._queue.append(_Job(packed, commands, future, write=True))
        self._pump()
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
        future: asyncio.Future[Replies] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(self._state_request, 2, future, write=False))
        self._pump()
        info, raw = await future
        run_id = next((line[7:] for line in info.splitlines() if line.startswith(b"run_id:")), b"")
        cursor = dict(zip(raw[::2], raw[1::2], strict=True)) if isinstance(raw, list) else raw
        return run_id.decode(), _parse_cursor(cursor)

    # --- the wire ------------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Send what is queued, unless something is on the wire (its reply calls this again)."""
        queue = self._queue
        while self._sending is None and queue and self._connecting is None:
            head = queue[0]
            if head.write and self._failed is not None:
                queue.popleft()
                _settle(head.future, WriteAbandoned(f"not sent: an earlier write failed ({self._failed!r})"))
                continue
            if not self._conn.connected:
                self._connecting = asyncio.get_running_loop().create_task(self._connect(), name="redis-connect")
                return
            if head.write:
                group = [queue.popleft()]
                while len(group) < MAX_WRITES_PER_TX and queue and queue[0].write:
                    group.append(queue.popleft())
                payload = b"".join((_MULTI, *(job.packed for job in group), _EXEC))
                replies = 2 + sum(job.commands for job in group)  # +OK, +QUEUED per command, the EXEC reply
            else:
                group = [queue.popleft()]
                payload, replies = head.packed, head.commands
            self._sending = group
            self._idle.clear()
            sent_ns = time.monotonic_ns()
            self._conn.request(payload, replies, functools.partial(self._answered, group, sent_ns=sent_ns))
        if self._sending is None and not queue and self._connecting is None:
            self._idle.set()

    async def _connect(self) -> None:
        try:
            await self._conn.connect()
        except Exception as exc:
            self._connecting = None
            if self._queue:
                self._fail([self._queue.popleft()], exc)
        else:
            self._connecting = None
        self._pump()

    def _answered(self, group: list[_Job], got: Replies | Exception, sent_ns: int) -> None:
        self._sending = None
        if isinstance(got, Exception):
            self._fail(group, got)
        elif not group[0].write:
            self._failed = None
            problem = next((r for r in got if isinstance(r, hiredis.ReplyError)), None)
            _settle(group[0].future, ResponseError(str(problem)) if problem else got)
        else:
            acked_ns = self._wall_ns()
            error = _transaction_error(got)
            if error is not None:
                self._fail(group, error)
            else:
                result = (time.monotonic_ns() - sent_ns, acked_ns)
                for job in group:
                    _settle(job.future, result)
        self._pump()

    def _fail(self, group: list[_Job], exc: Exception) -> None:
        if any(job.write for job in group):
            self._failed = exc
        for job in group:
            _settle(job.future, exc)

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
        with contextlib.suppress(TimeoutError):  # a dead server must not hold up a shutdown
            await asyncio.wait_for(self._idle.wait(), 1.0)
        if self._connecting is not None:
            self._connecting.cancel()
        self._conn.close()
        closed = RedisConnectionError("the writer was closed")
        while self._queue:
            _settle(self._queue.popleft().future, closed)
        with contextlib.suppress(Exception):
            await self._aux.aclose()


def _transaction_error(replies: Replies) -> ResponseError | None:
    """Why a MULTI/EXEC was not applied in full, or None. A command refused while queueing makes EXEC abort
    the whole transaction (EXECABORT); a command failing inside EXEC leaves the others applied."""
    queued_error = next((r for r in replies[:-1] if isinstance(r, hiredis.ReplyError)), None)
    executed = replies[-1]
    if isinstance(executed, hiredis.ReplyError):
        return ResponseError(str(queued_error or executed))
    errors = [r for r in executed or () if isinstance(r, hiredis.ReplyError)]
    if executed is None or errors:
        return ResponseError(f"transaction not applied in full: {errors[:3] or 'EXEC returned nil'}")
    return None


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _parse_cursor(raw: Mapping[Any, Any]) -> dict[str, int]:
    cursor: dict[str, int] = {}
    for field, value in raw.items():
        try:
            cursor[field.decode()] = int(value)
        except (UnicodeDecodeError, ValueError):
            continue  # not ours; the cursor hash holds SYMBOL -> integer only
    return cursor
