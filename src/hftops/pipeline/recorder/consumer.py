"""The recorder's side of Redis Streams: consumer groups, reading, re-reading pending entries, claiming
entries a dead consumer left behind, acknowledging, and trimming what every group has acknowledged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

Fields = dict[bytes, bytes]


@dataclass(slots=True)
class Delivered:
    stream: str
    entry_id: bytes
    fields: Fields
    deliveries: int = 1  # times delivered to this group, per XPENDING (1 for a first delivery)


def _as_is(response: Any, **_options: Any) -> Any:
    return response


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_id(raw: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(raw).partition("-")
    return int(ms), int(seq or 0)


class StreamConsumer:
    def __init__(
        self,
        redis: aioredis.Redis,
        streams: Sequence[str],
        group: str,
        consumer: str,
        *,
        read_count: int,
        claim_idle_ms: int,
    ) -> None:
        self.redis = redis
        # XREADGROUP replies as hiredis parsed them: redis-py's callback rebuilds every entry in Python (a
        # tuple, a dict of its fields), about a third of what reading the bus cost per entry. Same pool.
        self._raw = aioredis.Redis(connection_pool=redis.connection_pool)
        self._raw.set_response_callback("XREADGROUP", _as_is)
        self.streams = list(streams)
        self.group = group
        self.consumer = consumer
        self.read_count = read_count
        self.claim_idle_ms = claim_idle_ms
        self.saturated = False  # the last read_new filled COUNT on some stream: more is waiting

    async def ensure_groups(self) -> None:
        """Create the group on every stream (MKSTREAM, from id 0: nothing written before is skipped)."""
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_new(self, count: int, block_ms: int) -> list[Delivered]:
        try:
            response: Any = await self._raw.xreadgroup(
                self.group, self.consumer, dict.fromkeys(self.streams, ">"), count=count, block=max(1, block_ms)
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost its data (no AOF): recreate and carry on
                await self.ensure_groups()
                return []
            raise
        out: list[Delivered] = []
        self.saturated = False
        for stream, entries in response.items() if isinstance(response, dict) else response or ():
            name = _text(stream)
            self.saturated = self.saturated or len(entries) >= count
            for entry_id, flat in entries:
                pairs = iter(flat or ())  # nil: the entry was deleted while pending
                out.append(Delivered(name, entry_id, dict(zip(pairs, pairs, strict=False))))
        return out

    async def own_pending(self) -> AsyncIterator[list[Delivered]]:
        """This consumer's pending entries (delivered before a crash, never acked), page by page.

        Re-reading increments their delivery count, which is what lets a poison entry that kills the
        recorder be recognised after `max_deliveries` restarts.
        """
        for stream in self.streams:
            last: bytes | str = "0"
            while True:
                response: Any = await self.redis.xreadgroup(
                    self.group, self.consumer, {stream: last}, count=self.read_count
                )
                entries = response[0][1] if response else []
                if not entries:
                    break
                counts = await self._deliveries(stream, entries[0][0], entries[-1][0], len(entries))
                yield [
                    Delivered(stream, entry_id, fields or {}, counts.get(entry_id, 1)) for entry_id, fields in entries
                ]
                last = entries[-1][0]

    async def _deliveries(self, stream: str, first: bytes, last: bytes, count: int) -> dict[bytes, int]:
        page: Any = await self.redis.xpending_range(
            stream, self.group, min=first, max=last, count=count, consumername=self.consumer
        )
        return {item["message_id"]: int(item["times_delivered"]) for item in page}

    async def claim_ids(self) -> tuple[int, int]:
        """At start: take over entries idle longer than claim_idle_ms on other consumers (then re-read
        them with own_pending). Returns (claimed, deleted): deleted ones had vanished from the stream."""
        claimed = deleted = 0
        for stream in self.streams:
            cursor: bytes | str = "0-0"
            while True:
                reply = await self.redis.xautoclaim(
                    stream, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.read_count
                )
                cursor, entries = reply[0], reply[1]
                claimed += len(entries)
                deleted += len(reply[2]) if len(reply) > 2 else 0
                if _text(cursor) == "0-0":
                    break
        return claimed, deleted

    async def claim_entries(self) -> list[Delivered]:
        """While running: take over idle entries of other consumers with their data, ready to process."""
        out: list[Delivered] = []
        for stream in self.streams:
            cursor: bytes | str = "0-0"
            while True:
                reply = await self.redis.xautoclaim(
                    stream, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.read_count
                )
                cursor, claimed = reply[0], [(i, f) for i, f in reply[1] if i is not None]
                if claimed:
                    wanted = {entry_id for entry_id, _ in claimed}
                    page = await self.redis.xpending_range(
                        stream,
                        self.group,
                        min=claimed[0][0],
                        max=claimed[-1][0],
                        count=len(claimed) * 4 + 16,
                        consumername=self.consumer,
                    )
                    counts = {i["message_id"]: int(i["times_delivered"]) for i in page if i["message_id"] in wanted}
                    out.extend(
                        Delivered(stream, entry_id, fields or {}, counts.get(entry_id, 2))
                        for entry_id, fields in claimed
                    )
                if _text(cursor) == "0-0":
                    break
        return out

    async def ack(self, acks: dict[str, list[bytes]]) -> int:
        if not acks:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in acks.items():
                for start in range(0, len(ids), 5000):
                    pipe.xack(stream, self.group, *ids[start : start + 5000])
            results = await pipe.execute()
        return sum(int(r) for r in results)


def next_id(raw: bytes | str) -> str:
    ms, seq = parse_id(raw)
    return f"{ms}-{seq + 1}"


async def trim_acknowledged(redis: aioredis.Redis, stream: str) -> int:
    return (await trim_all_acknowledged(redis, [stream]))[stream]


async def trim_all_acknowledged(redis: aioredis.Redis, streams: Sequence[str]) -> dict[str, int]:
    """XTRIM MINID below the oldest entry some group has not acknowledged; never below unread data.

    For each group that point is its oldest pending entry, or (nothing pending) the entry after its
    last-delivered id. A stream without groups is left alone: nobody has acknowledged anything. Three
    pipelined round trips for all streams (group info, pending summaries, trims) instead of two or three
    per stream. A floor read before a trim can only be too low by the time it lands, never too high.
    """
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xinfo_groups(stream)
        infos = await pipe.execute(raise_on_error=False)
    floors: dict[str, tuple[int, int] | None] = {}
    pending: list[tuple[str, str, Any]] = []  # (stream, group, group info) whose oldest pending entry is needed
    for stream, groups in zip(streams, infos, strict=True):
        if isinstance(groups, ResponseError) and "no such key" in str(groups).lower():
            groups = []
        elif isinstance(groups, Exception):
            raise groups
        floors[stream] = None
        for group in groups:
            if int(group.get("pending") or 0) > 0:
                pending.append((stream, group["name"], group))
            else:
                floors[stream] = _lower(floors[stream], parse_id(next_id(group["last-delivered-id"])))
    if pending:
        async with redis.pipeline(transaction=False) as pipe:
            for stream, name, _ in pending:
                pipe.xpending(stream, name)
            summaries = await pipe.execute()
        for (stream, _, group), summary in zip(pending, summaries, strict=True):
            oldest = summary["min"] if summary.get("min") else next_id(group["last-delivered-id"])
            floors[stream] = _lower(floors[stream], parse_id(oldest))
    trimmed = dict.fromkeys(streams, 0)
    due = [(stream, floor) for stream, floor in floors.items() if floor is not None and floor > (0, 1)]
    if due:
        async with redis.pipeline(transaction=False) as pipe:
            for stream, (ms, seq) in due:
                pipe.xtrim(stream, minid=f"{ms}-{seq}", approximate=False)
            results = await pipe.execute()
        for (stream, _), count in zip(due, results, strict=True):
            trimmed[stream] = int(count)
    return trimmed


def _lower(current: tuple[int, int] | None, point: tuple[int, int]) -> tuple[int, int]:
    return point if current is None else min(current, point)
