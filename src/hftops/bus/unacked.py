"""Reading a stream the way a consumer group sees it: the entries it has not acknowledged yet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

STREAM_PAGE = 1000
StreamId = tuple[int, int]


def parse_stream_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def unacked_entries(client: redis.Redis, stream: str, group: str) -> Iterator[tuple[StreamId, dict[bytes, bytes]]]:
    """Entries of `stream` that `group` has not acknowledged: its pending list and everything after its
    last-delivered id. Without the group (the recorder never ran) every entry counts."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return
        raise
    info = next((g for g in groups if _text(g.get("name")) == group), None)
    last_delivered: StreamId = (0, 0)
    pending_ids: set[StreamId] = set()
    if info is not None:
        last_delivered = parse_stream_id(info["last-delivered-id"])
        if int(info.get("pending") or 0) > 0:
            pending_ids = _pending_ids(client, stream, group)
    start: StreamId = min(pending_ids) if pending_ids else (last_delivered[0], last_delivered[1] + 1)
    cursor = f"{start[0]}-{start[1]}"
    while True:
        page: Any = client.xrange(stream, min=cursor, max="+", count=STREAM_PAGE)
        for raw_id, fields in page:
            entry_id = parse_stream_id(raw_id)
            if entry_id > last_delivered or entry_id in pending_ids:
                yield entry_id, fields
        if len(page) < STREAM_PAGE:
            return
        cursor = "(" + _text(page[-1][0])


def stream_entries(client: redis.Redis, stream: str) -> Iterator[tuple[StreamId, dict[bytes, bytes]]]:
    """Every entry of `stream`, oldest first, a page at a time."""
    cursor = "-"
    while True:
        page: Any = client.xrange(stream, min=cursor, max="+", count=STREAM_PAGE)
        for raw_id, fields in page:
            yield parse_stream_id(raw_id), fields
        if len(page) < STREAM_PAGE:
            return
        cursor = "(" + _text(page[-1][0])


def _pending_ids(client: redis.Redis, stream: str, group: str) -> set[StreamId]:
    found: set[StreamId] = set()
    cursor = "-"
    while True:
        page: Any = client.xpending_range(stream, group, min=cursor, max="+", count=STREAM_PAGE)
        found.update(parse_stream_id(item["message_id"]) for item in page)
        if len(page) < STREAM_PAGE:
            return found
        cursor = "(" + _text(page[-1]["message_id"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
